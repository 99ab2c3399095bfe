"""API keys guard a user's live ratings; per-client write limits answer 429."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from palate.errors import ConfigError
from palate.service.access import ApiKeys, WriteLimiter

from .conftest import ClientFactory
from .test_api import assert_error

ALICE_KEY = "alice-key-0123456789"
BACKEND_KEY = "backend-key-abcdefghij"
RATE = {"ratings": [{"item_id": 1, "rating": 4}]}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    hashed = hashlib.sha256(BACKEND_KEY.encode()).hexdigest()
    path = tmp_path / "keys.txt"
    path.write_text(
        "# palate API keys\n"
        f"{ALICE_KEY}  7   # user 7 only\n"
        "\n"
        f"sha256:{hashed} *\n"
    )
    return path


@pytest.fixture
def guarded(make_client: ClientFactory, key_file: Path) -> TestClient:
    return make_client("cf", api_keys=key_file)


def test_without_a_key_ratings_cannot_be_read_or_written(guarded: TestClient) -> None:
    for response in (guarded.post("/v1/users/7/ratings", json=RATE),
                     guarded.get("/v1/users/7/ratings")):
        assert_error(response, 401, "Authorization: Bearer")
        assert response.headers["www-authenticate"] == "Bearer"
    assert_error(guarded.post("/v1/users/7/ratings", json=RATE, headers=bearer("x" * 20)),
                 401, "unknown API key")
    assert guarded.app.state.service.store.count() == 0  # type: ignore[attr-defined]


def test_a_users_key_reaches_that_user_only(guarded: TestClient) -> None:
    stored = guarded.post("/v1/users/7/ratings", json=RATE, headers=bearer(ALICE_KEY))
    assert stored.status_code == 200, stored.text
    mine = guarded.get("/v1/users/7/ratings", headers={"X-API-Key": ALICE_KEY})
    assert [r["item_id"] for r in mine.json()["ratings"]] == [1]
    # "007" is another user, not 7: the key for 7 does not reach it
    for user in ("8", "007"):
        assert_error(guarded.post(f"/v1/users/{user}/ratings", json=RATE,
                                  headers=bearer(ALICE_KEY)), 403, "does not grant")
        assert_error(guarded.get(f"/v1/users/{user}/ratings", headers=bearer(ALICE_KEY)),
                     403, "does not grant")


def test_a_hashed_any_user_key_reaches_every_user(guarded: TestClient) -> None:
    for user in ("7", "8", "new-user"):
        response = guarded.post(f"/v1/users/{user}/ratings", json=RATE,
                                headers=bearer(BACKEND_KEY))
        assert response.status_code == 200, response.text
    assert guarded.get("/v1/model").json()["feedback"]["api_keys"] is True


def test_recommendations_stay_open_with_keys(guarded: TestClient) -> None:
    response = guarded.post("/v1/recommendations", json={"user_ids": [7], "k": 3})
    assert response.status_code == 200


def test_without_a_key_file_anyone_may(client: TestClient) -> None:
    assert client.post("/v1/users/7/ratings", json=RATE).status_code == 200
    assert client.get("/v1/model").json()["feedback"]["api_keys"] is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("short 7\n", "at least 16 characters"),
        ("a-long-enough-key-000\n", "two fields"),
        ("sha256:abc *\n", "64 hex digits"),
        ("a-long-enough-key-000 1\na-long-enough-key-000 2\n", "listed twice"),
        ("# nothing\n", "lists no key"),
    ],
)
def test_a_bad_key_file_is_refused_with_its_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        ApiKeys.read(path)
    with pytest.raises(ConfigError, match="cannot read"):
        ApiKeys.read(tmp_path / "missing.txt")


def test_writes_past_the_rate_get_429_with_retry_after(make_client: ClientFactory) -> None:
    client = make_client("cf", write_rate="3/minute")
    for n in range(3):
        response = client.post("/v1/users/7/ratings",
                               json={"ratings": [{"item_id": n, "rating": 4}]})
        assert response.status_code == 200, response.text
    refused = client.post("/v1/users/7/ratings", json={"ratings": [{"item_id": 9, "rating": 4}]})
    assert_error(refused, 429, "3/minute")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert client.app.state.service.store.count() == 3  # type: ignore[attr-defined]
    # reads are not limited
    assert client.get("/v1/users/7/ratings").status_code == 200
    assert client.get("/v1/model").json()["feedback"]["write_rate"] == "3/minute"


def test_the_write_limit_counts_each_key_apart(make_client: ClientFactory,
                                               key_file: Path) -> None:
    client = make_client("cf", write_rate="1/minute", api_keys=key_file)
    assert client.post("/v1/users/7/ratings", json=RATE,
                       headers=bearer(ALICE_KEY)).status_code == 200
    assert client.post("/v1/users/8/ratings", json=RATE,
                       headers=bearer(BACKEND_KEY)).status_code == 200
    assert_error(client.post("/v1/users/7/ratings", json=RATE, headers=bearer(ALICE_KEY)),
                 429, "rating writes")


def test_a_malformed_rate_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="600/minute"):
        WriteLimiter("often")
