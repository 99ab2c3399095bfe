"""What the solvers fit: the entries of an epoch and the item means μ(i).

An entry is a (user, item, target) triple. Explicit ratings and binary data with both labels
train on their events as they are; binary data with positives only (y = 1 everywhere) would
teach a model that everything is liked, so :func:`training_entries` adds unobserved pairs as
y = 0, ``negative_ratio`` per positive (:func:`with_negatives`), drawn with probability
∝ n(i)^β over items (``negative_exponent`` β; 0 is uniform), and :func:`entry_weights` gives
the positives their weight in the logistic loss (``positive_weight``).
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
    negative_exponent: float = 0.0,
) -> Entries:
    """(user_idx, item_idx, target) for one epoch, with sampled negatives when ``data`` is
    binary and holds positives only (items drawn ∝ n(i)^``negative_exponent``)."""
    u = data.user_idx.astype(np.int64)
    i = data.item_idx.astype(np.int64)
    y = data.values.astype(np.float64)
    if kind == "binary" and data.is_positive_only:
        probs = None
        if negative_exponent:
            probs = negative_item_probabilities(data.item_counts(), negative_exponent)
        u, i, y = with_negatives(u, i, y, data.n_items, negative_ratio, rng, probs)
    return u, i, y


def negative_item_probabilities(item_counts: np.ndarray, exponent: float) -> np.ndarray:
    """P(item i is drawn as a negative) ∝ n(i)^β with n(i) its number of positives (β =
    ``exponent``; 0 is uniform). Items with no positive are never drawn when β > 0."""
    counts = np.asarray(item_counts, dtype=np.float64)
    weights = np.where(counts > 0, counts, 0.0) ** exponent if exponent else np.ones_like(counts)
    total = weights.sum()
    if total <= 0:
        return np.full(len(counts), 1.0 / max(len(counts), 1))
    return weights / total


def entry_weights(y: np.ndarray, positive_weight: float) -> np.ndarray | None:
    """Each entry's weight in the loss: ``positive_weight`` for y = 1, 1 for y = 0; None when
    every weight is 1."""
    if positive_weight == 1.0:
        return None
    return np.where(np.asarray(y) > 0, float(positive_weight), 1.0)


def with_negatives(
    u: np.ndarray,
    i: np.ndarray,
    y: np.ndarray,
    n_items: int,
    negative_ratio: float,
    rng: np.random.Generator,
    item_probs: np.ndarray | None = None,
) -> Entries:
    """The positives followed by sampled y = 0 entries.

    ``round(negative_ratio · n)`` pairs are drawn: the user of a random positive (so active
    users get more negatives, as they have more positives) and a random item, uniform or with
    probabilities ``item_probs``; pairs that hit a positive, and repeated pairs, are dropped.
    """
    n_neg = int(round(len(u) * negative_ratio))
    neg_u = u[rng.integers(0, len(u), n_neg)]
    if item_probs is None:
        neg_i = rng.integers(0, n_items, n_neg)
    else:
        cdf = np.cumsum(item_probs)
        neg_i = np.searchsorted(cdf, rng.random(n_neg) * cdf[-1], side="right")
        neg_i = np.minimum(neg_i, n_items - 1)
    positive_keys = np.sort(u * n_items + i)
    # sorted first: the repeats are neighbours, and the look-ups into the sorted positives
    # walk forwards (much faster than np.unique and unordered searches on millions of keys)
    keys = np.sort(neg_u * n_items + neg_i)
    if len(keys):
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    pos = np.searchsorted(positive_keys, keys).clip(max=len(positive_keys) - 1)
    keys = keys[positive_keys[pos] != keys]
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


__all__ = [
    "Entries",
    "entry_weights",
    "item_means",
    "negative_item_probabilities",
    "training_entries",
    "with_negatives",
]
