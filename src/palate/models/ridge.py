"""Batched regularised least squares: the closed-form half-step of alternating least squares.

For every row ``r`` of a sparse matrix (a user, or an item) with entries ``e`` in columns
``c(e)`` this solves

    θ_r = argmin_θ  1/2 Σ_e  w_e (F[c(e)] · θ − t_e)²  +  1/2 θᵀ Λ_r θ
        = (Σ_e w_e F[c(e)] F[c(e)]ᵀ + Λ_r)⁻¹  Σ_e w_e t_e F[c(e)]

with ``F`` the fixed design rows (item features when solving for users, and vice versa),
``t`` the targets, ``w`` optional per-entry weights (1 for squared error; the IRLS weights
``f(1 − f)`` for the logistic loss), and ``Λ_r = diag(reg) · s_r`` where ``s_r`` is 1 or the
row's number of entries (``reg_scaling="count"``).

Two methods:

* ``"cholesky"`` — exact: each row's Gram matrix is accumulated from its entries and solved by
  Cholesky factorisation (``nnz · d²/2 + n_rows · d³/6`` multiply-adds).
* Gibbs sampling — the exact path can draw each row from its conditional posterior instead
  of taking its mean (Bayesian matrix factorisation with fixed priors).
* ``"cg"`` — a few conjugate-gradient steps per row, warm-started from the current solution
  (Takács et al., 2011): ``≈ 4 · nnz · d`` per step, which wins when ``d`` is large.

Both run in a compiled kernel (:mod:`palate.models._kernels`), rows in parallel, reading each
row's entries straight from the CSR arrays, with no Python loop per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the torch wrappers below import it when called
    import torch


@dataclass(frozen=True)
class SparseRows:
    """A sparse matrix in CSR form whose rows are solved independently.

    Attributes
    ----------
    indptr : ndarray of int64, shape (n_rows + 1,)
    indices : ndarray of int64, shape (nnz,)
        Column of each entry (ordered by row).
    perm : ndarray of int64, shape (nnz,)
        Position of each CSR entry in the original event arrays, so per-event targets and
        weights can be reordered with ``array[perm]``.
    """

    indptr: np.ndarray
    indices: np.ndarray
    perm: np.ndarray
    n_cols: int

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.indptr)

    @classmethod
    def from_pairs(cls, rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int) -> SparseRows:
        counts = np.bincount(rows, minlength=n_rows)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        perm = _counting_sort(np.ascontiguousarray(rows, dtype=np.int64), indptr)
        return cls(indptr, cols[perm].astype(np.int64), perm.astype(np.int64), n_cols)


def solve_rows(
    rows: SparseRows,
    design: np.ndarray,
    values: np.ndarray,
    offsets: np.ndarray,
    reg: np.ndarray,
    theta: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    count_scaled: bool = False,
    count_floor: float = 1.0,
    logistic: bool = False,
    cg_steps: int = 0,
    noise: np.ndarray | None = None,
    noise_scale: float = 0.0,
    with_loss: bool = True,
    base_gram: np.ndarray | None = None,
) -> np.ndarray:
    """Solve every row's regularised least squares (or one logistic Newton step), in place.

    Parameters
    ----------
    rows : SparseRows
    design : ndarray, shape (n_cols, d)
        Fixed design row of each column.
    values : ndarray, shape (nnz,)
        Observed value of each entry, in CSR order.
    offsets : ndarray, shape (nnz,)
        Fixed part of each entry's prediction (e.g. μ(i) + c(i) when solving for users).
    reg : ndarray, shape (d,)
        Diagonal of Λ.
    theta : ndarray, shape (n_rows, d)
        Current solution (warm start for CG and Newton); overwritten with the new one.
    weights : ndarray, shape (nnz,), optional
    count_scaled, logistic : bool
    count_floor : float
        With ``count_scaled``, Λ is multiplied by ``max(n_r, count_floor)``.
    cg_steps : int
        0 for the exact Cholesky solve.
    noise : ndarray, shape (n_rows, d), optional
        Standard normal draws: sample each row from its conditional posterior
        ``N(A⁻¹ rhs, noise_scale² A⁻¹)`` instead of solving for the mean (exact path only).
    noise_scale : float
        σ, the residual standard deviation of the Gaussian likelihood.
    with_loss : bool
        Compute each row's data term (one more pass over the entries); NaN otherwise.
    base_gram : ndarray, shape (d, d), optional
        Added to every row's system matrix (``YᵀY`` of implicit-feedback ALS).

    Returns
    -------
    ndarray, shape (n_rows,)
        Each row's data term at the new solution (1/2 squared error, or logistic loss).
    """
    from palate.models._kernels import solve_rows_kernel

    # the kernel accumulates in float64; design rows stay float32 for float32 models
    solution = np.ascontiguousarray(theta, dtype=np.float64)
    row_loss = np.empty(rows.n_rows, dtype=np.float64)
    solve_rows_kernel(
        rows.indptr,
        rows.indices,
        _f64(values),
        _f64(offsets),
        np.empty(0) if weights is None else _f64(weights),
        _design(design),
        _f64(reg),
        bool(count_scaled),
        float(count_floor),
        solution,
        bool(logistic),
        int(cg_steps),
        row_loss,
        np.empty((0, design.shape[1])) if noise is None else _f64(noise),
        float(noise_scale),
        bool(with_loss),
        np.empty((0, 0)) if base_gram is None else _f64(base_gram),
    )
    if solution is not theta:
        theta[...] = solution
    return row_loss


def _counting_sort(rows: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Stable order of entries by row in O(nnz) (the kernel module's counting sort)."""
    from palate.models._kernels import counting_sort

    return counting_sort(rows, indptr)


def _f64(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float64)


def _design(array: np.ndarray) -> np.ndarray:
    # float32 design rows halve the memory traffic of the gathers (sums stay in float64)
    dtype = np.float32 if array.dtype == np.float32 else np.float64
    return np.ascontiguousarray(array, dtype=dtype)


def compile_kernels() -> None:
    """Compile (or load from numba's on-disk cache) the ALS kernels ahead of first use."""
    rows = SparseRows.from_pairs(np.array([0, 0, 1]), np.array([0, 1, 1]), 2, 2)
    for dtype in (np.float32, np.float64):
        design = np.ones((2, 3), dtype=dtype)
        solve_rows(rows, design, np.ones(3), np.zeros(3), np.ones(3), np.zeros((2, 3)))


def solve_cholesky(
    rows: SparseRows,
    design: torch.Tensor,
    targets: torch.Tensor,
    reg: torch.Tensor,
    weights: torch.Tensor | None = None,
    count_scaled: bool = False,
) -> torch.Tensor:
    """Exact ridge solve of every row (torch in and out; see :func:`solve_rows`).

    Parameters
    ----------
    rows : SparseRows
    design : Tensor, shape (n_cols, d)
    targets : Tensor, shape (nnz,)
        Target of each entry, in CSR order.
    reg : Tensor, shape (d,)
        Diagonal of Λ (0 for unregularised coordinates such as a bias).
    weights : Tensor, shape (nnz,), optional
    count_scaled : bool
        Multiply Λ by the row's number of entries.

    Returns
    -------
    Tensor, shape (n_rows, d)
        Zero for rows with no entries.
    """
    theta: np.ndarray = np.zeros((rows.n_rows, design.shape[1]), dtype=_numpy_dtype(design.dtype))
    return _solve_torch(rows, design, targets, reg, theta, weights, count_scaled, 0)


def solve_cg(
    rows: SparseRows,
    design: torch.Tensor,
    targets: torch.Tensor,
    reg: torch.Tensor,
    initial: torch.Tensor,
    weights: torch.Tensor | None = None,
    count_scaled: bool = False,
    steps: int = 3,
) -> torch.Tensor:
    """``steps`` conjugate-gradient iterations per row from ``initial`` (see :func:`solve_rows`)."""
    theta: np.ndarray = initial.numpy().astype(_numpy_dtype(design.dtype), copy=True)
    return _solve_torch(rows, design, targets, reg, theta, weights, count_scaled, steps)


def _solve_torch(
    rows: SparseRows,
    design: torch.Tensor,
    targets: torch.Tensor,
    reg: torch.Tensor,
    theta: np.ndarray,
    weights: torch.Tensor | None,
    count_scaled: bool,
    cg_steps: int,
) -> torch.Tensor:
    import torch

    solve_rows(
        rows,
        design.numpy(),
        targets.numpy(),
        np.zeros(len(targets)),
        reg.numpy(),
        theta,
        weights=None if weights is None else weights.numpy(),
        count_scaled=count_scaled,
        cg_steps=cg_steps,
    )
    return torch.from_numpy(theta)


def _numpy_dtype(dtype: torch.dtype) -> type:
    import torch

    return np.float64 if dtype == torch.float64 else np.float32
