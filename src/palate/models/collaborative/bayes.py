"""Fully Bayesian collaborative filtering with implicit terms on both sides, by block Gibbs
sampling (``solver="bayes"``).

The model (SVD++-style implicit terms for users and, "flipped", for items)::

    y(i,j) ~ N(μ(i) + b(j) + c(i) + w̃(j)·x̃(i), 1/α)
    w̃(j) = w(j) + |N(j)|^-1/2 Σ_{k ∈ N(j)} y(k)        N(j): the items user j rated
    x̃(i) = x(i) + |N(i)|^-1/2 Σ_{l ∈ N(i)} z(l)        N(i): the users who rated item i

(the sets are those of the training data; the biases have implicit parts too: b(j) is the last
coordinate of [w̃(j), b(j)] = [w(j), β(j)] + |N(j)|^-1/2 Σ_k y(k) with y(k) of length n + 1,
and likewise c(i)). Every group of vectors — w, y, x, z, each with its bias coordinate — has
a Gaussian prior with a mean and a precision per coordinate, N(m_f, 1/λ_f); the hyperpriors
are λ_f ~ Gamma(a₀, b₀), m_f ~ N(0, 1/(β₀ λ_f)) and α ~ Gamma(a₀, b₀) (a₀ = b₀ = β₀ = 1),
and all of them are sampled: nothing is tuned but the rank and the number of draws.

One sweep draws, given everything else:

- the users' [w(j), β(j)], one Gaussian per user: with the item side fixed, the likelihood of
  a user's effective vector t = [w̃(j), b(j)] is ``exp(−α/2 tᵀG t + α tᵀh)`` with
  ``G = Σ_i x_i x_iᵀ``, ``h = Σ_i x_i r_i`` over the user's ratings, ``x_i = [x̃(i), 1]`` and
  ``r_i = y − μ(i) − c(i)``: the posterior of the user's own part is the ALS ridge solve with
  precision ``αG + diag(λ)`` and a random draw around it;
- the implicit vectors y(k), one item at a time: y(k) moves t of every user l who rated k by
  ``y(k) / √n_l``, so its conditional precision is ``α Σ_l G_l / n_l + diag(λ)`` and its mean
  follows from the users' current residual sums ``g_l = h_l − G_l t_l`` (kept up to date as
  each draw moves the t's);
- the same for items: [x(i), γ(i)] and then z(l), with the users' effective vectors fixed;
- the precision α from the squared residuals, and the hyperparameters (m, λ) of each group.

The model predicts the average of the draws' predictions (after ``burn_in`` sweeps), which is
one dot product of the concatenated effective vectors (see
:func:`~palate.models.collaborative.gibbs.average_of_draws`): the fitted model serves, folds in
and explains like any other collaborative-filtering model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit

from palate.data.interactions import Interactions
from palate.models.collaborative.gibbs import average_of_draws
from palate.models.collaborative.parameters import Parameters, Snapshot

#: a₀, b₀ of the Gamma hyperpriors and β₀ of the prior of the means
PRIOR_SHAPE = 1.0
PRIOR_RATE = 1.0
PRIOR_MEAN_STRENGTH = 1.0


@dataclass
class Side:
    """One side (users or items) of the model: its own vectors and its implicit vectors.

    ``own`` is [w(j), β(j)] per user (or [x(i), γ(i)] per item); ``implicit`` is y(k) per item
    (or z(l) per user), indexed by the *other* side; ``mean`` / ``precision`` are the prior
    (m, λ) of each, one value per coordinate."""

    own: np.ndarray
    implicit: np.ndarray
    own_mean: np.ndarray
    own_precision: np.ndarray
    implicit_mean: np.ndarray
    implicit_precision: np.ndarray


@dataclass
class Ratings:
    """The training ratings minus μ(i), both ways: rows users (``by_user``) and rows items."""

    by_user: sp.csr_matrix
    by_item: sp.csr_matrix

    @classmethod
    def build(cls, data: Interactions, mu: np.ndarray) -> Ratings:
        values = data.values.astype(np.float64) - mu[data.item_idx].astype(np.float64)
        by_user = sp.csr_matrix(
            (values, (data.user_idx, data.item_idx)), shape=data.shape
        )
        by_user.sort_indices()
        by_item = by_user.T.tocsr()
        by_item.sort_indices()
        return cls(by_user, by_item)


def implicit_weights(counts: np.ndarray) -> np.ndarray:
    """|N|^-1/2 for each row with events, 0 for rows without."""
    counts = np.asarray(counts, dtype=np.float64)
    return np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1.0)), 0.0)


def effective(side: Side, ratings: sp.csr_matrix, weights: np.ndarray, use_implicit: bool
              ) -> np.ndarray:
    """t = own + |N|^-1/2 Σ_{k ∈ N} implicit(k) for every row of ``ratings``."""
    if not use_implicit:
        return side.own.copy()
    pattern = sp.csr_matrix(
        (np.repeat(weights, np.diff(ratings.indptr)), ratings.indices, ratings.indptr),
        shape=ratings.shape,
    )
    return np.asarray(side.own + pattern @ side.implicit)


def sample_group(
    values: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw (m, λ), one per column, from the Normal-Gamma posterior given the rows ``values``.

    With m ~ N(0, 1/(β₀λ)), λ ~ Gamma(a₀, rate b₀) and rows v ~ N(m, 1/λ)::

        λ | v ~ Gamma(a₀ + n/2, b₀ + (Σ (v − v̄)² + n β₀ v̄² / (n + β₀)) / 2)
        m | λ, v ~ N(Σ v / (n + β₀), 1 / ((n + β₀) λ))
    """
    n = values.shape[0]
    total = values.sum(axis=0)
    mean = total / max(n, 1)
    spread = ((values - mean) ** 2).sum(axis=0) + n * PRIOR_MEAN_STRENGTH * mean**2 / (
        n + PRIOR_MEAN_STRENGTH
    )
    shape = PRIOR_SHAPE + n / 2.0
    rate = PRIOR_RATE + spread / 2.0
    precision = rng.gamma(shape, 1.0 / rate)
    center = total / (n + PRIOR_MEAN_STRENGTH)
    m = center + rng.standard_normal(len(center)) / np.sqrt((n + PRIOR_MEAN_STRENGTH) * precision)
    return m, precision


def sample_noise_precision(residual_sq_sum: float, n: int, rng: np.random.Generator) -> float:
    """α | residuals ~ Gamma(a₀ + N/2, rate b₀ + Σ r²/2)."""
    return float(rng.gamma(PRIOR_SHAPE + n / 2.0, 1.0 / (PRIOR_RATE + residual_sq_sum / 2.0)))


def sample_noise_scales(
    weighted_sse: np.ndarray, counts: np.ndarray, alpha: float, dof: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Each row's noise-precision scale τ (the precision of its ratings is α τ κ):
    with τ ~ Gamma(ν/2, rate ν/2) (mean 1; ν = ``dof``)::

        τ | rest ~ Gamma(ν/2 + n/2, rate ν/2 + α Σ κ e² / 2)

    over the row's n ratings (``weighted_sse`` = Σ κ e²): a user (item) whose ratings the
    model fits badly gets a lower precision, and weighs less in what the other side learns."""
    shape = dof / 2.0 + counts / 2.0
    rate = dof / 2.0 + alpha * weighted_sse / 2.0
    return np.asarray(rng.gamma(shape, 1.0 / rate))


# ----------------------------------------------------------------------------- kernels
@njit(cache=True, fastmath=True)
def _gaussian_draw(prec: np.ndarray, rhs: np.ndarray, noise: np.ndarray, out: np.ndarray
                   ) -> None:
    """out = prec⁻¹ rhs + L⁻ᵀ noise with prec = L Lᵀ: a draw of N(prec⁻¹ rhs, prec⁻¹).
    Only the lower triangle of ``prec`` is read; it is overwritten by L."""
    D = prec.shape[0]
    for j in range(D):
        s = prec[j, j]
        for k in range(j):
            s -= prec[j, k] * prec[j, k]
        s = math.sqrt(s) if s > 1e-12 else 1e-6
        prec[j, j] = s
        for i in range(j + 1, D):
            t = prec[i, j]
            for k in range(j):
                t -= prec[i, k] * prec[j, k]
            prec[i, j] = t / s
    # forward: L u = rhs ; then z = u + noise ; back: Lᵀ out = z
    u = np.empty(D)
    for i in range(D):
        t = rhs[i]
        for k in range(i):
            t -= prec[i, k] * u[k]
        u[i] = t / prec[i, i]
    for i in range(D):
        u[i] += noise[i]
    for i in range(D - 1, -1, -1):
        t = u[i]
        for k in range(i + 1, D):
            t -= prec[k, i] * out[k]
        out[i] = t / prec[i, i]


@njit(cache=True, fastmath=True)
def _statistics(indptr, indices, values, other, t, row_scale, col_scale, gram, resid,
                row_sse):
    """Per row: G = Σ κ x xᵀ and g = Σ κ x (r − x·t) with x = [other[:d], 1],
    r = value − other[d] (the other side's bias) and κ the other side's noise scale; and
    ``row_sse`` = Σ κ (r − x·t)². Returns Σ τ κ (r − x·t)² (τ = ``row_scale``).
    G and g leave out the row's own τ (the caller multiplies it in once τ is drawn)."""
    n_rows, D = t.shape
    d = D - 1
    total = 0.0
    x = np.empty(D)
    for row in range(n_rows):
        G = gram[row]
        g = resid[row]
        G[:, :] = 0.0
        g[:] = 0.0
        sse = 0.0
        for e in range(indptr[row], indptr[row + 1]):
            col = indices[e]
            kappa = col_scale[col]
            for k in range(d):
                x[k] = other[col, k]
            x[d] = 1.0
            pred = 0.0
            for k in range(D):
                pred += x[k] * t[row, k]
            err = values[e] - other[col, d] - pred
            sse += kappa * err * err
            for a in range(D):
                xa = kappa * x[a]
                g[a] += xa * err
                for b in range(a + 1):
                    G[a, b] += xa * x[b]
        for a in range(D):
            for b in range(a):
                G[b, a] = G[a, b]
        row_sse[row] = sse
        total += row_scale[row] * sse
    return total


@njit(cache=True)
def _scale_rows(gram, resid, row_scale):
    for row in range(gram.shape[0]):
        gram[row] *= row_scale[row]
        resid[row] *= row_scale[row]


@njit(cache=True, fastmath=True)
def _sample_own_rows(own, t, gram, resid, alpha, mean, precision, noise):
    """Draw each row's own vector [w, β] given its implicit part (t = own + implicit sum),
    then update t and the residual sums g = h − G t."""
    n_rows, D = own.shape
    prec = np.empty((D, D))
    rhs = np.empty(D)
    new = np.empty(D)
    delta = np.empty(D)
    for row in range(n_rows):
        G = gram[row]
        g = resid[row]
        for a in range(D):
            s = 0.0
            for b in range(D):
                prec[a, b] = alpha * G[a, b]
                s += G[a, b] * own[row, b]
            rhs[a] = alpha * (g[a] + s) + precision[a] * mean[a]
            prec[a, a] += precision[a]
        _gaussian_draw(prec, rhs, noise[row], new)
        for a in range(D):
            delta[a] = new[a] - own[row, a]
            own[row, a] = new[a]
            t[row, a] += delta[a]
        for a in range(D):
            s = 0.0
            for b in range(D):
                s += G[a, b] * delta[b]
            g[a] -= s


@njit(cache=True, fastmath=True)
def _sample_implicit(cols_indptr, cols_indices, weights, implicit, t, gram, resid, alpha,
                     mean, precision, noise):
    """Draw each implicit vector y(k) in turn: it enters t(l) / √n_l for every row l of N(k)
    (``cols_indices[cols_indptr[k]:cols_indptr[k+1]]``)."""
    n_cols, D = implicit.shape
    prec = np.empty((D, D))
    rhs = np.empty(D)
    new = np.empty(D)
    delta = np.empty(D)
    for k in range(n_cols):
        start, end = cols_indptr[k], cols_indptr[k + 1]
        if start == end:
            for a in range(D):
                implicit[k, a] = mean[a] + noise[k, a] / math.sqrt(precision[a])
            continue
        old = implicit[k]
        for a in range(D):
            rhs[a] = precision[a] * mean[a]
            for b in range(D):
                prec[a, b] = 0.0
            prec[a, a] = precision[a]
        # prec = α Σ w² G_l + Λ, rhs = α Σ w (g_l + w G_l y_old) + Λ m
        #      = α Σ w g_l + (prec − Λ) y_old + Λ m
        for e in range(start, end):
            row = cols_indices[e]
            w = weights[row]
            G = gram[row]
            g = resid[row]
            w2 = alpha * w * w
            for a in range(D):
                rhs[a] += alpha * w * g[a]
                for b in range(a + 1):  # the lower triangle: all the draw reads
                    prec[a, b] += w2 * G[a, b]
        for a in range(D):
            s = 0.0
            for b in range(a + 1):
                s += prec[a, b] * old[b]
            for b in range(a + 1, D):
                s += prec[b, a] * old[b]
            rhs[a] += s - precision[a] * old[a]
        _gaussian_draw(prec, rhs, noise[k], new)
        for a in range(D):
            delta[a] = new[a] - old[a]
            implicit[k, a] = new[a]
        for e in range(start, end):
            row = cols_indices[e]
            w = weights[row]
            G = gram[row]
            g = resid[row]
            for a in range(D):
                t[row, a] += w * delta[a]
            for a in range(D):
                s = 0.0
                for b in range(D):
                    s += G[a, b] * delta[b]
                g[a] -= w * s


# ----------------------------------------------------------------------------- the sampler
class BayesSampler:
    """Block Gibbs sweeps of the model of this module over one data set.

    Parameters
    ----------
    data : Interactions
        Explicit training ratings.
    mu : ndarray, shape (n_items,)
        μ(i), subtracted from the ratings before sampling.
    embedding_size : int
        n, the length of w(j) and x(i).
    use_implicit : bool
        Sample the implicit vectors y and z (False: Bayesian MF with biases only).
    rng : numpy.random.Generator
    init_scale : float
        Standard deviation of the initial w(j) and x(i).
    """

    def __init__(
        self,
        data: Interactions,
        mu: np.ndarray,
        embedding_size: int,
        use_implicit: bool,
        rng: np.random.Generator,
        noise_dof: float | None = None,
        init_scale: float = 0.1,
    ) -> None:
        self.ratings = Ratings.build(data, mu)
        self.use_implicit = use_implicit
        self.noise_dof = noise_dof
        self.rng = rng
        self.n_events = len(data)
        D = embedding_size + 1
        self.D = D
        n_users, n_items = data.shape
        self.user_weights = implicit_weights(np.diff(self.ratings.by_user.indptr))
        self.item_weights = implicit_weights(np.diff(self.ratings.by_item.indptr))

        def side(n_own: int, n_other: int) -> Side:
            own = rng.standard_normal((n_own, D)) * init_scale
            own[:, -1] = 0.0
            return Side(
                own=own,
                implicit=np.zeros((n_other, D)),
                own_mean=np.zeros(D),
                own_precision=np.ones(D),
                implicit_mean=np.zeros(D),
                implicit_precision=np.ones(D),
            )

        self.users = side(n_users, n_items)
        self.items = side(n_items, n_users)
        self.alpha = 1.0
        self.item_effective = effective(
            self.items, self.ratings.by_item, self.item_weights, use_implicit
        )
        self.user_effective = effective(
            self.users, self.ratings.by_user, self.user_weights, use_implicit
        )
        self.user_scale = np.ones(n_users)
        self.item_scale = np.ones(n_items)
        self._gram_users = np.zeros((n_users, D, D))
        self._resid_users = np.zeros((n_users, D))
        self._gram_items = np.zeros((n_items, D, D))
        self._resid_items = np.zeros((n_items, D))

    def _half(self, side: Side, own_ratings: sp.csr_matrix, other_ratings: sp.csr_matrix,
              weights: np.ndarray, other: np.ndarray, own_scale: np.ndarray,
              other_scale: np.ndarray, gram: np.ndarray, resid: np.ndarray
              ) -> tuple[np.ndarray, float]:
        """Draw one side given the other side's effective vectors ``other``; returns this
        side's new effective vectors and the sum of squared residuals before the draw."""
        rng, D = self.rng, self.D
        t = effective(side, own_ratings, weights, self.use_implicit)
        row_sse = np.empty(len(t))
        sse = _statistics(own_ratings.indptr, own_ratings.indices, own_ratings.data, other,
                          t, own_scale, other_scale, gram, resid, row_sse)
        # the residuals of the current state: α | everything else, then the rows' scales
        self.alpha = sample_noise_precision(sse, self.n_events, rng)
        if self.noise_dof is not None:
            own_scale[:] = sample_noise_scales(
                row_sse, np.diff(own_ratings.indptr), self.alpha, self.noise_dof, rng
            )
        _scale_rows(gram, resid, own_scale)
        _sample_own_rows(side.own, t, gram, resid, self.alpha, side.own_mean,
                         side.own_precision, rng.standard_normal(side.own.shape))
        if self.use_implicit:
            _sample_implicit(other_ratings.indptr, other_ratings.indices, weights,
                             side.implicit, t, gram, resid, self.alpha, side.implicit_mean,
                             side.implicit_precision, rng.standard_normal((other.shape[0], D)))
        side.own_mean, side.own_precision = sample_group(side.own, rng)
        if self.use_implicit:
            side.implicit_mean, side.implicit_precision = sample_group(side.implicit, rng)
        return t, float(sse)

    def sweep(self) -> float:
        """One sweep: users (own, implicit), items (own, implicit), α and the hyperpriors.
        Returns the mean squared training residual before the item half."""
        r = self.ratings
        self.user_effective, _ = self._half(
            self.users, r.by_user, r.by_item, self.user_weights, self.item_effective,
            self.user_scale, self.item_scale, self._gram_users, self._resid_users,
        )
        self.item_effective, sse = self._half(
            self.items, r.by_item, r.by_user, self.item_weights, self.user_effective,
            self.item_scale, self.user_scale, self._gram_items, self._resid_items,
        )
        return sse / max(self.n_events, 1)

    def snapshot(self, dtype: type) -> Snapshot:
        """(X, W, b, c) of the current draw: x̃(i), w̃(j), b(j), c(i) (rows with no events
        zeroed, so an unknown user is predicted μ(i) + c(i))."""
        d = self.D - 1
        W = self.user_effective[:, :d].copy()
        X = self.item_effective[:, :d].copy()
        b = self.user_effective[:, d].copy()
        c = self.item_effective[:, d].copy()
        no_user = np.diff(self.ratings.by_user.indptr) == 0
        no_item = np.diff(self.ratings.by_item.indptr) == 0
        W[no_user] = 0.0
        b[no_user] = 0.0
        X[no_item] = 0.0
        c[no_item] = 0.0
        return X.astype(dtype), W.astype(dtype), b.astype(dtype), c.astype(dtype)


def sample_bayes(
    params: Parameters,
    data: Interactions,
    embedding_size: int,
    burn_in: int,
    samples: int,
    use_implicit: bool,
    noise_dof: float | None,
    rng: np.random.Generator,
    dtype: type,
    init_scale: float,
    on_sweep: Callable[[int, float, bool], None],
) -> None:
    """Run ``burn_in + samples`` sweeps and leave in ``params`` the average of the last
    ``samples`` draws' predictions (μ in ``params`` is kept).

    ``on_sweep(sweep, mean squared residual, kept)`` is called after every sweep."""
    sampler = BayesSampler(data, params.mu, embedding_size, use_implicit, rng, noise_dof,
                           init_scale)
    draws: list[Snapshot] = []
    for s in range(burn_in + samples):
        mse = sampler.sweep()
        kept = s >= burn_in
        if kept:
            draws.append(sampler.snapshot(dtype))
        on_sweep(s + 1, mse, kept)
    params.X, params.W, params.b, params.c = average_of_draws(draws)


__all__ = ["BayesSampler", "sample_bayes", "sample_group", "sample_noise_precision"]
