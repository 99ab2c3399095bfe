"""Bounded work per request: explanations, similar items, replaying and capping live ratings."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from palate.service.engine import EXPLAIN_TOP, LiveFeedback
from palate.service.feedback import StoredRating
from palate.service.schemas import MAX_EXPLAIN_USERS

from .conftest import ClientFactory
from .test_api import assert_error, recommend


def test_explanations_are_bounded(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client("cf")
    client.post("/v1/users/fan/ratings", json={"ratings": [{"item_id": 1, "rating": 5}]})
    model = client.app.state.service.served.model  # type: ignore[attr-defined]
    asked: list[int] = []
    explain_items = model.explain_items

    def recording(user: Any, ids: Any, **kwargs: Any) -> Any:
        asked.append(len(ids))
        return explain_items(user, ids, **kwargs)

    monkeypatch.setattr(model, "explain_items", recording)
    for user in ("fan", 3):  # folded in, and the model's own user
        result = recommend(client, [user], k=39, explain=True, exclude_seen=False)[0]
        explained = [bool(item.get("explanation")) for item in result["items"]]
        assert len(explained) > EXPLAIN_TOP
        assert explained == [True] * EXPLAIN_TOP + [False] * (len(explained) - EXPLAIN_TOP)
    assert asked and all(n <= EXPLAIN_TOP for n in asked)  # one call per list, top 20 only
    too_many = list(range(MAX_EXPLAIN_USERS + 1))
    assert_error(
        client.post("/v1/recommendations", json={"user_ids": too_many, "explain": True}),
        422, f"at most {MAX_EXPLAIN_USERS} user ids",
    )
    assert len(recommend(client, too_many, k=3)) == len(too_many)  # fine without explain


def test_similar_items_take_titles_from_the_lookup_built_at_load(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = client.app.state.service.served.catalog  # type: ignore[attr-defined]

    def slow_path(*args: object, **kwargs: object) -> None:
        raise AssertionError("a pandas lookup per row")

    for name in ("rows", "describe", "title", "genres"):
        monkeypatch.setattr(catalog, name, slow_path)
    response = client.post("/v1/similar-items", json={"item_ids": [1, 2], "k": 39})
    assert response.status_code == 200, response.text
    for result in response.json()["results"]:
        assert result["item"]["title"] == f"Item {result['item']['item_id']}"
        assert len(result["similar"]) == 39
        assert all(s["title"] == f"Item {s['item_id']}" for s in result["similar"])
        assert [s["rank"] for s in result["similar"]] == list(range(1, 40))
    client.post("/v1/users/tl/ratings", json={"ratings": [{"item_id": 2, "rating": 4}]})
    rated = client.get("/v1/users/tl/ratings").json()["ratings"]
    assert rated == [{"item_id": 2, "title": "Item 2", "genres": rated[0]["genres"], "value": 4.0}]


def test_similar_items_requests_are_capped(client: TestClient) -> None:
    response = client.post("/v1/similar-items", json={"item_ids": list(range(11)), "k": 1000})
    assert_error(response, 422, "len(item_ids) * k is at most 10000", "11 * 1000")
    ok = client.post("/v1/similar-items", json={"item_ids": list(range(10)), "k": 1000})
    assert ok.status_code == 200, ok.text


class _ManyRows:
    """A feedback store holding ``n`` ratings of one user."""

    def __init__(self, n: int) -> None:
        self.rows = [StoredRating(s, "heavy", s, 1.0, 0.0) for s in range(1, n + 1)]

    def since(self, seq: int) -> list[StoredRating]:
        return self.rows[seq:]

    def changed(self) -> bool:
        return True


def test_replaying_many_ratings_of_one_user_takes_linear_time() -> None:
    store = _ManyRows(300_000)
    done: list[LiveFeedback] = []
    thread = threading.Thread(target=lambda: done.append(LiveFeedback(store)), daemon=True)
    thread.start()
    thread.join(timeout=20)  # hang guard: copying the user's dict per row takes minutes
    assert done, "replaying 300,000 ratings of one user did not finish"
    live = done[0]
    assert live.count("heavy") == 300_000
    assert live.for_users(["heavy"])["heavy"][0] == 300_000  # the version is the last seq


def test_live_ratings_per_user_are_capped(make_client: ClientFactory) -> None:
    client = make_client("cf", max_live_ratings=3)

    def rate(*items: int) -> httpx.Response:
        body = {"ratings": [{"item_id": i, "rating": 3} for i in items]}
        return client.post("/v1/users/cap/ratings", json=body)

    assert rate(1, 2).status_code == 200
    assert_error(rate(3, 4), 409, "at most 3", "nothing was stored")
    assert rate(3).status_code == 200
    assert rate(1, 2, 3).status_code == 200  # rating them again replaces, adds nothing
    body = assert_error(rate(5), 409, "at most 3")
    assert body["error"] == "too_many_ratings"
    assert client.app.state.service.store.count() == 6  # type: ignore[attr-defined]
