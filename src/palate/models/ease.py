"""EASE: a closed-form item-to-item model for implicit feedback (Steck, 2019).

Each item's score for a user is a weighted sum of the items the user engaged with; the weight
matrix B (items × items) is the ridge regression of every item's column on all the others, with
its diagonal held at zero so an item cannot explain itself::

    B = argmin ‖X − X B‖²_F + λ ‖B‖²_F   subject to   diag(B) = 0

with X the binary users × items matrix. The Lagrangian gives the closed form

    P = (XᵀX + λI)⁻¹,     B(i, j) = −P(i, j) / P(j, j)  (i ≠ j),     B(j, j) = 0

so a fit is one Gram matrix and one Cholesky inverse of an items × items matrix: it suits
catalogues of up to a few tens of thousands of items (memory n_items² · 8 bytes while fitting,
n_items² · 4 bytes stored). Scores of user u: ``x(u) B`` — a new user's scores come straight
from their first events, with no solve at all.

Use it for positive-only data on a moderate catalogue; :class:`~palate.ImplicitALS` scales to
larger catalogues and gives item vectors for vector indexes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp

from palate.data.interactions import Interactions
from palate.data.vocabulary import Vocabulary, as_id_array
from palate.errors import ConfigError, DataError
from palate.models.base import (
    Model,
    ModelState,
    Recommendations,
    check_array_shapes,
    fit_input,
    recommend_by_scores,
    top_k_for_new_user,
)
from palate.models.collaborative import SimilarItems, nearest_items
from palate.models.popularity import (
    items_with_events,
    popularity_scores,
    seen_arrays,
    seen_from_arrays,
    seen_matrix,
)
from palate.types import FloatArray, IdArray, IdLike

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EASEConfig:
    """Hyperparameters of :class:`EASE` (validated on construction)."""

    reg: float | None = None
    max_items: int = 30_000

    def reg_for(self, n_events: int) -> float:
        """λ for a training set of ``n_events`` engaged pairs: ``reg`` if given, else
        ``300 · (n_events / 50,000)^(1/2)`` clipped to [100, 1000]."""
        if self.reg is not None:
            return float(self.reg)
        return float(np.clip(300.0 * np.sqrt(n_events / 50_000), 100.0, 1000.0))

    def __post_init__(self) -> None:
        reg = self.reg
        if reg is not None and (
            not isinstance(reg, (int, float, np.number))
            or isinstance(reg, bool)
            or not np.isfinite(reg)
            or reg <= 0
        ):
            raise ConfigError(f"reg must be a finite number > 0, got {reg!r}")
        m = self.max_items
        if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or m < 1:
            raise ConfigError(f"max_items must be a positive integer, got {m!r}")


class EASE(Model):
    """Embarrassingly shallow autoencoder: item-to-item weights in closed form.

    Parameters
    ----------
    reg : float, optional
        λ added to the diagonal of XᵀX. Default: ``300 · (n / 50,000)^(1/2)`` for ``n``
        engaged training pairs, clipped to [100, 1000] (the value used is ``reg_``) — the best
        λ on validation splits carved from the training data of MovieLens 100K (300) and 1M
        (800) (``bench/tune_defaults.py``).
    max_items : int
        Largest catalogue ``fit`` accepts (the weights are a dense items × items matrix);
        raise it knowingly, or use :class:`~palate.ImplicitALS` for large catalogues.

    Attributes
    ----------
    weights_ : ndarray of float32, shape (n_items, n_items)
        B, with a zero diagonal.
    reg_ : float
        The λ used.

    Examples
    --------
    >>> model = EASE().fit(clicks)                 # doctest: +SKIP
    >>> model.recommend([1, 2], k=10).item_ids.shape      # doctest: +SKIP
    (2, 10)
    """

    model_kind = "ease"

    def __init__(self, reg: float | None = None, max_items: int = 30_000) -> None:
        self.config = EASEConfig(reg=reg, max_items=max_items)
        self._reset()

    def _reset(self) -> None:
        self.users_: Vocabulary | None = None
        self.items_: Vocabulary | None = None
        self.data_fingerprint_: str | None = None
        self.weights_: np.ndarray | None = None
        self.reg_: float | None = None
        self._seen: sp.csr_matrix | None = None
        self._fallback_scores: np.ndarray | None = None

    # ------------------------------------------------------------------ training
    def fit(self, interactions: Interactions) -> EASE:
        """Solve B from engagement events (value > 0 counts as engaged). Returns self."""
        data = fit_input(interactions)
        if np.any(data.values < 0):
            raise DataError(
                "implicit feedback values must be >= 0 (a count, a rating or 1 per event); "
                "shift or drop negative values"
            )
        if data.n_items > self.config.max_items:
            raise ConfigError(
                f"EASE keeps a dense {data.n_items:,} × {data.n_items:,} weight matrix; that is "
                f"above max_items={self.config.max_items:,}. Use ImplicitALS for a catalogue "
                "this large, or pass a larger max_items if the memory "
                f"({8 * data.n_items**2 / 2**30:.1f} GiB while fitting) is available"
            )
        self._reset()
        self.users_, self.items_ = data.users, data.items
        self.data_fingerprint_ = data.fingerprint()
        self._seen = seen_matrix(data)
        self._fallback_scores, _ = popularity_scores(data, "count")
        self.reg_ = self.config.reg_for(self._seen.nnz)
        self.weights_ = ease_weights(self._seen, self.reg_)
        return self

    # ------------------------------------------------------------------ scoring
    def _scores(self, rows: np.ndarray) -> np.ndarray:
        seen = self._seen
        assert seen is not None and self.weights_ is not None
        return np.asarray(seen[rows] @ self.weights_, dtype=np.float32)

    def predict(self, user_ids: IdLike, item_ids: IdLike) -> FloatArray:
        """Scores x(u)·B(:, i) of pairs (not probabilities); 0 for an unknown user, NaN for an
        unknown item."""
        self._check_fitted()
        users = as_id_array(user_ids)
        items = as_id_array(item_ids)
        if len(users) != len(items):
            raise DataError(f"predict scores pairs: got {len(users)} users and {len(items)} items")
        u = self.users_.index(users, missing="ignore")  # type: ignore[union-attr]
        i = self.items_.index(items, missing="ignore")  # type: ignore[union-attr]
        out = np.full(len(u), np.nan, dtype=np.float32)
        out[i >= 0] = 0.0
        both = np.flatnonzero((i >= 0) & (u >= 0))
        if len(both):
            rows = self._seen[u[both]]  # type: ignore[index]
            # Σ over the user's items j of B(j, i), for every pair at once without densifying
            pair = np.repeat(np.arange(len(both)), np.diff(rows.indptr))
            weights = self.weights_[rows.indices, i[both][pair]]  # type: ignore[index]
            out[both] = np.bincount(pair, weights=weights, minlength=len(both))
        return out

    def recommend(
        self, user_ids: IdLike, k: int = 10, exclude_seen: bool = True, *, batch_size: int = 1024
    ) -> Recommendations:
        """Top-k items per user by x(u) B; unknown users get the most popular items
        (``fallback=True``)."""
        self._check_fitted()
        return recommend_by_scores(
            self.users_,  # type: ignore[arg-type]
            self.items_,  # type: ignore[arg-type]
            user_ids,
            k,
            self._scores,
            self._seen if exclude_seen else None,
            self._fallback_scores,  # type: ignore[arg-type]
            batch_size=batch_size,
        )

    def fold_in(self, ratings: Mapping[Any, float] | pd.DataFrame | pd.Series) -> np.ndarray:
        """Scores of every item for a new user from their events, without refitting.

        Parameters
        ----------
        ratings : mapping item_id -> value, Series indexed by item id, or DataFrame with
            columns item_id and rating (or value); a value > 0 counts as engaged

        Returns
        -------
        ndarray of float32, shape (n_items,)
            ``x B`` in the order of ``model.items_.ids``.
        """
        from palate.models.collaborative import _ratings_arrays

        self._check_fitted()
        items, values = _ratings_arrays(ratings)
        idx = self.items_.index(as_id_array(items), kind="item")  # type: ignore[union-attr]
        engaged = idx[np.asarray(values, dtype=np.float64) > 0]
        return self.weights_[np.unique(engaged)].sum(axis=0).astype(np.float32)  # type: ignore[index]

    def recommend_for_ratings(
        self,
        ratings: Mapping[Any, float] | pd.DataFrame | pd.Series,
        k: int = 10,
        exclude_seen: bool = True,
    ) -> tuple[IdArray, np.ndarray]:
        """Top-k (item ids, scores) for a new user described only by their events (fold-in)."""
        from palate.models.collaborative import _ratings_arrays

        items, _ = _ratings_arrays(ratings)
        ids, scores = top_k_for_new_user(
            self.items_, self.fold_in(ratings), as_id_array(items), k, exclude_seen  # type: ignore[arg-type]
        )
        return ids, scores.astype(np.float32)

    def similar_items(
        self, item_ids: IdLike, k: int = 10, metric: Literal["euclidean", "cosine"] = "cosine"
    ) -> SimilarItems:
        """Nearest items by the cosine distance (default) or squared distance of the rows of B
        (each item's weights on every other item)."""
        self._check_fitted()
        trained = items_with_events(self._seen)  # type: ignore[arg-type]
        return nearest_items(self.items_, self.weights_, item_ids, k, metric, trained)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ model files
    def _state(self) -> ModelState:
        self._check_fitted()
        seen = self._seen
        assert seen is not None and self._fallback_scores is not None
        return ModelState(
            config=self.get_params(),
            arrays={
                "weights": self.weights_,  # type: ignore[dict-item]
                "fallback_scores": self._fallback_scores,
                **seen_arrays(seen),
            },
            vocabularies={"users": self.users_, "items": self.items_},  # type: ignore[dict-item]
            extra={"reg": self.reg_},
        )

    @classmethod
    def _from_state(cls, state: ModelState) -> EASE:
        model = cls(**state.config)
        users, items = state.vocabularies["users"], state.vocabularies["items"]
        a = state.arrays
        expected = {"weights": (len(items), len(items)), "fallback_scores": (len(items),)}
        check_array_shapes(a, expected)
        model.users_, model.items_ = users, items
        model.weights_ = np.array(a["weights"], dtype=np.float32)
        model._fallback_scores = np.array(a["fallback_scores"], dtype=np.float32)
        model._seen = seen_from_arrays(a, len(users), len(items))
        model.reg_ = state.extra.get("reg", model.config.reg_for(model._seen.nnz))
        return model


def ease_weights(X: sp.spmatrix | np.ndarray, reg: float) -> np.ndarray:
    """B = −P / diag(P) with P = (XᵀX + λI)⁻¹ and a zero diagonal.

    Parameters
    ----------
    X : sparse or dense matrix, shape (n_users, n_items)
        Engagement indicators (any non-zero counts as 1).
    reg : float
        λ > 0.

    Returns
    -------
    ndarray of float32, shape (n_items, n_items)
    """
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    X.data[:] = 1.0
    G = (X.T @ X).toarray()
    G[np.diag_indices_from(G)] += reg
    # P = G⁻¹ through Cholesky (G is symmetric positive definite for λ > 0)
    c, lower = scipy.linalg.cho_factor(G, overwrite_a=True, check_finite=False)
    P = scipy.linalg.cho_solve((c, lower), np.eye(len(G)), overwrite_b=True, check_finite=False)
    B = P / -np.diag(P)[None, :]
    B[np.diag_indices_from(B)] = 0.0
    return B.astype(np.float32)


__all__ = ["EASE", "EASEConfig", "ease_weights"]
