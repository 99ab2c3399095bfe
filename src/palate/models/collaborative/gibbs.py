"""Gibbs sampling of the posterior of collaborative filtering (Bayesian matrix factorisation).

With a Gaussian likelihood y(i,j) ~ N(w(j)·x(i) + b(j) + c(i) + μ(i), σ²) and Gaussian priors
whose precisions are the penalty's λ, the posterior of the parameters θ is::

    p(θ | y) ∝ exp(−J(θ) / σ²)

so J is its negative log up to 1/σ². Given everything else, one row's parameters are Gaussian,
θ_j ~ N(A_j⁻¹ r_j, σ² A_j⁻¹) with A_j and r_j the Gram matrix and right-hand side of that
row's ALS solve: an ALS sweep that draws every row instead of solving for the mean is a Gibbs
sweep. Starting from the ALS solution, ``samples`` sweeps give draws θ_1 … θ_S, and the model
predicts the average of their predictions::

    1/S Σ_s (w_s(j)·x_s(i) + b_s(j) + c_s(i)) = [w_1(j) … w_S(j)] / S · [x_1(i) … x_S(i)]
                                                + mean_s b_s(j) + mean_s c_s(i)

one dot product of concatenated factors, served exactly like a single model. σ² is the mean
squared training residual of the sweep before each draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from palate.models.collaborative.als import AlsSweeps
from palate.models.collaborative.parameters import Snapshot


def sample_posterior(
    sweeps: AlsSweeps, samples: int, n_events: int, on_draw: Callable[[int, float], None]
) -> None:
    """Draw ``samples`` Gibbs sweeps from the current parameters, then leave
    ``sweeps.params`` holding the average of the draws (see the module docstring).

    Parameters
    ----------
    sweeps : AlsSweeps
        The ALS sweeps of the fit (burn-in done): each draw is one sweep with noise.
    samples : int
        S, the number of draws.
    n_events : int
        The number of training events, N in ``σ² = 2 · data term / N``.
    on_draw : callable(sample, cost)
        Called after every draw with its number (from 1) and J.
    """
    params = sweeps.params
    draws: list[Snapshot] = []
    for s in range(samples):
        noise_scale = math.sqrt(2 * sweeps.data_loss / max(n_events, 1))
        cost = sweeps(noise_scale)
        draws.append(params.snapshot())
        on_draw(s + 1, cost)
    params.X, params.W, params.b, params.c = average_of_draws(draws)


def average_of_draws(draws: list[Snapshot]) -> Snapshot:
    """(X, W, b, c) whose predictions are the average of the draws': ``[X_1 … X_S]``,
    ``[W_1 … W_S] / S``, the mean of the b_s and the mean of the c_s."""
    n = len(draws)
    X = np.hstack([x for x, _, _, _ in draws])
    W = np.hstack([w for _, w, _, _ in draws]) / n
    b = np.mean([b for _, _, b, _ in draws], axis=0).astype(X.dtype)
    c = np.mean([c for _, _, _, c in draws], axis=0).astype(X.dtype)
    return X, W, b, c


__all__ = ["average_of_draws", "sample_posterior"]
