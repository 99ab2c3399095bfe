"""Filters over HTTP: a request's ``min_ratings`` and ``policies``, and the operator's policy
file, which every list obeys and no request can loosen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.service.conftest import ClientFactory

from palate import load
from palate.data.synthetic import SyntheticData
from palate.ranking.filters import training_events


@pytest.fixture(scope="module")
def counts(model_dirs: dict[str, Path]) -> pd.Series:
    model = load(model_dirs["cf"])
    return pd.Series(training_events(model), index=model.items_.ids)


def _items(document: dict[str, Any], key: str = "items") -> list[list[Any]]:
    return [[row["item_id"] for row in result[key]] for result in document["results"]]


def test_a_request_filters_its_recommendations(
    client: TestClient, synthetic: SyntheticData, counts: pd.Series
) -> None:
    table = synthetic.items.set_index("item_id")
    body = {
        "user_ids": [0, 1, "nobody"],
        "k": 5,
        "min_ratings": 20,
        "policies": [
            {"column": "year", "op": ">=", "value": 1990},
            {"column": "genres", "op": "not contains", "value": "Comedy"},
        ],
    }
    response = client.post("/v1/recommendations", json=body)
    assert response.status_code == 200, response.text
    lists = _items(response.json())
    assert all(lists)
    for listed in lists:
        assert (counts[listed] >= 20).all()
        assert (table.loc[listed, "year"] >= 1990).all()
        assert not any("Comedy" in table.loc[i, "genres"] for i in listed)
    plain = client.post("/v1/recommendations", json={"user_ids": [0], "k": 40}).json()
    passing = [
        i for i in _items(plain)[0]
        if counts[i] >= 20
        and table.loc[i, "year"] >= 1990
        and "Comedy" not in table.loc[i, "genres"]
    ]
    assert lists[0] == passing[:5]


def test_live_ratings_and_similar_items_are_filtered(
    client: TestClient, synthetic: SyntheticData
) -> None:
    table = synthetic.items.set_index("item_id")
    policy = {"column": "year", "op": "<", "value": 2000}
    stored = client.post("/v1/users/newcomer/ratings", json={"ratings": [{"item_id": 3,
                                                                        "rating": 5.0}]})
    assert stored.status_code == 200, stored.text
    response = client.post(
        "/v1/recommendations", json={"user_ids": ["newcomer"], "k": 4, "policies": [policy]}
    )
    assert response.json()["results"][0]["provenance"] == "fold_in"
    assert (table.loc[_items(response.json())[0], "year"] < 2000).all()
    similar = client.post(
        "/v1/similar-items", json={"item_ids": [1, 2], "k": 4, "policies": [policy]}
    )
    assert similar.status_code == 200, similar.text
    for listed in _items(similar.json(), key="similar"):
        assert len(listed) == 4 and (table.loc[listed, "year"] < 2000).all()


@pytest.mark.parametrize(
    "extra",
    [
        {"min_ratings": -1},
        {"min_ratings": 2.5},
        {"min_ratings": "3"},
        {"policies": [{"column": "year", "op": "~", "value": 3}]},
        {"policies": [{"column": "year; drop", "op": "==", "value": 3}]},
        {"policies": [{"column": "year", "op": "==", "value": 3, "also": 1}]},
        {"policies": [{"column": "year", "op": ">=", "value": 1990}] * 21},
        {"policies": [{"column": "year", "op": "in", "value": list(range(101))}]},
    ],
)
def test_filters_are_validated_and_bounded(client: TestClient, extra: dict[str, Any]) -> None:
    response = client.post("/v1/recommendations", json={"user_ids": [0], **extra})
    assert response.status_code == 422, response.text


def test_a_policy_on_a_missing_column_is_a_clear_error(client: TestClient) -> None:
    body = {"item_ids": [1], "policies": [{"column": "rating", "op": ">", "value": 3}]}
    response = client.post("/v1/similar-items", json=body)
    assert response.status_code == 422
    assert "'rating' is not in the item table" in response.json()["message"]


def test_the_operators_policy_file_holds_for_every_request(
    make_client: ClientFactory, tmp_path: Path, synthetic: SyntheticData, counts: pd.Series
) -> None:
    path = tmp_path / "policies.toml"
    path.write_text(
        'min_ratings = 22\n\n[[policies]]\ncolumn = "year"\nop = ">="\nvalue = 1985\n'
    )
    client = make_client("cf", item_filter=path)
    table = synthetic.items.set_index("item_id")
    described = client.get("/v1/model").json()["filters"]
    assert described["min_ratings"] == 22
    assert described["policies"] == [{"column": "year", "op": ">=", "value": 1985}]
    allowed = (counts >= 22) & (table.loc[counts.index, "year"] >= 1985)
    assert described["allowed_items"] == int(allowed.sum())
    for extra in ({}, {"min_ratings": 0, "policies": []}, {"min_ratings": 5}):
        body = {"user_ids": [0, 1, 2, "nobody"], "k": 40, "exclude_seen": False, **extra}
        for listed in _items(client.post("/v1/recommendations", json=body).json()):
            assert set(listed) <= set(allowed[allowed].index)
            assert len(listed) == int(allowed.sum())
    tighter = {"user_ids": [0], "k": 40, "exclude_seen": False,
               "policies": [{"column": "year", "op": "<", "value": 2010}]}
    listed = _items(client.post("/v1/recommendations", json=tighter).json())[0]
    assert set(listed) == set(allowed[allowed & (table.loc[counts.index, "year"] < 2010)].index)
    similar = client.post("/v1/similar-items", json={"item_ids": [0], "k": 40}).json()
    assert set(_items(similar, "similar")[0]) <= set(allowed[allowed].index)
    assert np.all(np.diff([row["distance"] for row in similar["results"][0]["similar"]]) >= 0)


def test_a_bad_policy_file_stops_the_service(make_client: ClientFactory, tmp_path: Path) -> None:
    from palate.errors import PalateError

    path = tmp_path / "policies.toml"
    path.write_text('[[policies]]\ncolumn = "studio"\nop = "=="\nvalue = "A24"\n')
    with pytest.raises(PalateError, match="studio"):
        make_client("cf", item_filter=path)
    path.write_text("min_ratings = -3\n")
    with pytest.raises(PalateError, match="min_ratings"):
        make_client("cf", item_filter=path)
