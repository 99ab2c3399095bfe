"""Collaborative filtering ranked by confidence: the prediction shrunk towards the global mean
by the item's support, still a dot product.

    r̃(u, i) = C + (r̂(u, i) − C) · w(i),   w(i) = n(i) / (n(i) + m),   m = prior · n̄

with ``r̂ = U[u]·V[i] + b[u] + o[i]``, is ``[U[u], b[u]] · [V[i] w(i), w(i)] + (o[i] − C) w(i)
+ C``, so vector indexes serve it like the prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from palate.models.scoring import LinearScores


@dataclass(frozen=True)
class ConfidenceRanking:
    """``scores``: the ranking as factors; ``weight``: w(i), shape (n_items,);
    ``similarity_scale``: 1 + n̄ / n(k) per item (inf for items without events)."""

    scores: LinearScores
    weight: np.ndarray
    similarity_scale: np.ndarray


def support_weights(counts: np.ndarray, prior: float) -> tuple[np.ndarray, np.ndarray]:
    """``w(i) = n(i) / (n(i) + prior · n̄)`` (how far a prediction may move from the global
    mean) and the similar-items scale ``1 + n̄ / n(k)`` (inf for items without events), for
    items with ``counts`` events each; n̄ is the mean over items with events."""
    counts = np.asarray(counts, dtype=np.float64)
    rated = counts > 0
    mean_count = float(counts[rated].mean()) if rated.any() else 1.0
    weight = counts / (counts + prior * mean_count)
    with np.errstate(divide="ignore"):
        scale = np.where(rated, 1.0 + mean_count / np.maximum(counts, 1e-12), np.inf)
    return weight, scale


def confidence_ranking(
    linear: LinearScores, counts: np.ndarray, global_mean: float, prior: float
) -> ConfidenceRanking:
    """The support-shrunk ranking of ``linear`` for items with ``counts`` events each."""
    weight, scale = support_weights(counts, prior)
    C = float(global_mean)
    dtype = linear.item_factors.dtype
    user_offset = np.zeros(len(linear.user_factors)) if linear.user_offset is None \
        else np.asarray(linear.user_offset, dtype=np.float64)
    item_offset = np.zeros(len(weight)) if linear.item_offset is None \
        else np.asarray(linear.item_offset, dtype=np.float64)
    scores = LinearScores(
        np.hstack([linear.user_factors, user_offset[:, None].astype(dtype)]),
        np.hstack([linear.item_factors * weight[:, None].astype(dtype),
                   weight[:, None].astype(dtype)]),
        None,
        ((item_offset - C) * weight + C).astype(dtype),
    )
    return ConfidenceRanking(scores, weight, scale)


__all__ = ["ConfidenceRanking", "confidence_ranking", "support_weights"]
