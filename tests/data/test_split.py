"""Properties of the train/test splits."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from palate.data.interactions import Interactions
from palate.data.split import kfold, random_split, temporal_split, user_holdout
from palate.data.vocabulary import Vocabulary
from palate.errors import ConfigError, DataError


def make_data(
    seed: int, n_users: int, n_items: int, n: int, timestamps: bool = True
) -> Interactions:
    """Distinct (user, item) pairs, so a row is identified by its pair key."""
    rng = np.random.default_rng(seed)
    n = min(n, n_users * n_items)
    keys = np.sort(rng.choice(n_users * n_items, size=n, replace=False))
    return Interactions(
        Vocabulary(np.arange(n_users) + 100),
        Vocabulary(np.array([f"i{j}" for j in range(n_items)], dtype=object)),
        keys // n_items,
        keys % n_items,
        rng.integers(1, 6, size=n).astype(np.float32),
        rng.integers(0, 50, size=n) if timestamps else None,  # many ties on purpose
        rating_scale=(1.0, 5.0),
    )


def keys_of(data: Interactions) -> np.ndarray:
    return data.user_idx.astype(np.int64) * data.n_items + data.item_idx


def assert_partition(data: Interactions, train: Interactions, test: Interactions) -> None:
    assert train.users is data.users and test.users is data.users
    assert train.items is data.items and test.items is data.items
    train_keys, test_keys = keys_of(train), keys_of(test)
    assert len(np.intersect1d(train_keys, test_keys)) == 0
    np.testing.assert_array_equal(
        np.sort(np.concatenate([train_keys, test_keys])), np.sort(keys_of(data))
    )
    # values and timestamps travel with their rows
    lookup = dict(zip(keys_of(data).tolist(), data.values.tolist(), strict=True))
    for part in (train, test):
        assert [lookup[key] for key in keys_of(part).tolist()] == part.values.tolist()


datasets = st.builds(
    make_data,
    seed=st.integers(0, 2**16),
    n_users=st.integers(1, 12),
    n_items=st.integers(1, 12),
    n=st.integers(2, 80),
)
fractions = st.floats(0.05, 0.95)
seeds = st.integers(0, 2**16)


# ---------------------------------------------------------------------------- random_split
@settings(max_examples=50, deadline=None)
@given(datasets, fractions, seeds)
def test_random_split_partitions_with_the_rounded_size(data, fraction, seed) -> None:
    n_test = int(np.floor(fraction * len(data) + 0.5))
    if n_test in (0, len(data)):
        with pytest.raises(DataError, match="empty"):
            random_split(data, fraction, seed=seed)
        return
    train, test = random_split(data, test_fraction=fraction, seed=seed)
    assert_partition(data, train, test)
    assert len(test) == n_test
    again_train, again_test = random_split(data, test_fraction=fraction, seed=seed)
    np.testing.assert_array_equal(keys_of(again_test), keys_of(test))
    np.testing.assert_array_equal(keys_of(again_train), keys_of(train))


def test_random_split_depends_on_the_seed() -> None:
    data = make_data(0, 30, 30, 400)
    tests = {tuple(keys_of(random_split(data, seed=s)[1]).tolist()) for s in range(5)}
    assert len(tests) == 5


# ---------------------------------------------------------------------------- kfold
@settings(max_examples=50, deadline=None)
@given(datasets, st.integers(2, 6), seeds)
def test_kfold_tests_are_disjoint_and_cover_every_row(data, n_splits, seed) -> None:
    if n_splits > len(data):
        with pytest.raises(ConfigError, match="n_splits"):
            kfold(data, n_splits=n_splits, seed=seed)
        return
    splits = list(kfold(data, n_splits=n_splits, seed=seed))
    assert len(splits) == n_splits
    for train, test in splits:
        assert_partition(data, train, test)
    test_keys = np.concatenate([keys_of(test) for _, test in splits])
    assert len(np.unique(test_keys)) == len(test_keys) == len(data)
    sizes = [len(test) for _, test in splits]
    assert max(sizes) - min(sizes) <= 1
    again = [keys_of(test).tolist() for _, test in kfold(data, n_splits=n_splits, seed=seed)]
    assert again == [keys_of(test).tolist() for _, test in splits]


# ---------------------------------------------------------------------------- user_holdout
@settings(max_examples=50, deadline=None)
@given(datasets, fractions, st.integers(0, 3), seeds)
def test_user_holdout_by_fraction(data, fraction, min_events, seed) -> None:
    counts = data.user_counts()
    if not np.any(counts > min_events):
        with pytest.raises(DataError, match="lower min_events"):
            user_holdout(data, fraction=fraction, min_events=min_events, seed=seed)
        return
    train, test = user_holdout(data, fraction=fraction, min_events=min_events, seed=seed)
    assert_partition(data, train, test)
    n_train, n_test = train.user_counts(), test.user_counts()
    eligible = counts > min_events
    expected = np.minimum(np.maximum(np.floor(fraction * counts + 0.5), 1), counts - min_events)
    np.testing.assert_array_equal(n_test[eligible], expected[eligible])
    assert np.all(n_test[~eligible] == 0)
    assert np.all(n_train >= np.minimum(counts, min_events))
    again = user_holdout(data, fraction=fraction, min_events=min_events, seed=seed)[1]
    np.testing.assert_array_equal(keys_of(again), keys_of(test))


@settings(max_examples=50, deadline=None)
@given(datasets, fractions, seeds)
def test_user_holdout_keeps_every_user_in_train(data, fraction, seed) -> None:
    counts = data.user_counts()
    if not np.any(counts >= 2):
        return
    train, test = user_holdout(data, fraction=fraction, seed=seed)
    active = counts >= 1
    assert np.all(train.user_counts()[active] >= 1)
    assert np.all(test.user_counts()[counts >= 2] >= 1)


@settings(max_examples=50, deadline=None)
@given(datasets, st.integers(1, 4), st.integers(0, 2))
def test_user_holdout_last_n_takes_the_latest_events(data, last_n, min_events) -> None:
    counts = data.user_counts()
    if not np.any(counts > min_events):
        return
    train, test = user_holdout(data, last_n=last_n, min_events=min_events)
    assert_partition(data, train, test)
    np.testing.assert_array_equal(
        test.user_counts(), np.minimum(last_n, np.maximum(counts - min_events, 0))
    )
    for user in np.flatnonzero(test.user_counts()):
        held = test.timestamps[test.user_idx == user]
        kept = train.timestamps[train.user_idx == user]
        if len(kept):
            assert held.min() >= kept.max()


def test_user_holdout_last_n_breaks_ties_by_row_order() -> None:
    data = Interactions.from_arrays(
        [1, 1, 1, 1], ["a", "b", "c", "d"], [1.0, 2.0, 3.0, 4.0], [5, 9, 9, 1]
    )
    train, test = user_holdout(data, last_n=2)
    assert sorted(test.item_ids.tolist()) == ["b", "c"]
    train, test = user_holdout(data, last_n=1)
    assert test.item_ids.tolist() == ["c"]


def test_user_holdout_arguments() -> None:
    data = make_data(1, 5, 5, 20, timestamps=False)
    with pytest.raises(ConfigError, match="not both"):
        user_holdout(data, fraction=0.2, last_n=1)
    with pytest.raises(DataError, match="timestamp"):
        user_holdout(data, last_n=1)
    with pytest.raises(ConfigError, match="fraction"):
        user_holdout(data, fraction=1.0)
    with pytest.raises(ConfigError, match="min_events"):
        user_holdout(data, min_events=-1)
    with pytest.raises(ConfigError, match="last_n"):
        user_holdout(make_data(1, 5, 5, 20), last_n=0)


# ---------------------------------------------------------------------------- temporal_split
@settings(max_examples=50, deadline=None)
@given(datasets, fractions)
def test_temporal_split_by_fraction_cuts_in_time(data, fraction) -> None:
    n_test = int(np.floor(fraction * len(data) + 0.5))
    if n_test in (0, len(data)):
        return
    train, test = temporal_split(data, test_fraction=fraction)
    assert_partition(data, train, test)
    assert len(test) == n_test
    assert train.timestamps.max() <= test.timestamps.min()


@settings(max_examples=50, deadline=None)
@given(datasets, st.integers(0, 50))
def test_temporal_split_at_a_time(data, at) -> None:
    timestamps = data.timestamps
    if timestamps.min() >= at or timestamps.max() < at:
        with pytest.raises(DataError, match="empty"):
            temporal_split(data, at=at)
        return
    train, test = temporal_split(data, at=at)
    assert_partition(data, train, test)
    assert np.all(train.timestamps < at) and np.all(test.timestamps >= at)


def test_temporal_split_accepts_datetimes_as_utc() -> None:
    moments = [datetime(2020, 1, day, tzinfo=UTC) for day in (1, 2, 3, 4)]
    data = Interactions.from_arrays(
        [1, 1, 2, 2], [1, 2, 1, 2], [3.0, 4.0, 5.0, 1.0], [int(m.timestamp()) for m in moments]
    )
    cut = datetime(2020, 1, 3)
    seconds = int(moments[2].timestamp())
    for at in (cut, cut.replace(tzinfo=UTC), np.datetime64("2020-01-03"), seconds, float(seconds)):
        train, test = temporal_split(data, at=at)
        assert len(train) == 2 and len(test) == 2


def test_temporal_split_arguments() -> None:
    with pytest.raises(DataError, match="timestamps"):
        temporal_split(make_data(0, 4, 4, 10, timestamps=False))
    data = make_data(0, 4, 4, 10)
    with pytest.raises(ConfigError, match="not both"):
        temporal_split(data, test_fraction=0.2, at=10)
    with pytest.raises(ConfigError, match="at must"):
        temporal_split(data, at="yesterday")


# ---------------------------------------------------------------------------- shared checks
def test_arguments_are_validated_with_the_fix_in_the_message() -> None:
    data = make_data(0, 6, 6, 30)
    for bad in (0.0, 1.0, -0.5, 2, "0.2", True):
        with pytest.raises(ConfigError, match="between 0 and 1"):
            random_split(data, test_fraction=bad)
    with pytest.raises(ConfigError, match="n_splits"):
        kfold(data, n_splits=1)
    with pytest.raises(ConfigError, match="seed"):
        random_split(data, seed=1.5)
    with pytest.raises(DataError, match="Interactions.from_pandas"):
        random_split([(1, 2, 3.0)])  # type: ignore[arg-type]
