"""The HTTP API in-process: every endpoint, its answers and its errors."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from palate import ConfigError, load
from palate.service.feedback import SQLiteFeedbackStore

from .conftest import ADMIN_TOKEN, ClientFactory

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def recommend(client: TestClient, users: list, **body: object) -> list[dict]:
    response = client.post("/v1/recommendations", json={"user_ids": users, **body})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def item_ids(result: dict) -> list:
    return [item["item_id"] for item in result["items"]]


def assert_error(response, status: int, *fragments: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "message"}
    assert "Traceback" not in response.text
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    return body


# ----------------------------------------------------------------------------- reading
def test_health_and_model(client: TestClient, model_dirs: dict[str, Path]) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    info = client.get("/v1/model").json()
    assert info["model_kind"] == "collaborative"
    assert info["n_items"] == 40 and info["n_users"] == 60
    assert info["rating_scale"] == [1.0, 5.0]
    assert info["data_fingerprint"].startswith("sha256:")
    assert info["can_fold_in"] and info["can_find_similar"]


def test_recommendations_match_the_model(client: TestClient, model_dirs: dict[str, Path]) -> None:
    model = load(model_dirs["cf"])
    results = recommend(client, [3, 5], k=4)
    expected = model.recommend([3, 5], k=4)
    for row, result in enumerate(results):
        assert result["provenance"] == "model" and result["fallback"] is False
        assert item_ids(result) == expected.item_ids[row].tolist()
        # the score shown is the model's prediction of each item (its predicted rating),
        # listed in the model's ranking order (by confidence)
        scores = [item["score"] for item in result["items"]]
        np.testing.assert_allclose(scores, expected.shown[row], rtol=1e-6)
        assert all(item["title"] == f"Item {item['item_id']}" for item in result["items"])


def test_unknown_user_gets_the_fallback_and_is_told(client: TestClient) -> None:
    # integer and string ids in one batch: the known user is still answered by the model
    known, unknown, stranger = recommend(client, [3, "someone-new", 10_000], k=5)
    assert known["fallback"] is False
    for result in (unknown, stranger):
        assert result["fallback"] is True and result["provenance"] == "fallback"
        assert "unknown user" in result["note"]
    assert item_ids(unknown) == item_ids(stranger)


def test_string_ids_of_integer_users_are_the_same_user(client: TestClient) -> None:
    assert recommend(client, ["3"], k=3)[0]["items"] == recommend(client, [3], k=3)[0]["items"]


def test_exclude_seen(client: TestClient, model_dirs: dict[str, Path]) -> None:
    seen = set(load(model_dirs["cf"]).seen_items(3).tolist())
    assert seen
    excluded = set(item_ids(recommend(client, [3], k=40, exclude_seen=True)[0]))
    included = set(item_ids(recommend(client, [3], k=40, exclude_seen=False)[0]))
    assert not excluded & seen
    assert seen <= included


def test_explanations_name_a_rated_item(client: TestClient) -> None:
    client.post(
        "/v1/users/expl/ratings",
        json={
            "ratings": [
                {"item_id": 1, "rating": 5},
                {"item_id": 2, "rating": 4.5},
                {"item_id": 7, "rating": 1},
            ]
        },
    )
    result = recommend(client, ["expl"], k=5, explain=True)[0]
    assert all(item["explanation"] for item in result["items"])
    named = [item["because_of"] for item in result["items"] if item.get("because_of")]
    assert all(b["item_id"] in (1, 2, 7) for b in named)  # only what the user rated
    assert all(
        "because you rated" in item["explanation"]
        for item in result["items"]
        if item.get("because_of")
    )


def test_similar_items_match_the_model(client: TestClient, model_dirs: dict[str, Path]) -> None:
    response = client.post("/v1/similar-items", json={"item_ids": [1, "2"], "k": 3})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    expected = load(model_dirs["cf"]).similar_items([1, 2], k=3)
    assert [r["item"]["item_id"] for r in results] == [1, 2]
    for row, result in enumerate(results):
        assert [s["item_id"] for s in result["similar"]] == expected.similar_ids[row].tolist()


def test_scores_match_predict(client: TestClient, model_dirs: dict[str, Path]) -> None:
    pairs = [{"user_id": 3, "item_id": 4}, {"user_id": "nobody", "item_id": 4}]
    response = client.post("/v1/scores", json={"pairs": pairs})
    assert response.status_code == 200, response.text
    scores = response.json()["scores"]
    model = load(model_dirs["cf"])
    assert scores[0]["score"] == pytest.approx(float(model.predict([3], [4])[0]), rel=1e-6)
    assert scores[1]["score"] == pytest.approx(float(model.predict(["nobody"], [4])[0]), rel=1e-6)
    assert [s["provenance"] for s in scores] == ["model", "fallback"]


def test_title_search(client: TestClient) -> None:
    found = client.get("/v1/items", params={"query": "item 3"}).json()["items"]
    assert found[0]["item_id"] == 3  # the exact title first
    assert {i["item_id"] for i in found} == {3, *range(30, 40)}
    assert client.get("/v1/items", params={"query": "no such film"}).json()["items"] == []
    assert_error(client.get("/v1/items"), 422, "query")


# ----------------------------------------------------------------------------- ratings
def test_ratings_are_stored_then_folded_in(
    client: TestClient, model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    before = recommend(client, ["ann"], k=5)[0]
    assert before["fallback"] is True
    ratings = {1: 5.0, 2: 1.0, 7: 4.5}
    response = client.post(
        "/v1/users/ann/ratings",
        json={"ratings": [{"item_id": i, "rating": v} for i, v in ratings.items()]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["folded_in"] is True and body["live_ratings"] == 3
    assert [s["item_id"] for s in body["stored"]] == [1, 2, 7]
    # in the database before the response came back
    store: SQLiteFeedbackStore = client.app.state.service.store  # type: ignore[attr-defined]
    with sqlite3.connect(store.path) as db:
        rows = db.execute("SELECT user_id, item_id, value FROM ratings ORDER BY seq").fetchall()
    assert rows == [("ann", 1, 5.0), ("ann", 2, 1.0), ("ann", 7, 4.5)]
    after = recommend(client, ["ann"], k=5)[0]
    assert after["provenance"] == "fold_in" and after["fallback"] is False
    cf = load(model_dirs["cf"])
    expected_ids, _ = cf.recommend_for_ratings(ratings, k=5)
    expected_scores = cf.fold_in(ratings)[cf.items_.index(expected_ids)]  # predicted ratings
    assert item_ids(after) == expected_ids.tolist()
    np.testing.assert_allclose([i["score"] for i in after["items"]], expected_scores, rtol=1e-5)
    assert not set(item_ids(after)) & set(ratings)


def test_a_later_rating_replaces_an_earlier_one(client: TestClient) -> None:
    client.post("/v1/users/bo/ratings", json={"ratings": [{"item_id": 1, "rating": 5}]})
    client.post("/v1/users/bo/ratings", json={"ratings": [{"item_id": 1, "rating": 1}]})
    live = client.get("/v1/users/bo/ratings").json()["ratings"]
    assert [(r["item_id"], r["value"]) for r in live] == [(1, 1.0)]


def test_known_user_ratings_are_merged_with_their_history(client: TestClient) -> None:
    before = recommend(client, [3], k=5)[0]
    target = before["items"][0]["item_id"]
    client.post("/v1/users/3/ratings", json={"ratings": [{"item_id": target, "rating": 1}]})
    after = recommend(client, [3], k=5)[0]
    assert after["provenance"] == "fold_in"
    assert target not in item_ids(after)  # rated now, so excluded
    seen = set(client.app.state.service.served.model.seen_items(3).tolist())  # type: ignore[attr-defined]
    assert not set(item_ids(after)) & seen  # training history still excluded


def test_scores_reflect_live_ratings(client: TestClient, model_dirs: dict[str, Path]) -> None:
    client.post("/v1/users/cy/ratings", json={"ratings": [{"item_id": 5, "rating": 5}]})
    score = client.post("/v1/scores", json={"pairs": [{"user_id": "cy", "item_id": 9}]}).json()
    expected = load(model_dirs["cf"]).fold_in({5: 5.0})[9]
    assert score["scores"][0]["provenance"] == "fold_in"
    assert score["scores"][0]["score"] == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize(
    ("ratings", "status", "fragment"),
    [
        ([{"item_id": 999, "rating": 4}], 404, "999"),
        ([{"item_id": "Item 1", "rating": 4}], 404, "Item 1"),
        ([{"item_id": 1, "rating": 9}], 422, "scale 1 to 5"),
        ([{"item_id": 1, "rating": 0.5}], 422, "scale"),
        ([{"item_id": 1, "rating": "5"}], 422, "rating"),
        ([{"item_id": 1}], 422, "exactly one"),
        ([{"item_id": 1, "rating": 4, "value": 1}], 422, "exactly one"),
        ([{"item_id": 1, "rating": 4}, {"item_id": 1, "rating": 3}], 422, "twice"),
        ([{"item_id": 1.5, "rating": 4}], 422, "item_id"),
        ([{"item_id": "x" * 300, "rating": 4}], 422, "item_id"),
        ([], 422, "ratings"),
        ([{"item_id": 1, "rating": 4}] * 1001, 422, "ratings"),
    ],
)
def test_bad_ratings_are_refused_and_nothing_is_stored(
    client: TestClient, ratings: list, status: int, fragment: str
) -> None:
    response = client.post("/v1/users/dee/ratings", json={"ratings": ratings})
    assert_error(response, status, fragment)
    assert client.app.state.service.store.count() == 0  # type: ignore[attr-defined]


def test_bad_user_ids_are_refused(client: TestClient) -> None:
    body = {"ratings": [{"item_id": 1, "rating": 4}]}
    assert_error(client.post("/v1/users/" + "u" * 300 + "/ratings", json=body), 422, "256")


def test_binary_model_takes_events(make_client: ClientFactory) -> None:
    client = make_client("binary")
    assert_error(
        client.post("/v1/users/e/ratings", json={"ratings": [{"item_id": 1, "value": 3}]}),
        422,
        "0 or 1",
    )
    ok = client.post("/v1/users/e/ratings", json={"ratings": [{"item_id": 1, "value": 1}]})
    assert ok.status_code == 200 and ok.json()["folded_in"] is True
    result = recommend(client, ["e"], k=3)[0]
    assert result["provenance"] == "fold_in"
    assert all(0 <= i["score"] <= 1 for i in result["items"])


def test_implicit_als_stores_but_cannot_fold_in(make_client: ClientFactory) -> None:
    client = make_client("ials")
    assert client.get("/v1/model").json()["can_fold_in"] is False
    ok = client.post("/v1/users/3/ratings", json={"ratings": [{"item_id": 1, "value": 1}]})
    assert ok.status_code == 200, ok.text
    assert ok.json()["folded_in"] is False and "next training run" in ok.json()["note"]
    result = recommend(client, [3], k=39)[0]
    assert result["provenance"] == "model" and "cannot fold" in result["note"]
    assert 1 not in item_ids(result)  # the stored event still counts as seen
    assert_error(
        client.post("/v1/users/3/ratings", json={"ratings": [{"item_id": 1, "value": 0}]}),
        422,
        "> 0",
    )


def test_ease_folds_in_new_events_at_once(
    make_client: ClientFactory, model_dirs: dict[str, Path]
) -> None:
    client = make_client("ease")
    assert client.get("/v1/model").json()["can_fold_in"] is True
    model = load(model_dirs["ease"])
    before = recommend(client, [3], k=5)[0]
    assert before["provenance"] == "model"
    # a known user's training events stay in the history the new event is added to
    new_item = next(int(i) for i in model.items_.ids if i not in set(model.seen_items(3)))
    ok = client.post("/v1/users/3/ratings", json={"ratings": [{"item_id": new_item, "value": 1}]})
    assert ok.status_code == 200 and ok.json()["folded_in"] is True
    after = recommend(client, [3], k=5)[0]
    assert after["provenance"] == "fold_in" and new_item not in item_ids(after)
    history = {i: 1.0 for i in [*model.seen_items(3).tolist(), new_item]}
    expected, _ = model.recommend_for_ratings(history, k=5)
    assert item_ids(after) == [int(i) for i in expected]
    assert_error(
        client.post("/v1/users/3/ratings", json={"ratings": [{"item_id": 1, "value": -1}]}),
        422,
        "> 0",
    )


def test_popularity_model_cannot_find_similar_items(make_client: ClientFactory) -> None:
    client = make_client("popularity")
    assert recommend(client, [3], k=3)[0]["items"]
    response = client.post("/v1/similar-items", json={"item_ids": [1], "k": 3})
    assert_error(response, 409, "popularity", "similar")


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"user_ids": [1], "k": 0}, "k"),
        ({"user_ids": [1], "k": 1001}, "k"),
        ({"user_ids": [1], "k": "10"}, "k"),
        ({"user_ids": [1], "k": True}, "k"),
        ({"user_ids": []}, "user_ids"),
        ({"user_ids": [1.5]}, "user_ids"),
        ({"user_ids": [None]}, "user_ids"),
        ({"user_ids": ["x" * 257]}, "user_ids"),
        ({"user_ids": list(range(1001))}, "user_ids"),
        ({"user_ids": [1], "surprise": 1}, "surprise"),
        ({}, "user_ids"),
    ],
)
def test_bad_recommendation_requests(client: TestClient, body: dict, fragment: str) -> None:
    assert_error(client.post("/v1/recommendations", json=body), 422, fragment)


def test_malformed_json(client: TestClient) -> None:
    response = client.post(
        "/v1/recommendations", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 422)


def test_k_at_the_limit_works(client: TestClient) -> None:
    result = recommend(client, [3], k=1000)[0]
    assert 0 < len(result["items"]) <= 40  # padding dropped


def test_request_body_size_limit(make_client: ClientFactory) -> None:
    client = make_client("cf", max_body_bytes=1000)
    big = {"user_ids": ["x" * 200] * 10}
    assert_error(client.post("/v1/recommendations", json=big), 413, "1000 bytes")

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"user_ids": ['
        for _ in range(100):
            yield b'"xxxxxxxxxxxxxxxxxxxxxxxxx",'
        yield b'"x"]}'

    streamed = client.post(
        "/v1/recommendations", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_error(streamed, 413)
    assert client.post("/v1/recommendations", json={"user_ids": [1]}).status_code == 200


def test_unknown_item_in_similar_items_is_404(client: TestClient) -> None:
    assert_error(client.post("/v1/similar-items", json={"item_ids": [404404]}), 404, "404404")


def test_unexpected_errors_are_json_without_traceback(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = client.app.state.service.served  # type: ignore[attr-defined]

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(served, "recommend", broken)
    no_raise = TestClient(client.app, base_url="http://localhost", raise_server_exceptions=False)
    response = no_raise.post("/v1/recommendations", json={"user_ids": [1]})
    body = assert_error(response, 500, "internal error")
    assert "secret" not in response.text and body["error"] == "internal_error"


def test_unknown_route_is_json(client: TestClient) -> None:
    assert_error(client.get("/v1/nothing-here"), 404)


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/recommendations", "/v1/users/{user_id}/ratings", "/v1/admin/reload"} <= set(paths)


def test_web_page_is_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'name="viewport"' in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200


# ----------------------------------------------------------------------------- reload
def test_reload_needs_the_token(client: TestClient) -> None:
    assert_error(client.post("/v1/admin/reload"), 401, "Bearer")
    assert_error(client.post("/v1/admin/reload", headers={"Authorization": "Bearer no"}), 401)


def test_reload_is_off_without_a_token(make_client: ClientFactory) -> None:
    client = make_client("cf", admin_token="")
    assert_error(client.post("/v1/admin/reload", headers=AUTH), 401, "PALATE_ADMIN_TOKEN")


def test_reload_swaps_the_model(client: TestClient, model_dirs: dict[str, Path]) -> None:
    response = client.post(
        "/v1/admin/reload", headers=AUTH, json={"model_dir": str(model_dirs["popularity"])}
    )
    assert response.status_code == 200, response.text
    assert response.json()["model"]["model_kind"] == "popularity"
    assert client.get("/v1/model").json()["generation"] == 2  # 1 was the starting model
    result = client.post("/v1/recommendations", json={"user_ids": [3], "k": 2}).json()
    assert result["model_generation"] == 2
    expected = load(model_dirs["popularity"]).recommend([3], k=2).item_ids[0].tolist()
    assert item_ids(result["results"][0]) == expected


def test_a_broken_model_is_refused_and_the_old_one_keeps_serving(
    client: TestClient, model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(model_dirs["cf"], broken)
    (broken / "arrays.safetensors").write_bytes(b"garbage")
    for target in (broken, tmp_path / "missing"):
        response = client.post("/v1/admin/reload", headers=AUTH, json={"model_dir": str(target)})
        assert_error(response, 422, "not loaded")
    info = client.get("/v1/model").json()
    assert info["generation"] == 1 and info["model_kind"] == "collaborative"
    assert recommend(client, [3], k=2)[0]["provenance"] == "model"


# ----------------------------------------------------------------------------- the store
def test_concurrent_writes_all_land(client: TestClient) -> None:
    errors: list[str] = []

    def writer(n: int) -> None:
        for item in range(20):
            r = client.post(
                f"/v1/users/w{n}/ratings", json={"ratings": [{"item_id": item, "rating": 3}]}
            )
            if r.status_code != 200:
                errors.append(r.text)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = client.app.state.service.store  # type: ignore[attr-defined]
    assert store.count() == 160
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        seqs = [s for (s,) in db.execute("SELECT seq FROM ratings ORDER BY seq")]
    assert seqs == list(range(1, 161))
    assert all(len(client.get(f"/v1/users/w{n}/ratings").json()["ratings"]) == 20 for n in range(8))


@pytest.mark.parametrize("batch_requests", [True, False])
def test_concurrent_requests_batched_together_get_their_own_answers(
    make_client: ClientFactory, model_dirs: dict[str, Path], batch_requests: bool
) -> None:
    import asyncio

    import httpx

    client = make_client("cf", batch_requests=batch_requests)
    model = load(model_dirs["cf"])
    requests = [([u, "stranger"], 1 + u % 7, u % 2 == 0) for u in range(24)]

    async def run() -> list[dict]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            responses = await asyncio.gather(*[
                http.post("/v1/recommendations",
                          json={"user_ids": users, "k": k, "exclude_seen": exclude})
                for users, k, exclude in requests
            ])
        return [r.json() for r in responses]

    for (users, k, exclude), answer in zip(requests, asyncio.run(run()), strict=True):
        expected = model.recommend(users, k=k, exclude_seen=exclude)
        assert answer["k"] == k
        for row, result in enumerate(answer["results"]):
            assert item_ids(result) == expected.item_ids[row].tolist()


def test_a_reload_reaches_the_other_worker_processes(
    make_client: ClientFactory, model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    # two apps over one feedback database stand for two uvicorn worker processes
    db = tmp_path / "shared.db"
    first = make_client("cf", feedback_db=db)  # publishes its model, as `palate serve` does
    second = make_client("cf", feedback_db=db, follow_published=True)
    assert second.get("/healthz").json() | {"pid": 0} == {
        "status": "ok", "reason": None, "model_kind": "collaborative", "generation": 1, "pid": 0
    }
    response = first.post(
        "/v1/admin/reload", headers=AUTH, json={"model_dir": str(model_dirs["binary"])}
    )
    assert response.status_code == 200, response.text
    assert response.json()["model"]["generation"] == 2
    health = second.get("/healthz").json()
    assert health["model_kind"] == "collaborative" and health["generation"] == 2
    assert second.get("/v1/model").json()["kind"] == "binary"
    # a worker restarted later starts on the reloaded model
    third = make_client("cf", feedback_db=db, follow_published=True)
    assert third.get("/v1/model").json()["kind"] == "binary"


def test_ratings_written_by_another_worker_are_folded_in(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    db = tmp_path / "shared.db"
    first, second = make_client("cf", feedback_db=db), make_client("cf", feedback_db=db)
    first.post("/v1/users/zed/ratings", json={"ratings": [{"item_id": 1, "rating": 5}]})
    result = recommend(second, ["zed"], k=3)[0]
    assert result["provenance"] == "fold_in" and result["live_ratings"] == 1


@pytest.mark.parametrize("index", ["pq", "hnsw", "auto"])
@pytest.mark.parametrize("name", ["cf", "binary", "ials"])
def test_a_serving_index_answers_as_the_model_does(
    make_client: ClientFactory, model_dirs: dict[str, Path], name: str, index: str
) -> None:
    """On 40 items the index's re-ranked candidates cover every item, so its answers are the
    model's own; unknown users still get the fallback, and /v1/model reports the index."""
    indexed = make_client(name, index=index)
    model = load(model_dirs[name])
    users = [3, 5, 17, "someone-new"]
    expected = model.recommend(users, k=5)
    for row, result in enumerate(recommend(indexed, users, k=5)):
        scores = [item["score"] for item in result["items"]]
        # the same top-5 scores; among tied items (a user with a zero vector) any order
        np.testing.assert_allclose(scores, expected.shown[row], rtol=1e-4, atol=1e-5)
        if len(set(np.round(expected.scores[row], 5))) == 5:
            assert item_ids(result) == expected.item_ids[row].tolist()
        assert result["fallback"] is (users[row] == "someone-new")
        if not result["fallback"]:  # each score is the model's prediction of that item
            predicted = model.predict(np.array([users[row]] * 5, dtype=object),
                                      np.array(item_ids(result)))
            np.testing.assert_allclose(scores, predicted, rtol=1e-4, atol=1e-5)
    described = indexed.get("/v1/model").json()["index"]
    # auto names the kind it chose (on 40 items: the cheapest that reaches recall 0.99)
    assert described["kind"] == index if index != "auto" else described["kind"] != "auto"
    assert described["recall_at_10"] == pytest.approx(1.0)
    assert make_client(name).get("/v1/model").json()["index"] is None


def test_a_serving_index_needs_a_dot_product_model(
    make_client: ClientFactory,
) -> None:
    with pytest.raises(ConfigError, match="cannot be served from a vector index"):
        make_client("ease", index="pq")


def test_an_index_below_the_recall_floor_is_not_used(model_dirs: dict[str, Path]) -> None:
    from palate.service.engine import ServedModel

    served = ServedModel.load(model_dirs["cf"], index="pq", index_recall_floor=1.01)
    assert served.serving_index is None  # every item scored exactly
    described = served.describe()["index"]
    assert described["used"] is False and described["recall_floor"] == 1.01
    assert "below 1.01" in described["reason"] and described["kind"] == "pq"
    model = load(model_dirs["cf"])
    recs = served.recommend([3], 5, True, {})
    assert item_ids_of(recs[0].items) == model.recommend([3], k=5).item_ids[0].tolist()
    kept = ServedModel.load(model_dirs["cf"], index="pq", index_recall_floor=0.5)
    assert kept.serving_index is not None and kept.describe()["index"]["used"] is True


def item_ids_of(items: list[dict]) -> list:
    return [item["item_id"] for item in items]
