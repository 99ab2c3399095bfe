"""Interactions on Spark: vocabularies, validation, splits, features and prepared Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from palate import Interactions, datasets
from palate.data.prepared import read_prepared
from palate.errors import ConfigError, DataError

EVENTS = pd.DataFrame(
    {
        "who": ["b", "a", "c", "a", "b", "c", "a"],
        "sku": [30, 10, 20, 20, 10, 30, 30],
        "stars": [4.0, 5.0, 2.0, 3.0, 1.0, 5.0, 4.0],
        "when": [5, 1, 2, 3, 4, 6, 7],
    }
)


@pytest.fixture(scope="module")
def events(ps: Any, spark: Any) -> Any:
    frame = spark.createDataFrame(EVENTS)
    return ps.from_spark(
        frame, user_col="who", item_col="sku", value_col="stars", timestamp_col="when",
        rating_scale=(1.0, 5.0),
    )


def test_vocabularies_are_sorted_ids_and_events_keep_their_ids(events: Any) -> None:
    assert events.users.ids.tolist() == ["a", "b", "c"]
    assert events.items.ids.tolist() == [10, 20, 30]  # integers numerically
    back = events.with_ids().toPandas().sort_values(["user_id", "item_id"]).reset_index(drop=True)
    expected = EVENTS.rename(
        columns={"who": "user_id", "sku": "item_id", "stars": "value", "when": "timestamp"}
    ).sort_values(["user_id", "item_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    local = events.to_local()
    assert isinstance(local, Interactions) and local.users == events.users
    assert local.rating_scale == (1.0, 5.0) and len(local) == 7


@pytest.mark.slow
def test_bad_input_raises_data_errors_naming_the_fix(ps: Any, spark: Any) -> None:
    frame = spark.createDataFrame(EVENTS)
    with pytest.raises(DataError, match="user_col="):
        ps.from_spark(frame)  # default column names are absent
    duplicated = spark.createDataFrame(pd.concat([EVENTS, EVENTS.head(1)]))
    with pytest.raises(DataError, match="duplicates="):
        ps.from_spark(duplicated, user_col="who", item_col="sku", value_col="stars")
    mean = ps.from_spark(
        duplicated, user_col="who", item_col="sku", value_col="stars", duplicates="mean"
    )
    assert mean.count() == 7
    with pytest.raises(DataError, match="rating_scale"):
        ps.from_spark(frame, user_col="who", item_col="sku", value_col="stars",
                      rating_scale=(1.0, 4.0))
    nan = spark.createDataFrame(EVENTS.assign(stars=[np.nan] + [1.0] * 6))
    with pytest.raises(DataError, match="NaN"):
        ps.from_spark(nan, user_col="who", item_col="sku", value_col="stars")
    with pytest.raises(ConfigError, match="timestamp_col"):
        ps.from_spark(duplicated, user_col="who", item_col="sku", value_col="stars",
                      duplicates="last")


@pytest.mark.slow
def test_splits_partition_the_events_deterministically(ps: Any, spark: Any) -> None:
    rng = np.random.default_rng(0)
    pairs = pd.DataFrame({"user_id": rng.integers(0, 30, 600), "item_id": rng.integers(0, 40, 600)})
    pairs = pairs.drop_duplicates().assign(rating=3.0)
    data = ps.from_spark(spark.createDataFrame(pairs))
    train, test = ps.split(data, "random", 0.25, seed=3)
    a, b = train.to_local(), test.to_local()
    assert len(a) + len(b) == len(pairs) and 0.15 < len(b) / len(pairs) < 0.35
    keys = set(zip(a.user_ids, a.item_ids, strict=True))
    assert keys.isdisjoint(zip(b.user_ids, b.item_ids, strict=True))
    again = ps.split(data, "random", 0.25, seed=3)[1].to_local()
    assert sorted(zip(again.user_ids, again.item_ids, strict=True)) == sorted(
        zip(b.user_ids, b.item_ids, strict=True)
    )
    train, test = ps.split(data, "user", 0.2, seed=0)
    counts = pairs.groupby("user_id").size()
    test_counts = test.to_local().to_pandas().groupby("user_id").size()
    expected = np.clip(np.floor(0.2 * counts + 0.5), 1, counts - 1)
    assert test_counts.reindex(counts.index, fill_value=0).tolist() == expected.astype(int).tolist()
    assert train.users == data.users


@pytest.mark.slow
def test_features_known_answers(ps: Any, spark: Any, events: Any) -> None:
    items = spark.createDataFrame(
        pd.DataFrame({"item_id": [10, 20, 30], "genres": ["Drama|Comedy", "Drama", ""]})
    )
    users = ps.user_features(events, items).toPandas().set_index("user_idx").sort_index()
    # user a (idx 0): items 10 (5, Drama|Comedy), 20 (3, Drama), 30 (4)
    assert users.loc[0, "n_ratings"] == 3 and users.loc[0, "mean_rating"] == pytest.approx(4.0)
    assert users.loc[0, "mean_rating_Drama"] == pytest.approx(4.0)
    assert users.loc[0, "mean_rating_Comedy"] == pytest.approx(5.0)
    assert np.isnan(users.loc[2, "mean_rating_Comedy"])  # c rated no comedy
    item = ps.item_features(events, items, prior=2.0).toPandas().set_index("item_idx").sort_index()
    C = EVENTS["stars"].mean()
    # item 30 (idx 2): ratings 4, 5, 4
    assert item.loc[2, "shrunk_mean"] == pytest.approx((13 + 2 * C) / (3 + 2), rel=1e-6)
    assert item.loc[0, "genre_Comedy"] == 1.0 and item.loc[1, "genre_Comedy"] == 0.0
    assert item.loc[2, "genre_Drama"] == 0.0


@pytest.mark.slow
def test_prepared_parquet_loads_locally_with_identical_vocabularies(
    ps: Any, spark: Any, events: Any, tmp_path: Path
) -> None:
    train, test = ps.split(events, "random", 0.3, seed=1)
    target = str(tmp_path / "prepared")
    ps.write_prepared(target, train, test, user_features=ps.user_features(train),
                      item_features=ps.item_features(train))
    prepared = read_prepared(target)
    assert prepared.train.users == events.users and prepared.train.items == events.items
    local_train = train.to_local()
    got = zip(prepared.train.user_ids, prepared.train.item_ids, prepared.train.values, strict=True)
    want = zip(local_train.user_ids, local_train.item_ids, local_train.values, strict=True)
    assert sorted(got) == sorted(want)
    assert len(prepared.train) + len(prepared.test) == 7  # type: ignore[arg-type]
    assert prepared.train.timestamps is not None and prepared.train.rating_scale == (1.0, 5.0)
    assert list(prepared.user_features.index) == list(range(3))  # type: ignore[union-attr]
    # `palate train --data DIR` reads the same thing
    assert datasets.load_interactions(target).ratings.users == events.users
    # and Spark reads it back
    again = ps.data.read_prepared(spark, target, "test")
    assert again.count() == len(prepared.test)  # type: ignore[arg-type]
