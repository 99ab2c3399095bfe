"""Ids: integers within int64 only, and one rule that never makes two ids one."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from palate.data.vocabulary import Vocabulary

from .test_api import assert_error, recommend

RATE = {"ratings": [{"item_id": 1, "rating": 4}]}


@pytest.mark.parametrize("big", [2**64, 2**63, -(2**63) - 1, 10**30])
def test_integer_ids_outside_int64_are_refused(client: TestClient, big: int) -> None:
    assert_error(client.post("/v1/recommendations", json={"user_ids": [big]}), 422, "user_ids")
    for pair in ({"user_id": big, "item_id": 1}, {"user_id": 1, "item_id": big}):
        assert_error(client.post("/v1/scores", json={"pairs": [pair]}), 422, "pairs")
    assert_error(
        client.post("/v1/users/u/ratings", json={"ratings": [{"item_id": big, "rating": 3}]}),
        422, "item_id",
    )
    edge = recommend(client, [2**63 - 1, -(2**63)], k=2)
    assert all(r["fallback"] for r in edge)


def test_a_vocabulary_treats_out_of_range_and_non_canonical_ids_as_unknown() -> None:
    vocabulary = Vocabulary(np.array([7, 0, 3]))
    asked = [2**64, 2**63, -(2**63) - 1, "18446744073709551616", 7, "7", "007", "-0", "+7",
             " 7", "3"]
    assert vocabulary.index(asked, missing="ignore").tolist() == [
        -1, -1, -1, -1, 0, 0, -1, -1, -1, -1, 2
    ]
    assert vocabulary.index(np.array([2**63], dtype=np.uint64), missing="ignore").tolist() == [-1]
    assert 2**64 not in vocabulary and "007" not in vocabulary


def test_non_canonical_ids_are_users_of_their_own(client: TestClient) -> None:
    stored = client.post("/v1/users/007/ratings", json=RATE)
    assert stored.status_code == 200, stored.text
    assert stored.json()["user_id"] == "007"
    seven, bond, zero = recommend(client, [7, "007", "-0"], k=3)
    assert seven["user_id"] == 7 and seven["provenance"] == "model"
    assert seven["live_ratings"] == 0
    assert bond["user_id"] == "007" and bond["provenance"] == "fold_in"
    assert zero["user_id"] == "-0" and zero["fallback"] is True
    assert client.get("/v1/users/7/ratings").json()["ratings"] == []
    assert [r["item_id"] for r in client.get("/v1/users/007/ratings").json()["ratings"]] == [1]
    assert recommend(client, ["7"], k=3)[0]["user_id"] == 7  # the canonical form is user 7
    scores = client.post("/v1/scores", json={"pairs": [
        {"user_id": "07", "item_id": 2}, {"user_id": 7, "item_id": 2}]}).json()["scores"]
    assert [s["provenance"] for s in scores] == ["fallback", "model"]
