"""A top-N blend for positive-only data: EASE and implicit ALS, each standardised per user.

The item-to-item model (:class:`~palate.EASE`) and the matrix factorisation
(:class:`~palate.ImplicitALS`) are right about different items: EASE from the items a user's
own items co-occur with, ALS from a low-rank summary of everyone's tastes. Their scores live on
different scales, so each is standardised over the catalogue for the user before they are
added::

    score(u, i) = (1 − w) · z_EASE(u, i) + w · z_ALS(u, i),     z(u, i) = (s(u, i) − m(u)) / σ(u)

with m(u) and σ(u) the mean and standard deviation of the model's scores s(u, ·) over every
item, and w ``factor_weight``. Standardising per user leaves each model's ranking of a user's
items unchanged, so w = 0 ranks like EASE and w = 1 like ALS.

Measured on the P2 protocol (``bench/p2_implicit.py``) and chosen on validation splits carved
from its training positives (``bench/tune_topn.py``): see BENCHMARKS.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from palate.data.interactions import Interactions
from palate.errors import ConfigError
from palate.models.base import (
    FeedbackKind,
    Model,
    ModelState,
    engagement_input,
    is_number,
    load_parts,
    save_parts,
)

#: the parts of a model file that belong to each component
ITEM_PREFIX = "item_model."
FACTOR_PREFIX = "factor_model."
#: default w: the best weight on validation splits of MovieLens 100K and 1M (tune_topn.py)
DEFAULT_FACTOR_WEIGHT = 0.4


@dataclass(frozen=True)
class TopNBlendConfig:
    """Hyperparameters of :class:`TopNBlend` (validated on construction)."""

    item_model: Mapping[str, Any]
    factor_model: Mapping[str, Any]
    factor_weight: float = DEFAULT_FACTOR_WEIGHT

    def __post_init__(self) -> None:
        w = self.factor_weight
        if not is_number(w) or not 0 <= w <= 1:
            raise ConfigError(
                f"factor_weight must be a number in [0, 1] (0: the item model alone, 1: the "
                f"factor model alone), got {w!r}"
            )


def _component(value: Model | Mapping[str, Any] | None, default: str, role: str) -> Model:
    """:func:`~palate.models.registry.component_model`, which must learn from positive-only
    events."""
    from palate.models.registry import component_model

    model = component_model(value, default, role, "EASE(), ImplicitALS()")
    if model.feedback_kind not in ("implicit", "binary", "any"):
        raise ConfigError(
            f"{role} must learn from positive-only events (e.g. EASE(), ImplicitALS()), got a "
            f"{type(model).__name__} of {model.feedback_kind} feedback"
        )
    return model


def standardised(scores: np.ndarray) -> np.ndarray:
    """Each row minus its mean, divided by its standard deviation (rows with σ = 0 become 0)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape[1] == 0:
        return scores
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    out = np.zeros_like(scores)
    ok = std[:, 0] > 0
    out[ok] = (scores[ok] - mean[ok]) / std[ok]
    return out


class TopNBlend(Model):
    """EASE and implicit ALS blended, each standardised per user: palate's top-N model for
    positive-only data (clicks, plays, purchases, ratings above a threshold).

    Parameters
    ----------
    item_model : Model or {"kind", "params"}, optional
        Default :class:`~palate.EASE` (its defaults).
    factor_model : Model or {"kind", "params"}, optional
        Default :class:`~palate.ImplicitALS` (its defaults).
    factor_weight : float
        w in [0, 1], the factor model's share of the blend.

    Examples
    --------
    >>> model = TopNBlend().fit(clicks)                   # doctest: +SKIP
    >>> model.recommend([1, 2], k=10).item_ids.shape      # doctest: +SKIP
    (2, 10)
    """

    model_kind = "topn_blend"

    def __init__(
        self,
        item_model: Model | Mapping[str, Any] | None = None,
        factor_model: Model | Mapping[str, Any] | None = None,
        factor_weight: float = DEFAULT_FACTOR_WEIGHT,
    ) -> None:
        self.item_model = _component(item_model, "ease", "item_model")
        self.factor_model = _component(factor_model, "implicit_als", "factor_model")
        self.config = TopNBlendConfig(
            item_model={"kind": self.item_model.model_kind,
                        "params": self.item_model.get_params()},
            factor_model={"kind": self.factor_model.model_kind,
                          "params": self.factor_model.get_params()},
            factor_weight=factor_weight,
        )

    def get_params(self) -> dict[str, Any]:
        return {
            "item_model": dict(self.config.item_model),
            "factor_model": dict(self.config.factor_model),
            "factor_weight": self.config.factor_weight,
        }

    # ------------------------------------------------------------------ training
    def fit(self, interactions: Interactions) -> TopNBlend:
        """Fit both models on the same events. Returns self."""
        data = engagement_input(interactions)
        self._forget_fit()
        self.item_model.fit(data)
        self.factor_model.fit(data)
        self._set_events(data, self.item_model.fallback_scores_)
        return self

    @property
    def feedback_kind(self) -> FeedbackKind:
        return "implicit"

    # ------------------------------------------------------------------ scoring
    def _part_scores(self, model: Model, rows: np.ndarray) -> np.ndarray:
        return np.asarray(model.score_rows(rows), dtype=np.float64)

    def score_rows(self, rows: np.ndarray) -> np.ndarray:
        """``(1 − w) z_item + w z_factor`` for the users at ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        w = self.config.factor_weight
        out = np.zeros((len(rows), len(self.items_)), dtype=np.float64)
        if w < 1:
            out += (1 - w) * standardised(self._part_scores(self.item_model, rows))
        if w > 0:
            out += w * standardised(self._part_scores(self.factor_model, rows))
        return out

    def predict_rows(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The blended score of each pair (0 for an unknown user, NaN for an unknown item)."""
        out = np.full(len(u), np.nan, dtype=np.float64)
        out[i >= 0] = 0.0
        both = np.flatnonzero((u >= 0) & (i >= 0))
        if len(both):
            users, inverse = np.unique(u[both], return_inverse=True)
            for start in range(0, len(users), 1024):
                chunk = users[start : start + 1024]
                scores = self.score_rows(chunk)
                pick = (inverse >= start) & (inverse < start + len(chunk))
                out[both[pick]] = scores[inverse[pick] - start, i[both[pick]]]
        return out

    def similarity_vectors(self) -> np.ndarray:
        """The item model's item vectors (for EASE, the rows of B)."""
        return self.item_model.similarity_vectors()

    def similarity_scale(self) -> np.ndarray | None:
        return self.item_model.similarity_scale()

    @property
    def similarity_metric(self) -> Any:  # type: ignore[override]
        return self.item_model.similarity_metric

    # ------------------------------------------------------------------ model files
    def _save_state(self, state: ModelState) -> None:
        save_parts(state, self._parts())

    def _load_state(self, state: ModelState) -> None:
        parts = load_parts(state, self._parts(), self.users_, self.items_)
        self.item_model, self.factor_model = parts[ITEM_PREFIX], parts[FACTOR_PREFIX]

    def _parts(self) -> dict[str, Model]:
        return {ITEM_PREFIX: self.item_model, FACTOR_PREFIX: self.factor_model}


__all__ = ["TopNBlend", "TopNBlendConfig", "standardised"]
