"""Data-parallel two-tower training on prepared Parquet: one process reproduces
``TwoTower.fit`` exactly; two processes under TorchDistributor train one model that beats the
global mean and saves, loads and recommends like any TwoTower."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import palate
from palate import TwoTower
from palate.data.prepared import read_prepared
from palate.data.synthetic import synthetic_ratings
from palate.evaluation.metrics import rmse
from palate.models.two_tower import distributed

OPTIONS = {"hidden_sizes": (32,), "embedding_size": 8, "batch_size": 64,
           "learning_rate": 5e-3, "seed": 3}


@pytest.fixture(scope="module")
def prepared(ps: Any, spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ratings = synthetic_ratings(80, 60, 2400, seed=5).ratings
    data = ps.data.from_local(spark, ratings)
    # three Parquet files, so that shards cross file boundaries
    data = data.with_events(data.events.repartition(3))
    train, test = ps.split(data, "random", 0.2, seed=0)
    target = tmp_path_factory.mktemp("two_tower") / "prepared"
    ps.write_prepared(str(target), train, test, user_features=ps.user_features(train),
                      item_features=ps.item_features(train))
    return target


def test_shards_read_the_rows_read_prepared_reads(prepared: Path) -> None:
    train = read_prepared(prepared).train
    n = len(train)
    path = str(prepared / "interactions" / "split=train")
    parts = [distributed.read_rows(path, *distributed.shard_bounds(n, r, 3)) for r in range(3)]
    assert sum(len(p["value"]) for p in parts) == n
    for column, want in (("user_idx", train.user_idx), ("item_idx", train.item_idx),
                         ("value", train.values)):
        np.testing.assert_array_equal(np.concatenate([p[column] for p in parts]), want)


def test_one_process_trains_exactly_as_fit(prepared: Path) -> None:
    train = read_prepared(prepared).train
    local = TwoTower(epochs=2, **OPTIONS).fit(train)  # type: ignore[arg-type]
    model = TwoTower(epochs=2, **OPTIONS)  # type: ignore[arg-type]
    job = distributed.plan_shards(model, prepared, prepared_features=False)
    assert job.held_fraction == 0.1  # the internal validation split of fit
    distributed.finish(model, distributed.train_process(job))
    assert model.history_ == local.history_
    users, items = train.user_ids[:200], train.item_ids[:200]
    np.testing.assert_array_equal(model.predict(users, items), local.predict(users, items))


@pytest.mark.slow
def test_two_processes_under_torch_distributor(
    ps: Any, spark: Any, prepared: Path, tmp_path: Path
) -> None:
    data = read_prepared(prepared)
    test = data.test
    assert test is not None
    model = ps.train_two_tower(spark, str(prepared), num_processes=2, epochs=1, **OPTIONS)
    assert isinstance(model, TwoTower)
    processes = model.training_processes_
    assert processes["world_size"] == 2
    # every process trained on its half of the fitting events, and the replicas agree
    fitting = int(np.sum(~palate.models.two_tower.training.held_out(3, 0.1, 0, len(data.train))))
    assert sum(processes["shard_sizes"]) == fitting
    assert min(processes["shard_sizes"]) >= fitting // 2 - 30
    assert processes["replica_checksums"][0] == processes["replica_checksums"][1]
    assert len(model.history_) == 1 and np.isfinite(model.history_[0]["loss"])

    predicted = model.predict(test.user_ids, test.item_ids)
    assert np.all(np.isfinite(predicted))
    baseline = rmse(test.values, np.full(len(test), data.train.global_mean()))
    model_rmse = rmse(test.values, predicted)
    assert model_rmse < baseline

    # the same first epoch in one process (batch 64 there, 2 x 32 here): a similar loss
    single = TwoTower(epochs=1, **OPTIONS).fit(data.train)  # type: ignore[arg-type]
    print(f"RMSE two processes {model_rmse:.4f}, global mean {baseline:.4f}; epoch-1 loss "
          f"{model.history_[0]['loss']:.4f} (one process {single.history_[0]['loss']:.4f})")
    assert single.history_[0]["loss"] == pytest.approx(model.history_[0]["loss"], rel=0.05)

    saved = palate.save(model, tmp_path / "towers")
    loaded = palate.load(saved)
    assert isinstance(loaded, TwoTower)
    np.testing.assert_array_equal(loaded.predict(test.user_ids, test.item_ids), predicted)
    user = data.train.user_ids[:3]
    np.testing.assert_array_equal(loaded.recommend(user, k=5).item_ids,
                                  model.recommend(user, k=5).item_ids)
