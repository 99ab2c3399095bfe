"""The compiled top-k selections agree with a full sort (ties to the lower index), and the
block-by-block selection of linear scores with scoring every item."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from palate.models._topk import top_k_sorted
from palate.models.base import LinearScores, top_k


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


def _linear_case(seed: int, n_items: int, dtype: type) -> tuple:
    rng = np.random.default_rng(seed)
    d = 6
    U = rng.normal(size=(9, d)).astype(dtype)
    V = rng.normal(size=(n_items, d)).astype(dtype)
    V[::7] = V[3]  # tied scores across blocks
    b = rng.normal(size=9).astype(dtype)
    c = rng.normal(size=n_items).astype(dtype)
    lists = [rng.choice(n_items, size=rng.integers(0, 40), replace=True) for _ in range(9)]
    lists[2] = np.arange(n_items - 3)  # leaves 3 items: padded to k
    lists[4] = lists[4][::-1].copy()  # unsorted, with repeats
    indptr = np.concatenate([[0], np.cumsum([len(x) for x in lists])])
    seen = sp.csr_matrix(
        (np.ones(indptr[-1]), np.concatenate(lists), indptr), shape=(9, n_items)
    )
    seen.has_sorted_indices = False  # as a user could hand it in
    return U, V, b, c, seen


@given(seed=st.integers(0, 10_000), n_items=st.sampled_from([4096, 5000, 70_000]),
       k=st.integers(1, 20), float64=st.booleans())
@settings(max_examples=25, deadline=None)
def test_linear_scores_top_k_equals_scoring_every_item(
    seed: int, n_items: int, k: int, float64: bool
) -> None:
    U, V, b, c, seen = _linear_case(seed, n_items, np.float64 if float64 else np.float32)
    linear = LinearScores(U, V, b, c)
    rows = np.array([0, 2, 4, 4, 8, 1])
    expected = top_k(linear(rows), k, seen, rows)
    got = linear.top_k(rows, k, seen)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])  # same sums in the same order
    assert (got[0][1, 3:] == -1).all() and np.isnan(got[1][1, 3:]).all()


def test_linear_top_k_blocks_agree_with_one_block() -> None:
    from palate.models import _topk

    rng = np.random.default_rng(1)
    Q = rng.normal(size=(300, 4)).astype(np.float32)  # 300 queries: blocks of 4096 rows
    X = rng.normal(size=(20_000, 4)).astype(np.float32)
    idx, val = _topk.linear_top_k(Q, X, 5)
    full_idx, full_val = top_k_sorted(Q @ X.T, 5)
    np.testing.assert_array_equal(idx, full_idx)
    np.testing.assert_array_equal(val, full_val)
