"""Known answers for the fully Bayesian sampler (``solver="bayes"``): each conditional draw
against its closed form, the hyperparameter and noise posteriors against their Gamma /
Normal parameters, and planted structure recovered by the fitted model."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import palate
from palate import BayesianCollaborativeFiltering, CollaborativeFiltering, Interactions
from palate.errors import ConfigError
from palate.models.collaborative import bayes
from palate.models.collaborative.bayes import (
    BayesSampler,
    Side,
    effective,
    implicit_weights,
    sample_group,
    sample_noise_precision,
    sample_noise_scales,
)

DRAWS = 20_000


def _ratings(rows: list[int], cols: list[int], values: list[float], shape: tuple[int, int]
             ) -> sp.csr_matrix:
    m = sp.csr_matrix((np.asarray(values, float), (rows, cols)), shape=shape)
    m.sort_indices()
    return m


def test_gaussian_draw_has_the_mean_and_covariance_of_its_precision() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 3))
    precision = a @ a.T + np.eye(3)
    rhs = np.array([1.0, -2.0, 0.5])
    out = np.empty(3)
    draws = np.empty((DRAWS, 3))
    for k in range(DRAWS):
        bayes._gaussian_draw(precision.copy(), rhs, rng.standard_normal(3), out)
        draws[k] = out
    covariance = np.linalg.inv(precision)
    assert np.allclose(draws.mean(axis=0), covariance @ rhs, atol=0.03)
    assert np.allclose(np.cov(draws.T), covariance, atol=0.03)


def test_one_user_conditional_matches_the_closed_form() -> None:
    """A user's [w, β] given the items: N(A⁻¹(α h + Λ m), A⁻¹), A = α Σ x xᵀ + Λ, x = [x(i), 1],
    h = Σ x (y − c(i)), written out by hand for two rated items."""
    items = np.array([[1.0, 0.5, 0.2], [-0.5, 1.0, -0.1]])  # [x(i), c(i)], d = 2
    ratings = _ratings([0, 0], [0, 1], [2.0, -1.0], (1, 2))
    alpha, mean, lam = 2.0, np.array([0.1, -0.2, 0.3]), np.array([1.0, 2.0, 4.0])
    x = np.hstack([items[:, :2], np.ones((2, 1))])
    target = np.array([2.0 - 0.2, -1.0 + 0.1])
    A = alpha * x.T @ x + np.diag(lam)
    expected_mean = np.linalg.solve(A, alpha * x.T @ target + lam * mean)

    rng = np.random.default_rng(1)
    draws = np.empty((DRAWS, 3))
    for k in range(DRAWS):
        own = np.array([[0.3, 0.3, 0.3]])
        t = own.copy()
        gram, resid, sse = np.zeros((1, 3, 3)), np.zeros((1, 3)), np.zeros(1)
        bayes._statistics(ratings.indptr, ratings.indices, ratings.data, items, t,
                          np.ones(1), np.ones(2), gram, resid, sse)
        bayes._sample_own_rows(own, t, gram, resid, alpha, mean, lam,
                               rng.standard_normal((1, 3)))
        draws[k] = own[0]
        assert np.allclose(t, own)  # no implicit part: t is the own vector
    assert np.allclose(draws.mean(axis=0), expected_mean, atol=0.02)
    assert np.allclose(np.cov(draws.T), np.linalg.inv(A), atol=0.02)


def test_statistics_are_the_gram_matrix_and_the_residual_sums() -> None:
    items = np.array([[1.0, 2.0, 0.5], [3.0, -1.0, -0.5]])
    ratings = _ratings([0, 0], [0, 1], [4.0, 1.0], (1, 2))
    t = np.array([[0.5, 0.25, 1.0]])
    kappa = np.array([2.0, 0.5])
    gram, resid, row_sse = np.zeros((1, 3, 3)), np.zeros((1, 3)), np.zeros(1)
    total = bayes._statistics(ratings.indptr, ratings.indices, ratings.data, items, t,
                              np.array([3.0]), kappa, gram, resid, row_sse)
    x = np.array([[1.0, 2.0, 1.0], [3.0, -1.0, 1.0]])
    err = np.array([4.0 - 0.5, 1.0 + 0.5]) - x @ t[0]
    assert np.allclose(gram[0], (x * kappa[:, None]).T @ x)
    assert np.allclose(resid[0], (x * (kappa * err)[:, None]).sum(axis=0))
    assert row_sse[0] == pytest.approx(float(kappa @ err**2))
    assert total == pytest.approx(3.0 * float(kappa @ err**2))


def test_implicit_draw_matches_the_closed_form() -> None:
    """y(k) enters t(l) = own(l) + y(k)/√n_l for the users l who rated k: its conditional is
    N(P⁻¹(α Σ_l a_l (h_l − G_l t_l⁽⁻ᵏ⁾) + Λ m), P⁻¹) with P = α Σ_l a_l² G_l + Λ."""
    rng = np.random.default_rng(2)
    items = rng.standard_normal((3, 3))  # d = 2, last column c(i)
    # users 0 and 1 rated item 0 (their implicit item); user 0 also rated 1 and 2
    by_user = _ratings([0, 0, 0, 1, 1], [0, 1, 2, 0, 2], [1.0, -1.0, 0.5, 2.0, 0.0], (2, 3))
    by_item = by_user.T.tocsr()
    by_item.sort_indices()
    weights = implicit_weights(np.diff(by_user.indptr))
    own = rng.standard_normal((2, 3))
    implicit = np.zeros((3, 3))
    implicit[1:] = rng.standard_normal((2, 3))  # y(1), y(2) fixed; y(0) is drawn
    alpha, mean, lam = 1.5, np.array([0.2, 0.0, -0.1]), np.array([2.0, 1.0, 3.0])

    side = Side(own, implicit, mean, lam, mean, lam)
    t0 = effective(side, by_user, weights, True)
    x_rows, targets = [], []
    for u in range(2):
        cols = by_user.indices[by_user.indptr[u]:by_user.indptr[u + 1]]
        vals = by_user.data[by_user.indptr[u]:by_user.indptr[u + 1]]
        x_rows.append(np.hstack([items[cols, :2], np.ones((len(cols), 1))]))
        targets.append(vals - items[cols, 2])
    P = np.diag(lam).astype(float)
    rhs = lam * mean
    for u in range(2):
        G, h = x_rows[u].T @ x_rows[u], x_rows[u].T @ targets[u]
        t_without = t0[u] - weights[u] * implicit[0]
        P += alpha * weights[u] ** 2 * G
        rhs = rhs + alpha * weights[u] * (h - G @ t_without)
    expected_mean = np.linalg.solve(P, rhs)

    draws = np.empty((DRAWS, 3))
    for k in range(DRAWS):
        y = implicit.copy()
        t = t0.copy()
        gram, resid, sse = np.zeros((2, 3, 3)), np.zeros((2, 3)), np.zeros(2)
        bayes._statistics(by_user.indptr, by_user.indices, by_user.data, items, t,
                          np.ones(2), np.ones(3), gram, resid, sse)
        noise = np.zeros((3, 3))
        noise[0] = rng.standard_normal(3)
        # only column 0 has raters drawn here: give the others no raters
        indptr = np.array([0, 2, 2, 2])
        bayes._sample_implicit(indptr, by_item.indices[:2].copy(), weights, y, t, gram,
                               resid, alpha, mean, lam, noise)
        draws[k] = y[0]
        if k < 5:  # t and g follow the new y(0)
            assert np.allclose(t, t0 + weights[:, None] * (y[0] - implicit[0]))
            g_now = [x_rows[u].T @ (targets[u] - x_rows[u] @ t[u]) for u in range(2)]
            assert np.allclose(resid, np.array(g_now))
    assert np.allclose(draws.mean(axis=0), expected_mean, atol=0.02)
    assert np.allclose(np.cov(draws.T), np.linalg.inv(P), atol=0.02)


def test_effective_vectors_add_the_implicit_sum() -> None:
    by_user = _ratings([0, 0, 1], [0, 2, 1], [1.0, 1.0, 1.0], (2, 3))
    own = np.array([[1.0, 0.0], [0.0, 1.0]])
    implicit = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    side = Side(own, implicit, np.zeros(2), np.ones(2), np.zeros(2), np.ones(2))
    t = effective(side, by_user, implicit_weights(np.array([2, 1])), True)
    assert np.allclose(t[0], own[0] + (implicit[0] + implicit[2]) / np.sqrt(2))
    assert np.allclose(t[1], own[1] + implicit[1])
    assert np.allclose(effective(side, by_user, np.ones(2), False), own)


def test_group_hyperparameters_follow_the_normal_gamma_posterior() -> None:
    """v = 1, 2, 3 with m ~ N(0, 1/λ), λ ~ Gamma(1, 1): λ | v ~ Gamma(1 + 3/2, rate 1 + 5/2)
    (Σ (v − v̄)² = 2, n v̄² / (n + 1) = 3) and E[m | v] = Σ v / (n + 1) = 1.5."""
    rng = np.random.default_rng(3)
    values = np.array([[1.0], [2.0], [3.0]])
    draws = np.array([sample_group(values, rng) for _ in range(DRAWS)])[:, :, 0]
    m, lam = draws[:, 0], draws[:, 1]
    assert lam.mean() == pytest.approx(2.5 / 3.5, rel=0.03)
    assert lam.var() == pytest.approx(2.5 / 3.5**2, rel=0.06)
    assert m.mean() == pytest.approx(1.5, abs=0.02)


def test_noise_precision_and_scales_follow_their_gamma_posteriors() -> None:
    rng = np.random.default_rng(4)
    alpha = np.array([sample_noise_precision(8.0, 10, rng) for _ in range(DRAWS)])
    assert alpha.mean() == pytest.approx((1 + 5) / (1 + 4), rel=0.02)
    # ν = 4, 3 ratings, α Σ κ e² = 2 · 1.5: Gamma(2 + 1.5, rate 2 + 1.5)
    scales = sample_noise_scales(np.full(DRAWS, 1.5), np.full(DRAWS, 3), 2.0, 4.0, rng)
    assert scales.mean() == pytest.approx(3.5 / 3.5, rel=0.02)


def _planted(n_users: int, n_items: int, rank: int, n_ratings: int, noise: float, seed: int
             ) -> tuple[Interactions, Interactions, float]:
    """Ratings 3 + b(j) + c(i) + w(j)·x(i) + noise at random pairs; (train, test, the
    noise-free test RMSE of the truth = noise)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_users, rank)) * 0.7
    X = rng.standard_normal((n_items, rank)) * 0.7
    b, c = rng.standard_normal(n_users) * 0.3, rng.standard_normal(n_items) * 0.3
    pairs = rng.choice(n_users * n_items, size=n_ratings, replace=False)
    u, i = pairs // n_items, pairs % n_items
    y = 3 + b[u] + c[i] + (W[u] * X[i]).sum(axis=1) + rng.standard_normal(n_ratings) * noise
    n_test = n_ratings // 5

    def table(sl: slice) -> Interactions:
        return Interactions.from_arrays(u[sl], i[sl], y[sl])

    return table(slice(n_test, None)), table(slice(0, n_test)), noise


def _rmse(model: CollaborativeFiltering, test: Interactions) -> float:
    pred = model.predict(test.user_ids, test.item_ids)
    return float(np.sqrt(np.nanmean((pred - test.values) ** 2)))


def test_planted_low_rank_structure_is_recovered() -> None:
    train, test, noise = _planted(150, 100, 3, 6000, 0.3, seed=5)
    model = BayesianCollaborativeFiltering(embedding_size=3, samples=40, seed=0).fit(train)
    biases_only = BayesianCollaborativeFiltering(
        embedding_size=1, samples=40, implicit=False, init_scale=1e-6, seed=0
    ).fit(train)
    assert _rmse(model, test) < noise * 1.25
    assert _rmse(model, test) < 0.6 * _rmse(biases_only, test)
    assert model.item_factors_.shape == (100, 3 * 40)


def test_noise_scales_find_the_noisy_user() -> None:
    """One user rates at random: the per-user noise scale τ gives that user a low precision."""
    train, _, _ = _planted(60, 50, 2, 2000, 0.2, seed=6)
    rng = np.random.default_rng(7)
    values = train.values.copy()
    noisy = train.user_idx == 0
    values[noisy] = rng.uniform(-3, 9, noisy.sum())
    data = Interactions.from_arrays(train.user_ids, train.item_ids, values)
    sampler = BayesSampler(data, np.full(data.n_items, 3.0), 2, True, rng, noise_dof=4.0)
    for _ in range(30):
        sampler.sweep()
    row = data.users.index([train.user_ids[noisy][0]])[0]
    assert sampler.user_scale[row] < 0.2 * np.median(sampler.user_scale)


def test_save_load_predicts_identically(tmp_path: object) -> None:
    train, test, _ = _planted(40, 30, 2, 600, 0.3, seed=8)
    model = BayesianCollaborativeFiltering(embedding_size=2, samples=5).fit(train)
    palate.save(model, f"{tmp_path}/model")
    loaded = palate.load(f"{tmp_path}/model")
    assert type(loaded) is BayesianCollaborativeFiltering
    assert loaded.get_params() == model.get_params()
    assert np.array_equal(loaded.predict(test.user_ids, test.item_ids),
                          model.predict(test.user_ids, test.item_ids))


def test_the_named_model_is_collaborative_filtering_with_its_defaults() -> None:
    model = BayesianCollaborativeFiltering()
    assert model.config.solver == "bayes"
    assert (model.config.embedding_size, model.config.samples) == (10, 200)
    assert model.config.n_sweeps == 205
    assert CollaborativeFiltering(solver="bayes").config.n_epochs == 5
    with pytest.raises(ConfigError, match="CollaborativeFiltering"):
        BayesianCollaborativeFiltering(solver="als")


def test_partial_fit_of_items_is_refused(tiny_explicit: Interactions) -> None:
    model = BayesianCollaborativeFiltering(embedding_size=2, samples=2).fit(tiny_explicit)
    with pytest.raises(ConfigError, match="update_items=False"):
        model.partial_fit(tiny_explicit)
    model.partial_fit(tiny_explicit, update_items=False)  # users solved with items fixed
