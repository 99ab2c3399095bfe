"""The inverted-file fast-scan index, the flat scan, ``kind="auto"`` and recall targets:
recall against the exact scan on small data, the auto choice meets its target, files
round-trip, an index below its target says so."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from palate.errors import ConfigError
from palate.retrieval import ExactIndex, FaissIndex, load_index, make_index
from palate.retrieval.index import recall_against_exact


def clustered(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows around 40 centres (where an inverted file helps), and queries like them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dim)) * 3.0
    x = centres[rng.integers(0, 40, n)] + rng.normal(size=(n, dim))
    q = centres[rng.integers(0, 40, 300)] + rng.normal(size=(300, dim))
    return x.astype(np.float32), q.astype(np.float32)


def held_out_recall(index: FaissIndex, x: np.ndarray, q: np.ndarray, metric: str) -> float:
    exact = ExactIndex(metric).build(x).search(q, 10)  # type: ignore[arg-type]
    return recall_against_exact(q, x, index.search(q, 10).indices, exact, metric)


@pytest.mark.parametrize("metric", ["inner_product", "l2"])
def test_ivfpq_reaches_the_exact_top_10_with_enough_cells_and_refinement(metric: str) -> None:
    x, q = clustered(6000, 16, seed=1)
    index = FaissIndex(
        "ivfpq", metric, nlist=32, nprobe=8, pq_m=8, refine_factor=20, recall_sample=200  # type: ignore[arg-type]
    ).build(x)
    assert index.measured_recall is not None and index.measured_recall >= 0.95
    assert held_out_recall(index, x, q, metric) >= 0.95
    # one cell and no refinement: visibly worse, so the test can fail
    coarse = FaissIndex(
        "ivfpq", metric, nlist=32, nprobe=1, pq_m=2, refine_factor=1, recall_sample=200  # type: ignore[arg-type]
    ).build(x)
    assert held_out_recall(coarse, x, q, metric) < 0.9
    # values are exact scores, best first
    found = index.search(q[:5], 10)
    rows = x[found.indices]
    if metric == "l2":
        expected = ((rows - q[:5, None, :]) ** 2).sum(axis=2)
    else:
        expected = np.einsum("ij,ikj->ik", q[:5], rows)
    np.testing.assert_allclose(found.values, expected, rtol=1e-4, atol=1e-4)


def test_flat_equals_the_exact_scan() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(800, 8)).astype(np.float32)
    q = rng.normal(size=(20, 8)).astype(np.float32)
    seen = [rng.choice(800, 30, replace=False) for _ in range(20)]
    flat = FaissIndex("flat", "l2", recall_sample=50).build(x)
    assert flat.measured_recall == 1.0
    exact = ExactIndex("l2").build(x)
    np.testing.assert_array_equal(
        flat.search(q, 10, exclude=seen).indices, exact.search(q, 10, exclude=seen).indices
    )


@pytest.mark.parametrize("target", [0.9, 0.99])
def test_auto_picks_a_setting_that_meets_its_target(target: float) -> None:
    x, q = clustered(5000, 16, seed=3)
    index = FaissIndex("auto", target_recall=target, recall_sample=300).build(x, q[:150])
    setting = index.metadata_["setting"]
    assert setting["kind"] in ("flat", "pq", "ivfpq") and index.index_kind == setting["kind"]
    assert index.meets_target is True and index.measured_recall >= target  # type: ignore[operator]
    trials = index.metadata_["auto_trials"]
    assert {t["kind"] for t in trials} >= {"flat", "pq"}
    # the choice is the fastest trial that met the target
    meeting = [t for t in trials if t["recall_at_10"] >= target]
    assert min(t["p50_ms"] for t in meeting) == next(
        t["p50_ms"] for t in trials if all(t[key] == setting[key] for key in setting)
    )
    # on queries it did not see it stays close to the target
    assert held_out_recall(index, x, q[150:], "inner_product") >= target - 0.03


def test_auto_on_a_tiny_catalogue_is_the_flat_scan() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    index = FaissIndex("auto", recall_sample=50).build(x)
    assert index.target_recall == 0.99 and index.index_kind == "flat"
    assert [t["kind"] for t in index.metadata_["auto_trials"]] == ["flat"]


def test_auto_index_round_trips_through_files_and_bytes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x, q = clustered(4000, 8, seed=5)
    index = make_index({"kind": "auto", "target_recall": 0.95, "recall_sample": 200})
    assert isinstance(index, FaissIndex)
    index.build(x)
    before = index.search(q, 10, exclude=[np.arange(50)] * len(q))
    index.save(tmp_path / "index")
    loaded = load_index(tmp_path / "index")
    assert isinstance(loaded, FaissIndex)
    assert loaded.params() == index.params() and loaded.setting() == index.setting()
    assert loaded.meets_target is True
    after = loaded.search(q, 10, exclude=[np.arange(50)] * len(q))
    np.testing.assert_array_equal(after.indices, before.indices)
    # model files hold the FAISS bytes and the metadata; the setting comes back from them
    restored = FaissIndex("auto", target_recall=0.95)
    restored.restore(x, index.to_bytes(), index.metadata_)
    assert restored.setting() == index.setting()
    np.testing.assert_array_equal(restored.search(q, 10).indices, index.search(q, 10).indices)
    assert index.memory_bytes() > x.nbytes


def test_an_index_below_its_target_says_so(caplog) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4000, 16)).astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="palate.retrieval.faiss_index"):
        index = FaissIndex(
            "pq", pq_m=2, refine_factor=1, target_recall=0.99, recall_sample=200
        ).build(x)
    assert index.meets_target is False and index.metadata_["target_recall"] == 0.99
    assert "below its target" in caplog.text
    # without a target nothing is claimed
    assert FaissIndex("pq", pq_m=2, recall_sample=50).build(x).meets_target is None


def test_target_errors_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="target_recall must be in"):
        FaissIndex("pq", target_recall=1.5)
    with pytest.raises(ConfigError, match="recall_sample"):
        FaissIndex("auto", recall_sample=0)
    with pytest.raises(ConfigError, match="re-ranks exactly"):
        FaissIndex("ivfpq", mips_to_l2=True)
    with pytest.raises(ConfigError, match="'auto'"):
        make_index({"kind": "annoy"})


@pytest.mark.parametrize("shared", [True, False])
def test_a_batch_with_exclusions_equals_its_queries_one_by_one(shared: bool) -> None:
    """Exclusions are filtered for the whole batch at once (one list shared by every query,
    as for the similar items of one user's recent items, or one list each)."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3000, 8)).astype(np.float32)
    q = rng.normal(size=(12, 8)).astype(np.float32)
    index = FaissIndex("pq", "l2", pq_m=4, refine_factor=20, recall_sample=0).build(x)
    exact = ExactIndex("l2").build(x)
    near = exact.search(q, 40).indices  # rows right next to the queries
    one = np.concatenate([near[:, :5].ravel(), rng.choice(3000, 200, replace=False)])
    lists = [one] * len(q) if shared else [np.concatenate([near[i, :25], one[:50]])
                                            for i in range(len(q))]
    batch = index.search(q, 10, exclude=lists)
    for i in range(len(q)):
        alone = index.search(q[i : i + 1], 10, exclude=[lists[i]])
        np.testing.assert_array_equal(batch.indices[i], alone.indices[0])
        assert not np.isin(batch.indices[i], lists[i]).any()
        assert (batch.indices[i] >= 0).all()
