"""Known-answer tests for collaborative filtering: the cost J, its gradient, the solvers, mean
normalisation, fold-in, binary labels, early stopping and related items."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
import scipy.optimize
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata

from palate import (
    CollaborativeFiltering,
    ConfigError,
    DataError,
    Interactions,
    Popularity,
    UnknownIdError,
    Vocabulary,
)
from palate.models.collaborative import sparse_cost, textbook_cost

#: the plain distances ‖x(k) − x(i)‖² of similar items (no support-aware scaling)
PLAIN: dict[str, Any] = {"rank_by": "prediction"}

#: the exact textbook J: no item bias, no per-count λ, no mean normalisation, unregularised b,
#: float64
TEXTBOOK = {
    "item_bias": False, "reg_scaling": "none", "mean_normalize": False, "bias_reg": 0.0,
    "dtype": "float64",
}


# ------------------------------------------------------------------------------ helpers
def dense(data: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """Y and R of shape (n_items, n_users): the textbook orientation."""
    Y = np.zeros((data.n_items, data.n_users))
    R = np.zeros_like(Y)
    Y[data.item_idx, data.user_idx] = data.values
    R[data.item_idx, data.user_idx] = 1.0
    return Y, R


def learned(model: CollaborativeFiltering) -> tuple[np.ndarray, ...]:
    """(X, W, b, c, μ) of a fitted model as float64 arrays."""
    return tuple(
        np.array(a, dtype=np.float64)
        for a in (model.item_factors_, model.user_factors_, model.user_bias_,
                  model.item_bias_, model.item_means_)
    )


def regularisation(model: CollaborativeFiltering) -> tuple[float, float]:
    """(λ, λ_b) the model trains with (``reg=None`` and ``bias_reg=None`` mean the defaults)."""
    cfg = model.config
    reg = getattr(cfg, "effective_reg", cfg.reg)
    bias_reg = getattr(cfg, "effective_bias_reg", cfg.bias_reg)
    return float(reg), float(bias_reg)


def model_cost(
    model: CollaborativeFiltering, data: Interactions
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """J of the model's configuration at its learned parameters, through ``sparse_cost``.

    Returns J and the parameters X, W, b, c (leaf tensors that track gradients).
    """
    X, W, b, c, mu = (torch.tensor(a) for a in learned(model))
    params = {"X": X, "W": W, "b": b, "c": c}
    for tensor in params.values():
        tensor.requires_grad_(True)
    cfg = model.config
    u = torch.as_tensor(data.user_idx.astype(np.int64))
    i = torch.as_tensor(data.item_idx.astype(np.int64))
    t = torch.as_tensor(data.values.astype(np.float64)) - mu[i]
    count = cfg.reg_scaling == "count"
    reg, bias_reg = regularisation(model)
    J = sparse_cost(
        X, W, b, u, i, t, reg, cfg.kind,
        item_bias=c if cfg.item_bias else None,
        user_reg_scale=torch.as_tensor(data.user_counts(), dtype=torch.float64) if count else None,
        item_reg_scale=torch.as_tensor(data.item_counts(), dtype=torch.float64) if count else None,
        bias_reg=bias_reg,
    )
    if not cfg.item_bias:
        del params["c"]
    return J, params


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney), ties counted half."""
    ranks = rankdata(scores)
    positive = labels == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


def split(data: Interactions, share: float, seed: int) -> tuple[Interactions, Interactions]:
    held_out = np.random.default_rng(seed).random(len(data)) < share
    return data.subset(~held_out), data.subset(held_out)


# ------------------------------------------------------------------------------ textbook J
# z = X Wᵀ + b = [[1.5, 3], [0.5, 0], [3.5, 4]]; errors where R = 1: -1.5, -1, -2, 2.5
# 1/2 (2.25 + 1 + 4 + 6.25) = 6.75;  ΣW² = 6, ΣX² = 16
X_HAND = np.array([[1.0, 2.0], [0.0, 1.0], [3.0, -1.0]])
W_HAND = np.array([[1.0, 0.0], [2.0, 1.0]])
B_HAND = np.array([0.5, -1.0])
Y_HAND = np.array([[3.0, 4.0], [np.nan, 2.0], [1.0, 1e6]])  # unobserved: NaN and garbage
R_HAND = np.array([[1, 1], [0, 1], [1, 0]])


@pytest.mark.parametrize(("reg", "expected"), [(0.0, 6.75), (0.5, 6.75 + 5.5), (2.0, 6.75 + 22.0)])
def test_textbook_cost_explicit_by_hand(reg: float, expected: float) -> None:
    assert textbook_cost(X_HAND, W_HAND, B_HAND, Y_HAND, R_HAND, reg) == pytest.approx(expected)


def test_textbook_cost_accepts_b_as_row_vector() -> None:
    assert textbook_cost(X_HAND, W_HAND, B_HAND[None, :], Y_HAND, R_HAND, 0.5) == pytest.approx(
        12.25
    )


def test_textbook_cost_ignores_unobserved_entries_and_boolean_r() -> None:
    other = np.where(R_HAND == 1, Y_HAND, -np.inf)
    a = textbook_cost(X_HAND, W_HAND, B_HAND, Y_HAND, R_HAND, 0.5)
    b = textbook_cost(X_HAND, W_HAND, B_HAND, other, R_HAND.astype(bool), 0.5)
    assert a == b == pytest.approx(12.25)


@pytest.mark.parametrize("b", [np.zeros(2), np.array([10.0, -7.0]), B_HAND])
def test_textbook_cost_regularises_w_and_x_but_not_b(b: np.ndarray) -> None:
    # whatever b is, going from λ = 0 to λ = 2 adds exactly λ/2 (ΣW² + ΣX²) = 22
    with_reg = textbook_cost(X_HAND, W_HAND, b, Y_HAND, R_HAND, 2.0)
    without = textbook_cost(X_HAND, W_HAND, b, Y_HAND, R_HAND, 0.0)
    assert with_reg - without == pytest.approx(22.0)


def test_textbook_cost_binary_by_hand() -> None:
    # z = [[0, ln 3], [2, ln 3]]: f = [[1/2, 3/4], [., 3/4]]
    X = np.array([[0.0], [1.0]])
    W = np.array([[2.0], [0.0]])
    b = np.array([0.0, math.log(3.0)])
    Y = np.array([[1.0, 0.0], [np.nan, 1.0]])
    R = np.array([[1, 1], [0, 1]])
    # −log(1/2) − log(1 − 3/4) − log(3/4) = ln 2 + ln 4 + ln 4/3 = ln 32/3;  λ/2 (4 + 1)
    expected = math.log(32 / 3) + 2.5
    assert textbook_cost(X, W, b, Y, R, 1.0, kind="binary") == pytest.approx(expected)
    assert textbook_cost(X, W, b[None, :], Y, R, 1.0, kind="binary") == pytest.approx(expected)


def test_textbook_cost_binary_is_stable_for_extreme_logits() -> None:
    X = np.array([[1.0], [1.0]])
    W = np.array([[1000.0]])
    Y = np.array([[1.0], [0.0]])
    # y = 1 at z = 1000 costs ~0; y = 0 at z = 1000 costs ~1000
    value = textbook_cost(X, W, np.zeros(1), Y, np.ones((2, 1)), 0.0, kind="binary")
    assert value == pytest.approx(1000.0)


@pytest.mark.parametrize(
    "arrays",
    [
        pytest.param((X_HAND, W_HAND[:, :1], B_HAND, Y_HAND, R_HAND), id="n-differs"),
        pytest.param((X_HAND, W_HAND, np.zeros(3), Y_HAND, R_HAND), id="b-too-long"),
        pytest.param((X_HAND, W_HAND, B_HAND, Y_HAND.T, R_HAND.T), id="y-transposed"),
        pytest.param((X_HAND[:2], W_HAND, B_HAND, Y_HAND, R_HAND), id="x-too-short"),
        pytest.param((X_HAND, W_HAND, B_HAND, Y_HAND, R_HAND[:, :1].repeat(3, 1)),
                     id="r-wrong-shape"),
        pytest.param((X_HAND[:, 0], W_HAND, B_HAND, Y_HAND, R_HAND), id="x-one-dimensional"),
        pytest.param((X_HAND, W_HAND, np.zeros((2, 2)), Y_HAND, R_HAND), id="b-a-matrix"),
    ],
)
def test_textbook_cost_shape_errors_raise_data_error(arrays: tuple[np.ndarray, ...]) -> None:
    with pytest.raises(DataError):
        textbook_cost(*arrays, reg=1.0)


def test_textbook_cost_rejects_unknown_kind() -> None:
    with pytest.raises(ConfigError, match="kind"):
        textbook_cost(X_HAND, W_HAND, B_HAND, Y_HAND, R_HAND, 1.0, kind="poisson")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ sparse J
def random_problem(kind: str, seed: int, n_m: int = 7, n_u: int = 5, n: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    R = rng.random((n_m, n_u)) < 0.5
    R[0, 0] = True
    if kind == "explicit":
        Y = rng.integers(1, 6, size=(n_m, n_u)).astype(np.float64)
    else:
        Y = (rng.random((n_m, n_u)) < 0.5).astype(np.float64)
    item, user = np.nonzero(R)
    return {
        "X": rng.normal(size=(n_m, n)), "W": rng.normal(size=(n_u, n)),
        "b": rng.normal(size=n_u), "c": rng.normal(size=n_m),
        "Y": np.where(R, Y, np.nan), "R": R,
        "item": torch.as_tensor(item), "user": torch.as_tensor(user),
        "y": torch.as_tensor(Y[item, user]),
    }


def sparse(p: dict, reg: float, kind: str, **kwargs: object) -> float:
    t = torch.as_tensor
    value = sparse_cost(t(p["X"]), t(p["W"]), t(p["b"]), p["user"], p["item"], p["y"], reg, kind,
                        **kwargs)  # type: ignore[arg-type]
    return float(value)


@pytest.mark.parametrize("kind", ["explicit", "binary"])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_sparse_cost_equals_textbook_cost(kind: str, seed: int, reg: float) -> None:
    p = random_problem(kind, seed)
    expected = textbook_cost(p["X"], p["W"], p["b"], p["Y"], p["R"], reg, kind)  # type: ignore[arg-type]
    assert sparse(p, reg, kind) == pytest.approx(expected, rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    n_m=st.integers(1, 6), n_u=st.integers(1, 6), n=st.integers(1, 3),
    kind=st.sampled_from(["explicit", "binary"]), reg=st.floats(0, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_sparse_cost_equals_textbook_cost_for_any_shape(
    n_m: int, n_u: int, n: int, kind: str, reg: float, seed: int
) -> None:
    # any shape, including users and items without a single observed entry
    rng = np.random.default_rng(seed)
    p = random_problem(kind, seed, n_m=n_m, n_u=n_u, n=n)
    R = rng.random((n_m, n_u)) < rng.random()
    item, user = np.nonzero(R)
    Y = np.nan_to_num(p["Y"], nan=1.0)
    expected = textbook_cost(p["X"], p["W"], p["b"], np.where(R, Y, np.nan), R, reg, kind)  # type: ignore[arg-type]
    t = torch.as_tensor
    got = sparse_cost(t(p["X"]), t(p["W"]), t(p["b"]), t(user), t(item), t(Y[item, user]), reg,
                      kind)
    assert float(got) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("kind", ["explicit", "binary"])
def test_sparse_cost_item_bias_adds_c_to_every_prediction(kind: str) -> None:
    p = random_problem(kind, 3)
    # c(i) as an extra feature column with weight 1 for every user; remove its λ terms
    X = np.hstack([p["X"], p["c"][:, None]])
    W = np.hstack([p["W"], np.ones((len(p["W"]), 1))])
    reg = 0.4
    expected = textbook_cost(X, W, p["b"], p["Y"], p["R"], reg, kind)  # type: ignore[arg-type]
    expected -= reg / 2 * (np.sum(p["c"] ** 2) + len(p["W"]))
    got = sparse(p, reg, kind, item_bias=torch.as_tensor(p["c"]))
    assert got == pytest.approx(expected, rel=1e-12)


def test_sparse_cost_reg_scales_multiply_each_rows_lambda() -> None:
    p = random_problem("explicit", 4)
    reg = 0.3
    su = np.arange(1.0, len(p["W"]) + 1)
    si = np.arange(2.0, len(p["X"]) + 2)
    scaled = sparse(p, reg, "explicit", user_reg_scale=torch.as_tensor(su),
                    item_reg_scale=torch.as_tensor(si))
    extra = reg / 2 * (np.sum((su - 1) * (p["W"] ** 2).sum(1))
                       + np.sum((si - 1) * (p["X"] ** 2).sum(1)))
    assert scaled - sparse(p, reg, "explicit") == pytest.approx(extra, rel=1e-12)


def test_sparse_cost_bias_reg_and_data_scale() -> None:
    p = random_problem("explicit", 5)
    c = torch.as_tensor(p["c"])
    base = sparse(p, 0.3, "explicit", item_bias=c)
    with_bias_reg = sparse(p, 0.3, "explicit", item_bias=c, bias_reg=0.8)
    assert with_bias_reg - base == pytest.approx(0.4 * (np.sum(p["b"] ** 2) + np.sum(p["c"] ** 2)))
    data_term = sparse(p, 0.0, "explicit", item_bias=c)
    assert sparse(p, 0.3, "explicit", item_bias=c, data_scale=3.0) - base == pytest.approx(
        2 * data_term
    )


# ------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("kind", ["explicit", "binary"])
def test_sparse_cost_gradcheck(kind: str) -> None:
    p = random_problem(kind, 6, n_m=5, n_u=4, n=2)
    X, W, b = (torch.tensor(p[k], requires_grad=True) for k in ("X", "W", "b"))

    def cost(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return sparse_cost(X, W, b, p["user"], p["item"], p["y"], 0.7, kind)

    assert torch.autograd.gradcheck(cost, (X, W, b))


@pytest.mark.parametrize("kind", ["explicit", "binary"])
def test_sparse_cost_gradcheck_with_extensions(kind: str) -> None:
    p = random_problem(kind, 7, n_m=5, n_u=4, n=2)
    X, W, b, c = (torch.tensor(p[k], requires_grad=True) for k in ("X", "W", "b", "c"))
    su = torch.arange(1.0, 5.0, dtype=torch.float64)
    si = torch.arange(2.0, 7.0, dtype=torch.float64)

    def cost(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return sparse_cost(X, W, b, p["user"], p["item"], p["y"], 0.7, kind, item_bias=c,
                           user_reg_scale=su, item_reg_scale=si, bias_reg=0.3, data_scale=1.5)

    assert torch.autograd.gradcheck(cost, (X, W, b, c))


def test_sparse_cost_weights_count_an_entry_that_many_times() -> None:
    # weight 2 on an entry is the same J as the entry listed twice (a hand-checkable identity)
    p = random_problem("binary", 9)
    n = len(p["y"])
    weights = np.where(p["y"].numpy() > 0, 2.0, 1.0)
    twice = np.flatnonzero(weights == 2.0)
    doubled = {**p, "user": torch.cat([p["user"], p["user"][twice]]),
               "item": torch.cat([p["item"], p["item"][twice]]),
               "y": torch.cat([p["y"], p["y"][twice]])}
    assert len(doubled["y"]) > n
    got = sparse(p, 0.4, "binary", weights=torch.as_tensor(weights))
    assert got == pytest.approx(sparse(doubled, 0.4, "binary"), rel=1e-12)
    # and weights of 1 change nothing
    assert sparse(p, 0.4, "binary", weights=torch.ones(n, dtype=torch.float64)) == (
        pytest.approx(sparse(p, 0.4, "binary"), rel=1e-12)
    )


def test_sparse_cost_gradcheck_with_weights() -> None:
    p = random_problem("binary", 10, n_m=5, n_u=4, n=2)
    X, W, b = (torch.tensor(p[k], requires_grad=True) for k in ("X", "W", "b"))
    weights = torch.as_tensor(np.where(p["y"].numpy() > 0, 3.0, 0.5))

    def cost(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return sparse_cost(X, W, b, p["user"], p["item"], p["y"], 0.7, "binary",
                           weights=weights)

    assert torch.autograd.gradcheck(cost, (X, W, b))


@pytest.mark.parametrize("kind", ["explicit", "binary"])
def test_gradient_matches_central_differences_of_textbook_cost(kind: str) -> None:
    p = random_problem(kind, 8, n_m=4, n_u=3, n=2)
    reg = 0.6
    X, W, b = (torch.tensor(p[k], requires_grad=True) for k in ("X", "W", "b"))
    sparse_cost(X, W, b, p["user"], p["item"], p["y"], reg, kind).backward()
    analytic = {"X": X.grad.numpy(), "W": W.grad.numpy(), "b": b.grad.numpy()}  # type: ignore[union-attr]
    h = 1e-6
    for name in ("X", "W", "b"):
        numeric = np.zeros_like(p[name])
        for index in np.ndindex(p[name].shape):
            values = {k: p[k].copy() for k in ("X", "W", "b")}
            values[name][index] += h
            up = textbook_cost(values["X"], values["W"], values["b"], p["Y"], p["R"], reg, kind)  # type: ignore[arg-type]
            values[name][index] -= 2 * h
            down = textbook_cost(values["X"], values["W"], values["b"], p["Y"], p["R"], reg, kind)  # type: ignore[arg-type]
            numeric[index] = (up - down) / (2 * h)
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-6, err_msg=name)


# ------------------------------------------------------------------------------ solvers
@pytest.fixture(scope="module")
def small_ratings(low_rank) -> Interactions:  # type: ignore[no-untyped-def]
    """20 users x 15 items, rank 2, noisy enough that λ matters."""
    train, _, _ = low_rank(n_users=20, n_items=15, rank=2, density=0.5, noise=0.3, seed=0)
    return train


@pytest.fixture(scope="module")
def small_labels(small_ratings: Interactions) -> Interactions:
    """The same pairs with labels y = 1 where the rating is above 3."""
    labels = (small_ratings.values > 3.0).astype(np.float64)
    return Interactions.from_arrays(small_ratings.user_ids, small_ratings.item_ids, labels,
                                    kind="binary")


@pytest.fixture(scope="module")
def als_vs_adam_explicit(small_ratings: Interactions) -> tuple[CollaborativeFiltering, ...]:
    common = {"embedding_size": 2, "reg": 0.5, **TEXTBOOK}
    als = CollaborativeFiltering(solver="als", epochs=60, **common).fit(small_ratings)
    adam = CollaborativeFiltering(solver="adam", epochs=300, learning_rate=0.2, **common)
    return als, adam.fit(small_ratings)


def test_als_and_adam_reach_the_same_minimum_of_textbook_j(
    als_vs_adam_explicit: tuple[CollaborativeFiltering, ...], small_ratings: Interactions
) -> None:
    Y, R = dense(small_ratings)
    costs = []
    for model in als_vs_adam_explicit:
        X, W, b, c, mu = learned(model)
        assert not c.any() and not mu.any()  # the textbook model: no c(i), no μ(i)
        recomputed = textbook_cost(X, W, b, Y, R, 0.5)
        assert model.history_[-1]["cost"] == pytest.approx(recomputed, rel=1e-9)
        costs.append(recomputed)
    als_cost, adam_cost = costs
    assert adam_cost == pytest.approx(als_cost, rel=1e-3)
    # and it is a minimum: far below J at the start
    assert als_cost < 0.5 * als_vs_adam_explicit[0].history_[0]["cost"]


def test_als_and_adam_reach_the_same_minimum_of_binary_j(small_labels: Interactions) -> None:
    common = {"kind": "binary", "embedding_size": 2, "reg": 0.5, **TEXTBOOK}
    als = CollaborativeFiltering(solver="als", epochs=50, **common).fit(small_labels)
    adam = CollaborativeFiltering(solver="adam", epochs=300, learning_rate=0.2, **common)
    adam.fit(small_labels)
    Y, R = dense(small_labels)
    costs = []
    for model in (als, adam):
        X, W, b, _, _ = learned(model)
        recomputed = textbook_cost(X, W, b, Y, R, 0.5, kind="binary")
        assert model.history_[-1]["cost"] == pytest.approx(recomputed, rel=1e-9)
        costs.append(recomputed)
    assert costs[1] == pytest.approx(costs[0], rel=1e-3)


def test_binary_mean_normalisation_is_the_same_model_for_both_solvers(
    small_labels: Interactions,
) -> None:
    common = {"kind": "binary", "embedding_size": 2, "reg": 0.5, **TEXTBOOK,
              "mean_normalize": True}
    als = CollaborativeFiltering(solver="als", epochs=50, **common).fit(small_labels)
    adam = CollaborativeFiltering(solver="adam", epochs=300, learning_rate=0.2, **common)
    adam.fit(small_labels)
    assert adam.history_[-1]["cost"] == pytest.approx(als.history_[-1]["cost"], rel=1e-3)
    users, items = small_labels.user_ids, small_labels.item_ids
    np.testing.assert_allclose(adam.predict(users, items), als.predict(users, items), atol=0.01)


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(TEXTBOOK, id="textbook"),
        pytest.param({"dtype": "float64"}, id="defaults"),
        pytest.param({"dtype": "float64", "bias_reg": 0.5}, id="bias-reg"),
    ],
)
def test_als_cost_never_increases(config: dict, small_ratings: Interactions) -> None:
    model = CollaborativeFiltering(embedding_size=3, reg=0.2, epochs=25, **config)
    costs = np.array([h["cost"] for h in model.fit(small_ratings).history_])
    assert len(costs) == 25
    assert np.all(np.diff(costs) <= 1e-9 * costs[1:])


@pytest.mark.parametrize(
    ("config", "fixture"),
    [
        pytest.param({}, "small_ratings", id="defaults"),
        pytest.param({"bias_reg": 0.5}, "small_ratings", id="bias-reg-count-scaled"),
        pytest.param({"bias_reg": 0.5, "reg_scaling": "none"}, "small_ratings", id="bias-reg"),
        pytest.param({"item_bias": False, "mean_normalize": False}, "small_ratings",
                     id="no-biases"),
        pytest.param({"kind": "binary"}, "small_labels", id="binary-defaults"),
        pytest.param({"kind": "binary", "bias_reg": 0.2, "reg_scaling": "none"}, "small_labels",
                     id="binary-bias-reg"),
    ],
)
def test_als_converges_to_a_stationary_point_of_the_cost_it_reports(
    config: dict, fixture: str, request: pytest.FixtureRequest
) -> None:
    data = request.getfixturevalue(fixture)
    model = CollaborativeFiltering(embedding_size=2, reg=0.3, epochs=150, dtype="float64",
                                   **config).fit(data)
    J, params = model_cost(model, data)
    assert float(J.detach()) == pytest.approx(model.history_[-1]["cost"], rel=1e-9)
    J.backward()
    # the gradient of J vanishes at the ALS solution, for every block of parameters
    for name, tensor in params.items():
        assert float(tensor.grad.abs().max()) < 1e-5, name  # type: ignore[union-attr]


# ------------------------------------------------------------------------------ planted structure
def test_recovers_a_planted_low_rank_matrix(low_rank) -> None:  # type: ignore[no-untyped-def]
    train, test, noise = low_rank(n_users=60, n_items=40, rank=2, density=0.5, noise=0.01)
    model = CollaborativeFiltering(embedding_size=2, reg=0.001, bias_reg=0.0, epochs=40)
    model.fit(train)
    predicted = model.predict(test.user_ids, test.item_ids)
    baseline = train.item_means()[train.items.index(test.item_ids)]
    model_rmse, baseline_rmse = rmse(predicted, test.values), rmse(baseline, test.values)
    assert baseline_rmse > 1.0  # the planted interactions are far from item means
    assert model_rmse < 0.02 * baseline_rmse
    assert model_rmse < 5 * noise


def test_recovers_synthetic_ratings_to_near_the_noise_level(planted_explicit) -> None:  # type: ignore[no-untyped-def]
    train, test = split(planted_explicit.ratings, 0.2, seed=0)
    model = CollaborativeFiltering(embedding_size=3, reg=0.01, epochs=30).fit(train)
    predicted = model.predict(test.user_ids, test.item_ids)
    baseline = Popularity(by="mean", prior=0).fit(train).predict(test.user_ids, test.item_ids)
    truth = np.clip(planted_explicit.true_score(test.user_ids, test.item_ids), 1, 5)
    noise_floor = rmse(truth, test.values)  # what the planted model itself scores
    assert rmse(predicted, test.values) < 0.25 * rmse(baseline, test.values)
    assert rmse(predicted, test.values) < 3 * noise_floor


def test_binary_labels_of_held_out_pairs_are_ranked_well(planted_binary) -> None:  # type: ignore[no-untyped-def]
    train, test = split(planted_binary.ratings, 0.2, seed=0)
    model = CollaborativeFiltering(kind="binary", embedding_size=2, reg=0.02).fit(train)
    probability = model.predict(test.user_ids, test.item_ids)
    assert np.all((probability > 0) & (probability < 1))
    oracle = auc(planted_binary.true_score(test.user_ids, test.item_ids), test.values)
    popular = auc(Popularity(by="mean", prior=1).fit(train).predict(test.user_ids, test.item_ids),
                  test.values)
    model_auc = auc(probability, test.values)
    assert model_auc > 0.8
    assert model_auc > oracle - 0.07
    assert model_auc > popular + 0.1


# ------------------------------------------------------------------------------ mean normalisation
def with_silent_user(data: Interactions, name: str = "newbie") -> Interactions:
    """The same events with one more user in the vocabulary who has no events."""
    users = Vocabulary(np.concatenate([data.users.ids, np.array([name], dtype=object)]))
    return Interactions.from_arrays(data.user_ids, data.item_ids, data.values, users=users,
                                    items=data.items, rating_scale=data.rating_scale)


@pytest.mark.parametrize(
    "solver",
    [
        "als",
        pytest.param("adam"),
    ],
)
def test_user_without_ratings_gets_the_item_means(
    solver: str, tiny_explicit: Interactions
) -> None:
    data = with_silent_user(tiny_explicit)
    # mean_shrinkage=0: μ(i) is the plain mean of the item's ratings, Σ_j y(i,j) / n(i)
    model = CollaborativeFiltering(solver=solver, embedding_size=3, item_bias=False,
                                   mean_shrinkage=0.0).fit(data)
    items = data.items.ids
    predicted = model.predict(["newbie"] * len(items), items)
    np.testing.assert_allclose(predicted, tiny_explicit.item_means(), rtol=1e-5)


@pytest.mark.parametrize("solver", ["als", "adam"])
def test_unknown_user_gets_item_means_plus_item_bias(
    solver: str, tiny_explicit: Interactions
) -> None:
    items = tiny_explicit.items.ids
    plain = CollaborativeFiltering(solver=solver, embedding_size=3, item_bias=False,
                                   mean_shrinkage=0.0)
    predicted = plain.fit(tiny_explicit).predict(["stranger"] * len(items), items)
    np.testing.assert_allclose(predicted, tiny_explicit.item_means(), rtol=1e-6)
    # μ(i) is what the model stores, exactly the mean of the item's training ratings
    np.testing.assert_allclose(plain.item_means_, tiny_explicit.item_means(), rtol=1e-6)

    biased = CollaborativeFiltering(solver=solver, embedding_size=3).fit(tiny_explicit)
    _, _, _, c, mu = learned(biased)
    assert np.abs(c).max() > 1e-3  # c(i) was learned
    np.testing.assert_allclose(biased.predict(["stranger"] * len(items), items),
                               np.clip(mu + c, 1, 5), rtol=1e-5)


def test_item_means_shrink_towards_the_global_mean(tiny_explicit: Interactions) -> None:
    # alien: ratings 5, 4, 3, 4 (Σ 16, n 4); global mean C = 52 / 16 = 3.25
    counts = tiny_explicit.item_counts()
    sums = tiny_explicit.item_means() * counts
    for m in (0.0, 1.0, 5.0):
        model = CollaborativeFiltering(embedding_size=2, epochs=1, mean_shrinkage=m)
        expected = (sums + m * 3.25) / (counts + m)
        np.testing.assert_allclose(model.fit(tiny_explicit).item_means_, expected, rtol=1e-6)
    alien = tiny_explicit.items.index(["alien"])[0]
    assert model.item_means_[alien] == pytest.approx((16 + 5 * 3.25) / 9)


def test_unknown_item_gets_the_global_mean(tiny_explicit: Interactions) -> None:
    model = CollaborativeFiltering(embedding_size=3).fit(tiny_explicit)
    predicted = model.predict(["ann", "stranger"], ["zardoz", "zardoz"])
    np.testing.assert_allclose(predicted, [3.25, 3.25], rtol=1e-6)  # 52 / 16


def test_without_mean_normalisation_item_means_are_zero(tiny_explicit: Interactions) -> None:
    model = CollaborativeFiltering(embedding_size=2, mean_normalize=False).fit(tiny_explicit)
    assert not np.any(model.item_means_)
    binary = CollaborativeFiltering(kind="binary", embedding_size=2)
    assert binary.config.normalizes is False  # the default for binary labels


# ------------------------------------------------------------------------------ fold-in
NEW_RATINGS = {"alien": 5.0, "dune": 1.0, "fargo": 4.0, "brazil": 2.0}


def hand_fold_in(model: CollaborativeFiltering, ratings: dict) -> np.ndarray:
    """[w, b] by NumPy: ridge regression on [x(i), 1] with the item features fixed."""
    X, _, _, c, mu = learned(model)
    idx = model.items_.index(list(ratings))
    F = np.hstack([X[idx], np.ones((len(idx), 1))])
    target = np.array(list(ratings.values())) - mu[idx] - c[idx]
    scale = len(idx) if model.config.reg_scaling == "count" else 1
    d = model.config.embedding_size
    reg, bias_reg = regularisation(model)
    lam = np.diag(np.r_[[reg] * d, bias_reg]) * scale
    return np.linalg.solve(F.T @ F + lam, F.T @ target)


@pytest.mark.parametrize(
    "config",
    [{}, {"reg_scaling": "none"}, {"bias_reg": 0.3}, {"item_bias": False}, TEXTBOOK],
    ids=["defaults", "textbook-lambda", "bias-reg", "no-item-bias", "textbook"],
)
def test_fold_in_user_is_ridge_regression_on_fixed_item_features(
    config: dict, tiny_explicit: Interactions
) -> None:
    model = CollaborativeFiltering(embedding_size=3, reg=0.5, **config).fit(tiny_explicit)
    w, b = model.fold_in_user(list(NEW_RATINGS), list(NEW_RATINGS.values()))
    assert w.shape == (3,)
    np.testing.assert_allclose(np.r_[w, b], hand_fold_in(model, NEW_RATINGS), rtol=1e-4,
                               atol=1e-5)


def test_fold_in_equals_partial_fit_without_item_updates(tiny_explicit: Interactions) -> None:
    model = CollaborativeFiltering(embedding_size=3, dtype="float64").fit(tiny_explicit)
    w, b = model.fold_in_user(list(NEW_RATINGS), list(NEW_RATINGS.values()))
    scores = model.fold_in(NEW_RATINGS)

    plus = Interactions.from_arrays(
        np.r_[tiny_explicit.user_ids, ["zed"] * len(NEW_RATINGS)],
        np.r_[tiny_explicit.item_ids, list(NEW_RATINGS)],
        np.r_[tiny_explicit.values, list(NEW_RATINGS.values())],
        rating_scale=(1.0, 5.0),
    )
    updated = copy.deepcopy(model).partial_fit(plus, update_items=False)
    row = updated.users_.index(["zed"])[0]
    np.testing.assert_allclose(updated.item_factors_, model.item_factors_)  # items stay fixed
    np.testing.assert_allclose(updated.user_factors_[row], w, rtol=1e-5, atol=1e-6)
    assert updated.user_bias_[row] == pytest.approx(b, rel=1e-5, abs=1e-6)
    items = model.items_.ids
    np.testing.assert_allclose(updated.predict(["zed"] * len(items), items), scores, rtol=1e-5)


def test_fold_in_scores_every_item_in_vocabulary_order(tiny_explicit: Interactions) -> None:
    model = CollaborativeFiltering(embedding_size=3).fit(tiny_explicit)
    w, b = model.fold_in_user(list(NEW_RATINGS), list(NEW_RATINGS.values()))
    X, _, _, c, mu = learned(model)
    expected = np.clip(X @ w + b + c + mu, 1, 5)
    scores = model.fold_in(NEW_RATINGS)
    assert scores.shape == (len(model.items_),)
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    # the same from a Series or a DataFrame
    import pandas as pd

    series = pd.Series(NEW_RATINGS)
    frame = pd.DataFrame({"item_id": list(NEW_RATINGS), "rating": list(NEW_RATINGS.values())})
    np.testing.assert_allclose(model.fold_in(series), scores)
    np.testing.assert_allclose(model.fold_in(frame), scores)
    # recommend_for_ratings: the best unrated items by those scores (plain ordering) ...
    plain = model.with_params(rank_by="prediction").fit(tiny_explicit)
    ids, best = plain.recommend_for_ratings(NEW_RATINGS, k=2)
    unrated = [i for i, item in enumerate(model.items_.ids) if item not in NEW_RATINGS]
    order = sorted(unrated, key=lambda i: -scores[i])
    assert set(ids) <= {model.items_.ids[i] for i in unrated}
    np.testing.assert_allclose(best, scores[order[:2]], rtol=1e-6)
    # ... or by the support-shrunk scores, as recommend ranks known users
    counts = np.bincount(tiny_explicit.item_idx, minlength=len(model.items_)).astype(float)
    weight = counts / (counts + model.config.confidence_prior * counts[counts > 0].mean())
    C = tiny_explicit.global_mean()
    shrunk = C + (np.asarray(X @ w + b + c + mu, dtype=np.float64) - C) * weight
    ids, best = model.recommend_for_ratings(NEW_RATINGS, k=2)
    order = sorted(unrated, key=lambda i: -shrunk[i])
    assert list(ids) == [model.items_.ids[i] for i in order[:2]]
    np.testing.assert_allclose(best, np.clip(shrunk[order[:2]], 1, 5), rtol=1e-5)


def test_fold_in_a_planted_user_ranks_their_liked_items_first(planted_explicit) -> None:  # type: ignore[no-untyped-def]
    data = planted_explicit.ratings
    model = CollaborativeFiltering(embedding_size=3, reg=0.01, epochs=30).fit(data)
    # a new user who behaves exactly like existing user 0 but rated only 12 items
    items = np.arange(data.n_items)
    truth = planted_explicit.true_score(np.zeros(len(items), dtype=int), items)
    rated = np.random.default_rng(1).choice(items, 12, replace=False)
    scores = model.fold_in(dict(zip(rated.tolist(), np.clip(truth[rated], 1, 5), strict=True)))
    unrated = np.setdiff1d(items, rated)
    correlation = np.corrcoef(scores[unrated], truth[unrated])[0, 1]
    assert correlation > 0.8


def test_fold_in_with_no_ratings_gives_the_unknown_user_prediction(
    tiny_explicit: Interactions,
) -> None:
    model = CollaborativeFiltering(embedding_size=3).fit(tiny_explicit)
    w, b = model.fold_in_user([], [])
    assert not w.any() and b == 0.0
    items = model.items_.ids
    np.testing.assert_allclose(model.fold_in({}), model.predict(["x"] * len(items), items))


def test_fold_in_rejects_bad_input(tiny_explicit: Interactions) -> None:
    model = CollaborativeFiltering(embedding_size=3).fit(tiny_explicit)
    with pytest.raises(UnknownIdError):
        model.fold_in({"zardoz": 4.0})
    with pytest.raises(DataError):
        model.fold_in_user(["alien", "alien"], [4.0, 5.0])
    with pytest.raises(DataError):
        model.fold_in_user(["alien"], [6.0])  # outside the training scale (1, 5)
    with pytest.raises(DataError):
        model.fold_in_user(["alien", "dune"], [4.0])


def test_binary_fold_in_minimises_the_regularised_logistic_loss(
    tiny_binary: Interactions,
) -> None:
    model = CollaborativeFiltering(kind="binary", embedding_size=3, reg=0.2, bias_reg=0.1,
                                   dtype="float64").fit(tiny_binary)
    labels = {"alien": 1.0, "brazil": 0.0, "casablanca": 1.0, "dune": 0.0, "fargo": 1.0}
    w, b = model.fold_in_user(list(labels), list(labels.values()))
    X, _, _, c, mu = learned(model)
    idx = model.items_.index(list(labels))
    F = np.hstack([X[idx], np.ones((len(idx), 1))])
    y = np.array(list(labels.values()))
    offset = c[idx] + mu[idx]
    lam = np.r_[[0.2] * 3, 0.1] * len(idx)  # reg_scaling="count": λ times the number of labels

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = F @ theta + offset
        f = 1 / (1 + np.exp(-z))
        value = np.sum(np.logaddexp(0, z) - y * z) + 0.5 * np.sum(lam * theta**2)
        return float(value), F.T @ (f - y) + lam * theta

    best = scipy.optimize.minimize(loss, np.zeros(4), jac=True, method="BFGS",
                                   options={"gtol": 1e-12})
    np.testing.assert_allclose(np.r_[w, b], best.x, atol=1e-5)
    assert loss(np.r_[w, b])[0] == pytest.approx(best.fun, rel=1e-9)
    probabilities = model.fold_in(labels)
    np.testing.assert_allclose(probabilities, 1 / (1 + np.exp(-(X @ w + b + c))), rtol=1e-5)


# ------------------------------------------------------------------------------ binary labels
@pytest.fixture(scope="module")
def two_tastes() -> tuple[Interactions, np.ndarray, np.ndarray]:
    """Positive-only events: users 0-19 engage with items 0-9, users 20-39 with items 10-19.

    Each user has 6 training positives in their own group and one held-out positive there.
    Returns (train, held-out item per user, group of each user).
    """
    rng = np.random.default_rng(3)
    users, items, held_out = [], [], []
    for user in range(40):
        group = user // 20
        chosen = rng.choice(10, 7, replace=False) + 10 * group
        users += [user] * 6
        items += chosen[:6].tolist()
        held_out.append(chosen[6])
    vocab = Vocabulary(np.arange(20))
    train = Interactions.from_arrays(users, items, items=vocab)
    return train, np.array(held_out), np.arange(40) // 20


@pytest.mark.parametrize("solver", ["als", "adam"])
def test_positive_only_data_is_trained_with_sampled_negatives(solver: str, two_tastes) -> None:  # type: ignore[no-untyped-def]
    train, held_out, _ = two_tastes
    assert train.is_positive_only
    model = CollaborativeFiltering(kind="binary", embedding_size=2, reg=0.05, solver=solver)
    model.fit(train)
    per_user_auc = []
    for user, positive in enumerate(held_out):
        seen = set(train.item_ids[train.user_ids == user].tolist())
        candidates = np.array([i for i in range(20) if i not in seen])
        scores = model.predict(np.full(len(candidates), user), candidates)
        per_user_auc.append(auc(scores, (candidates == positive).astype(float)))
    # held-out positives rank above most items the user never engaged with; a model that saw
    # only 1s would score everything ~1 and rank at random
    assert np.mean(per_user_auc) > 0.8
    assert np.all(model.predict(np.arange(40), held_out) < 0.999)


def test_als_on_positive_only_data_converges(two_tastes) -> None:  # type: ignore[no-untyped-def]
    train, _, group = two_tastes
    # one draw of the negatives, so that every sweep lowers the same J
    model = CollaborativeFiltering(kind="binary", embedding_size=2, reg=0.05, bias_reg=0.0,
                                   negative_ratio=1.0, epochs=20,
                                   resample_negatives=False).fit(train)
    costs = np.array([h["cost"] for h in model.history_])
    assert np.all(np.isfinite(costs))
    assert costs[-1] < costs[0]
    assert costs[-1] == pytest.approx(costs.min(), rel=1e-3)
    scores = model.predict(np.repeat(np.arange(40), 20), np.tile(np.arange(20), 40))
    own_group = (np.tile(np.arange(20), 40) // 10) == np.repeat(group, 20)
    assert auc(scores, own_group.astype(float)) > 0.9


def test_labelled_binary_data_is_used_as_given(tiny_binary: Interactions) -> None:
    model = CollaborativeFiltering(kind="binary", embedding_size=2, dtype="float64")
    model.fit(tiny_binary)
    J, _ = model_cost(model, tiny_binary)  # J over exactly the given events
    assert float(J.detach()) == pytest.approx(model.history_[-1]["cost"], rel=1e-9)
    # no negatives are sampled, so negative_ratio does not matter
    other = model.with_params(negative_ratio=model.config.sampling[0] + 1.5).fit(tiny_binary)
    np.testing.assert_array_equal(other.item_factors_, model.item_factors_)


def test_kind_mismatch_raises_data_error(
    tiny_explicit: Interactions, tiny_binary: Interactions
) -> None:
    with pytest.raises(DataError, match="binarize"):
        CollaborativeFiltering(kind="binary").fit(tiny_explicit)
    with pytest.raises(DataError, match="kind='binary'"):
        CollaborativeFiltering(kind="explicit").fit(tiny_binary)
    fitted = CollaborativeFiltering(kind="binary", embedding_size=2).fit(tiny_binary)
    with pytest.raises(DataError, match="binarize"):
        fitted.partial_fit(tiny_explicit)
    # binarize is the documented way from ratings to positives
    positives = tiny_explicit.binarize(4.0)
    assert CollaborativeFiltering(kind="binary", embedding_size=2).fit(positives).is_fitted


# ------------------------------------------------------------------------------ early stopping
@pytest.fixture(scope="module")
def overfitting(low_rank):  # type: ignore[no-untyped-def]
    """Noisy ratings on which an unregularised model of too high rank overfits."""
    train, test, _ = low_rank(n_users=40, n_items=30, rank=2, density=0.4, noise=0.8,
                              test_share=0.3, seed=5)
    return train, test


def test_early_stopping_keeps_the_best_epoch(overfitting) -> None:  # type: ignore[no-untyped-def]
    train, validation = overfitting
    model = CollaborativeFiltering(embedding_size=8, reg=0.0, epochs=60, early_stopping=3,
                                   item_bias=False, seed=1)
    model.fit(train, validation=validation)
    val = np.array([h["val_rmse"] for h in model.history_])
    best = int(np.argmin(val))
    assert len(val) < 60  # it stopped
    assert len(val) == best + 1 + 3  # exactly `patience` epochs after the best one
    final = rmse(model.predict(validation.user_ids, validation.item_ids), validation.values)
    assert final == pytest.approx(val[best], rel=1e-5)
    assert final < val[-1]  # the best parameters, not the last ones


def test_validation_metrics_without_early_stopping(overfitting) -> None:  # type: ignore[no-untyped-def]
    train, validation = overfitting
    seen: list[tuple[int, dict]] = []
    model = CollaborativeFiltering(embedding_size=2, epochs=5)
    model.fit(train, validation=validation, callback=lambda e, m: seen.append((e, m)))
    assert [e for e, _ in seen] == [1, 2, 3, 4, 5]
    assert all("val_rmse" in h and "cost" in h for h in model.history_)
    final = rmse(model.predict(validation.user_ids, validation.item_ids), validation.values)
    assert final == pytest.approx(model.history_[-1]["val_rmse"], rel=1e-5)


def test_binary_validation_reports_log_loss(tiny_binary: Interactions) -> None:
    model = CollaborativeFiltering(kind="binary", embedding_size=2, epochs=3)
    model.fit(tiny_binary, validation=tiny_binary)
    p = model.predict(tiny_binary.user_ids, tiny_binary.item_ids).astype(np.float64)
    y = tiny_binary.values
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert model.history_[-1]["val_logloss"] == pytest.approx(expected, rel=1e-5)


def test_adam_fit_with_a_validation_set(overfitting) -> None:  # type: ignore[no-untyped-def]
    train, validation = overfitting
    model = CollaborativeFiltering(solver="adam", embedding_size=2, epochs=5)
    model.fit(train, validation=validation)
    assert len(model.history_) == 5 and "val_rmse" in model.history_[-1]


# ------------------------------------------------------------------------------ similar items
def with_item_factors(model: CollaborativeFiltering, X: np.ndarray) -> CollaborativeFiltering:
    """The fitted model with its item features replaced by hand-made ones."""
    model._params.X = np.asarray(X, dtype=model.item_factors_.dtype)
    return model


#: alien, brazil, casablanca, dune, eraserhead, fargo (the tiny vocabulary's order)
HAND_FACTORS = np.array([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0],
                         [2.0, -0.1]])


def test_similar_items_by_squared_euclidean_distance(tiny_explicit: Interactions) -> None:
    model = CollaborativeFiltering(embedding_size=2, epochs=1, **PLAIN).fit(tiny_explicit)
    with_item_factors(model, HAND_FACTORS)
    similar = model.similar_items(["alien"], k=5)
    # from (1, 0): dune 1, fargo 1.01, casablanca 2, eraserhead 4, brazil 82
    assert similar.similar_ids.tolist() == [["dune", "fargo", "casablanca", "eraserhead",
                                             "brazil"]]
    np.testing.assert_allclose(similar.distances, [[1.0, 1.01, 2.0, 4.0, 82.0]], rtol=1e-5)
    assert similar.item_ids.tolist() == ["alien"]


def test_similar_items_by_cosine(tiny_explicit: Interactions) -> None:
    model = CollaborativeFiltering(embedding_size=2, epochs=1, **PLAIN).fit(tiny_explicit)
    with_item_factors(model, HAND_FACTORS)
    similar = model.similar_items("alien", k=5, metric="cosine")
    cos = np.array([2 / math.sqrt(4.01), 10 / math.sqrt(101), 1 / math.sqrt(2), 0.0, -1.0])
    assert similar.similar_ids.tolist() == [["fargo", "brazil", "dune", "casablanca",
                                             "eraserhead"]]
    np.testing.assert_allclose(similar.distances[0], 1 - cos, rtol=1e-4, atol=1e-6)


def test_similar_items_never_returns_the_item_itself(tiny_explicit: Interactions) -> None:
    model = CollaborativeFiltering(embedding_size=2, epochs=1, **PLAIN).fit(tiny_explicit)
    with_item_factors(model, np.zeros((6, 2)))  # every item at the same point
    items = tiny_explicit.items.ids
    similar = model.similar_items(items, k=7)
    assert similar.similar_ids.shape == (6, 7)
    for row, item in enumerate(items):
        found = similar.similar_ids[row, :5].tolist()
        assert item not in found and sorted(found) == sorted(set(items) - {item})
        assert np.all(np.isnan(similar.distances[row, 5:]))  # only 5 other items exist
        assert similar.similar_ids[row, 5:].tolist() == [None, None]


def test_similar_items_matches_brute_force(planted_explicit) -> None:  # type: ignore[no-untyped-def]
    model = CollaborativeFiltering(embedding_size=3, epochs=5, **PLAIN).fit(
        planted_explicit.ratings
    )
    X = np.array(model.item_factors_, dtype=np.float64)
    queries = np.arange(0, 80, 7)
    similar = model.similar_items(queries, k=6)
    for row, item in enumerate(queries):
        distance = ((X - X[item]) ** 2).sum(1)
        distance[item] = np.inf
        expected = np.sort(distance)[:6]
        np.testing.assert_allclose(similar.distances[row], expected, rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(distance[similar.similar_ids[row].astype(int)], expected,
                                   rtol=1e-3, atol=1e-6)


def test_similar_items_skips_items_without_training_events(
    tiny_explicit: Interactions,
) -> None:
    items = Vocabulary(np.concatenate([tiny_explicit.items.ids, np.array(["ghost"], object)]))
    data = Interactions.from_arrays(tiny_explicit.user_ids, tiny_explicit.item_ids,
                                    tiny_explicit.values, rating_scale=(1.0, 5.0), items=items)
    model = CollaborativeFiltering(embedding_size=2, epochs=2).fit(data)
    similar = model.similar_items(["alien", "ghost"], k=6)
    assert "ghost" not in similar.similar_ids[0].tolist()
    assert "ghost" not in similar.similar_ids[1].tolist()
    with pytest.raises(ConfigError, match="metric"):
        model.similar_items(["alien"], metric="manhattan")  # type: ignore[arg-type]
    with pytest.raises(UnknownIdError):
        model.similar_items(["zardoz"])


# ------------------------------------------------------------------------------ learned arrays
@pytest.mark.parametrize(
    ("solver", "kind"),
    [("als", "explicit"), ("adam", "explicit"), ("gibbs", "explicit"), ("als", "binary"),
     ("adam", "binary")],
)
def test_predict_is_the_formula_on_the_learned_arrays(
    solver: str, kind: str, tiny_explicit: Interactions, tiny_binary: Interactions
) -> None:
    data = tiny_explicit if kind == "explicit" else tiny_binary
    model = CollaborativeFiltering(kind=kind, solver=solver, embedding_size=2, epochs=5,
                                   samples=3)
    model.fit(data)
    # readable straight after fit, for every solver (gibbs keeps the 3 draws side by side)
    X, W, b, c, mu = learned(model)
    width = 6 if solver == "gibbs" else 2
    assert X.shape == (6, width) and W.shape == (6, width)
    assert b.shape == (6,) and c.shape == (6,)
    z = (X[data.item_idx] * W[data.user_idx]).sum(1)
    z += b[data.user_idx] + c[data.item_idx] + mu[data.item_idx]
    expected = np.clip(z, 1, 5) if kind == "explicit" else 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(model.predict(data.user_ids, data.item_ids), expected, rtol=1e-5)


def test_partial_fit_continues_where_fit_stopped(tiny_explicit: Interactions) -> None:
    straight = CollaborativeFiltering(embedding_size=3, epochs=10, dtype="float64")
    straight.fit(tiny_explicit)
    resumed = CollaborativeFiltering(embedding_size=3, epochs=5, dtype="float64")
    resumed.fit(tiny_explicit).partial_fit(tiny_explicit, epochs=5)
    np.testing.assert_array_equal(resumed.item_factors_, straight.item_factors_)
    np.testing.assert_array_equal(resumed.user_factors_, straight.user_factors_)
    assert [h["epoch"] for h in resumed.history_] == list(range(1, 11))
    assert resumed.history_ == straight.history_


def test_partial_fit_adds_new_events_to_the_seen_items(tiny_explicit: Interactions) -> None:
    model = CollaborativeFiltering(embedding_size=3, epochs=5).fit(tiny_explicit)
    more = Interactions.from_arrays(["ann", "zed"], ["dune", "fargo"], [2.0, 4.0],
                                    rating_scale=(1.0, 5.0))
    model.partial_fit(more, update_items=False)
    rec = model.recommend(["ann", "zed"], k=6)
    # ann saw alien, brazil, casablanca in training and dune now; zed saw fargo
    assert sorted(i for i in rec.item_ids[0] if i is not None) == ["eraserhead", "fargo"]
    assert sorted(i for i in rec.item_ids[1] if i is not None) == [
        "alien", "brazil", "casablanca", "dune", "eraserhead"]
    assert rec.fallback.tolist() == [False, False]


# ------------------------------------------------------------------------------ bugs found
def test_adam_partial_fit_with_a_new_user(tiny_explicit: Interactions) -> None:
    model = CollaborativeFiltering(solver="adam", embedding_size=2, epochs=5).fit(tiny_explicit)
    more = Interactions.from_arrays(["zed", "zed"], ["alien", "dune"], [5.0, 1.0],
                                    rating_scale=(1.0, 5.0))
    model.partial_fit(more, epochs=2)
    assert "zed" in model.users_


def test_partial_fit_keeps_the_unknown_user_fallback(planted_explicit) -> None:  # type: ignore[no-untyped-def]
    data = planted_explicit.ratings
    model = CollaborativeFiltering(embedding_size=3, epochs=5).fit(data)
    before = model.recommend([-1], k=5).item_ids
    more = Interactions.from_arrays([1000, 1000], [3, 4], [5.0, 5.0], rating_scale=(1.0, 5.0))
    model.partial_fit(more, update_items=False)
    np.testing.assert_array_equal(model.recommend([-1], k=5).item_ids, before)


def test_exclude_seen_removes_items_rated_zero() -> None:
    data = Interactions.from_arrays(["a", "a", "b", "b", "c"], ["x", "y", "y", "z", "x"],
                                    [0.0, 8.0, 3.0, 10.0, 5.0], rating_scale=(0.0, 10.0))
    model = CollaborativeFiltering(embedding_size=2, epochs=3).fit(data)
    recommended = model.recommend(["a"], k=3).item_ids[0].tolist()
    assert recommended[0] == "z" and recommended[1:] == [None, None]


def test_gibbs_partial_fit_with_a_new_user(tiny_explicit: Interactions) -> None:
    model = CollaborativeFiltering(solver="gibbs", embedding_size=2, epochs=3, samples=2)
    model.fit(tiny_explicit)
    more = Interactions.from_arrays(["zed"], ["alien"], [4.0], rating_scale=(1.0, 5.0))
    model.partial_fit(more, update_items=False)
    assert np.isfinite(model.predict(["zed"], ["dune"])).all()


GIBBS_FOLD_IN = """
import numpy as np
from palate import CollaborativeFiltering, Interactions
data = Interactions.from_arrays({users!r}, {items!r}, {values!r}, rating_scale=(1.0, 5.0))
model = CollaborativeFiltering(solver="gibbs", embedding_size=2, epochs=3, samples=2).fit(data)
w, b = model.fold_in_user(["alien", "dune"], [5.0, 1.0])
X = model.item_factors_
assert w.shape == (X.shape[1],), (w.shape, X.shape)
scores = model.fold_in({{"alien": 5.0, "dune": 1.0}})
expected = np.clip(X @ w + b + model.item_bias_ + model.item_means_, 1, 5)
np.testing.assert_allclose(scores, expected, rtol=1e-5)
"""


def test_gibbs_fold_in(tiny_explicit: Interactions) -> None:
    import subprocess
    import sys

    script = GIBBS_FOLD_IN.format(users=tiny_explicit.user_ids.tolist(),
                                  items=tiny_explicit.item_ids.tolist(),
                                  values=tiny_explicit.values.tolist())
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_bias_fit_first_holds_the_closed_form_biases_fixed() -> None:
    from palate.data.synthetic import synthetic_ratings

    data = synthetic_ratings(30, 20, 300, seed=4).ratings
    model = CollaborativeFiltering(
        embedding_size=3, reg=0.1, bias_reg=0.2, epochs=4, bias_fit="first", bias_epochs=2,
        reg_scaling="count", reg_count_floor=0.0, mean_shrinkage=0.0,
    ).fit(data)
    u, i = data.user_idx, data.item_idx
    r = data.values - model.item_means_[i]
    n_u = np.bincount(u, minlength=data.n_users)
    n_i = np.bincount(i, minlength=data.n_items)
    b, c = np.zeros(data.n_users), np.zeros(data.n_items)
    for _ in range(2):  # b(j) = Σ (r − c) / (n (1 + λ_b)), then c(i) likewise
        b = np.bincount(u, r - c[i], data.n_users) / np.maximum(n_u * 1.2, 1e-12)
        c = np.bincount(i, r - b[u], data.n_items) / np.maximum(n_i * 1.2, 1e-12)
    np.testing.assert_allclose(model.user_bias_, b, atol=1e-5)
    np.testing.assert_allclose(model.item_bias_, c, atol=1e-5)
    joint = CollaborativeFiltering(embedding_size=3, reg=0.1, bias_reg=0.2, epochs=4).fit(data)
    assert not np.allclose(joint.user_bias_, b, atol=1e-3)
    with pytest.raises(ConfigError, match="bias_fit"):
        CollaborativeFiltering(kind="binary", bias_fit="first")


# ------------------------------------------------------------------------------ ranking
def test_confidence_ranking_is_the_support_shrunk_prediction(tiny_explicit: Interactions) -> None:
    model = CollaborativeFiltering(embedding_size=2, epochs=3, confidence_prior=2.0)
    model.fit(tiny_explicit)
    assert model.ranks_by == "confidence"
    users, items = tiny_explicit.users.ids, tiny_explicit.items.ids
    rows = np.arange(len(users))
    predicted = model.linear_scores()(rows).astype(np.float64)
    counts = np.bincount(tiny_explicit.item_idx, minlength=len(items)).astype(np.float64)
    m = 2.0 * counts[counts > 0].mean()
    C = tiny_explicit.global_mean()
    expected = C + (predicted - C) * (counts / (counts + m))[None, :]
    np.testing.assert_allclose(model.ranking_scores()(rows), expected, rtol=1e-5, atol=1e-5)
    # recommend ranks and scores by it; predict still gives the predicted rating
    recs = model.recommend(users, k=2, exclude_seen=False)
    for r in range(len(users)):
        listed = tiny_explicit.items.index(recs.item_ids[r])
        np.testing.assert_allclose(recs.scores[r], np.clip(expected[r, listed], 1, 5), rtol=1e-5)
        assert set(listed) == set(np.argsort(-expected[r])[:2]) or len(set(expected[r])) < len(
            expected[r])
    np.testing.assert_allclose(model.predict(users, users.size * [items[0]]),
                               np.clip(predicted[:, 0], 1, 5), rtol=1e-5)


def test_plain_ordering_is_one_option_away(tiny_explicit: Interactions) -> None:
    plain = CollaborativeFiltering(embedding_size=2, epochs=3, rank_by="prediction")
    plain.fit(tiny_explicit)
    assert plain.ranks_by == "prediction"
    users = tiny_explicit.users.ids
    recs = plain.recommend(users, k=3, exclude_seen=False)
    for r, user in enumerate(users):
        np.testing.assert_allclose(recs.scores[r], plain.predict([user] * 3, recs.item_ids[r]),
                                   rtol=1e-6)
    assert CollaborativeFiltering(kind="binary").config.ranking == "prediction"


def test_confidence_similar_items_inflate_rarely_rated_distances(
    tiny_explicit: Interactions,
) -> None:
    model = CollaborativeFiltering(embedding_size=2, epochs=3).fit(tiny_explicit)
    plain = model.with_params(rank_by="prediction").fit(tiny_explicit)
    counts = np.bincount(tiny_explicit.item_idx).astype(np.float64)
    scale = 1.0 + counts.mean() / counts
    query = tiny_explicit.items.ids[:1]
    found = model.similar_items(query, k=5)
    base = plain.similar_items(query, k=5)
    by_id = dict(zip(base.similar_ids[0].tolist(), base.distances[0].tolist(), strict=True))
    for item, distance in zip(found.similar_ids[0].tolist(), found.distances[0].tolist(),
                              strict=True):
        index = int(tiny_explicit.items.index([item])[0])
        assert distance == pytest.approx(by_id[item] * scale[index], rel=1e-5)


@pytest.mark.parametrize(
    ("options", "name"),
    [({"rank_by": "best"}, "rank_by"), ({"rank_by": "confidence", "kind": "binary"}, "rank_by"),
     ({"confidence_prior": 0.0}, "confidence_prior")],
)
def test_invalid_ranking_options(options: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        CollaborativeFiltering(**options)


def test_every_ranking_hyperparameter_changes_the_list(planted_explicit: Any) -> None:
    data = planted_explicit.ratings
    users = data.users.ids[:20]
    base = CollaborativeFiltering(embedding_size=3, epochs=4).fit(data)
    lists = base.recommend(users, k=5)
    for change in ({"rank_by": "prediction"}, {"confidence_prior": 1.0}):
        other = base.with_params(**change).fit(data).recommend(users, k=5)
        assert not np.array_equal(lists.item_ids, other.item_ids), change


# ------------------------------------------------------------------------------ sampled negatives
def test_negative_item_probabilities_follow_counts_to_the_power_beta() -> None:
    from palate.models.collaborative.entries import negative_item_probabilities

    counts = np.array([0, 1, 4, 9])
    np.testing.assert_allclose(negative_item_probabilities(counts, 0.5), [0, 1 / 6, 2 / 6, 3 / 6])
    np.testing.assert_allclose(negative_item_probabilities(counts, 1.0),
                               [0, 1 / 14, 4 / 14, 9 / 14])
    np.testing.assert_allclose(negative_item_probabilities(counts, 0.0), [0.25] * 4)


def test_entry_weights_weigh_the_positives() -> None:
    from palate.models.collaborative.entries import entry_weights

    np.testing.assert_array_equal(entry_weights(np.array([1.0, 0.0, 1.0]), 3.0), [3, 1, 3])
    assert entry_weights(np.array([1.0, 0.0]), 1.0) is None


def test_popularity_sampled_negatives_follow_the_probabilities() -> None:
    from palate.models.collaborative.entries import with_negatives

    rng = np.random.default_rng(0)
    n_users, n_items = 400, 6
    u = np.arange(n_users, dtype=np.int64)
    i = np.zeros(n_users, dtype=np.int64)  # every user's one positive is item 0
    probs = np.array([0.0, 0.1, 0.1, 0.2, 0.2, 0.4])
    nu, ni, y = with_negatives(u, i, np.ones(n_users), n_items, 20.0, rng, probs)
    neg = ni[y == 0]
    assert not np.any(neg == 0)  # probability 0, and every user's positive
    # repeated pairs are dropped, so compare the share of users that drew each item at least
    # once against 1 - (1 - p)^20 (the draws of a user are independent)
    share = np.array([np.unique(nu[(y == 0) & (ni == k)]).size for k in range(n_items)]) / n_users
    expected = 1 - (1 - probs) ** 20
    np.testing.assert_allclose(share[1:], expected[1:], atol=0.08)


def test_positive_weight_and_exponent_are_validated() -> None:
    with pytest.raises(ConfigError, match="positive_weight"):
        CollaborativeFiltering(kind="binary", positive_weight=0)
    with pytest.raises(ConfigError, match="negative_exponent"):
        CollaborativeFiltering(kind="binary", negative_exponent=1.5)
    with pytest.raises(ConfigError, match="resample_negatives"):
        CollaborativeFiltering(kind="binary", resample_negatives=1)  # type: ignore[arg-type]


def test_sampling_defaults_depend_on_the_solver() -> None:
    from palate.models.collaborative.config import CollaborativeFilteringConfig as Config

    assert Config(kind="binary").sampling == (12.0, 0.5, 3.0)
    assert Config(kind="binary", solver="adam").sampling == (4.0, 0.0, 1.0)
    assert Config(kind="binary", solver="adam", negative_ratio=2, positive_weight=5).sampling == (
        2.0, 0.0, 5.0)
