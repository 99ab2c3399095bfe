"""An integer vocabulary asked about a mix of integer and string ids."""

from __future__ import annotations

import numpy as np
import pytest

from palate import UnknownIdError, Vocabulary


def test_mixed_ids_find_the_integers() -> None:
    vocabulary = Vocabulary(np.array([10, 20, 30]))
    ids = np.array([20, "web-visitor", "30", 99], dtype=object)
    assert vocabulary.index(ids, missing="ignore").tolist() == [1, -1, 2, -1]
    with pytest.raises(UnknownIdError, match="web-visitor"):
        vocabulary.index(ids)


def test_seen_items(tiny_explicit) -> None:  # type: ignore[no-untyped-def]
    from palate import Popularity

    model = Popularity().fit(tiny_explicit)
    assert sorted(model.seen_items("ann").tolist()) == ["alien", "brazil", "casablanca"]
    assert model.seen_items("nobody").tolist() == []


def test_a_few_ids_are_found_as_a_long_list_finds_them() -> None:
    """Up to a handful of ids are looked up one by one; the answers equal the bulk path's."""
    from palate.data.vocabulary import _FEW

    for vocabulary, queries in [
        (Vocabulary([10, 20, 30]), [20, "30", 99, -1, 10]),
        (Vocabulary(["a", "b", "7"]), ["b", 7, "zz", "a"]),
        (Vocabulary(np.arange(5, dtype=np.int64)), [np.int64(3), 4, 0]),
    ]:
        few = vocabulary.index(queries, missing="ignore")
        padded = queries * (_FEW + 1)  # long enough for the pandas indexer
        bulk = vocabulary.index(padded, missing="ignore")[: len(queries)]
        assert len(queries) <= _FEW
        assert few.tolist() == bulk.tolist()
    assert Vocabulary([10, 20, 30]).index([20, "30", 10]).tolist() == [1, 2, 0]
    assert Vocabulary(["a", "b", "7"]).index([7]).tolist() == [2]
