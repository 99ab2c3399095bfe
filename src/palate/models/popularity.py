"""Popularity baseline: most-engaged or best-rated items, the last-resort fallback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from palate.data.interactions import Interactions
from palate.data.vocabulary import Vocabulary
from palate.errors import ConfigError
from palate.models.base import (
    Model,
    ModelState,
    Recommendations,
    fit_input,
    recommend_by_scores,
    user_rows,
)
from palate.types import FloatArray, IdLike


@dataclass(frozen=True)
class PopularityConfig:
    by: Literal["count", "mean"] = "count"
    prior: float = 10.0

    def __post_init__(self) -> None:
        if self.by not in ("count", "mean"):
            raise ConfigError(f"by must be 'count' or 'mean', got {self.by!r}")
        valid = isinstance(self.prior, (int, float, np.number)) and not isinstance(self.prior, bool)
        if not valid or not np.isfinite(self.prior) or self.prior < 0:
            raise ConfigError(f"prior must be a non-negative number, got {self.prior!r}")


class Popularity(Model):
    """Recommend the same popular items to everyone.

    ``by="count"`` ranks items by number of events. ``by="mean"`` ranks by the mean value
    shrunk towards the global mean ``C`` with ``prior`` pseudo-events:

        score(i) = (Σ_j y(i,j) + prior · C) / (n(i) + prior)

    so an item with a single 5-star rating does not top the list.

    Examples
    --------
    >>> from palate.data.synthetic import synthetic_ratings  # doctest: +SKIP
    >>> model = Popularity(by="mean").fit(data)  # doctest: +SKIP
    """

    model_kind = "popularity"

    def __init__(self, by: Literal["count", "mean"] = "count", prior: float = 10.0) -> None:
        self.config = PopularityConfig(by=by, prior=prior)
        self.users_: Vocabulary | None = None
        self.items_: Vocabulary | None = None
        self.item_scores_: np.ndarray | None = None
        self.item_means_: np.ndarray | None = None
        self._seen: sp.csr_matrix | None = None

    def fit(self, interactions: Interactions) -> Popularity:
        """Count events (and shrunk means) per item. Returns self."""
        data = fit_input(interactions)
        self.item_scores_, self.item_means_ = popularity_scores(
            data, self.config.by, self.config.prior
        )
        self.users_ = data.users
        self.items_ = data.items
        self._seen = seen_matrix(data)
        return self

    def predict(self, user_ids: IdLike, item_ids: IdLike) -> FloatArray:
        """Score pairs: the item's (shrunk) mean value; NaN for unknown items."""
        self._check_fitted()
        assert self.items_ is not None and self.item_means_ is not None
        users, _ = user_rows(self.users_, user_ids)  # type: ignore[arg-type]
        items = self.items_.index(item_ids, missing="ignore")
        if len(users) != len(items):
            from palate.errors import DataError

            raise DataError(f"predict scores pairs: got {len(users)} users and {len(items)} items")
        out = np.full(len(items), np.nan, dtype=np.float32)
        known = items >= 0
        out[known] = self.item_means_[items[known]]
        return out

    def recommend(
        self, user_ids: IdLike, k: int = 10, exclude_seen: bool = True
    ) -> Recommendations:
        """The k most popular items per user (seen items removed when asked)."""
        self._check_fitted()
        scores = self.item_scores_
        assert scores is not None
        # the same list for everyone; rows of users the model does not know are flagged
        return recommend_by_scores(
            self.users_,  # type: ignore[arg-type]
            self.items_,  # type: ignore[arg-type]
            user_ids,
            k,
            lambda rows: np.broadcast_to(scores, (len(rows), len(scores))).copy(),
            self._seen if exclude_seen else None,
            scores,
        )

    def _state(self) -> ModelState:
        self._check_fitted()
        assert self._seen is not None
        return ModelState(
            config=self.get_params(),
            arrays={
                "item_scores": self.item_scores_,  # type: ignore[dict-item]
                "item_means": self.item_means_,  # type: ignore[dict-item]
                **seen_arrays(self._seen),
            },
            vocabularies={"users": self.users_, "items": self.items_},  # type: ignore[dict-item]
        )

    @classmethod
    def _from_state(cls, state: ModelState) -> Popularity:
        model = cls(**state.config)
        model.users_ = state.vocabularies["users"]
        model.items_ = state.vocabularies["items"]
        model.item_scores_ = state.arrays["item_scores"]
        model.item_means_ = state.arrays["item_means"]
        model._seen = seen_from_arrays(state.arrays, len(model.users_), len(model.items_))
        return model


def popularity_scores(
    data: Interactions, by: str = "count", prior: float = 10.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-item popularity scores and shrunk means, shape (n_items,) each.

    ``means = (Σ y + prior · C) / (n + prior)``; the scores are those means (``by="mean"``) or
    the number of events — of positive events for binary data, so that being shown is not
    being popular — with ties broken by the shrunk mean (``by="count"``).
    """
    n_events = data.item_counts().astype(np.float64)
    sums = np.bincount(data.item_idx, weights=data.values, minlength=data.n_items)
    positives = None
    if data.kind == "binary":
        positives = np.bincount(data.item_idx, weights=data.values > 0, minlength=data.n_items)
    return popularity_from_counts(n_events, sums, data.global_mean(), by, prior, positives)


def popularity_from_counts(
    n_events: np.ndarray,
    sums: np.ndarray,
    global_mean: float,
    by: str = "count",
    prior: float = 10.0,
    positives: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`popularity_scores` from per-item aggregates (computed anywhere, e.g. on Spark).

    Parameters
    ----------
    n_events, sums : ndarray, shape (n_items,)
        Number of events and sum of their values per item.
    global_mean : float
        C, the mean value over all events.
    positives : ndarray, shape (n_items,), optional
        Number of positive events per item (binary data); counted instead of ``n_events``.
    """
    n_events = np.asarray(n_events, dtype=np.float64)
    sums = np.asarray(sums, dtype=np.float64)
    shrunk = (sums + prior * global_mean) / np.maximum(n_events + prior, 1e-12)
    means = shrunk.astype(np.float32)
    if by == "mean":
        return means.copy(), means
    counts = n_events if positives is None else np.asarray(positives, dtype=np.float64)
    tie_break = 1e-3 * (shrunk - shrunk.min()) / (np.ptp(shrunk) + 1e-9)
    return (counts + tie_break).astype(np.float32), means


def seen_matrix(data: Interactions) -> sp.csr_matrix:
    """Users x items 0/1 matrix of every event (a 0 rating or a 0 label counts as seen)."""
    return sp.csr_matrix(
        (np.ones(len(data), dtype=np.float32), (data.user_idx, data.item_idx)), shape=data.shape
    )


def seen_arrays(seen: sp.csr_matrix) -> dict[str, np.ndarray]:
    """The seen-items matrix as the arrays a model file stores (see :func:`seen_from_arrays`)."""
    return {
        "seen_indptr": seen.indptr.astype(np.int64),
        "seen_indices": seen.indices.astype(np.int32),
    }


def items_with_events(seen: sp.csr_matrix) -> np.ndarray:
    """Bool mask (n_items,) of the items some user has in the seen-items matrix."""
    return np.asarray(seen.sum(axis=0)).ravel() > 0


def seen_from_arrays(arrays: dict[str, np.ndarray], n_users: int, n_items: int) -> sp.csr_matrix:
    """Rebuild the seen-items matrix saved as ``seen_indptr`` / ``seen_indices``."""
    indptr = arrays["seen_indptr"]
    indices = arrays["seen_indices"]
    data = np.ones(len(indices), dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(n_users, n_items))
