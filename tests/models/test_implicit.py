"""ImplicitALS: the confidence-weighted normal equations, its cost, and the model contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import palate
from palate import ConfigError, DataError, ImplicitALS, Interactions, NotFittedError
from palate.models.implicit import implicit_cost


def clicks(seed: int = 0, n_users: int = 40, n_items: int = 30) -> Interactions:
    """Two planted taste groups: users 0..19 click items 0..14, the others 15..29."""
    rng = np.random.default_rng(seed)
    users, items, counts = [], [], []
    for u in range(n_users):
        group = range(0, 15) if u < n_users // 2 else range(15, 30)
        chosen = rng.choice(list(group), size=8, replace=False)
        for i in chosen:
            users.append(u)
            items.append(int(i))
            counts.append(float(rng.integers(1, 4)))
    return Interactions.from_arrays(users, items, counts)


def dense_objective(W: np.ndarray, X: np.ndarray, data: Interactions, alpha: float, reg: float):
    """J computed on the full dense matrix, straight from the definition."""
    P = np.zeros((data.n_users, data.n_items))
    C = np.ones((data.n_users, data.n_items))
    P[data.user_idx, data.item_idx] = 1.0
    C[data.user_idx, data.item_idx] = 1.0 + alpha * data.values
    Y = W.astype(np.float64) @ X.astype(np.float64).T
    return float(np.sum(C * (P - Y) ** 2) + reg * (np.sum(W**2) + np.sum(X**2)))


def test_exact_als_never_increases_the_cost() -> None:
    data = clicks()
    model = ImplicitALS(embedding_size=4, reg=2.0, alpha=5.0, epochs=6, als_method="cholesky")
    history = [h["cost"] for h in model.fit(data).history_]
    assert all(b <= a + 1e-6 * abs(a) for a, b in zip(history, history[1:], strict=False))
    W, X = model.user_factors_, model.item_factors_
    assert history[-1] == pytest.approx(dense_objective(W, X, data, 5.0, 2.0), rel=1e-6)


def test_cost_matches_the_dense_definition() -> None:
    data = clicks()
    rng = np.random.default_rng(1)
    W = rng.standard_normal((data.n_users, 3))
    X = rng.standard_normal((data.n_items, 3))
    weight = 5.0 * data.values
    sparse = implicit_cost(W, X, data.user_idx, data.item_idx, weight, reg=2.0)
    assert sparse == pytest.approx(dense_objective(W, X, data, alpha=5.0, reg=2.0), rel=1e-9)


def test_one_exact_sweep_is_the_closed_form_user_then_item_solution() -> None:
    data = clicks()
    model = ImplicitALS(embedding_size=3, reg=1.5, alpha=4.0, epochs=1, als_method="cholesky")
    model.fit(data)
    rng = np.random.default_rng(0)
    X0 = (rng.standard_normal((data.n_items, 3)) * 0.01).astype(np.float32).astype(np.float64)
    C = np.ones((data.n_users, data.n_items))
    P = np.zeros((data.n_users, data.n_items))
    C[data.user_idx, data.item_idx] = 1.0 + 4.0 * data.values
    P[data.user_idx, data.item_idx] = 1.0
    W = np.stack([
        np.linalg.solve(X0.T @ (C[u][:, None] * X0) + 1.5 * np.eye(3), X0.T @ (C[u] * P[u]))
        for u in range(data.n_users)
    ]).astype(np.float32).astype(np.float64)
    X = np.stack([
        np.linalg.solve(W.T @ (C[:, i][:, None] * W) + 1.5 * np.eye(3), W.T @ (C[:, i] * P[:, i]))
        for i in range(data.n_items)
    ])
    np.testing.assert_allclose(model.user_factors_, W, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.item_factors_, X, rtol=1e-4, atol=1e-5)


def test_cg_reaches_the_exact_solution_quality() -> None:
    data = clicks()
    exact = ImplicitALS(embedding_size=4, reg=2.0, epochs=8, als_method="cholesky").fit(data)
    cg = ImplicitALS(embedding_size=4, reg=2.0, epochs=8, als_method="cg", cg_steps=4).fit(data)
    assert cg.history_[-1]["cost"] == pytest.approx(exact.history_[-1]["cost"], rel=1e-3)


def test_recovers_the_planted_groups() -> None:
    data = clicks()
    model = ImplicitALS(embedding_size=4, reg=1.0, epochs=10).fit(data)
    recs = model.recommend([0, 39], k=5)
    assert all(item < 15 for item in recs.item_ids[0])
    assert all(item >= 15 for item in recs.item_ids[1])
    similar = model.similar_items([0], k=5)
    assert all(item < 15 for item in similar.similar_ids[0])


def test_contract() -> None:
    data = clicks()
    model = ImplicitALS(embedding_size=4, epochs=3)
    with pytest.raises(NotFittedError):
        model.recommend([0])
    assert model.fit(data) is model
    one = model.recommend(0, k=5)
    assert one.item_ids.shape == (1, 5) and not one.fallback[0]
    batch = model.recommend([0, 1, 2], k=5)
    np.testing.assert_array_equal(batch.item_ids[0], one.item_ids[0])
    seen = set(data.item_idx[data.user_idx == 0].tolist())
    assert not seen & set(data.items.index(one.item_ids[0]).tolist())
    unknown = model.recommend([999, 0], k=3)
    assert unknown.fallback.tolist() == [True, False]
    assert np.isnan(model.predict([0], [999])[0])
    assert model.predict([999], [0])[0] == 0.0
    again = ImplicitALS(embedding_size=4, epochs=3).fit(data)
    np.testing.assert_array_equal(again.item_factors_, model.item_factors_)
    other = ImplicitALS(embedding_size=4, epochs=3, seed=1).fit(data)
    assert not np.allclose(other.item_factors_, model.item_factors_)


def test_save_load_round_trip(tmp_path: Path) -> None:
    data = clicks()
    model = ImplicitALS(embedding_size=4, epochs=3).fit(data)
    loaded = palate.load(palate.save(model, tmp_path / "ials"))
    assert isinstance(loaded, ImplicitALS)
    a, b = model.recommend([0, 5], k=6), loaded.recommend([0, 5], k=6)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)
    np.testing.assert_allclose(a.scores, b.scores)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"embedding_size": 0}, "embedding_size"),
        ({"reg": -1.0}, "reg"),
        ({"alpha": 0.0}, "alpha"),
        ({"epochs": 1.5}, "epochs"),
        ({"als_method": "lu"}, "als_method"),
        ({"seed": "0"}, "seed"),
    ],
)
def test_invalid_hyperparameters(kwargs: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        ImplicitALS(**kwargs)


def test_negative_values_are_refused() -> None:
    data = Interactions.from_arrays([0, 1], [0, 1], [1.0, -2.0])
    with pytest.raises(DataError, match="must be >= 0"):
        ImplicitALS().fit(data)


def test_the_scores_and_their_transposed_factors_are_kept_between_calls() -> None:
    """Vᵀ is copied once per fit, not once per recommend (at 1M items the copy cost more
    than the product)."""
    model = ImplicitALS(embedding_size=4, epochs=2).fit(clicks())
    scores = model.linear_scores()
    assert model.linear_scores() is scores and model.ranking_scores() is scores
    transposed = scores.item_factors_t
    model.recommend([0, 1], k=3)
    assert model.linear_scores().item_factors_t is transposed
    model.fit(clicks(seed=1))  # new parameters: new scores
    assert model.linear_scores() is not scores
    np.testing.assert_array_equal(model.linear_scores().item_factors, model.item_factors_)
