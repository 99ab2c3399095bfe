"""The compiled top-k selection agrees with a full sort (ties to the lower index)."""

from __future__ import annotations

import numpy as np
import pytest

from palate.models import _topk
from palate.models._topk import top_k_sorted
from palate.models.scoring import top_k


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


def test_offsets_added_during_the_selection_equal_adding_them_first() -> None:
    rng = np.random.default_rng(2)
    for dtype in (np.float32, np.float64):
        z = rng.normal(size=(4, 6000)).astype(dtype)
        rows = rng.normal(size=4).astype(dtype)
        cols = rng.normal(size=6000).astype(dtype)
        cols[100:200] = cols[5]  # ties
        expected = z.copy()
        expected += rows[:, None]
        expected += cols[None, :]
        for k in (1, 10, 128, 300):  # 300: the NumPy partition path
            got = top_k(z.copy(), k, row_offset=rows, col_offset=cols)
            want = top_k(expected.copy(), k)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])


def test_linear_scores_rank_as_the_full_score_rows() -> None:
    import scipy.sparse as sp

    from palate.models.scoring import LinearScores

    rng = np.random.default_rng(3)
    U, V = rng.normal(size=(5, 4)), rng.normal(size=(5000, 4))
    b, c = rng.normal(size=5), rng.normal(size=5000)
    seen = sp.random(5, 5000, density=0.01, format="csr", random_state=0)
    linear = LinearScores(U, V, b, c)
    rows = np.array([4, 0, 2])
    np.testing.assert_allclose(linear(rows), U[rows] @ V.T + b[rows, None] + c[None, :])
    got = linear.top_k(rows, 10, seen)
    want = top_k(linear(rows), 10, seen, rows)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert not set(got[0][1]) & set(seen[0].indices)  # row 0 of seen excluded for rows[1] = 0


@pytest.mark.parametrize("shifted", [False, True])
def test_blocked_products_rank_like_the_whole_product(shifted: bool) -> None:
    """top_k_of_products (block by block, exclusions skipped) == top_k_sorted on the whole."""
    rng = np.random.default_rng(5)
    n, m, d, k = 7, 3 * 4096 + 123, 6, 12
    queries = rng.normal(size=(n, d)).astype(np.float32)
    factors = rng.normal(size=(m, d)).astype(np.float32)
    factors[100:400] = factors[50]  # ties across many columns: lower index first
    rows = rng.normal(size=n).astype(np.float32) if shifted else None
    cols = rng.normal(size=m).astype(np.float32) if shifted else None
    excluded = [np.sort(rng.choice(m, 40, replace=False)) for _ in range(n)]
    excluded[2] = np.array([], dtype=np.int64)
    starts = np.cumsum([0] + [len(e) for e in excluded[:-1]])
    ends = starts + [len(e) for e in excluded]
    whole = queries @ np.ascontiguousarray(factors.T)
    for r, e in enumerate(excluded):
        whole[r, e] = -np.inf
    expected_idx, expected_val = _topk.top_k_sorted(whole, k, rows, cols)
    original = _topk.BLOCK_BYTES
    try:
        _topk.BLOCK_BYTES = 1  # the smallest blocks (4096 columns): several per row
        idx, val = _topk.top_k_of_products(
            queries, np.ascontiguousarray(factors.T), k, rows, cols,
            (starts, ends, np.concatenate(excluded)),
        )
    finally:
        _topk.BLOCK_BYTES = original
    np.testing.assert_array_equal(idx, expected_idx)
    np.testing.assert_allclose(val, expected_val, rtol=1e-6)
    for r, e in enumerate(excluded):
        assert not np.isin(idx[r], e).any()
