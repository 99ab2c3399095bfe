"""EASE: the closed form against per-column constrained ridge regression, and the contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import palate
from palate import EASE, ConfigError, DataError, Interactions, NotFittedError
from palate.models.ease import ease_weights


def clicks(seed: int = 0, n_users: int = 40, n_items: int = 30) -> Interactions:
    """Two planted taste groups: users 0..19 click items 0..14, the others 15..29."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        group = range(0, 15) if u < n_users // 2 else range(15, 30)
        for i in rng.choice(list(group), size=8, replace=False):
            users.append(u)
            items.append(int(i))
    return Interactions.from_arrays(users, items)


def per_column_ridge(X: np.ndarray, reg: float) -> np.ndarray:
    """B(:, j) = ridge regression of column j on every other column (B(j, j) = 0)."""
    n = X.shape[1]
    B = np.zeros((n, n))
    for j in range(n):
        others = [i for i in range(n) if i != j]
        A = X[:, others]
        B[others, j] = np.linalg.solve(A.T @ A + reg * np.eye(n - 1), A.T @ X[:, j])
    return B


def test_closed_form_equals_constrained_ridge_on_a_hand_sized_case() -> None:
    X = np.array(
        [[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 1, 0], [0, 0, 1, 1]], dtype=float
    )
    B = ease_weights(X, reg=0.5)
    np.testing.assert_allclose(B, per_column_ridge(X, 0.5), atol=1e-5)
    assert np.all(np.diag(B) == 0)


def test_closed_form_minimises_the_objective_on_random_data() -> None:
    rng = np.random.default_rng(3)
    X = (rng.random((60, 12)) < 0.3).astype(float)
    reg = 4.0
    B = ease_weights(X, reg).astype(np.float64)
    np.testing.assert_allclose(B, per_column_ridge(X, reg), atol=1e-5)

    def objective(M: np.ndarray) -> float:
        return float(np.sum((X - X @ M) ** 2) + reg * np.sum(M**2))

    # any zero-diagonal perturbation raises the objective
    for _ in range(5):
        E = rng.standard_normal(B.shape) * 1e-2
        np.fill_diagonal(E, 0.0)
        assert objective(B + E) > objective(B)


def per_column_penalised_ridge(X: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """B(:, j) = argmin ‖X(:, j) − X(:, −j) β‖² + Σ_k penalty(k) β(k)² over the other items."""
    n = X.shape[1]
    B = np.zeros((n, n))
    for j in range(n):
        others = [i for i in range(n) if i != j]
        A = X[:, others]
        B[others, j] = np.linalg.solve(A.T @ A + np.diag(penalty[others]), A.T @ X[:, j])
    return B


X_4X5 = np.array(
    [[1, 1, 0, 0, 1], [1, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 0, 1]], dtype=float
)


def test_dropout_closed_form_equals_a_direct_solve_on_a_4x5_matrix() -> None:
    # EDLAE: Λ = λ + p / (1 − p) · diag(XᵀX); item counts of X_4X5 are 3, 3, 3, 1, 2
    reg, p = 0.5, 0.25
    counts = X_4X5.sum(axis=0)
    np.testing.assert_array_equal(counts, [3, 3, 3, 1, 2])
    penalty = reg + p / (1 - p) * counts  # 1.5, 1.5, 1.5, 0.8333, 1.1667
    B = ease_weights(X_4X5, reg, dropout=p)
    np.testing.assert_allclose(B, per_column_penalised_ridge(X_4X5, penalty), atol=1e-5)
    assert np.all(np.diag(B) == 0)
    # p = 0 is EASE
    np.testing.assert_allclose(ease_weights(X_4X5, reg, dropout=0.0), ease_weights(X_4X5, reg))


def test_dropout_closed_form_is_the_expected_loss_of_dropped_inputs() -> None:
    # E‖X − (M ∘ X) B / (1 − p)‖² over Bernoulli(1 − p) masks M, by enumerating the masks of
    # a 2-user, 3-item matrix, equals ‖X − XB‖² + p / (1 − p) Σ_j G(j, j) ‖B(j, :)‖²
    X = np.array([[1, 1, 0], [1, 1, 1]], dtype=float)
    p = 0.4
    B = np.random.default_rng(0).standard_normal((3, 3))
    expected = 0.0
    for bits in range(2**6):
        M = np.array([(bits >> k) & 1 for k in range(6)], dtype=float).reshape(2, 3)
        prob = np.prod(np.where(M == 1, 1 - p, p))
        expected += prob * np.sum((X - (M * X) @ B / (1 - p)) ** 2)
    G = X.T @ X
    closed = np.sum((X - X @ B) ** 2) + p / (1 - p) * np.sum(np.diag(G) * np.sum(B**2, axis=1))
    assert expected == pytest.approx(closed, rel=1e-12)


def test_item_exponent_fits_on_columns_divided_by_counts_to_the_gamma() -> None:
    reg, p, gamma = 0.5, 0.25, 0.5
    counts = X_4X5.sum(axis=0)
    scaled = X_4X5 / counts**gamma  # X̃ = X D^(−γ)
    G = scaled.T @ scaled
    lam = reg * np.mean(np.diag(G)) / np.mean(counts)  # λ on the scale of the unscaled Gram
    penalty = lam + p / (1 - p) * np.diag(G)
    B_tilde = per_column_penalised_ridge(scaled, penalty)
    B = ease_weights(X_4X5, reg, dropout=p, item_exponent=gamma)
    np.testing.assert_allclose(B, B_tilde / counts[:, None] ** gamma, atol=1e-5)
    # the scores of a 0/1 history are those of the scaled history on B̃
    x = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(x @ B, (x / counts**gamma) @ B_tilde, atol=1e-5)


def test_dropout_and_item_exponent_are_validated() -> None:
    for bad in (-0.1, 1.0, "0.5", float("nan")):
        with pytest.raises(ConfigError, match="dropout"):
            EASE(dropout=bad)  # type: ignore[arg-type]
    for bad in (-0.1, 1.5, None):
        with pytest.raises(ConfigError, match="item_exponent"):
            EASE(item_exponent=bad)  # type: ignore[arg-type]


def test_counts_are_treated_as_engagement_indicators() -> None:
    X = np.array([[3, 1, 0], [1, 0, 2], [0, 5, 1]], dtype=float)
    np.testing.assert_allclose(ease_weights(X, 1.0), ease_weights((X > 0).astype(float), 1.0))


def test_recommend_scores_are_history_times_weights_and_skip_seen_items() -> None:
    data = clicks()
    model = EASE(reg=10.0).fit(data)
    recs = model.recommend([0, 25], k=5)
    X = data.to_csr().toarray() > 0
    for r, user in enumerate([0, 25]):
        row = data.users.index(np.array([user]))[0]
        scores = X[row].astype(np.float64) @ model.weights_.astype(np.float64)
        scores[X[row]] = -np.inf
        best = np.argsort(-scores, kind="stable")[:5]
        assert set(recs.item_ids[r]) == set(data.items.ids[best])
        np.testing.assert_allclose(np.sort(recs.scores[r])[::-1], np.sort(scores[best])[::-1],
                                   rtol=1e-5)
        assert not set(recs.item_ids[r]) & set(data.items.ids[X[row]])
    # the planted groups: group-0 users get group-0 items
    assert np.all(recs.item_ids[0] < 15) and np.all(recs.item_ids[1] >= 15)


def test_predict_matches_recommend_scores_and_handles_unknown_ids() -> None:
    data = clicks()
    model = EASE(reg=10.0).fit(data)
    recs = model.recommend([3], k=4)
    pred = model.predict([3] * 4, recs.item_ids[0])
    np.testing.assert_allclose(pred, recs.scores[0], rtol=1e-5)
    out = model.predict([3, 999, 3], [recs.item_ids[0][0], recs.item_ids[0][0], 12345])
    assert out[1] == 0.0 and np.isnan(out[2])


def test_unknown_users_get_the_most_popular_items() -> None:
    data = clicks()
    model = EASE().fit(data)
    recs = model.recommend([1000], k=3)
    assert recs.fallback.tolist() == [True]
    counts = np.bincount(data.item_idx, minlength=data.n_items)
    assert set(recs.item_ids[0]) == set(data.items.ids[np.argsort(-counts, kind="stable")[:3]])


def test_fold_in_of_a_known_users_history_gives_that_users_scores() -> None:
    data = clicks()
    model = EASE(reg=10.0).fit(data)
    row = data.users.index(np.array([7]))[0]
    items = data.items.ids[data.item_idx[data.user_idx == row]]
    scores = model.fold_in({item: 1.0 for item in items})
    X = data.to_csr().toarray() > 0
    np.testing.assert_allclose(scores, X[row] @ model.weights_, rtol=1e-5, atol=1e-6)
    as_frame = model.fold_in(pd.DataFrame({"item_id": items, "value": np.ones(len(items))}))
    np.testing.assert_allclose(as_frame, scores)


def test_similar_items_stay_inside_the_planted_group() -> None:
    model = EASE(reg=10.0).fit(clicks())
    similar = model.similar_items([0, 20], k=5)
    assert np.all(similar.similar_ids[0] < 15) and np.all(similar.similar_ids[1] >= 15)
    assert 0 not in similar.similar_ids[0]


def test_save_and_load_give_identical_recommendations(tmp_path: Path) -> None:
    model = EASE(reg=7.0).fit(clicks())
    palate.save(model, tmp_path / "ease")
    loaded = palate.load(tmp_path / "ease")
    assert isinstance(loaded, EASE) and loaded.config.reg == 7.0 and loaded.reg_ == 7.0
    a, b = model.recommend([0, 30], k=6), loaded.recommend([0, 30], k=6)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)
    np.testing.assert_allclose(a.scores, b.scores)


def test_bad_settings_and_data_are_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="reg"):
        EASE(reg=0)
    with pytest.raises(ConfigError, match="max_items"):
        EASE(max_items=0)
    with pytest.raises(ConfigError, match="ImplicitALS"):
        EASE(max_items=10).fit(clicks())
    with pytest.raises(DataError, match=">= 0"):
        EASE().fit(Interactions.from_arrays([1, 2], [1, 2], [1.0, -1.0]))
    with pytest.raises(NotFittedError):
        EASE().recommend([1])


def test_regularisation_changes_the_weights() -> None:
    data = clicks()
    weak, strong = EASE(reg=1.0).fit(data), EASE(reg=100.0).fit(data)
    assert np.abs(strong.weights_).sum() < np.abs(weak.weights_).sum()


def test_default_regularisation_follows_the_number_of_events() -> None:
    data = clicks()
    model = EASE().fit(data)
    assert model.reg_ == 200.0  # 320 events: the lower clip
    assert EASE().config.reg_for(50_000) == pytest.approx(600.0)
    assert EASE().config.reg_for(200_000) == pytest.approx(1200.0)
    assert EASE().config.reg_for(10**8) == 2000.0
    np.testing.assert_allclose(model.weights_, EASE(reg=200.0).fit(data).weights_)
    assert EASE(reg=7.0).fit(data).reg_ == 7.0
    # plain EASE (neither extension) keeps half of that
    plain = EASE(dropout=0.0, item_exponent=0.0).config
    assert plain.reg_for(320) == 100.0
    assert plain.reg_for(50_000) == pytest.approx(300.0)
    assert plain.reg_for(10**8) == 1000.0
    assert EASE(dropout=0.0).config.reg_for(50_000) == pytest.approx(600.0)


def test_the_hybrid_keeps_plain_ease_as_its_engagement_model() -> None:
    # EASE's extensions were chosen on positive-only data; the hybrid's rating weight on
    # plain EASE (bench/topn_ratings.py)
    params = palate.HybridRecommender().engagement.get_params()
    assert params["dropout"] == 0.0 and params["item_exponent"] == 0.0
    chosen = palate.HybridRecommender(engagement=EASE(dropout=0.5)).engagement.get_params()
    assert chosen["dropout"] == 0.5
