"""Vector indexes: the exact index equals brute force; the ANN index reaches its recall floor;
exclusions never cost results; index files round-trip."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from palate.errors import ArtifactError, ConfigError, DataError, NotFittedError
from palate.retrieval import ExactIndex, FaissIndex, load_index, make_index


def brute_force(x: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    """Keys to maximise: q·x, or −‖q − x‖² by the definition (no expansion)."""
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    if metric == "inner_product":
        return q64 @ x64.T
    return -((q64[:, None, :] - x64[None, :, :]) ** 2).sum(axis=2)


def test_known_answer_on_a_hand_made_set() -> None:
    x = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [-1.0, 0.0]], dtype=np.float32)
    q = np.array([[1.0, 0.2]], dtype=np.float32)
    ip = ExactIndex("inner_product").build(x).search(q, k=2)
    assert ip.indices.tolist() == [[2, 0]]  # q·x = 2.4, 1.0
    np.testing.assert_allclose(ip.values, [[2.4, 1.0]], rtol=1e-6)
    l2 = ExactIndex("l2").build(x).search(q, k=3)
    assert l2.indices.tolist() == [[0, 1, 3]]  # 0.04, 1.64, 4.04 (index 2: 4.24)
    np.testing.assert_allclose(l2.values, [[0.04, 1.64, 4.04]], rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 60),
    dim=st.integers(1, 6),
    n_queries=st.integers(1, 12),
    k=st.integers(1, 70),
    metric=st.sampled_from(["inner_product", "l2"]),
    block_size=st.integers(1, 40),
)
def test_exact_index_equals_brute_force(
    data: st.DataObject, n: int, dim: int, n_queries: int, k: int, metric: str, block_size: int
) -> None:
    # small integers: no ties are broken differently by rounding
    values = st.integers(-8, 8).map(float)
    x = data.draw(arrays(np.float32, (n, dim), elements=values))
    q = data.draw(arrays(np.float32, (n_queries, dim), elements=values))
    exclude = [
        np.asarray(data.draw(st.lists(st.integers(0, n - 1), max_size=n)), dtype=np.int64)
        for _ in range(n_queries)
    ]
    index = ExactIndex(metric, block_size=block_size).build(x)  # type: ignore[arg-type]
    result = index.search(q, k, exclude=exclude)
    keys = brute_force(x, q, metric)
    for r in range(n_queries):
        allowed = np.setdiff1d(np.arange(n), exclude[r])
        expected = np.sort(keys[r, allowed])[::-1][:k]
        got = result.indices[r]
        n_valid = min(k, len(allowed))
        assert np.all(got[:n_valid] >= 0) and np.all(got[n_valid:] == -1)
        assert not np.isin(got[:n_valid], exclude[r]).any()
        assert len(set(got[:n_valid].tolist())) == n_valid
        # the same key values in the same order (ties may pick different rows)
        np.testing.assert_allclose(keys[r, got[:n_valid]], expected, rtol=1e-5, atol=1e-4)
        shown = result.values[r, :n_valid]
        np.testing.assert_allclose(
            shown, expected if metric == "inner_product" else -expected, rtol=1e-5, atol=1e-3
        )
        assert np.all(np.isnan(result.values[r, n_valid:]))


def test_exclusions_as_a_sparse_matrix_match_lists() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)).astype(np.float32)
    q = rng.normal(size=(3, 4)).astype(np.float32)
    lists = [np.array([1, 2, 3]), np.array([], dtype=np.int64), np.arange(0, 50, 2)]
    rows = np.repeat(np.arange(3), [len(e) for e in lists])
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, np.concatenate(lists))), shape=(3, 50))
    index = ExactIndex().build(x)
    a = index.search(q, 5, exclude=lists)
    b = index.search(q, 5, exclude=matrix)
    np.testing.assert_array_equal(a.indices, b.indices)


@pytest.mark.parametrize("kind", ["hnsw", "ivf", "pq"])
@pytest.mark.parametrize("metric", ["inner_product", "l2"])
def test_ann_recall_reaches_the_floor_on_a_fixed_seed(kind: str, metric: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 16)).astype(np.float32)
    params = {"ivf": {"nprobe": 32}, "hnsw": {"ef_search": 128}, "pq": {}}[kind]
    index = FaissIndex(kind, metric, recall_sample=300, **params).build(x)  # type: ignore[arg-type]
    assert index.metadata_["recall_sample"] == 300
    assert index.measured_recall is not None and index.measured_recall >= 0.95
    # the stored figure is what an independent check finds
    q = rng.normal(size=(200, 16)).astype(np.float32)
    approximate = index.search(q, 10).indices
    exact = ExactIndex(metric).build(x).search(q, 10).indices  # type: ignore[arg-type]
    recall = np.mean(
        [len(np.intersect1d(a, e)) / 10 for a, e in zip(approximate, exact, strict=True)]
    )
    assert recall >= 0.95


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_inner_product_through_a_euclidean_index(kind: str) -> None:
    rng = np.random.default_rng(5)
    # norms that vary widely: where the transform is meant to help
    x = (rng.normal(size=(600, 6)) * rng.uniform(0.1, 3.0, size=(600, 1))).astype(np.float32)
    q = rng.normal(size=(30, 6)).astype(np.float32)
    index = FaissIndex(kind, mips_to_l2=True, ef_search=600, nprobe=10_000, recall_sample=0)
    index.build(x)
    exact = ExactIndex().build(x).search(q, 5)
    found = index.search(q, 5)
    assert np.mean(found.indices == exact.indices) >= 0.95
    # the values are inner products again: (‖q‖² + M² − ‖q̃ − x̃‖²) / 2
    np.testing.assert_allclose(
        found.values, np.einsum("ij,ikj->ik", q, x[found.indices]), rtol=1e-3, atol=1e-3
    )


def test_recall_counts_ties() -> None:
    from palate.retrieval.index import recall_against_exact

    # rows 1, 2 and 3 tie for second place: any of them is a correct second neighbour
    x = np.array([[3.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0]], np.float32)
    q = np.array([[1.0, 0.0]], np.float32)
    exact = ExactIndex().build(x).search(q, 2)
    assert recall_against_exact(q, x, np.array([[0, 3]]), exact, "inner_product") == 1.0
    assert recall_against_exact(q, x, np.array([[0, 4]]), exact, "inner_product") == 0.5
    assert recall_against_exact(q, x, np.array([[4, -1]]), exact, "inner_product") == 0.0


def test_a_user_who_has_seen_almost_everything_still_gets_k_results() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6000, 8)).astype(np.float32)
    q = rng.normal(size=(3, 8)).astype(np.float32)
    exact = ExactIndex().build(x)
    top = exact.search(q, 5000).indices
    exclude = [top[0], top[1, :50], np.empty(0, np.int64)]  # 5,000 seen, 50 seen, none
    index = FaissIndex("hnsw", recall_sample=0, max_overfetch=1000).build(x)
    result = index.search(q, 10, exclude=exclude)
    assert np.all(result.indices >= 0)
    for r in range(3):
        assert not np.isin(result.indices[r], exclude[r]).any()
        assert len(set(result.indices[r].tolist())) == 10
    # the heavy user was answered exactly
    np.testing.assert_array_equal(
        result.indices[0], exact.search(q[:1], 10, exclude=exclude[:1]).indices[0]
    )
    # overfetching (under the cap) serves the light user exactly here as well
    light = exact.search(q[1:2], 10, exclude=[exclude[1]]).indices[0]
    assert len(np.intersect1d(result.indices[1], light)) >= 9


def test_fewer_rows_than_k_are_padded() -> None:
    x = np.eye(3, dtype=np.float32)
    for index in (ExactIndex().build(x), FaissIndex("hnsw", recall_sample=0).build(x)):
        result = index.search(np.ones((1, 3), np.float32), 5, exclude=[[1]])
        assert sorted(result.indices[0, :2].tolist()) == [0, 2]
        assert result.indices[0, 2:].tolist() == [-1, -1, -1]
        assert np.all(np.isnan(result.values[0, 2:]))


@pytest.mark.parametrize(
    "params",
    [{"kind": "exact", "metric": "l2"}, {"kind": "hnsw"}, {"kind": "ivf", "nprobe": 4},
     {"kind": "pq", "pq_m": 4, "metric": "l2"}],
)
def test_index_files_round_trip(tmp_path, params: dict) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 8)).astype(np.float32)
    q = rng.normal(size=(20, 8)).astype(np.float32)
    index = make_index({**params, "recall_sample": 50} if params["kind"] != "exact" else params)
    index.build(x)  # type: ignore[attr-defined]
    index.save(tmp_path / "index")
    assert not list(tmp_path.glob("**/*.pkl"))
    loaded = load_index(tmp_path / "index")
    assert type(loaded) is type(index) and loaded.is_exact == index.is_exact
    assert loaded.metadata_ == index.metadata_
    np.testing.assert_array_equal(
        loaded.search(q, 7).indices, index.search(q, 7).indices  # type: ignore[attr-defined]
    )


def test_errors_name_the_fix(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="metric"):
        ExactIndex("cosine")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="kind"):
        FaissIndex("lsh")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pq_m must divide the dimension 3"):
        FaissIndex("pq", pq_m=2).build(np.eye(3))
    with pytest.raises(ConfigError, match="re-ranks exactly"):
        FaissIndex("pq", mips_to_l2=True)
    with pytest.raises(NotFittedError, match="build"):
        ExactIndex().search(np.zeros((1, 2)), 1)
    index = ExactIndex().build(np.eye(2))
    with pytest.raises(DataError, match="dimensions"):
        index.search(np.zeros((1, 3)), 1)
    with pytest.raises(DataError, match="NaN"):
        ExactIndex().build(np.array([[np.nan, 1.0]]))
    with pytest.raises(DataError, match="one list"):
        index.search(np.zeros((2, 2)), 1, exclude=[[0]])
    with pytest.raises(ConfigError, match="k must"):
        index.search(np.zeros((1, 2)), 0)
    with pytest.raises(ArtifactError, match="index.save"):
        load_index(tmp_path)


@given(
    values=st.lists(st.integers(-3, 40), max_size=60),
    excluded=st.lists(st.integers(-3, 40), max_size=30),
)
@settings(max_examples=200, deadline=None)
def test_not_in_equals_isin(values: list[int], excluded: list[int]) -> None:
    from palate.retrieval.index import not_in

    v, e = np.array(values, dtype=np.int64), np.array(excluded, dtype=np.int64)
    assert not_in(v, e).tolist() == (~np.isin(v, e)).tolist()


def test_pq_values_are_exact_scores_and_exclusions_hold() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(3000, 8)).astype(np.float32)
    q = rng.normal(size=(5, 8)).astype(np.float32)
    for metric in ("inner_product", "l2"):
        index = FaissIndex("pq", metric, recall_sample=0).build(x)  # type: ignore[arg-type]
        exclude = [ExactIndex(metric).build(x).search(q[r : r + 1], 3).indices[0]  # type: ignore[arg-type]
                   for r in range(5)]
        found = index.search(q, 6, exclude=exclude)
        for r in range(5):
            assert not np.isin(found.indices[r], exclude[r]).any()
        rows = x[found.indices]
        if metric == "l2":
            expected = ((rows - q[:, None, :]) ** 2).sum(axis=2)
            assert np.all(np.diff(found.values, axis=1) >= 0)
        else:
            expected = np.einsum("ij,ikj->ik", q, rows)
            assert np.all(np.diff(found.values, axis=1) <= 0)
        np.testing.assert_allclose(found.values, expected, rtol=1e-5, atol=1e-5)


def test_many_exclusions_far_from_the_query_need_no_wide_search(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A heavy user whose seen rows are nowhere near the query: the first, narrow over-fetch
    serves them (no exact scan, no k + 1,500 beam), and the result is still right."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5000, 8)).astype(np.float32)
    q = rng.normal(size=(1, 8)).astype(np.float32)
    exact = ExactIndex().build(x)
    far = np.argsort(x @ q[0])[:1500]  # the 1,500 worst rows for this query
    index = FaissIndex("hnsw", recall_sample=0, ef_search=200).build(x)
    fetched: list[int] = []
    search = index._faiss_search
    monkeypatch.setattr(index, "_faiss_search",
                        lambda qq, fetch, *k: (fetched.append(fetch), search(qq, fetch, *k))[1])
    monkeypatch.setattr(index._exact, "_search", lambda *a: pytest.fail("exact scan used"))
    found = index.search(q, 10, exclude=[far])
    assert fetched == [20]
    np.testing.assert_array_equal(found.indices, exact.search(q, 10, exclude=[far]).indices)


def test_exclusions_near_the_query_widen_the_search_until_k_remain() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(5000, 8)).astype(np.float32)
    q = rng.normal(size=(1, 8)).astype(np.float32)
    exact = ExactIndex().build(x)
    near = exact.search(q, 300).indices[0]  # the 300 best rows are all excluded
    index = FaissIndex("hnsw", recall_sample=0, ef_search=64).build(x)
    found = index.search(q, 10, exclude=[near])
    assert not np.isin(found.indices[0], near).any() and (found.indices[0] >= 0).all()
    best = exact.search(q, 10, exclude=[near]).indices[0]
    assert len(np.intersect1d(found.indices[0], best)) >= 9
