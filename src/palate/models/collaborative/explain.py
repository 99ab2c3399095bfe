"""Collaborative filtering's scores split into one term per rated item, exactly.

With the items fixed, a user's θ = [w, b] is the ridge solution of their ratings (what fold-in
computes; for a known user one ALS user step)::

    θ = A⁻¹ Σ_j z_j t_j,   z_j = [x(j), 1],   t_j = y_j − c(j) − μ(j),
    A = Σ_j z_j z_jᵀ + s · diag(λ, …, λ, λ_b),   s = max(n, floor) (count scaling)

so the personal part ``z_iᵀ θ`` of item i's score is ``Σ_j (z_iᵀ A⁻¹ z_j) t_j``: one
contribution per rated item j. Removing the rating of j re-solves θ; Sherman–Morrison (the
leave-one-out formula of ridge regression) gives the change for every j at once.
"""

from __future__ import annotations

import numpy as np

from palate.models.collaborative.cost import Regularisation


def ridge_attribution(
    X: np.ndarray,
    offsets: np.ndarray,
    history: np.ndarray,
    values: np.ndarray,
    items: np.ndarray,
    regularisation: Regularisation,
) -> tuple[np.ndarray, np.ndarray]:
    """Contributions and removal effects of each rated item to each listed item's score.

    Parameters
    ----------
    X : ndarray, shape (n_items, d)
        The item factors x(i).
    offsets : ndarray, shape (n_items,)
        c(i) + μ(i).
    history, values : ndarray, shape (n,)
        The user's rated item rows and their ratings.
    items : ndarray, shape (m,)
        The listed item rows.
    regularisation : Regularisation
        λ, λ_b and the count scaling of the model.

    Returns
    -------
    contributions : ndarray, shape (m, n)
        ``(z_iᵀ A⁻¹ z_j) t_j``: exactly how much the score drops if the rating of j is
        replaced by that item's baseline ``c(j) + μ(j)``.
    removal : ndarray, shape (m, n)
        How much item i's score drops when the rating of j is removed and the user
        re-solved, exactly: with ``s' = max(n − 1, floor)``, ``A' = Σ z zᵀ + s' Λ`` and
        ``θ' = A'⁻¹ Σ z t``, ``removal(j, i) = z_iᵀ (θ − θ') + (z_iᵀ A'⁻¹ z_j) r'_j /
        (1 − h'_j)``, ``r'_j = t_j − z_jᵀ θ'``, ``h'_j = z_jᵀ A'⁻¹ z_j``. Cost
        O(n d² + m n d).
    """
    d = X.shape[1]
    Z = np.hstack([X[history], np.ones((len(history), 1))])
    t = values - offsets[history]
    n = len(history)
    scale = max(float(n), regularisation.count_floors[0]) if regularisation.count_scaled \
        else 1.0
    reg = regularisation.diagonal(d, True, np.float64)
    A = Z.T @ Z + np.diag(reg * scale)
    G = np.linalg.solve(A, Z.T) if n else np.zeros((d + 1, 0))
    Zi = np.hstack([X[items], np.ones((len(items), 1))])
    contributions = (Zi @ G) * t[None, :]
    return contributions, _removal(Z, t, Zi, G, scale, reg, regularisation)


def _removal(
    Z: np.ndarray, t: np.ndarray, Zi: np.ndarray, G: np.ndarray, scale: float,
    reg: np.ndarray, regularisation: Regularisation,
) -> np.ndarray:
    """``removal(j, i)``: how much item i's score drops when the rating of j is removed
    and the user re-solved, exactly, for every j at once (see :func:`ridge_attribution`)."""
    n = len(t)
    if n == 0:
        return np.zeros((len(Zi), 0))
    if n == 1:  # no ratings left: w = 0, b = 0
        return Zi @ (G @ t)[:, None]
    smaller = max(float(n - 1), regularisation.count_floors[0]) \
        if regularisation.count_scaled else scale
    theta = G @ t
    G2 = G
    if smaller != scale:  # A' = A − (s − s') Λ, shared by every leave-one-out system
        A2 = Z.T @ Z + np.diag(reg * smaller)
        G2 = np.linalg.solve(A2, Z.T)
    theta2 = G2 @ t
    residual = t - Z @ theta2
    leverage = np.einsum("jk,kj->j", Z, G2)
    return (Zi @ (theta - theta2))[:, None] + (Zi @ G2) * (
        residual / np.maximum(1.0 - leverage, 1e-12))[None, :]


__all__ = ["ridge_attribution"]
