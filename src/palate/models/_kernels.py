"""Compiled kernels for the ALS half-step (one independent regularised least squares per row).

Rows (users, or items) are dealt into interleaved chunks solved in parallel; each chunk
allocates its scratch buffers once. A row's design vectors are first gathered into a
contiguous ``(n, d)`` buffer (in the design's precision), so every later pass (the CG products,
one pass each; the Gram matrix; the loss) runs over contiguous memory and vectorises; nothing of
size ``nnz × d`` is materialised. See :mod:`palate.models.ridge` for the mathematics.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(cache=True, fastmath=True)
def _entry_loss(z: float, y: float, logistic: bool) -> float:
    if not logistic:
        r = z - y
        return 0.5 * r * r
    # softplus(z) − y z, computed stably
    if z > 0:
        return z + math.log1p(math.exp(-z)) - y * z
    return math.log1p(math.exp(z)) - y * z


@njit(cache=True, fastmath=True)
def _predict(g: np.ndarray, n: int, theta: np.ndarray, out: np.ndarray) -> None:
    """out[e] = g[e] · θ for the first n gathered entries."""
    d = g.shape[1]
    for e in range(n):
        ge = g[e]
        s = 0.0
        for k in range(d):
            s += ge[k] * theta[k]
        out[e] = s


@njit(cache=True, fastmath=True)
def _apply(
    g: np.ndarray,
    n: int,
    wts: np.ndarray,
    lam: np.ndarray,
    v: np.ndarray,
    out: np.ndarray,
    base: np.ndarray,
) -> None:
    """out = (B + Gᵀ W G + Λ) v for the gathered block, in one pass over the entries."""
    d = g.shape[1]
    for k in range(d):
        out[k] = lam[k] * v[k]
    if base.shape[0] > 0:
        for i in range(d):
            s = 0.0
            for j in range(d):
                s += base[i, j] * v[j]
            out[i] += s
    for e in range(n):
        ge = g[e]
        s = 0.0
        for k in range(d):
            s += ge[k] * v[k]
        s *= wts[e]
        for k in range(d):
            out[k] += s * ge[k]


@njit(parallel=True, cache=True, fastmath=True)
def solve_rows_kernel(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    offsets: np.ndarray,
    weights: np.ndarray,
    design: np.ndarray,
    reg: np.ndarray,
    count_scaled: bool,
    count_floor: float,
    theta: np.ndarray,
    logistic: bool,
    cg_steps: int,
    row_loss: np.ndarray,
    noise: np.ndarray,
    noise_scale: float,
    with_loss: bool,
    base_gram: np.ndarray,
) -> None:
    """Solve every row in place.

    For row r with entries e (columns c(e)) the prediction is ``design[c(e)] · θ_r + offsets[e]``
    and the observed value ``values[e]``. Squared error: minimise
    ``1/2 Σ w_e (design[c]·θ + o_e − y_e)² + 1/2 θᵀ Λ_r θ`` exactly (``cg_steps == 0``: Cholesky)
    or by ``cg_steps`` conjugate-gradient steps from the current θ. Logistic loss: one Newton
    (IRLS) step from the current θ. ``weights`` (empty = all ones) are per-entry confidences.
    ``row_loss[r]`` receives the row's data term at the new θ (NaN unless ``with_loss``).

    With ``noise`` (n_rows, d) given (exact path only), θ is drawn from the row's conditional
    posterior ``N(A⁻¹ rhs, σ² A⁻¹)`` instead of taking its mean: ``θ = mean + σ L⁻ᵀ z`` with
    ``A = L Lᵀ`` and ``z = noise[r]`` standard normal (Gibbs sampling).

    ``base_gram`` (d, d), when not empty, is added to every row's system matrix: the ``YᵀY``
    term of implicit-feedback ALS, where every unobserved entry is a 0 with weight 1.
    """
    n_rows = indptr.shape[0] - 1
    d = design.shape[1]
    has_weights = weights.shape[0] > 0
    sampling = noise.shape[0] > 0
    n_chunks = min(n_rows, 256)
    for chunk in prange(n_chunks):
        # rows chunk, chunk + n_chunks, ... : interleaving spreads long rows over the threads
        longest = 1
        for r in range(chunk, n_rows, n_chunks):
            longest = max(longest, indptr[r + 1] - indptr[r])
        # scratch buffers, allocated once per chunk
        g = np.empty((longest, d), dtype=design.dtype)
        z = np.empty(longest)
        tgt = np.empty(longest)
        wts = np.empty(longest)
        gw = np.empty(longest)
        th = np.empty(d)
        lam = np.empty(d)
        rhs = np.empty(d)
        eps = np.empty(d)
        work = np.empty((4, d))
        a = np.empty((d, d))
        for r in range(chunk, n_rows, n_chunks):
            start = indptr[r]
            n = indptr[r + 1] - start
            if n == 0:
                for k in range(d):
                    theta[r, k] = 0.0
                row_loss[r] = 0.0
                continue
            for e in range(n):
                g[e] = design[indices[start + e]]
            scale = max(float(n), count_floor) if count_scaled else 1.0
            for k in range(d):
                th[k] = theta[r, k]
                lam[k] = reg[k] * scale
            if logistic:  # the Newton step needs the current predictions
                _predict(g, n, th, z)
            for e in range(n):
                o = offsets[start + e]
                y = values[start + e]
                w = weights[start + e] if has_weights else 1.0
                if logistic:
                    # one Newton step = weighted least squares on the working response
                    f = 1.0 / (1.0 + math.exp(-(z[e] + o)))
                    h = max(f * (1.0 - f), 1e-4)
                    tgt[e] = z[e] + (y - f) / h
                    wts[e] = w * h
                else:
                    tgt[e] = y - o
                    wts[e] = w
            for k in range(d):
                rhs[k] = 0.0
            for e in range(n):
                ge = g[e]
                c = wts[e] * tgt[e]
                for k in range(d):
                    rhs[k] += c * ge[k]
            if cg_steps == 0:
                # Gram matrix from a transposed copy: each entry a[i, j] is a contiguous dot
                gt = np.empty((d, n))
                for e in range(n):
                    for k in range(d):
                        gt[k, e] = g[e, k]
                for i in range(d):
                    gi = gt[i]
                    for e in range(n):
                        gw[e] = gi[e] * wts[e]
                    for j in range(i + 1):
                        gj = gt[j]
                        s = 0.0
                        for e in range(n):
                            s += gw[e] * gj[e]
                        a[i, j] = s
                    a[i, i] += lam[i]
                    if base_gram.shape[0] > 0:
                        for j in range(i + 1):
                            a[i, j] += base_gram[i, j]
                _cholesky_solve_lower(a, rhs)
                for k in range(d):
                    th[k] = rhs[k]
                if sampling:
                    for k in range(d):
                        eps[k] = noise[r, k]
                    for i in range(d - 1, -1, -1):  # Lᵀ ε = z, with L left in ``a``
                        t = eps[i]
                        for k in range(i + 1, d):
                            t -= a[k, i] * eps[k]
                        eps[i] = t / a[i, i]
                    for k in range(d):
                        th[k] += noise_scale * eps[k]
            else:
                _cg(g, n, wts, lam, rhs, th, cg_steps, work, base_gram)
            if with_loss:
                _predict(g, n, th, z)
                loss = 0.0
                for e in range(n):
                    w = weights[start + e] if has_weights else 1.0
                    loss += w * _entry_loss(z[e] + offsets[start + e], values[start + e], logistic)
                row_loss[r] = loss
            else:
                row_loss[r] = np.nan
            for k in range(d):
                theta[r, k] = th[k]


@njit(cache=True, fastmath=True)
def _cg(
    g: np.ndarray,
    n: int,
    wts: np.ndarray,
    lam: np.ndarray,
    rhs: np.ndarray,
    th: np.ndarray,
    steps: int,
    work: np.ndarray,
    base: np.ndarray,
) -> None:
    """``steps`` conjugate-gradient iterations on (Gᵀ W G + Λ) θ = rhs, from the current θ."""
    d = th.shape[0]
    ap = work[0]
    r = work[1]
    p = work[2]
    _apply(g, n, wts, lam, th, ap, base)
    rs_old = 0.0
    for k in range(d):
        r[k] = rhs[k] - ap[k]
        p[k] = r[k]
        rs_old += r[k] * r[k]
    for _ in range(steps):
        if rs_old < 1e-20:
            break
        _apply(g, n, wts, lam, p, ap, base)
        denom = 0.0
        for k in range(d):
            denom += p[k] * ap[k]
        if denom <= 0:
            break
        alpha = rs_old / denom
        rs_new = 0.0
        for k in range(d):
            th[k] += alpha * p[k]
            r[k] -= alpha * ap[k]
            rs_new += r[k] * r[k]
        beta = rs_new / rs_old
        for k in range(d):
            p[k] = r[k] + beta * p[k]
        rs_old = rs_new


@njit(cache=True, fastmath=True)
def _cholesky_solve_lower(a: np.ndarray, b: np.ndarray) -> None:
    """Solve A x = b in place (x into b) from the lower triangle of SPD ``a``.

    ``a`` is left holding the factor L (A = L Lᵀ). A tiny pivot floor keeps a row with an
    unregularised, unidentifiable coordinate finite.
    """
    d = a.shape[0]
    for j in range(d):
        s = a[j, j]
        for k in range(j):
            s -= a[j, k] * a[j, k]
        s = math.sqrt(s) if s > 1e-12 else 1e6
        a[j, j] = s
        for i in range(j + 1, d):
            t = a[i, j]
            for k in range(j):
                t -= a[i, k] * a[j, k]
            a[i, j] = t / s
    for i in range(d):  # forward: L y = b
        t = b[i]
        for k in range(i):
            t -= a[i, k] * b[k]
        b[i] = t / a[i, i]
    for i in range(d - 1, -1, -1):  # backward: Lᵀ x = y
        t = b[i]
        for k in range(i + 1, d):
            t -= a[k, i] * b[k]
        b[i] = t / a[i, i]


@njit(cache=True)
def counting_sort(rows: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Stable permutation that orders entries by row, given the rows' CSR ``indptr``."""
    perm = np.empty(rows.shape[0], dtype=np.int64)
    fill = indptr[:-1].copy()
    for e in range(rows.shape[0]):
        r = rows[e]
        perm[fill[r]] = e
        fill[r] += 1
    return perm
