"""A feedback database that fails, is removed, replaced, locked, or shared by servers of
other models."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from palate.service.feedback import SQLiteFeedbackStore

from .conftest import ADMIN_TOKEN, ClientFactory
from .test_api import assert_error, recommend

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
RATE = {"ratings": [{"item_id": 1, "rating": 4}]}


def test_ratings_are_refused_when_the_database_was_removed(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    folder = tmp_path / "state"
    client = make_client("cf", feedback_db=folder / "feedback.db")
    assert client.post("/v1/users/ray/ratings", json=RATE).status_code == 200
    shutil.rmtree(folder)
    body = assert_error(client.post("/v1/users/ray/ratings", json=RATE), 503, "removed")
    assert body["error"] == "storage_unavailable" and str(tmp_path) not in body["message"]
    health = client.get("/healthz").json()
    assert health["status"] == "degraded" and "removed" in health["reason"]
    assert recommend(client, ["ray"], k=3)[0]["provenance"] == "fold_in"  # reads go on


def test_ratings_are_refused_when_the_database_was_replaced(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    db = tmp_path / "feedback.db"
    client = make_client("cf", feedback_db=db)
    assert client.get("/healthz").json()["status"] == "ok"
    os.rename(db, tmp_path / "old.db")
    SQLiteFeedbackStore(db).close()
    assert_error(client.post("/v1/users/ray/ratings", json=RATE), 503, "replaced")
    assert client.get("/healthz").json()["status"] == "degraded"


def test_a_locked_database_is_a_503_naming_the_lock(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    db = tmp_path / "feedback.db"
    client = make_client("cf", feedback_db=SQLiteFeedbackStore(db, busy_timeout=0.2))
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        body = assert_error(client.post("/v1/users/lo/ratings", json=RATE), 503, "locked")
        assert body["error"] == "storage_unavailable"
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert client.post("/v1/users/lo/ratings", json=RATE).status_code == 200


class _FailingCommit:
    """The store's writer connection, but COMMIT fails the way a full disk fails it: SQLite
    rolls the transaction back itself and reports an I/O error."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)

    def cursor(self) -> Any:
        connection = self.connection
        cursor = connection.cursor()

        class Cursor:
            lastrowid = None

            def execute(self, sql: str, *args: Any) -> Any:
                if sql == "COMMIT":
                    connection.execute("ROLLBACK")
                    raise sqlite3.OperationalError("disk I/O error")
                result = cursor.execute(sql, *args)
                self.lastrowid = cursor.lastrowid
                return result

        return Cursor()


def test_a_failed_commit_is_a_503_with_its_cause(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    store = client.app.state.service.store  # type: ignore[attr-defined]
    store._writer = _FailingCommit(store._writer)
    body = assert_error(client.post("/v1/users/io/ratings", json=RATE), 503, "disk I/O error")
    assert body["error"] == "storage_unavailable"
    assert "disk I/O error" in caplog.text  # the original error, in the log
    store._writer = store._writer.connection
    assert store.count() == 0


def test_servers_of_other_models_on_one_database_do_not_follow_each_other(
    make_client: ClientFactory, model_dirs: dict[str, Path], tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = tmp_path / "shared.db"
    first = make_client("cf", feedback_db=db)
    second = make_client("popularity", feedback_db=db)  # started later, another model
    response = second.post(
        "/v1/admin/reload", headers=AUTH, json={"model_dir": str(model_dirs["binary"])}
    )
    assert response.status_code == 200, response.text
    one = {"ratings": [{"item_id": 1, "rating": 1}]}  # a value both models take
    assert first.post("/v1/users/s/ratings", json=one).status_code == 200  # a change to see
    info = first.get("/v1/model").json()
    assert info["model_kind"] == "collaborative" and info["kind"] == "explicit"
    assert info["generation"] == 1
    assert second.get("/v1/model").json()["kind"] == "binary"
    assert "does not follow its reloads" in caplog.text
    # ratings are still shared
    assert recommend(second, ["s"], k=2)[0]["live_ratings"] == 1
