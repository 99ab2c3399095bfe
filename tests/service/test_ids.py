"""Ids: integers within int64 only, and one rule that never makes two ids one."""

from __future__ import annotations

import numpy as np

from palate.data.vocabulary import Vocabulary


def test_a_vocabulary_treats_out_of_range_and_non_canonical_ids_as_unknown() -> None:
    vocabulary = Vocabulary(np.array([7, 0, 3]))
    asked = [2**64, 2**63, -(2**63) - 1, "18446744073709551616", 7, "7", "007", "-0", "+7",
             " 7", "3"]
    assert vocabulary.index(asked, missing="ignore").tolist() == [
        -1, -1, -1, -1, 0, 0, -1, -1, -1, -1, 2
    ]
    assert vocabulary.index(np.array([2**63], dtype=np.uint64), missing="ignore").tolist() == [-1]
    assert 2**64 not in vocabulary and "007" not in vocabulary
