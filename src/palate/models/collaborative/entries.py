"""What the solvers fit: the entries of an epoch and the item means μ(i).

An entry is a (user, item, target) triple. Explicit ratings and binary data with both labels
train on their events as they are; binary data with positives only (y = 1 everywhere) would
teach a model that everything is liked, so :func:`training_entries` adds unobserved pairs as
y = 0, ``negative_ratio`` per positive (:func:`with_negatives`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from palate.data.interactions import Interactions

#: user rows, item rows (int64) and targets (float64) of the entries, each shape (n_entries,)
Entries = tuple[np.ndarray, np.ndarray, np.ndarray]


def training_entries(
    data: Interactions,
    kind: Literal["explicit", "binary"],
    negative_ratio: float,
    rng: np.random.Generator,
) -> Entries:
    """(user_idx, item_idx, target) for one epoch, with sampled negatives when ``data`` is
    binary and holds positives only."""
    u = data.user_idx.astype(np.int64)
    i = data.item_idx.astype(np.int64)
    y = data.values.astype(np.float64)
    if kind == "binary" and data.is_positive_only:
        u, i, y = with_negatives(u, i, y, data.n_items, negative_ratio, rng)
    return u, i, y


def with_negatives(
    u: np.ndarray,
    i: np.ndarray,
    y: np.ndarray,
    n_items: int,
    negative_ratio: float,
    rng: np.random.Generator,
) -> Entries:
    """The positives followed by sampled y = 0 entries.

    ``round(negative_ratio · n)`` pairs are drawn: the user of a random positive (so active
    users get more negatives, as they have more positives) and a uniformly random item; pairs
    that hit a positive, and repeated pairs, are dropped.
    """
    n_neg = int(round(len(u) * negative_ratio))
    neg_u = u[rng.integers(0, len(u), n_neg)]
    neg_i = rng.integers(0, n_items, n_neg)
    positive_keys = np.sort(u * n_items + i)
    keys = neg_u * n_items + neg_i
    pos = np.searchsorted(positive_keys, keys).clip(max=len(positive_keys) - 1)
    keep = positive_keys[pos] != keys
    keys = np.unique(keys[keep])
    neg_u, neg_i = keys // n_items, keys % n_items
    return (
        np.concatenate([u, neg_u]),
        np.concatenate([i, neg_i]),
        np.concatenate([y, np.zeros(len(neg_u))]),
    )


def item_means(data: Interactions, shrinkage: float) -> np.ndarray:
    """μ(i), shrunk towards the global mean C by m = ``shrinkage`` pseudo-ratings::

        μ(i) = (Σ_j y(i,j) + m C) / (n(i) + m)

    (m = 0 is the plain mean of item i's ratings); C for items with no events. Shape
    (n_items,), float64.
    """
    m = shrinkage
    counts = data.item_counts()
    sums = np.bincount(data.item_idx, weights=data.values, minlength=data.n_items)
    global_mean = data.global_mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums + m * global_mean) / (counts + m)
    return np.where(counts > 0, means, global_mean)


__all__ = ["Entries", "item_means", "training_entries", "with_negatives"]
