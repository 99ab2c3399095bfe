"""The compiled top-k selection agrees with a full sort (ties to the lower index)."""

from __future__ import annotations

import numpy as np

from palate.models._topk import top_k_sorted
from palate.models.base import top_k


def test_compiled_top_k_matches_a_stable_sort() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 50, size=(6, 5000)).astype(np.float32)  # many ties
    scores[0, 10:4990] = -np.inf
    scores[1, :] = -np.inf
    scores[1, 7] = 3.0
    idx, val = top_k_sorted(scores, 10)
    for row in range(6):
        finite = int(np.isfinite(val[row]).sum())
        expected = np.argsort(-scores[row], kind="stable")[:finite]
        assert idx[row, :finite].tolist() == expected.tolist()
        np.testing.assert_array_equal(val[row, :finite], scores[row, expected])
    assert int(np.isfinite(val[1]).sum()) == 1


def test_top_k_pads_rows_with_fewer_than_k_items() -> None:
    scores = np.full((2, 5000), -np.inf, dtype=np.float32)
    scores[0, [3, 9]] = [1.0, 2.0]
    idx, val = top_k(scores, 4)
    assert idx[0].tolist() == [9, 3, -1, -1] and idx[1].tolist() == [-1] * 4
    assert np.isnan(val[0, 2:]).all() and np.isnan(val[1]).all()
