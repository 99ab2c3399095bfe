"""Train/test splits of :class:`~palate.data.interactions.Interactions`.

Every split returns ``(train, test)`` Interactions that keep the **same vocabularies** as the
input, so a user or item index means the same thing in both and a model fitted on ``train``
scores ``test`` directly. Rows keep their original order within each part. Random splits take an
explicit ``seed`` (``None`` draws fresh entropy) and give the same result for the same seed.

======================  ===================================================================
function                what goes to test
======================  ===================================================================
:func:`random_split`    a uniformly random share of all events
:func:`kfold`           each event exactly once, over ``n_splits`` folds
:func:`user_holdout`    per user, a random share or the latest ``last_n`` events; every
                        user keeps at least ``min_events`` events in train
:func:`temporal_split`  every event at or after a global cut time
======================  ===================================================================

Examples
--------
>>> import pandas as pd
>>> from palate import Interactions
>>> frame = pd.DataFrame({"user_id": [1, 1, 1, 2, 2], "item_id": [1, 2, 3, 1, 2],
...                       "rating": [5.0, 3.0, 4.0, 2.0, 1.0]})
>>> train, test = random_split(Interactions.from_pandas(frame), test_fraction=0.4, seed=0)
>>> len(train), len(test), train.n_users == test.n_users == 2
(3, 2, True)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np

from palate.data.interactions import Interactions
from palate.errors import ConfigError, DataError
from palate.types import Seed

DEFAULT_TEST_FRACTION = 0.2


# ---------------------------------------------------------------------------- validation
def _check_data(data: Any) -> Interactions:
    if not isinstance(data, Interactions):
        raise DataError(
            f"splits take palate.Interactions, got {type(data).__name__}; build one with "
            "Interactions.from_pandas(frame)"
        )
    return data


def _check_fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number between 0 and 1 (exclusive), got {value!r}")
    fraction = float(value)
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"{name} must be between 0 and 1 (exclusive), e.g. 0.2; got {value!r}")
    return fraction


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_seed(seed: Any) -> Seed:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ConfigError(f"seed must be an integer or None, got {seed!r}")
    return None if seed is None else int(seed)


def _rounded_count(fraction: float, n: int) -> int:
    """``round(fraction · n)``, halves rounded up (``0.5`` of 3 events is 2)."""
    return int(np.floor(fraction * n + 0.5))


def _parts(
    data: Interactions, test_mask: np.ndarray, how: str
) -> tuple[Interactions, Interactions]:
    n_test = int(test_mask.sum())
    if n_test == 0 or n_test == len(data):
        side = "test" if n_test == 0 else "train"
        raise DataError(
            f"{how} leaves the {side} set empty ({len(data)} events); use more data or "
            "change the split's size"
        )
    return data.subset(~test_mask), data.subset(test_mask)


# ---------------------------------------------------------------------------- splits
def random_split(
    data: Interactions, test_fraction: float = DEFAULT_TEST_FRACTION, seed: Seed = 0
) -> tuple[Interactions, Interactions]:
    """Put a uniformly random share of all events in the test set.

    ``n_test = round(test_fraction · n)`` (halves up); the events are chosen by a random
    permutation drawn from ``numpy.random.default_rng(seed)``.

    Parameters
    ----------
    data : Interactions, n events
    test_fraction : float in (0, 1)
    seed : int or None

    Returns
    -------
    train, test : Interactions
        ``n − n_test`` and ``n_test`` events, same vocabularies as ``data``.

    Raises
    ------
    ConfigError
        ``test_fraction`` outside (0, 1) or a bad seed.
    DataError
        One side would be empty.

    Examples
    --------
    >>> from palate.data.synthetic import synthetic_ratings
    >>> data = synthetic_ratings(50, 40, 500, seed=1).ratings
    >>> train, test = random_split(data, test_fraction=0.2, seed=0)
    >>> len(train), len(test)
    (400, 100)
    """
    data = _check_data(data)
    fraction = _check_fraction(test_fraction, "test_fraction")
    rng = np.random.default_rng(_check_seed(seed))
    n_test = _rounded_count(fraction, len(data))
    mask = np.zeros(len(data), dtype=bool)
    mask[rng.permutation(len(data))[:n_test]] = True
    return _parts(data, mask, f"test_fraction={fraction}")


def kfold(
    data: Interactions, n_splits: int = 5, seed: Seed = 0
) -> Iterator[tuple[Interactions, Interactions]]:
    """K-fold cross-validation over events.

    The events are shuffled once (``default_rng(seed)``) and cut into ``n_splits`` folds whose
    sizes differ by at most one. Fold ``f`` is the test set of split ``f`` and the other folds
    its train set, so the test sets are disjoint and together hold every event exactly once.

    Parameters
    ----------
    data : Interactions, n events
    n_splits : int, 2 <= n_splits <= n
    seed : int or None

    Yields
    ------
    train, test : Interactions
        Same vocabularies as ``data``; ``len(test)`` is ``n // n_splits`` or one more.

    Examples
    --------
    >>> from palate.data.synthetic import synthetic_ratings
    >>> data = synthetic_ratings(20, 30, 101, seed=1).ratings
    >>> [len(test) for _, test in kfold(data, n_splits=4, seed=0)]
    [26, 25, 25, 25]
    """
    data = _check_data(data)
    n_splits = _check_int(n_splits, "n_splits", 2)
    if n_splits > len(data):
        raise ConfigError(
            f"n_splits={n_splits} is more than the {len(data)} events; use n_splits <= {len(data)}"
        )
    rng = np.random.default_rng(_check_seed(seed))
    folds = np.array_split(rng.permutation(len(data)), n_splits)
    return _kfold_iterator(data, folds)


def _kfold_iterator(
    data: Interactions, folds: list[np.ndarray]
) -> Iterator[tuple[Interactions, Interactions]]:
    # arguments are checked eagerly in kfold; this generator only slices
    for fold in folds:
        mask = np.zeros(len(data), dtype=bool)
        mask[fold] = True
        yield data.subset(~mask), data.subset(mask)


def user_holdout(
    data: Interactions,
    fraction: float | None = None,
    last_n: int | None = None,
    min_events: int = 1,
    seed: Seed = 0,
) -> tuple[Interactions, Interactions]:
    """Hold out part of every user's events, keeping each user in train.

    A user with ``n_u`` events is *eligible* when ``n_u > min_events``; the others keep all
    their events in train. An eligible user sends to test

    - with ``fraction``: ``clip(round(fraction · n_u), 1, n_u − min_events)`` events chosen
      uniformly at random (``default_rng(seed)``), so every eligible user has at least one
      test event;
    - with ``last_n``: their ``min(last_n, n_u − min_events)`` latest events by timestamp
      (ties broken by row order: a later row counts as later).

    So every user keeps at least ``min(n_u, min_events)`` events in train: with the default
    ``min_events=1`` no user disappears from train, and every user with two or more events
    appears in test. ``min_events=0`` allows users to move wholly to test (cold-start
    evaluation).

    Parameters
    ----------
    data : Interactions
    fraction : float in (0, 1), optional
        Share of each eligible user's events to hold out; the default (0.2) when ``last_n``
        is not given either.
    last_n : int >= 1, optional
        Hold out each eligible user's latest events; needs timestamps. Exclusive with
        ``fraction``.
    min_events : int >= 0
        The fewest events a user keeps in train.
    seed : int or None
        Used with ``fraction``; ``last_n`` is deterministic.

    Returns
    -------
    train, test : Interactions
        Same vocabularies as ``data``.

    Examples
    --------
    >>> from palate.data.synthetic import synthetic_ratings
    >>> data = synthetic_ratings(30, 50, 600, seed=1).ratings
    >>> train, test = user_holdout(data, last_n=2)
    >>> bool((test.user_counts() == 2).all())
    True
    """
    data = _check_data(data)
    if fraction is not None and last_n is not None:
        raise ConfigError("pass either fraction= or last_n= to user_holdout, not both")
    min_events = _check_int(min_events, "min_events", 0)
    user = data.user_idx.astype(np.int64)
    counts = np.bincount(user, minlength=data.n_users)
    room = np.maximum(counts - min_events, 0)  # most events a user may send to test
    if last_n is not None:
        last_n = _check_int(last_n, "last_n", 1)
        if data.timestamps is None:
            raise DataError(
                "user_holdout(last_n=...) needs timestamps; build the Interactions with "
                "timestamp_col= (or timestamps=), or hold out a random fraction= instead"
            )
        n_test_user = np.minimum(last_n, room)
        # latest first: order by user, then time descending, then row descending
        rows = np.arange(len(data), dtype=np.int64)
        order = np.lexsort((-rows, -data.timestamps, user))
        how = f"last_n={last_n}"
    else:
        fraction = _check_fraction(
            DEFAULT_TEST_FRACTION if fraction is None else fraction, "fraction"
        )
        rng = np.random.default_rng(_check_seed(seed))
        wanted = np.maximum(np.floor(fraction * counts + 0.5).astype(np.int64), 1)
        n_test_user = np.minimum(wanted, room)
        order = np.lexsort((rng.random(len(data)), user))
        how = f"fraction={fraction}"
    # rank of each event within its user's block of `order`
    sorted_user = user[order]
    block_start = np.searchsorted(sorted_user, np.arange(data.n_users))
    rank = np.arange(len(data)) - block_start[sorted_user]
    mask = np.zeros(len(data), dtype=bool)
    mask[order[rank < n_test_user[sorted_user]]] = True
    if not mask.any():
        raise DataError(
            f"user_holdout({how}, min_events={min_events}) leaves the test set empty: no user "
            f"has more than {min_events} events; lower min_events"
        )
    return data.subset(~mask), data.subset(mask)


def temporal_split(
    data: Interactions,
    test_fraction: float | None = None,
    at: int | float | datetime | np.datetime64 | None = None,
) -> tuple[Interactions, Interactions]:
    """Split at one global point in time: the past trains, the future tests.

    - with ``at``: test holds every event with ``timestamp >= at``, train the rest;
    - with ``test_fraction`` (default 0.2 when ``at`` is not given): test holds the latest
      ``round(test_fraction · n)`` events, ties in time broken by row order.

    In both cases every train event is no later than every test event.

    Parameters
    ----------
    data : Interactions
        Must have timestamps.
    test_fraction : float in (0, 1), optional
        Exclusive with ``at``.
    at : int, float, datetime or numpy.datetime64, optional
        The cut, in the unit of ``data.timestamps`` (seconds since the epoch when the
        Interactions were built from datetimes). A naive datetime is read as UTC.

    Returns
    -------
    train, test : Interactions
        Same vocabularies as ``data``.

    Examples
    --------
    >>> import pandas as pd
    >>> from palate import Interactions
    >>> frame = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [1, 2, 1, 3],
    ...                       "rating": [4.0, 3.0, 5.0, 2.0], "t": [10, 40, 20, 30]})
    >>> data = Interactions.from_pandas(frame, timestamp_col="t")
    >>> train, test = temporal_split(data, at=30)
    >>> test.timestamps.tolist()
    [40, 30]
    """
    data = _check_data(data)
    if test_fraction is not None and at is not None:
        raise ConfigError("pass either test_fraction= or at= to temporal_split, not both")
    if data.timestamps is None:
        raise DataError(
            "temporal_split needs timestamps; build the Interactions with timestamp_col= "
            "(or timestamps=), or use random_split"
        )
    timestamps = data.timestamps
    if at is not None:
        cut = _as_timestamp(at)
        mask = timestamps >= cut
        how = f"at={at!r} (events span {int(timestamps.min())} .. {int(timestamps.max())})"
        return _parts(data, mask, how)
    fraction = _check_fraction(
        DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction, "test_fraction"
    )
    n_test = _rounded_count(fraction, len(data))
    order = np.argsort(timestamps, kind="stable")
    mask = np.zeros(len(data), dtype=bool)
    mask[order[len(data) - n_test :]] = True
    return _parts(data, mask, f"test_fraction={fraction}")


def _as_timestamp(at: Any) -> int | float:
    if isinstance(at, datetime):
        moment = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        return moment.timestamp()
    if isinstance(at, np.datetime64):
        if np.isnat(at):
            raise ConfigError("at must be a time, got NaT")
        return int(at.astype("datetime64[s]").astype(np.int64))
    if isinstance(at, bool) or not isinstance(at, (int, float, np.integer, np.floating)):
        raise ConfigError(
            f"at must be a timestamp (int seconds), a datetime or numpy.datetime64, got {at!r}"
        )
    if not np.isfinite(at):
        raise ConfigError(f"at must be a finite timestamp, got {at!r}")
    return int(at) if isinstance(at, (int, np.integer)) else float(at)


__all__ = ["kfold", "random_split", "temporal_split", "user_holdout"]
