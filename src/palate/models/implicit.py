"""Confidence-weighted ALS for implicit feedback (Hu, Koren & Volinsky, 2008).

Every (user, item) pair is an observation: p(u,i) = 1 where the user engaged (value > 0) and 0
everywhere else, weighted by a confidence c(u,i) = 1 + α · value for engaged pairs and 1 for
the rest::

    J(w, x) = Σ_{all u, i} c(u,i) (p(u,i) − w(u)·x(i))²  +  λ (Σ_u ‖w(u)‖² + Σ_i ‖x(i)‖²)

With x fixed, w(u) = (XᵀX + Xᵀ(C_u − I)X + λI)⁻¹ Xᵀ C_u p(u): the ``XᵀX`` term is shared by
every user and computed once per half-sweep, so each solve only touches the user's engaged
items — the same compiled per-row kernel as :class:`~palate.CollaborativeFiltering`.
This is the model to use for positive-only data (clicks, purchases, plays); the logistic
``CollaborativeFiltering(kind="binary")`` is the curriculum's model for labelled 0/1 data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from palate.data.interactions import Interactions
from palate.errors import ConfigError
from palate.models.base import (
    FeedbackKind,
    Model,
    ModelState,
    check_array_shapes,
    engagement_input,
)
from palate.models.collaborative.als import cg_steps_for
from palate.models.popularity import popularity_scores
from palate.models.ridge import SparseRows, solve_rows
from palate.models.scoring import LinearScores

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImplicitALSConfig:
    """Hyperparameters of :class:`ImplicitALS` (validated on construction)."""

    embedding_size: int = 64
    reg: float = 50.0
    alpha: float = 10.0
    epochs: int = 15
    als_method: Literal["auto", "cholesky", "cg"] = "auto"
    cg_steps: int = 3
    init_scale: float = 0.01
    seed: int | None = 0

    def __post_init__(self) -> None:
        def positive_int(value: Any, name: str) -> None:
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")

        def non_negative(value: Any, name: str, strict: bool = False) -> None:
            ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
            if not ok or not np.isfinite(value) or value < 0 or (strict and value == 0):
                bound = "> 0" if strict else ">= 0"
                raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}")

        positive_int(self.embedding_size, "embedding_size")
        positive_int(self.epochs, "epochs")
        positive_int(self.cg_steps, "cg_steps")
        non_negative(self.reg, "reg")
        non_negative(self.alpha, "alpha", strict=True)
        non_negative(self.init_scale, "init_scale", strict=True)
        if self.als_method not in ("auto", "cholesky", "cg"):
            raise ConfigError(
                f"als_method must be 'auto', 'cholesky' or 'cg', got {self.als_method!r}"
            )
        if self.seed is not None and (
            not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool)
        ):
            raise ConfigError(f"seed must be an int or None, got {self.seed!r}")


class ImplicitALS(Model):
    """Implicit-feedback matrix factorisation by confidence-weighted ALS.

    Parameters
    ----------
    embedding_size : int
        Length of the user and item vectors.
    reg : float
        λ on ‖w‖² and ‖x‖² (not scaled by counts).
    alpha : float
        Confidence slope: c = 1 + α · value for engaged pairs.
    epochs : int
        ALS sweeps.
    als_method : {"auto", "cholesky", "cg"}
        Exact solves or ``cg_steps`` warm-started conjugate-gradient steps; auto picks by size.
    cg_steps : int
    init_scale : float
        Standard deviation of the initial item vectors.
    seed : int or None

    Examples
    --------
    >>> model = ImplicitALS(embedding_size=32).fit(clicks)   # doctest: +SKIP
    >>> model.recommend([1, 2], k=10).item_ids.shape         # doctest: +SKIP
    (2, 10)
    """

    model_kind = "implicit_als"
    has_linear_scores = True
    similarity_metric = "cosine"

    user_factors_: np.ndarray
    item_factors_: np.ndarray
    history_: list[dict[str, float]]

    def __init__(
        self,
        embedding_size: int = 64,
        reg: float = 50.0,
        alpha: float = 10.0,
        epochs: int = 15,
        als_method: Literal["auto", "cholesky", "cg"] = "auto",
        cg_steps: int = 3,
        init_scale: float = 0.01,
        seed: int | None = 0,
    ) -> None:
        self.config = ImplicitALSConfig(
            embedding_size=embedding_size,
            reg=reg,
            alpha=alpha,
            epochs=epochs,
            als_method=als_method,
            cg_steps=cg_steps,
            init_scale=init_scale,
            seed=seed,
        )

    @property
    def feedback_kind(self) -> FeedbackKind:
        return "implicit"

    # ------------------------------------------------------------------ training
    def fit(
        self,
        interactions: Interactions,
        *,
        callback: Callable[[int, dict[str, float]], None] | None = None,
    ) -> ImplicitALS:
        """Learn user and item vectors from engagement events (value > 0). Returns self."""
        data = engagement_input(interactions)
        self._forget_fit()
        rng = np.random.default_rng(self.config.seed)
        fallback, _ = popularity_scores(data, "count")
        self._set_events(data, fallback)
        self.history_ = []
        d = self.config.embedding_size
        X = (rng.standard_normal((data.n_items, d)) * self.config.init_scale).astype(np.float32)
        W = np.zeros((data.n_users, d), dtype=np.float32)
        engaged = data.values > 0
        u = data.user_idx[engaged].astype(np.int64)
        i = data.item_idx[engaged].astype(np.int64)
        strength = data.values[engaged].astype(np.float64)
        by_user = SparseRows.from_pairs(u, i, data.n_users, data.n_items)
        by_item = SparseRows.from_pairs(i, u, data.n_items, data.n_users)
        alpha = self.config.alpha
        # per entry: weight c − 1 = α·value, target c / (c − 1), so that Σ w t x = Σ c p x
        weight = alpha * strength
        target = (1.0 + weight) / weight
        reg = np.full(d, self.config.reg)
        offset = float(np.sum((1.0 + weight) / weight))
        steps = cg_steps_for(self.config.als_method, self.config.cg_steps, len(u), d, False)
        for epoch in range(1, self.config.epochs + 1):
            # users: w(u) with X fixed (the shared XᵀX term added inside the kernel)
            theta = W.astype(np.float64)
            solve_rows(
                by_user,
                X,
                target[by_user.perm],
                np.zeros(len(u)),
                reg,
                theta,
                weights=weight[by_user.perm],
                cg_steps=steps,
                with_loss=False,
                base_gram=_gram(X),
            )
            W = theta.astype(np.float32)
            # items: x(i) with W fixed; the kernel's loss gives the engaged part of J
            theta = X.astype(np.float64)
            loss = solve_rows(
                by_item,
                W,
                target[by_item.perm],
                np.zeros(len(u)),
                reg,
                theta,
                weights=weight[by_item.perm],
                cg_steps=steps,
                base_gram=_gram(W),
            )
            X = theta.astype(np.float32)
            # Σ w (ŷ − t)² = Σ [(c−1) ŷ² − 2 c ŷ + c² / (c−1)]; J's engaged terms need
            # Σ [(c−1) ŷ² − 2 c ŷ + c], so subtract Σ c / (c−1) (a constant)
            cost = (
                2.0 * float(loss.sum())
                - offset
                + float(np.sum(_gram(W) * _gram(X)))
                + reg[0]
                * float(np.sum(W.astype(np.float64) ** 2) + np.sum(X.astype(np.float64) ** 2))
            )
            metrics = {"epoch": float(epoch), "cost": cost}
            self.history_.append(metrics)
            logger.debug("epoch %d: %s", epoch, metrics)
            if callback is not None:
                callback(epoch, metrics)
        self.user_factors_, self.item_factors_ = W, X
        return self

    # ------------------------------------------------------------------ scoring
    def linear_scores(self) -> LinearScores:
        """Preference scores ``w(u)·x(i)`` (not probabilities) as factors; an unknown user
        scores 0."""
        self._check_fitted()
        return self._kept_linear_scores(self.user_factors_, self.item_factors_)

    def similarity_vectors(self) -> np.ndarray:
        """x(i): related items by cosine distance of the item vectors."""
        return self.item_factors_

    # ------------------------------------------------------------------ model files
    def _save_state(self, state: ModelState) -> None:
        state.arrays["user_factors"] = self.user_factors_
        state.arrays["item_factors"] = self.item_factors_
        state.extra["history"] = self.history_

    def _load_state(self, state: ModelState) -> None:
        a = state.arrays
        d = self.config.embedding_size
        expected = {"user_factors": (len(self.users_), d), "item_factors": (len(self.items_), d)}
        check_array_shapes(a, expected)
        self.user_factors_ = np.array(a["user_factors"], dtype=np.float32)
        self.item_factors_ = np.array(a["item_factors"], dtype=np.float32)
        self.history_ = list(state.extra.get("history", []))


def _gram(factors: np.ndarray) -> np.ndarray:
    f = factors.astype(np.float64)
    return f.T @ f


def implicit_cost(
    W: np.ndarray,
    X: np.ndarray,
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    weight: np.ndarray,
    reg: float,
) -> float:
    """J of the implicit model without forming the dense matrix.

    ``Σ_all ŷ² + Σ_engaged [c (1 − ŷ)² − ŷ²] + λ (‖W‖² + ‖X‖²)`` with ``ŷ = w·x``,
    ``c = 1 + weight`` and ``Σ_all ŷ² = trace((WᵀW)(XᵀX))``.
    """
    W64, X64 = W.astype(np.float64), X.astype(np.float64)
    everything = float(np.sum((W64.T @ W64) * (X64.T @ X64)))
    y_hat = np.einsum("ij,ij->i", W64[user_idx], X64[item_idx])
    engaged = float(np.sum((1.0 + weight) * (1.0 - y_hat) ** 2 - y_hat**2))
    return everything + engaged + reg * float(np.sum(W64**2) + np.sum(X64**2))


__all__ = ["ImplicitALS", "ImplicitALSConfig", "implicit_cost"]
