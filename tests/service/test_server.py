"""The real server process: acknowledged ratings survive kill -9; reload under load."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from .conftest import ADMIN_TOKEN
from .server import running_server

pytestmark = pytest.mark.server

BATCH = 3  # ratings per request: each request must land whole or not at all
#: Seconds after which a loop below gives up: a guard against hanging, not a speed test.
DEADLINE = 300.0


def join(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join(timeout=DEADLINE)
        assert not t.is_alive(), f"{t.name} still runs after {DEADLINE:.0f} s"


@pytest.mark.slow
def test_acknowledged_ratings_survive_kill_9(tmp_path: Path, model_dirs: dict[str, Path]) -> None:
    db = tmp_path / "feedback.db"
    acknowledged: list[tuple[str, int]] = []  # (user, request number)
    stop = threading.Event()
    lock = threading.Lock()
    deadline = time.monotonic() + DEADLINE

    def post(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for n in range(100_000):
                if stop.is_set() or time.monotonic() > deadline:
                    return
                user = f"u{worker}-{n}"
                body = {"ratings": [{"item_id": i, "rating": 1 + i % 5} for i in range(BATCH)]}
                try:
                    response = http.post(f"/v1/users/{user}/ratings", json=body)
                except httpx.TransportError:
                    return  # the server died mid-request: not acknowledged
                if response.status_code == 200:
                    with lock:
                        acknowledged.append((user, n))

    with running_server(model_dirs["cf"], db, tmp_path / "server.log") as server:
        threads = [threading.Thread(target=post, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        try:
            while True:  # kill it while writes are in full flow
                with lock:
                    if len(acknowledged) >= 200:
                        break
                    count = len(acknowledged)
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"only {count} of 200 requests were acknowledged in {DEADLINE:.0f} s"
                    )
                if not any(t.is_alive() for t in threads):
                    pytest.fail(f"the writers stopped after {count} of 200 acknowledged requests")
                threads[0].join(0.01)
            server.kill()
        finally:
            stop.set()
            join(threads)

    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = connection.execute("SELECT user_id, item_id, value FROM ratings").fetchall()
    by_user: dict[str, list[tuple[int, float]]] = {}
    for user, item, value in rows:
        by_user.setdefault(user, []).append((item, value))
    for user, _ in acknowledged:
        assert user in by_user, f"acknowledged ratings of {user} were lost"
    for user, ratings in by_user.items():  # nothing half-written: every request whole
        assert sorted(ratings) == [(i, float(1 + i % 5)) for i in range(BATCH)], user

    # a restarted server serves them: the user's ratings are folded in
    with running_server(model_dirs["cf"], db, tmp_path / "server2.log") as server:
        user = acknowledged[-1][0]
        live = httpx.get(f"{server.url}/v1/users/{user}/ratings").json()["ratings"]
        assert len(live) == BATCH
        recs = httpx.post(f"{server.url}/v1/recommendations", json={"user_ids": [user]}).json()
        assert recs["results"][0]["provenance"] == "fold_in"


def test_reload_under_concurrent_requests(tmp_path: Path, model_dirs: dict[str, Path]) -> None:
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()
    deadline = time.monotonic() + DEADLINE

    def ask() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            while not stop.is_set():
                if time.monotonic() > deadline:
                    failures.append(f"the reloads had not finished after {DEADLINE:.0f} s")
                    return
                response = http.post("/v1/recommendations", json={"user_ids": [3, "new"], "k": 5})
                if response.status_code != 200 or len(response.json()["results"]) != 2:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                answered[0] += 1

    with running_server(
        model_dirs["cf"], tmp_path / "f.db", tmp_path / "server.log", token=ADMIN_TOKEN
    ) as server:
        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        generations = []
        try:
            with httpx.Client(base_url=server.url, timeout=60) as admin:
                for name in ["binary", "cf", "popularity", "cf"]:
                    response = admin.post(
                        "/v1/admin/reload",
                        json={"model_dir": str(model_dirs[name])},
                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                    )
                    assert response.status_code == 200, response.text
                    generations.append(response.json()["model"]["generation"])
                refused = admin.post(
                    "/v1/admin/reload",
                    json={"model_dir": str(tmp_path / "missing")},
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                )
                assert refused.status_code == 422
                final = admin.get("/v1/model").json()
        finally:
            stop.set()
            join(threads)
    assert failures == []
    assert answered[0] > 0
    assert generations == [2, 3, 4, 5]  # 1 is the model the server started with
    assert final["generation"] == 5 and final["model_kind"] == "collaborative"


@pytest.mark.slow
def test_a_large_catalogue_served_by_one_process(tmp_path: Path) -> None:
    # 5000 items: top-k takes the compiled path inside the server process (whose thread
    # limits are set at start), for both the trained users and a folded-in one
    from palate import CollaborativeFiltering, save
    from palate.data.synthetic import synthetic_ratings

    data = synthetic_ratings(n_users=40, n_items=5000, n_ratings=8000, seed=1)
    model = CollaborativeFiltering(embedding_size=4, epochs=2).fit(data.ratings)
    model_dir = save(model, tmp_path / "big", item_table=data.items)
    # exact scoring, then the same through the quantised index (`palate serve --index pq`)
    for extra in ((), ("--index", "pq")):
        with running_server(model_dir, tmp_path / "f.db", tmp_path / "server.log",
                            extra=extra) as server:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                rated = http.post(
                    "/v1/users/big/ratings", json={"ratings": [{"item_id": 7, "rating": 5}]}
                )
                assert rated.status_code == 200, rated.text
                answer = http.post("/v1/recommendations",
                                   json={"user_ids": ["big", 3], "k": 10})
                assert answer.status_code == 200, answer.text
                index = http.get("/v1/model").json()["index"]
        first, second = answer.json()["results"]
        assert first["provenance"] == "fold_in" and second["provenance"] == "model"
        assert first["items"][0]["item_id"] == model.recommend_for_ratings({7: 5.0}, k=1)[0][0]
        expected = model.recommend([3], k=10).item_ids[0].tolist()
        if not extra:
            assert index is None
            assert [i["item_id"] for i in second["items"]] == expected
        else:
            assert index["kind"] == "pq" and index["recall_at_10"] >= 0.8  # 0.89 here
            found = {i["item_id"] for i in second["items"]}
            assert len(found) == 10 and len(found & set(expected)) >= 7, (found, expected)
