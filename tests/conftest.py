"""Shared fixtures: tiny hand-made interaction tables and small planted synthetic sets."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import torch

from palate.data import Interactions, Vocabulary
from palate.data.synthetic import SyntheticData, synthetic_ratings

# The arrays in the test suite are tiny: thread pools (torch's intra-op pool, numba's
# parallel loops) only add overhead there, seconds per fit instead of milliseconds on a busy
# two-core machine.
torch.set_num_threads(1)
try:
    import numba
except ImportError:  # pragma: no cover - numba only backs the ALS kernel
    pass
else:
    numba.set_num_threads(1)


# ------------------------------------------------------------------------------ hand-made
#: (user, item, rating) of the tiny explicit table. Every user has rated something, every
#: item has been rated, and no user has rated everything, so exclude_seen is observable.
TINY_RATINGS = [
    ("ann", "alien", 5.0),
    ("ann", "brazil", 3.0),
    ("ann", "casablanca", 4.0),
    ("bob", "alien", 4.0),
    ("bob", "dune", 2.0),
    ("cat", "brazil", 1.0),
    ("cat", "casablanca", 2.0),
    ("cat", "dune", 5.0),
    ("cat", "eraserhead", 4.0),
    ("dan", "alien", 3.0),
    ("dan", "eraserhead", 1.0),
    ("eve", "casablanca", 5.0),
    ("eve", "dune", 4.0),
    ("eve", "fargo", 3.0),
    ("fay", "fargo", 2.0),
    ("fay", "alien", 4.0),
]

#: (user, item, label) of the tiny binary table: 1 engaged, 0 shown and not engaged.
TINY_LABELS = [
    ("ann", "alien", 1.0),
    ("ann", "brazil", 0.0),
    ("ann", "casablanca", 1.0),
    ("bob", "alien", 1.0),
    ("bob", "dune", 0.0),
    ("cat", "brazil", 0.0),
    ("cat", "casablanca", 0.0),
    ("cat", "dune", 1.0),
    ("cat", "eraserhead", 1.0),
    ("dan", "alien", 1.0),
    ("dan", "eraserhead", 0.0),
    ("eve", "casablanca", 1.0),
    ("eve", "dune", 1.0),
    ("eve", "fargo", 0.0),
    ("fay", "fargo", 1.0),
    ("fay", "alien", 0.0),
]


def _table(rows: list[tuple[str, str, float]], **kwargs: object) -> Interactions:
    users, items, values = zip(*rows, strict=True)
    return Interactions.from_arrays(list(users), list(items), list(values), **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def tiny_explicit() -> Interactions:
    """6 users x 6 items, 16 ratings on the scale (1, 5); string ids."""
    return _table(TINY_RATINGS, rating_scale=(1.0, 5.0))


@pytest.fixture(scope="session")
def tiny_binary() -> Interactions:
    """The same pairs as ``tiny_explicit`` with 0/1 labels (both kinds of label present)."""
    return _table(TINY_LABELS, kind="binary")


@pytest.fixture(scope="session")
def tiny_positive_only() -> Interactions:
    """The same pairs as ``tiny_explicit`` as positive-only (implicit) events."""
    users, items, _ = zip(*TINY_RATINGS, strict=True)
    return Interactions.from_arrays(list(users), list(items))


# ------------------------------------------------------------------------------ planted
@pytest.fixture(scope="session")
def planted_explicit() -> SyntheticData:
    """Synthetic explicit ratings of rank 3 with small noise, continuous values."""
    return synthetic_ratings(
        n_users=120, n_items=80, n_ratings=3000, embedding_size=3, noise=0.05,
        rating_step=None, popularity_exponent=0.3, seed=7,
    )


@pytest.fixture(scope="session")
def planted_binary() -> SyntheticData:
    """Synthetic binary labels of rank 2 (y ~ Bernoulli(g(score))), both labels present."""
    return synthetic_ratings(
        n_users=100, n_items=60, n_ratings=4500, embedding_size=2, kind="binary", noise=0.0,
        popularity_exponent=0.0, seed=11,
    )


LowRank = Callable[..., tuple[Interactions, Interactions, float]]


@pytest.fixture(scope="session")
def low_rank() -> LowRank:
    """Factory: a planted rank-``rank`` matrix ``U Vᵀ + 3``, with Gaussian noise of sd
    ``noise``, observed at a random ``density`` of cells and split into (train, test).

    No rating scale is declared, so values are never clipped and the planted model is exact.
    Every user and item has at least ``rank + 2`` training ratings. Returns
    ``(train, test, noise)``.
    """

    def make(
        n_users: int = 60, n_items: int = 40, rank: int = 2, density: float = 0.5,
        noise: float = 0.01, test_share: float = 0.2, seed: int = 0,
    ) -> tuple[Interactions, Interactions, float]:
        rng = np.random.default_rng(seed)
        U = rng.normal(size=(n_users, rank))
        V = rng.normal(size=(n_items, rank))
        full = U @ V.T + 3.0 + rng.normal(0.0, noise, size=(n_users, n_items))
        observed = rng.random((n_users, n_items)) < density
        test = observed & (rng.random((n_users, n_items)) < test_share)
        train = observed & ~test
        # guarantee enough training ratings per row and column
        for _ in range(2):
            for u in np.flatnonzero(train.sum(1) < rank + 2):
                train[u, rng.choice(n_items, rank + 2, replace=False)] = True
            for i in np.flatnonzero(train.sum(0) < rank + 2):
                train[rng.choice(n_users, rank + 2, replace=False), i] = True
        test &= ~train
        users = np.arange(n_users)
        items = np.arange(n_items)

        def table(mask: np.ndarray) -> Interactions:
            u, i = np.nonzero(mask)
            return Interactions.from_arrays(users[u], items[i], full[u, i])

        return table(train), table(test), noise

    return make


# ------------------------------------------------------------------------------ catalogue
# A hand-made catalogue for retrieval: 8 items with genres, 6 users in two occupations,
# timed events.
ITEMS = list("abcdefgh")
GENRES = {
    "a": ["Comedy"], "b": ["Comedy"], "c": ["Comedy", "Drama"], "d": ["Drama"],
    "e": ["Drama"], "f": ["Horror"], "g": ["Horror"], "h": ["Comedy"],
}
OCCUPATION = {"u1": "writer", "u2": "writer", "u3": "writer",
              "u4": "artist", "u5": "artist", "u6": "artist"}
AGE = {"u1": 19, "u2": 30, "u3": 31, "u4": 50, "u5": 52, "u6": 33}
#: (user, item, rating, time); u1 watched a, then c, then d (most recent)
EVENTS = [
    ("u1", "a", 5.0, 1), ("u1", "c", 4.0, 2), ("u1", "d", 2.0, 3),
    ("u2", "a", 4.0, 1), ("u2", "b", 5.0, 2), ("u2", "h", 3.0, 3),
    ("u3", "a", 3.0, 1), ("u3", "b", 4.0, 2), ("u3", "f", 2.0, 3),
    ("u4", "d", 4.0, 1), ("u4", "e", 5.0, 2), ("u4", "f", 3.0, 3), ("u4", "g", 4.0, 4),
    ("u5", "d", 5.0, 1), ("u5", "e", 4.0, 2), ("u5", "g", 2.0, 3),
    ("u6", "e", 3.0, 1), ("u6", "f", 4.0, 2), ("u6", "c", 5.0, 3),
]
#: events per item: a3 b2 c2 d3 e3 f3 g2 h1


@pytest.fixture(scope="module")
def catalogue() -> tuple[Interactions, pd.DataFrame, pd.DataFrame]:
    users, items, values, times = zip(*EVENTS, strict=True)
    data = Interactions.from_arrays(
        list(users), list(items), list(values), list(times), rating_scale=(1.0, 5.0),
        items=Vocabulary(ITEMS), users=Vocabulary(sorted(OCCUPATION)),
    )
    item_table = pd.DataFrame({
        "item_id": ITEMS,
        "genres": [GENRES[i] for i in ITEMS],
        "year": [1950, 1960, 1970, 1980, 1990, 2000, 2010, 2020],
        "unsafe": [False, False, False, False, False, False, True, False],
    })
    user_table = pd.DataFrame({
        "user_id": sorted(OCCUPATION),
        "occupation": [OCCUPATION[u] for u in sorted(OCCUPATION)],
        "age": [AGE[u] for u in sorted(OCCUPATION)],
    })
    return data, item_table, user_table
