"""``explain: true`` names real terms of each listed item's score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from palate import CollaborativeFiltering, RetrieveThenRank, load, save
from palate.data.synthetic import SyntheticData
from palate.retrieval.sources import Popular, SimilarToRecent
from palate.service import create_app

from .conftest import ADMIN_TOKEN, ClientFactory
from .test_api import recommend


def test_cf_explanations_name_only_rated_items_whose_removal_lowers_the_score(
    make_client: ClientFactory, model_dirs: dict[str, Path]
) -> None:
    client = make_client("cf")
    model = load(model_dirs["cf"])
    named = 0
    for user in model.users_.ids[:20].tolist():
        result = recommend(client, [user], k=10, explain=True)[0]
        rows, values = model.explain_history(int(model.users_.index([user])[0]))
        history = model.items_.ids[rows]
        seen = set(model.seen_items(user).tolist())
        full = model.fold_in_scores(history, values)
        for item in result["items"]:
            assert item["explanation"]
            because = item.get("because_of")
            if because is None:
                continue
            assert because["item_id"] in seen
            assert "because you rated" in item["explanation"]
            keep = history != because["item_id"]
            i = model.items_.index([item["item_id"]])[0]
            drop = full[i] - model.fold_in_scores(history[keep], values[keep])[i]
            assert drop >= 0.5 * because["contribution"] > 0
            named += 1
    assert named > 0


def test_folded_in_users_are_explained_by_their_ratings(client: TestClient) -> None:
    client.post("/v1/users/newcomer/ratings", json={"ratings": [
        {"item_id": 1, "rating": 5}, {"item_id": 2, "rating": 4.5}, {"item_id": 7, "rating": 1},
    ]})
    result = recommend(client, ["newcomer"], k=5, explain=True)[0]
    for item in result["items"]:
        assert item["explanation"]
        if item.get("because_of"):
            assert item["because_of"]["item_id"] in (1, 2, 7)
            assert item["because_of"]["rating"] in (5, 4.5, 1)


def test_models_that_cannot_explain_say_so(make_client: ClientFactory) -> None:
    result = recommend(make_client("ials"), [3], k=3, explain=True)[0]
    assert all("not split into reasons" in item["explanation"] for item in result["items"])
    result = recommend(make_client("popularity"), [3], k=3, explain=True)[0]
    assert all(item["explanation"] == "popular with everyone" for item in result["items"])


def test_a_saved_pipeline_answers_with_explanations(
    tmp_path: Path, synthetic: SyntheticData
) -> None:
    pipeline = RetrieveThenRank(
        CollaborativeFiltering(embedding_size=4, epochs=5),
        [SimilarToRecent(n_recent=5, n_similar=10), Popular(top=20)],
    ).fit(synthetic.ratings)
    directory = save(pipeline, tmp_path / "pipeline", item_table=synthetic.items)
    app = create_app(directory, feedback_db=tmp_path / "f.db", admin_token=ADMIN_TOKEN)
    client = TestClient(app, base_url="http://localhost")
    try:
        result = recommend(client, [3], k=5, explain=True)[0]
        assert result["items"]
        seen = set(pipeline.seen_items(3).tolist())
        for item in result["items"]:
            assert "found by" in item["explanation"]
            if item.get("because_of"):
                assert item["because_of"]["item_id"] in seen
        assert np.isfinite([item["score"] for item in result["items"]]).all()
    finally:
        client.app.state.service.store.close()  # type: ignore[attr-defined]
