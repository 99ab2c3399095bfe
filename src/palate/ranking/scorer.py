"""A learned model seen as vectors: ``score(u, i) = link(p(u) · q(i))``.

Ranking a few hundred candidates needs the user's vector once and the candidates' precomputed
item vectors; this module turns each palate model with vectors into that form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from palate.data.vocabulary import Vocabulary
from palate.errors import ConfigError
from palate.models.base import Model


def _identity(z: np.ndarray) -> np.ndarray:
    return z


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
        The item features of SPEC §4 (``x(i)`` for CF, ``v_m(i)`` for two towers): related
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
        """The vectors of a fitted CollaborativeFiltering, ImplicitALS or TwoTower model."""
        from palate.models.collaborative import CollaborativeFiltering
        from palate.models.implicit import ImplicitALS
        from palate.models.two_tower.model import TwoTower

        model._check_fitted()
        f32 = np.float32
        link: Callable[[np.ndarray], np.ndarray]
        if isinstance(model, CollaborativeFiltering):
            W, X = model.user_factors_, model.item_factors_
            b = model.user_bias_[:, None]
            item_offset = (model.item_bias_ + model.item_means_)[:, None]
            user_matrix = np.hstack([W, b, np.ones_like(b)])
            item_matrix = np.hstack([X, np.ones_like(item_offset), item_offset])
            link = model._link
            similarity = X
        elif isinstance(model, ImplicitALS):
            user_matrix = np.asarray(model.user_factors_)
            item_matrix = np.asarray(model.item_factors_)
            link = _identity
            similarity = item_matrix
        elif isinstance(model, TwoTower):
            user_matrix = model.user_vectors(model.users_.ids)  # type: ignore[union-attr]
            item_matrix = model.item_vectors(model.items_.ids)  # type: ignore[union-attr]
            link = model._link
            similarity = item_matrix
        else:
            raise ConfigError(
                f"{type(model).__name__} has no user and item vectors to rank with; use "
                "CollaborativeFiltering, ImplicitALS or TwoTower as the ranker"
            )
        users: Vocabulary = model.users_  # type: ignore[attr-defined, assignment]
        items: Vocabulary = model.items_  # type: ignore[attr-defined, assignment]
        fallback = getattr(model, "_fallback_scores", None)
        if fallback is None:
            fallback = np.zeros(len(items), dtype=f32)
        return cls(
            users=users,
            items=items,
            user_matrix=np.ascontiguousarray(user_matrix, dtype=f32),
            item_matrix=np.ascontiguousarray(item_matrix, dtype=f32),
            similarity_vectors=np.ascontiguousarray(similarity, dtype=f32),
            fallback_scores=np.asarray(fallback, dtype=f32),
            link=link,
        )

    def score(self, user_row: int, item_rows: np.ndarray) -> np.ndarray:
        """``link(p(u) · q(i))`` for one known user and some items, shape (len(item_rows),)."""
        raw = self.item_matrix[item_rows] @ self.user_matrix[user_row]
        return np.asarray(self.link(raw.astype(np.float64)), dtype=np.float32)


__all__ = ["VectorScorer"]
