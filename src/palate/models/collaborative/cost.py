"""The collaborative-filtering cost J, on dense arrays and on observed entries.

Summed over the observed entries r(i,j) = 1, with x(i) the item features, w(j) the user
parameters and b(j) the user biases::

    J(x, w, b) = 1/2 Σ (w(j)·x(i) + b(j) − y(i,j))²  +  λ/2 Σ_j ‖w(j)‖²  +  λ/2 Σ_i ‖x(i)‖²

and for binary labels, with f = g(w(j)·x(i) + b(j)) and g the logistic sigmoid::

    J = Σ [−y log f − (1 − y) log(1 − f)]  +  λ/2 Σ_j ‖w(j)‖²  +  λ/2 Σ_i ‖x(i)‖²

:func:`textbook_cost` is J exactly as written, on dense (n_m, n_u) arrays Y and R;
:func:`sparse_cost` is the same J over the observed entries only, in torch (what the Adam
solver differentiates), with the model's extensions (item biases, per-row λ);
:class:`Regularisation` is the penalty part of J as the model scales it per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from palate.errors import ConfigError, DataError

if TYPE_CHECKING:  # torch is imported only when sparse_cost is called
    import torch


def textbook_cost(
    X: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    Y: np.ndarray,
    R: np.ndarray,
    reg: float,
    kind: Literal["explicit", "binary"] = "explicit",
) -> float:
    """The collaborative-filtering cost J on dense arrays, exactly as the curriculum writes it.

    Parameters
    ----------
    X : ndarray, shape (n_m, n)
        Item features, one row per item (movie).
    W : ndarray, shape (n_u, n)
        User parameters, one row per user.
    b : ndarray, shape (n_u,) or (1, n_u)
        User biases.
    Y : ndarray, shape (n_m, n_u)
        Ratings (explicit) or 0/1 labels (binary); entries where R is 0 are ignored.
    R : ndarray, shape (n_m, n_u)
        1 where user j rated item i.
    reg : float
        λ, the L2 regularisation strength (on W and X, not on b).
    kind : {"explicit", "binary"}

    Returns
    -------
    float
        Explicit: ``1/2 Σ_R (X Wᵀ + b − Y)² + λ/2 (ΣW² + ΣX²)``.
        Binary: ``Σ_R [−Y log f − (1 − Y) log(1 − f)] + λ/2 (ΣW² + ΣX²)`` with
        ``f = sigmoid(X Wᵀ + b)``.

    Examples
    --------
    >>> X = np.array([[1.0], [2.0]]); W = np.array([[1.0]]); b = np.array([0.0])
    >>> Y = np.array([[1.0], [1.0]]); R = np.ones((2, 1))
    >>> textbook_cost(X, W, b, Y, R, reg=0.0)   # 1/2 (0² + 1²)
    0.5
    """
    X = np.asarray(X, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    R = np.asarray(R)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or W.ndim != 2 or b.size != (W.shape[0] if W.ndim == 2 else -1):
        raise DataError(
            f"expected X (n_m, n), W (n_u, n) and b (n_u,) or (1, n_u); got X {X.shape}, "
            f"W {W.shape}, b {b.shape}"
        )
    if X.shape[1] != W.shape[1] or Y.shape != (X.shape[0], W.shape[0]) or R.shape != Y.shape:
        raise DataError(
            f"shapes do not match: X {X.shape}, W {W.shape}, b {b.shape}, Y {Y.shape}, R "
            f"{R.shape}; expected X (n_m, n), W (n_u, n), b (n_u,), Y and R (n_m, n_u)"
        )
    b = b.reshape(1, -1)
    R = R.astype(bool)
    Y = np.where(R, Y, 0.0)
    z = X @ W.T + b
    regularisation = reg / 2 * (np.sum(W**2) + np.sum(X**2))
    if kind == "explicit":
        return float(0.5 * np.sum(np.where(R, z - Y, 0.0) ** 2) + regularisation)
    if kind == "binary":
        # −y log g(z) − (1−y) log(1−g(z)) = softplus(z) − y z, computed stably
        loss = np.logaddexp(0.0, z) - Y * z
        return float(np.sum(np.where(R, loss, 0.0)) + regularisation)
    raise ConfigError(f"kind must be 'explicit' or 'binary', got {kind!r}")


def sparse_cost(
    X: torch.Tensor,
    W: torch.Tensor,
    b: torch.Tensor,
    user_idx: torch.Tensor,
    item_idx: torch.Tensor,
    y: torch.Tensor,
    reg: float,
    kind: str = "explicit",
    item_bias: torch.Tensor | None = None,
    user_reg_scale: torch.Tensor | None = None,
    item_reg_scale: torch.Tensor | None = None,
    bias_reg: float = 0.0,
    data_scale: float = 1.0,
    item_offset: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """J over observed entries only (the fast path used for training), as a torch scalar.

    Equal to :func:`textbook_cost` on the same data (tested). Extensions, all off by default:
    ``item_bias`` adds c(i) to every prediction; ``*_reg_scale`` multiply each row's λ and λ_b
    (the per-count "weighted-λ" regularisation); ``bias_reg`` puts λ_b/2 Σ b² on the biases;
    ``data_scale`` multiplies the data term (N/B for an unbiased mini-batch estimate);
    ``item_offset`` is a fixed, unpenalised per-item term (μ(i) inside the sigmoid);
    ``weights`` multiply each entry's loss (the positives' ``positive_weight``).
    """
    import torch

    # index_select: its backward (index_add) is much faster than advanced indexing's
    z = (X.index_select(0, item_idx) * W.index_select(0, user_idx)).sum(1)
    z = z + b.index_select(0, user_idx)
    if item_bias is not None:
        z = z + item_bias.index_select(0, item_idx)
    if item_offset is not None:
        z = z + item_offset.index_select(0, item_idx)
    if kind == "explicit":
        losses = 0.5 * (z - y) ** 2
    else:
        losses = torch.nn.functional.softplus(z) - y * z
    data_term = (losses if weights is None else weights * losses).sum()
    w_sq = (W**2).sum(1)
    x_sq = (X**2).sum(1)
    if user_reg_scale is not None:
        w_sq = w_sq * user_reg_scale
    if item_reg_scale is not None:
        x_sq = x_sq * item_reg_scale
    penalty = reg / 2 * (w_sq.sum() + x_sq.sum())
    if bias_reg:
        b_sq = b**2 if user_reg_scale is None else b**2 * user_reg_scale
        penalty = penalty + bias_reg / 2 * b_sq.sum()
        if item_bias is not None:
            c_sq = item_bias**2 if item_reg_scale is None else item_bias**2 * item_reg_scale
            penalty = penalty + bias_reg / 2 * c_sq.sum()
    return data_scale * data_term + penalty


@dataclass(frozen=True)
class Regularisation:
    """The penalty part of J, with each row's λ scaled by its number of events.

    ::

        P = λ/2 (Σ_j s(j) ‖w(j)‖² + Σ_i s(i) ‖x(i)‖²) + λ_b/2 (Σ_j s(j) b(j)² + Σ_i s(i) c(i)²)

    with ``s(j) = max(n(j), floor_user)`` and ``s(i) = max(n(i), floor_item)`` when
    ``count_scaled`` (the "weighted-λ" of ``reg_scaling="count"``, n the row's number of
    events) and s = 1 otherwise (the textbook J).

    Attributes
    ----------
    reg : float
        λ, on w(j) and x(i).
    bias_reg : float
        λ_b, on b(j) and c(i).
    count_scaled : bool
    count_floors : (float, float)
        The floors of s for users and for items.
    """

    reg: float
    bias_reg: float
    count_scaled: bool
    count_floors: tuple[float, float]

    def diagonal(self, d: int, with_bias: bool, dtype: type) -> np.ndarray:
        """The diagonal of Λ for a row solve over ``d`` factors (and a bias): λ repeated
        ``d`` times, then λ_b when ``with_bias``."""
        reg = [self.reg] * d + ([self.bias_reg] if with_bias else [])
        return np.asarray(reg, dtype=dtype)

    def penalty(
        self,
        X: np.ndarray,
        W: np.ndarray,
        b: np.ndarray,
        c: np.ndarray | None,
        user_scale: np.ndarray | float,
        item_scale: np.ndarray | float,
    ) -> float:
        """P in float64, with s given as ``user_scale`` (n_users,) and ``item_scale``
        (n_items,) (or 1.0); ``c`` None leaves the item biases out."""
        w = W.astype(np.float64)
        x = X.astype(np.float64)
        total = self.reg / 2 * (
            np.sum(user_scale * (w**2).sum(1)) + np.sum(item_scale * (x**2).sum(1))
        )
        if self.bias_reg:
            total += self.bias_reg / 2 * np.sum(user_scale * b.astype(np.float64) ** 2)
            if c is not None:
                total += self.bias_reg / 2 * np.sum(item_scale * c.astype(np.float64) ** 2)
        return float(total)


def count_floors(
    user_counts: np.ndarray, item_counts: np.ndarray, fraction: float
) -> tuple[float, float]:
    """The floors of the per-row λ multiplier s: ``fraction`` × the mean number of events per
    user (per item) that has any, and at least 1."""
    floors = []
    for counts in (user_counts, item_counts):
        active = counts[counts > 0]
        floors.append(max(1.0, fraction * float(active.mean())) if len(active) else 1.0)
    return floors[0], floors[1]


__all__ = ["Regularisation", "count_floors", "sparse_cost", "textbook_cost"]
