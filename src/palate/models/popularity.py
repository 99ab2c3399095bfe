"""Popularity baseline: most-engaged or best-rated items, the last-resort fallback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from palate.data.interactions import Interactions
from palate.errors import ConfigError
from palate.models.base import Model, ModelState, ScoreKind, check_array_shapes, fit_input
from palate.models.explain import Attribution


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
    """Recommend the same popular items to everyone (unknown users get the same list,
    flagged ``fallback``).

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
    can_explain = True

    item_means_: np.ndarray
    data_kind_: str

    def __init__(self, by: Literal["count", "mean"] = "count", prior: float = 10.0) -> None:
        self.config = PopularityConfig(by=by, prior=prior)

    def fit(self, interactions: Interactions) -> Popularity:
        """Count events (and shrunk means) per item. Returns self."""
        data = fit_input(interactions)
        self._forget_fit()
        scores, self.item_means_ = popularity_scores(data, self.config.by, self.config.prior)
        self.data_kind_ = data.kind
        self._set_events(data, scores)
        return self

    @property
    def item_scores_(self) -> np.ndarray:
        """What the list is ranked by, shape (n_items,): counts (ties broken by the shrunk
        mean) or shrunk means."""
        return self.fallback_scores_

    @property
    def score_kind(self) -> ScoreKind:
        return "popularity"

    def score_rows(self, rows: np.ndarray) -> np.ndarray:
        """The same list for everyone."""
        scores = self.fallback_scores_
        return np.broadcast_to(scores, (len(rows), len(scores))).copy()

    def predict_rows(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The item's (shrunk) mean value; NaN for unknown items."""
        out = np.full(len(i), np.nan, dtype=np.float64)
        known = i >= 0
        out[known] = self.item_means_[i[known]]
        return out

    def attribute(
        self, history: np.ndarray, values: np.ndarray, items: np.ndarray, user_row: int
    ) -> Attribution:
        """The same score for everyone: all baseline ("popular with everyone"), no history
        term."""
        scores = self.fallback_scores_[items].astype(np.float64)
        return Attribution(scores, scores, 0.0, np.zeros((len(items), 0)),
                           np.zeros(0, np.int64), np.zeros(0))

    def _save_state(self, state: ModelState) -> None:
        state.arrays["item_scores"] = self.fallback_scores_
        state.arrays["item_means"] = self.item_means_
        state.extra["data_kind"] = self.data_kind_

    def _load_state(self, state: ModelState) -> None:
        n_items = len(self.items_)
        check_array_shapes(state.arrays, {"item_scores": (n_items,), "item_means": (n_items,)})
        self.fallback_scores_ = np.array(state.arrays["item_scores"], dtype=np.float32)
        self.item_means_ = np.array(state.arrays["item_means"], dtype=np.float32)
        self.data_kind_ = str(state.extra.get("data_kind", "explicit"))


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


__all__ = ["Popularity", "PopularityConfig", "popularity_from_counts", "popularity_scores"]
