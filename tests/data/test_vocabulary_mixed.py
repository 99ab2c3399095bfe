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
