"""A learned model seen as vectors: ``score(u, i) = link(p(u) · q(i))``.

Ranking a few hundred candidates needs the user's vector once and the candidates' precomputed
item vectors; this module turns each palate model with vectors into that form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from palate.data.vocabulary import Vocabulary
from palate.errors import ConfigError, NotFittedError
from palate.models.base import Model


@dataclass
class VectorScorer:
    """The vectors of a fitted model.

    Attributes
    ----------
    users, items : Vocabulary
    user_matrix : ndarray of float32, shape (n_users, d)
        ``p(u)``.
    item_matrix : ndarray of float32, shape (n_items, d)
        ``q(i)``, such that ``link(p(u) · q(i))`` is the model's prediction.
    similarity_vectors : ndarray of float32, shape (n_items, n)
        The learned item features (``x(i)`` for CF, ``v_m(i)`` for two towers): related
        items are those with the smallest ``‖x(k) − x(i)‖²``.
    fallback_scores : ndarray of float32, shape (n_items,)
        What the model shows users it does not know (popularity or shrunk means).
    link : callable
        Maps raw dot products to the model's scale (clipping to the rating scale, sigmoid).

    Notes
    -----
    For :class:`~palate.CollaborativeFiltering` the prediction ``w(j)·x(i) + b(j) + c(i) +
    μ(i)`` is one dot product of the augmented vectors ``p = [w(j), b(j), 1]`` and ``q = [x(i),
    1, c(i) + μ(i)]``; for :class:`~palate.ImplicitALS` ``p = w``, ``q = x``; for
    :class:`~palate.TwoTower` ``p = v_u``, ``q = v_m``.
    """

    users: Vocabulary
    items: Vocabulary
    user_matrix: np.ndarray
    item_matrix: np.ndarray
    similarity_vectors: np.ndarray
    fallback_scores: np.ndarray
    link: Callable[[np.ndarray], np.ndarray]

    @classmethod
    def from_model(cls, model: Model) -> VectorScorer:
        """The vectors of a fitted model whose scores are linear (``has_linear_scores``).

        ``U[u] · V[i] + b[u] + c[i]`` is one dot product of ``p = [U[u], b[u], 1]`` and
        ``q = [V[i], 1, c[i]]`` (the offset columns are left out when the model has none).
        """
        if not model.has_linear_scores or model.similarity_metric is None:
            raise ConfigError(
                f"{type(model).__name__} has no user and item vectors to rank with; use "
                "CollaborativeFiltering, ImplicitALS or TwoTower as the ranker"
            )
        if not model.is_fitted:
            raise NotFittedError(f"fit the {type(model).__name__} ranker first")
        linear = model.ranking_scores()
        f32 = np.float32
        user_columns = [np.asarray(linear.user_factors, dtype=f32)]
        item_columns = [np.asarray(linear.item_factors, dtype=f32)]
        n_users, n_items = len(user_columns[0]), len(item_columns[0])
        if linear.user_offset is not None:
            user_columns.append(np.asarray(linear.user_offset, dtype=f32)[:, None])
            item_columns.append(np.ones((n_items, 1), dtype=f32))
        if linear.item_offset is not None:
            user_columns.append(np.ones((n_users, 1), dtype=f32))
            item_columns.append(np.asarray(linear.item_offset, dtype=f32)[:, None])
        return cls(
            users=model.users_,
            items=model.items_,
            user_matrix=np.ascontiguousarray(np.hstack(user_columns), dtype=f32),
            item_matrix=np.ascontiguousarray(np.hstack(item_columns), dtype=f32),
            similarity_vectors=np.ascontiguousarray(model.similarity_vectors(), dtype=f32),
            fallback_scores=np.asarray(model.fallback_scores_, dtype=f32),
            link=model.link,
        )

    def score(self, user_row: int, item_rows: np.ndarray) -> np.ndarray:
        """``link(p(u) · q(i))`` for one known user and some items, shape (len(item_rows),)."""
        raw = self.item_matrix[item_rows] @ self.user_matrix[user_row]
        return np.asarray(self.link(raw.astype(np.float64)), dtype=np.float32)


__all__ = ["VectorScorer"]
