"""ALS on Spark: palate's conventions, hyperparameter names, to_local, model files, batch
recommendation equal to the local model's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import palate
from palate import CollaborativeFiltering, ImplicitALS, Interactions
from palate.data.synthetic import synthetic_ratings
from palate.errors import DataError, NotFittedError


@pytest.fixture(scope="module")
def ratings() -> Interactions:
    return synthetic_ratings(60, 40, 900, seed=3).ratings


@pytest.fixture(scope="module")
def explicit(ps: Any, spark: Any, ratings: Interactions) -> tuple[Any, Any]:
    data = ps.data.from_local(spark, ratings)
    model = ps.SparkCollaborativeFiltering(embedding_size=4, reg=0.1, epochs=5, seed=0)
    return data, model.fit(data)


@pytest.fixture(scope="module")
def implicit(ps: Any, spark: Any, ratings: Interactions) -> tuple[Any, Any]:
    data = ps.data.from_local(spark, ratings.binarize(4.0))
    return data, ps.SparkImplicitALS(embedding_size=4, reg=0.1, alpha=5.0, epochs=4).fit(data)


def test_hyperparameters_map_onto_mllib_names(ps: Any, spark: Any) -> None:
    model = ps.SparkCollaborativeFiltering(embedding_size=7, reg=0.25, epochs=3, seed=5)
    als = model._als("r")
    assert (als.getRank(), als.getRegParam(), als.getMaxIter(), als.getSeed()) == (7, 0.25, 3, 5)
    assert not als.getImplicitPrefs()
    als = ps.SparkImplicitALS(alpha=3.0)._als("value", implicitPrefs=True, alpha=3.0)
    assert als.getImplicitPrefs() and als.getAlpha() == 3.0
    with pytest.raises(NotFittedError):
        model.to_local()
    with pytest.raises(palate.ConfigError, match="embedding_size"):
        ps.SparkCollaborativeFiltering(embedding_size=0)


def test_mean_normalisation_is_palates_shrunk_item_mean(
    explicit: tuple[Any, Any], ratings: Interactions
) -> None:
    _, model = explicit
    local = model.to_local()
    m = 5.0  # the default mean_shrinkage, as palate's
    counts = ratings.item_counts()
    sums = np.bincount(ratings.item_idx, weights=ratings.values, minlength=ratings.n_items)
    expected = (sums + m * ratings.global_mean()) / (counts + m)
    np.testing.assert_allclose(local.item_means_, expected, rtol=1e-5)
    # the biases solve their closed form: b(j) = Σ (y − μ − c) / (n (1 + λ_b)) after the last
    # sweep (the item step came after it, so check the item biases)
    b = local.user_bias_.astype(np.float64)
    resid = ratings.values - expected[ratings.item_idx] - b[ratings.user_idx]
    c = np.bincount(ratings.item_idx, weights=resid, minlength=ratings.n_items) / (counts * 1.1)
    np.testing.assert_allclose(local.item_bias_, c, atol=1e-5)


def test_to_local_predicts_what_spark_predicts(
    explicit: tuple[Any, Any], ratings: Interactions, tmp_path: Path
) -> None:
    data, model = explicit
    local = model.to_local()
    assert isinstance(local, CollaborativeFiltering)
    assert local.users_ == ratings.users and local.items_ == ratings.items
    config = local.config
    assert (config.reg_scaling, config.reg_count_floor, config.reg) == ("count", 0.0, 0.1)
    scored = model.predict(data.events).toPandas().sort_values(["user_idx", "item_idx"])
    users = ratings.users.ids[scored["user_idx"].to_numpy()]
    items = ratings.items.ids[scored["item_idx"].to_numpy()]
    np.testing.assert_allclose(
        local.predict(users, items), scored["prediction"].to_numpy(), atol=1e-4
    )
    path = palate.save(local, tmp_path / "cf")
    loaded = palate.load(path)
    np.testing.assert_array_equal(loaded.predict(users, items), local.predict(users, items))
    np.testing.assert_array_equal(
        loaded.recommend(users[:5], k=5).item_ids, local.recommend(users[:5], k=5).item_ids
    )
    assert model.rmse(data) < float(np.std(ratings.values))  # it learned something


def test_explicit_model_refuses_binary_data(ps: Any, implicit: tuple[Any, Any]) -> None:
    data, _ = implicit
    with pytest.raises(DataError, match="SparkImplicitALS"):
        ps.SparkCollaborativeFiltering().fit(data)


def test_implicit_to_local_scores_match(implicit: tuple[Any, Any], tmp_path: Path) -> None:
    data, model = implicit
    local = model.to_local()
    assert isinstance(local, ImplicitALS)
    scored = model.predict(data.events).toPandas()
    users = local.users_.ids[scored["user_idx"].to_numpy()]  # type: ignore[union-attr]
    items = local.items_.ids[scored["item_idx"].to_numpy()]  # type: ignore[union-attr]
    np.testing.assert_allclose(local.predict(users, items), scored["prediction"], atol=1e-5)
    # engaged pairs score higher than the average pair (confidence-weighted fit)
    assert scored["prediction"].mean() > float(np.mean(local.user_factors_ @ local.item_factors_.T))
    loaded = palate.load(palate.save(local, tmp_path / "ials"))
    np.testing.assert_array_equal(loaded.predict(users, items), local.predict(users, items))


def _assert_same_top_k(batch: Any, recs: Any, user_ids: np.ndarray) -> None:
    """Row by row: the same scores, and the same items except where scores tie."""
    for row, user in enumerate(user_ids):
        mine = batch[batch["user_id"] == user].sort_values("rank")
        n = int(np.isfinite(recs.scores[row]).sum())
        assert len(mine) == n
        np.testing.assert_allclose(mine["score"].to_numpy(), recs.scores[row][:n], atol=1e-4)
        untied = np.abs(np.diff(np.r_[recs.scores[row][:n], -np.inf])) > 1e-4
        untied &= np.r_[True, untied[:-1]]
        assert (mine["item_id"].to_numpy()[untied] == recs.item_ids[row][:n][untied]).all()


@pytest.mark.slow
def test_batch_recommendations_equal_local_recommend(
    ps: Any, spark: Any, explicit: tuple[Any, Any], ratings: Interactions
) -> None:
    _, model = explicit
    local = model.to_local()
    batch = ps.recommend_all(model, k=5, block_size=16).toPandas()  # several blocks
    # every user who has something left to recommend (one synthetic user rated every item)
    open_users = ratings.users.ids[ratings.user_counts() < ratings.n_items]
    assert set(batch["user_id"]) == set(open_users) and len(open_users) < ratings.n_users
    sample = ratings.users.ids[::7]
    _assert_same_top_k(batch, local.recommend(sample, k=5), sample)
    seen = set(zip(ratings.user_ids, ratings.item_ids, strict=True))
    assert not any((u, i) in seen for u, i in zip(batch["user_id"], batch["item_id"], strict=True))
    # from the saved local model too, with seen items kept
    kept = ps.recommend_all(local, k=5, exclude_seen=False, spark=spark).toPandas()
    _assert_same_top_k(kept, local.recommend(sample, k=5, exclude_seen=False), sample)


@pytest.mark.slow
def test_batch_similar_items_equal_local(ps: Any, spark: Any, implicit: tuple[Any, Any]) -> None:
    _, model = implicit
    local = model.to_local()
    for metric in ("euclidean", "cosine"):
        batch = ps.similar_items_all(local, k=3, metric=metric, spark=spark, block_size=8)
        frame = batch.toPandas()
        queries = local.items_.ids[:6]  # type: ignore[union-attr]
        expected = local.similar_items(queries, k=3, metric=metric)
        for row, item in enumerate(queries):
            mine = frame[frame["item_id"] == item].sort_values("rank")
            np.testing.assert_allclose(mine["distance"], expected.distances[row], atol=1e-4)
            assert item not in set(mine["similar_id"])
