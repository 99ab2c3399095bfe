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

* ``"cholesky"`` — exact. Rows are sorted by length and gathered in padded blocks so each
  block's Gram matrices come from one batched matrix product (``torch.bmm``) and are solved by
  a batched Cholesky factorisation. No Python loop per row.
* ``"cg"`` — a few conjugate-gradient steps per row, warm-started from the current solution
  (Takács et al., 2011). Each step costs one sparse-dense product instead of ``d²`` work per
  entry, which wins when ``nnz · d²`` is large.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# padded entries per block (B · L); bounds the gathered (B, L, d) tensor
_BLOCK_ENTRIES = 1 << 20
# rows per block; bounds the (B, d, d) Gram tensor
_BLOCK_GRAM = 1 << 22


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
        perm = np.argsort(rows, kind="stable")
        counts = np.bincount(rows, minlength=n_rows)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(indptr, cols[perm].astype(np.int64), perm.astype(np.int64), n_cols)

    def csr_tensor(self, values: torch.Tensor) -> torch.Tensor:
        """Torch sparse CSR tensor with ``values`` (already in CSR order)."""
        return torch.sparse_csr_tensor(
            torch.from_numpy(self.indptr),
            torch.from_numpy(self.indices),
            values,
            size=(self.n_rows, self.n_cols),
        )


def _blocks(counts_sorted: np.ndarray, d: int) -> list[tuple[int, int]]:
    """Split rows sorted by length into (start, end) blocks that fit the memory budget."""
    blocks = []
    n = len(counts_sorted)
    start = 0
    max_rows = max(1, _BLOCK_GRAM // (d * d))
    while start < n:
        # largest B with B * counts_sorted[start + B - 1] <= budget (counts ascending)
        limit = min(n - start, max_rows)
        # bound padding waste: rows in a block differ in length by at most ~25%
        longest = max(int(counts_sorted[start] * 1.25), int(counts_sorted[start]) + 8)
        limit = min(limit, int(np.searchsorted(counts_sorted, longest, side="right")) - start)
        sizes = np.arange(1, limit + 1) * counts_sorted[start : start + limit]
        b = int(np.searchsorted(sizes, _BLOCK_ENTRIES, side="right"))
        b = max(1, b)
        blocks.append((start, start + b))
        start += b
    return blocks


def solve_cholesky(
    rows: SparseRows,
    design: torch.Tensor,
    targets: torch.Tensor,
    reg: torch.Tensor,
    weights: torch.Tensor | None = None,
    count_scaled: bool = False,
) -> torch.Tensor:
    """Exact batched ridge solves, one per row.

    Parameters
    ----------
    rows : SparseRows
    design : Tensor, shape (n_cols, d)
        Fixed design row of each column (e.g. ``[x(i), 1]`` when solving for users).
    targets : Tensor, shape (nnz,)
        Target of each entry, in CSR order.
    reg : Tensor, shape (d,)
        Diagonal of Λ (0 for unregularised coordinates such as a bias).
    weights : Tensor, shape (nnz,), optional
        Per-entry weights in CSR order.
    count_scaled : bool
        Multiply Λ by the row's number of entries.

    Returns
    -------
    Tensor, shape (n_rows, d)
        Zero for rows with no entries.
    """
    d = design.shape[1]
    dtype = design.dtype
    counts = rows.counts
    order = np.argsort(counts, kind="stable")
    order = order[counts[order] > 0]
    theta = torch.zeros(rows.n_rows, d, dtype=dtype)
    if len(order) == 0:
        return theta
    padded = torch.cat([design, torch.zeros(1, d, dtype=dtype)])
    pad_col = design.shape[0]
    indices = torch.from_numpy(rows.indices)
    indptr = torch.from_numpy(rows.indptr)
    counts_sorted = counts[order]
    eye_reg = torch.diag(reg.to(dtype))
    for start, end in _blocks(counts_sorted, d):
        block_rows = torch.from_numpy(order[start:end])
        length = int(counts_sorted[end - 1])
        offsets = torch.arange(length)
        block_counts = indptr[block_rows + 1] - indptr[block_rows]
        mask = offsets[None, :] < block_counts[:, None]
        pos = torch.where(mask, indptr[block_rows][:, None] + offsets[None, :], 0)
        cols = torch.where(mask, indices[pos], pad_col)
        gathered = padded[cols]  # (B, L, d)
        t = torch.where(mask, targets[pos], 0)
        if weights is not None:
            w = torch.where(mask, weights[pos], 0)
            weighted = gathered * w[..., None]
        else:
            weighted = gathered
        weighted_t = weighted.transpose(1, 2)  # (B, d, L)
        gram = torch.bmm(weighted_t, gathered)
        rhs = torch.bmm(weighted_t, t[..., None])
        scale = block_counts.to(dtype)[:, None, None] if count_scaled else 1.0
        gram = gram + eye_reg[None] * scale
        theta[block_rows] = _batched_spd_solve(gram, rhs)[..., 0]
    return theta


def _batched_spd_solve(gram: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    factor, info = torch.linalg.cholesky_ex(gram)
    solution = torch.cholesky_solve(rhs, factor)
    bad = info != 0
    if bool(bad.any()):
        # singular rows (e.g. an unregularised bias with no signal): least-norm solution
        solution[bad] = torch.linalg.lstsq(gram[bad], rhs[bad]).solution
    return solution


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
    """Approximate batched ridge solves by ``steps`` conjugate-gradient iterations per row.

    Same problem and arguments as :func:`solve_cholesky`; ``initial`` (n_rows, d) is the warm
    start (the previous sweep's solution). The products ``A_r v_r`` for all rows at once are
    ``Sᵀ`` applied to ``(F v)`` entry-wise: one gather-dot (entries) and one sparse-dense
    product (rows).
    """
    dtype = design.dtype
    counts = torch.from_numpy(rows.counts).to(dtype)
    row_of_entry = torch.repeat_interleave(torch.arange(rows.n_rows), torch.from_numpy(rows.counts))
    cols = torch.from_numpy(rows.indices)
    lam = reg.to(dtype)[None, :] * (counts[:, None] if count_scaled else 1.0)
    w = weights if weights is not None else torch.ones_like(targets)
    chunk = 1 << 21

    def entry_dot(v: torch.Tensor) -> torch.Tensor:
        # (F[c(e)] · v[r(e)]) for every entry, in chunks that stay in cache
        out = torch.empty(len(cols), dtype=dtype)
        for s in range(0, len(cols), chunk):
            e = slice(s, s + chunk)
            out[e] = (design[cols[e]] * v[row_of_entry[e]]).sum(1)
        return out

    def apply(v: torch.Tensor) -> torch.Tensor:
        values = w * entry_dot(v)
        return rows.csr_tensor(values) @ design + lam * v

    x = initial.clone()
    b = rows.csr_tensor(w * targets) @ design
    r = b - apply(x)
    p = r.clone()
    rs_old = (r * r).sum(1)
    for _ in range(steps):
        ap = apply(p)
        denom = (p * ap).sum(1)
        alpha = torch.where(denom > 0, rs_old / denom.clamp_min(1e-30), 0)
        x = x + alpha[:, None] * p
        r = r - alpha[:, None] * ap
        rs_new = (r * r).sum(1)
        beta = torch.where(rs_old > 0, rs_new / rs_old.clamp_min(1e-30), 0)
        p = r + beta[:, None] * p
        rs_old = rs_new
    x[counts == 0] = 0
    return x
