"""The contract every palate model keeps (the model contract of palate.models.base), checked
for every model and objective: collaborative filtering (each solver, both kinds of label),
implicit ALS, EASE, the top-N blend, popularity, the two towers (ratings, binary, retrieval) and the
retrieve-then-rank pipeline. Add a model here and it is tested like the rest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import palate
from palate import (
    EASE,
    BayesianCollaborativeFiltering,
    CollaborativeFiltering,
    ConfigError,
    DataError,
    HybridRecommender,
    ImplicitALS,
    Interactions,
    ItemFeatures,
    NotFittedError,
    Popularity,
    Recommendations,
    RetrieveThenRank,
    TopNBlend,
    TwoTower,
    UserFeatures,
)
from palate.errors import CapabilityError
from palate.models.base import Model
from palate.models.two_tower.config import COLD_ITEMS
from palate.retrieval.sources import Popular, SimilarToRecent

K = 3

#: small towers, few epochs: the contract, not the quality
TOWER: dict[str, Any] = {
    "hidden_sizes": (8,), "embedding_size": 4, "epochs": 3, "batch_size": 4,
    "early_stopping": None, "validation_fraction": 0.0,
}


def pipeline(**options: Any) -> RetrieveThenRank:
    """A retrieve-then-rank pipeline over a collaborative-filtering ranker, with sources
    that reach every item of the tiny catalogue."""
    return RetrieveThenRank(
        CollaborativeFiltering(**options),
        [SimilarToRecent(n_recent=10, n_similar=10), Popular(top=20)],
    )


def feature_tables(data: Interactions) -> dict[str, Any]:
    """User and item feature tables of exactly the users and items of ``data`` (an age; a
    genre and a year): fit options of a two-tower model that reads features."""
    users, items = data.users.ids, data.items.ids
    return {
        "user_features": UserFeatures(
            pd.DataFrame({"user_id": users, "age": 20 + 7 * np.arange(len(users))}),
            {"age": "numeric"},
        ),
        "item_features": ItemFeatures(
            pd.DataFrame({"item_id": items,
                          "genres": [["Drama"] if j % 2 else ["Comedy"] for j in range(len(items))],
                          "year": 1950 + 11 * np.arange(len(items))}),
            {"genres": "multi", "year": "year"},
        ),
    }


@dataclass(frozen=True)
class Case:
    """One model configuration under contract."""

    name: str
    make: Callable[..., Model]
    data: str  # name of the conftest fixture with its training data
    fallback_by: str  # what the unknown-user fallback ranks by (a Popularity "by")
    options: dict[str, Any] = field(default_factory=dict)
    #: keyword arguments of ``fit`` made from the training data (feature tables)
    fit_options: Callable[[Interactions], dict[str, Any]] | None = None

    @property
    def is_cf(self) -> bool:
        return self.name.startswith("cf")

    def model(self, **changes: Any) -> Model:
        return self.make(**{**self.options, **changes})

    def fit(self, model: Model, data: Interactions) -> Model:
        given = self.fit_options is not None and isinstance(data, Interactions)
        options = self.fit_options(data) if given else {}  # type: ignore[misc]
        return model.fit(data, **options)  # type: ignore[attr-defined, no-any-return]


CASES = [
    Case("cf-als-explicit", CollaborativeFiltering, "tiny_explicit", "mean",
         {"embedding_size": 3, "epochs": 8}),
    Case("cf-adam-explicit", CollaborativeFiltering, "tiny_explicit", "mean",
         {"embedding_size": 3, "epochs": 20, "solver": "adam"}),
    Case("cf-gibbs-explicit", CollaborativeFiltering, "tiny_explicit", "mean",
         {"embedding_size": 3, "epochs": 4, "samples": 3, "solver": "gibbs"}),
    Case("cf-bayes-explicit", BayesianCollaborativeFiltering, "tiny_explicit", "mean",
         {"embedding_size": 3, "epochs": 2, "samples": 3}),
    Case("cf-als-binary", CollaborativeFiltering, "tiny_binary", "count",
         {"embedding_size": 3, "epochs": 8, "kind": "binary"}),
    Case("cf-adam-binary", CollaborativeFiltering, "tiny_binary", "count",
         {"embedding_size": 3, "epochs": 20, "kind": "binary", "solver": "adam"}),
    Case("cf-als-implicit", CollaborativeFiltering, "tiny_positive_only", "count",
         {"embedding_size": 3, "epochs": 3, "kind": "binary"}),
    Case("popularity-count", Popularity, "tiny_explicit", "count"),
    Case("popularity-mean", Popularity, "tiny_explicit", "mean", {"by": "mean"}),
    # 0 labels are events too: seen (never recommended) though not engagements
    Case("ials", ImplicitALS, "tiny_binary", "count", {"embedding_size": 3, "epochs": 3}),
    Case("ease", EASE, "tiny_binary", "count", {"reg": 1.0}),
    Case("ease-plain", EASE, "tiny_binary", "count",
         {"reg": 1.0, "dropout": 0.0, "item_exponent": 0.0}),
    Case("blend", TopNBlend, "tiny_binary", "count",
         {"item_model": EASE(reg=1.0), "factor_model": ImplicitALS(embedding_size=3, epochs=3)}),
    Case("two-tower-ratings", TwoTower, "tiny_explicit", "mean", TOWER),
    Case("two-tower-binary", TwoTower, "tiny_binary", "count",
         {**TOWER, "objective": "binary"}),
    Case("two-tower-retrieval", TwoTower, "tiny_positive_only", "count",
         {**TOWER, "objective": "retrieval", "batch_size": 8}),
    Case("two-tower-features", TwoTower, "tiny_explicit", "mean", TOWER, feature_tables),
    Case("two-tower-cold-items", TwoTower, "tiny_positive_only", "count",
         {**COLD_ITEMS, **TOWER, "batch_size": 8, "id_embedding_size": 4}, feature_tables),
    Case("pipeline", lambda **options: pipeline(**options), "tiny_explicit", "mean",
         {"embedding_size": 3, "epochs": 8}),
    Case("hybrid", HybridRecommender, "tiny_explicit", "mean",
         {"engagement": EASE(reg=1.0), "rating": CollaborativeFiltering(embedding_size=3,
                                                                         epochs=8)}),
]
CF_CASES = [c for c in CASES if c.is_cf]


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def data(case: Case, request: pytest.FixtureRequest) -> Interactions:
    return request.getfixturevalue(case.data)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def fitted(case: Case, data: Interactions) -> Model:
    """A fitted model shared by the read-only tests of this module: do not refit it."""
    return case.fit(case.model(), data)


def renamed(data: Interactions, n: int = 12) -> Interactions:
    """The first ``n`` events with every user and item id renamed: a disjoint vocabulary."""
    part = data.subset(np.arange(n))
    return Interactions.from_arrays(
        ["new-" + u for u in part.user_ids], ["new-" + i for i in part.item_ids], part.values,
        kind=part.kind, rating_scale=part.rating_scale,
    )


def learned_state(model: Model) -> dict[str, np.ndarray]:
    """Every learned array of a fitted model (through the model-file state)."""
    return dict(model.to_state().arrays)


def assert_same_recommendations(a: Recommendations, b: Recommendations) -> None:
    np.testing.assert_array_equal(a.user_ids, b.user_ids)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)
    np.testing.assert_array_equal(a.fallback, b.fallback)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)


def all_pairs(data: Interactions) -> tuple[np.ndarray, np.ndarray]:
    users = np.repeat(data.users.ids, data.n_items)
    items = np.tile(data.items.ids, data.n_users)
    return users, items


def seen_by(data: Interactions, user: object) -> set:
    return set(data.item_ids[data.user_ids == user].tolist())


# ------------------------------------------------------------------------------ fit
def test_fit_returns_self(case: Case, data: Interactions) -> None:
    model = case.model()
    assert not model.is_fitted
    assert case.fit(model, data) is model
    assert model.is_fitted
    assert model.users_ == data.users and model.items_ == data.items


def test_refit_starts_over(case: Case, data: Interactions) -> None:
    model = case.fit(case.model(), data)
    other = renamed(data)
    assert case.fit(model, other) is model
    assert model.users_ == other.users and model.items_ == other.items
    old_user = data.users.ids[0]
    rec = model.recommend([old_user, other.users.ids[0]], k=K, exclude_seen=False)
    known_items = set(other.items.ids.tolist()) | {None}
    assert set(rec.item_ids.ravel().tolist()) <= known_items
    assert rec.fallback.tolist() == [True, False]
    # a second fit is the same as a first fit of a fresh model
    fresh = case.fit(case.model(), other)
    for name, array in learned_state(fresh).items():
        np.testing.assert_array_equal(learned_state(model)[name], array, err_msg=name)
    if case.is_cf:
        assert model.history_ == fresh.history_
        assert len(model.history_) >= model.config.n_epochs


def test_fit_rejects_what_is_not_interactions(case: Case, data: Interactions) -> None:
    with pytest.raises(DataError, match="Interactions"):
        case.fit(case.model(), data.to_pandas())  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ recommend
def test_recommend_shapes_for_one_user_and_a_batch(fitted: Model, data: Interactions) -> None:
    single = fitted.recommend(data.users.ids[0], k=K)
    assert single.item_ids.shape == single.scores.shape == (1, K)
    assert single.user_ids.shape == single.fallback.shape == (1,)
    assert single.scores.dtype == np.float32
    batch = fitted.recommend(data.users.ids, k=K)
    assert batch.item_ids.shape == batch.scores.shape == (data.n_users, K)
    assert batch.user_ids.tolist() == data.users.ids.tolist()
    assert len(batch) == data.n_users
    # best first
    finite = np.where(np.isnan(batch.scores), -np.inf, batch.scores)
    assert np.all(np.diff(finite, axis=1) <= 0)


def test_exclude_seen_removes_training_items(
    case: Case, fitted: Model, data: Interactions, request: pytest.FixtureRequest
) -> None:
    n_items = data.n_items
    rec = fitted.recommend(data.users.ids, k=n_items)
    for row, user in enumerate(data.users.ids):
        seen = seen_by(data, user)
        shown = [i for i in rec.item_ids[row].tolist() if i is not None]
        assert not seen & set(shown), user
        # every unseen item is still there, and the rest is padding
        assert sorted(shown) == sorted(set(data.items.ids.tolist()) - seen), user
        assert np.isnan(rec.scores[row, len(shown):]).all()
    everything = fitted.recommend(data.users.ids, k=n_items, exclude_seen=False)
    for row in range(data.n_users):
        assert sorted(everything.item_ids[row].tolist()) == sorted(data.items.ids.tolist())


def test_batch_equals_single(fitted: Model, data: Interactions) -> None:
    users = np.concatenate([data.users.ids, np.array(["stranger"], dtype=object)])
    batch = fitted.recommend(users, k=K)
    for row, user in enumerate(users):
        single = fitted.recommend([user], k=K)
        np.testing.assert_array_equal(single.item_ids[0], batch.item_ids[row], err_msg=user)
        np.testing.assert_allclose(single.scores[0], batch.scores[row], rtol=1e-6)
        assert single.fallback[0] == batch.fallback[row]
    pair_users, pair_items = all_pairs(data)
    together = fitted.predict(pair_users, pair_items)
    alone = np.array([fitted.predict([u], [i])[0] for u, i in zip(pair_users, pair_items,
                                                                   strict=True)])
    np.testing.assert_allclose(together, alone, rtol=1e-6)


def test_unknown_users_get_popular_items(
    case: Case, fitted: Model, data: Interactions
) -> None:
    rec = fitted.recommend(["stranger", "nobody"], k=K)
    popular = Popularity(by=case.fallback_by).fit(data).recommend(["stranger"], k=K,
                                                                  exclude_seen=False)
    for row in range(2):
        np.testing.assert_array_equal(rec.item_ids[row], popular.item_ids[0])
    assert np.isfinite(rec.scores).all()


def test_unknown_users_are_flagged_as_fallback(
    case: Case, fitted: Model, data: Interactions, request: pytest.FixtureRequest
) -> None:
    known = data.users.ids[0]
    rec = fitted.recommend([known, "stranger", known], k=K)
    assert rec.fallback.tolist() == [False, True, False]


def test_predict_unknown_ids(case: Case, fitted: Model, data: Interactions) -> None:
    known_user, known_item = data.users.ids[0], data.items.ids[0]
    out = fitted.predict([known_user, "stranger", "stranger"], ["zardoz", "zardoz", known_item])
    assert out.shape == (3,)
    # an unknown user is a user with no history: the item's fallback score, never an error
    assert np.isfinite(out[2])
    if fitted.score_kind == "probability":
        finite = out[np.isfinite(out)]
        assert np.all((finite > 0) & (finite < 1))
    if case.is_cf:
        assert np.isfinite(out).all()  # unknown items get the global mean
    elif case.name.startswith(("popularity", "ials", "ease", "blend")):
        assert np.isnan(out[:2]).all()  # nothing is known of the item


def test_k_larger_than_the_catalogue_pads_with_nan(fitted: Model, data: Interactions) -> None:
    n_items = data.n_items
    rec = fitted.recommend(data.users.ids, k=n_items + 2, exclude_seen=False)
    assert rec.item_ids.shape == (data.n_users, n_items + 2)
    assert np.isfinite(rec.scores[:, :n_items]).all()
    assert np.isnan(rec.scores[:, n_items:]).all()
    assert rec.item_ids[:, n_items:].tolist() == [[None, None]] * data.n_users
    frame = rec.to_pandas()  # the padding is dropped from the long format
    assert len(frame) == data.n_users * n_items


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_invalid_k(fitted: Model, data: Interactions, k: object) -> None:
    with pytest.raises(ConfigError, match="k must be"):
        fitted.recommend(data.users.ids[:1], k=k)  # type: ignore[arg-type]


def test_predict_scores_pairs(fitted: Model, data: Interactions) -> None:
    with pytest.raises(DataError):
        fitted.predict(data.users.ids[:2], data.items.ids[:3])


# ------------------------------------------------------------------------------ not fitted
def test_methods_before_fit_raise_not_fitted(
    case: Case, data: Interactions, tmp_path: Path
) -> None:
    model = case.model()
    calls: list[Callable[[], object]] = [
        lambda: model.recommend(data.users.ids[:1]),
        lambda: model.predict(data.users.ids[:1], data.items.ids[:1]),
        lambda: palate.save(model, tmp_path / "model"),
    ]
    if model.similarity_metric is not None:
        calls.append(lambda: model.similar_items(data.items.ids[:1]))
    if model.can_fold_in:
        calls += [
            lambda: model.fold_in({data.items.ids[0]: 1.0}),
            lambda: model.recommend_for_ratings({data.items.ids[0]: 1.0}),
        ]
    if model.has_linear_scores:
        calls.append(model.linear_scores)
    calls += [lambda: model.users_, lambda: model.seen_, lambda: model.to_state()]
    if case.is_cf:
        cf: CollaborativeFiltering = model  # type: ignore[assignment]
        calls += [
            lambda: cf.fold_in_user(data.items.ids[:1], [1.0]),
            lambda: cf.item_factors_,
            lambda: cf.user_factors_,
            lambda: cf.user_bias_,
            lambda: cf.item_bias_,
            lambda: cf.item_means_,
        ]
    for call in calls:
        with pytest.raises(NotFittedError, match="fit"):
            call()


# ------------------------------------------------------------------------------ seeds
@pytest.mark.parametrize("cf_case", CF_CASES, ids=[c.name for c in CF_CASES])
def test_same_seed_same_model_different_seed_different_model(
    cf_case: Case, request: pytest.FixtureRequest
) -> None:
    data = request.getfixturevalue(cf_case.data)
    first = learned_state(cf_case.model(seed=3).fit(data))
    again = learned_state(cf_case.model(seed=3).fit(data))
    other = learned_state(cf_case.model(seed=4).fit(data))
    for name in ("item_factors", "user_factors"):
        np.testing.assert_array_equal(first[name], again[name], err_msg=name)
        assert not np.allclose(first[name], other[name]), name


def test_popularity_is_deterministic(tiny_explicit: Interactions) -> None:
    a = learned_state(Popularity().fit(tiny_explicit))
    b = learned_state(Popularity().fit(tiny_explicit))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


# ------------------------------------------------------------------------------ hyperparameters
#: (hyperparameter, base configuration, data fixture, other value): changing only that
#: hyperparameter must change what the model predicts
CF_HYPERPARAMETERS = [
    ("embedding_size", {"embedding_size": 3}, "tiny_explicit", 4),
    ("reg", {"reg": 0.1}, "tiny_explicit", 1.0),
    ("epochs", {"epochs": 3}, "tiny_explicit", 4),
    ("epochs", {"epochs": 10, "solver": "adam"}, "tiny_explicit", 11),
    ("learning_rate", {"solver": "adam", "epochs": 10}, "tiny_explicit", 0.01),
    ("batch_size", {"solver": "adam", "epochs": 10}, "tiny_explicit", 4),
    ("mean_normalize", {"item_bias": False}, "tiny_explicit", False),
    ("mean_normalize", {"kind": "binary"}, "tiny_binary", True),
    ("mean_shrinkage", {"mean_shrinkage": 5.0}, "tiny_explicit", 0.0),
    ("item_bias", {}, "tiny_explicit", False),
    ("bias_reg", {}, "tiny_explicit", 1.0),
    ("reg_scaling", {}, "tiny_explicit", "none"),
    ("negative_ratio", {"kind": "binary", "epochs": 3, "negative_ratio": 1.0},
     "tiny_positive_only", 3.0),
    ("negative_exponent", {"kind": "binary", "epochs": 3, "negative_ratio": 1.0},
     "tiny_positive_only", 0.0),
    ("positive_weight", {"kind": "binary", "epochs": 3}, "tiny_positive_only", 1.5),
    ("resample_negatives", {"kind": "binary", "epochs": 3, "negative_ratio": 1.0},
     "tiny_positive_only", False),
    ("init_scale", {"epochs": 2}, "tiny_explicit", 0.5),
    ("als_method", {"als_method": "cholesky"}, "tiny_explicit", "cg"),
    ("als_method", {"als_method": "auto", "cg_steps": 1}, "tiny_explicit", "cg"),
    ("cg_steps", {"als_method": "cg", "cg_steps": 1}, "tiny_explicit", 3),
    ("seed", {"seed": 0}, "tiny_explicit", 1),
    ("solver", {}, "tiny_explicit", "adam"),
    ("solver", {}, "tiny_explicit", "gibbs"),
    ("samples", {"solver": "gibbs", "samples": 2}, "tiny_explicit", 3),
    ("solver", {}, "tiny_explicit", "bayes"),
    ("samples", {"solver": "bayes", "samples": 2}, "tiny_explicit", 3),
    ("epochs", {"solver": "bayes", "samples": 2}, "tiny_explicit", 1),
    ("implicit", {"solver": "bayes", "samples": 3}, "tiny_explicit", False),
    ("noise_dof", {"solver": "bayes", "samples": 3, "noise_dof": 4.0}, "tiny_explicit", None),
    ("init_scale", {"solver": "bayes", "samples": 3}, "tiny_explicit", 0.5),
    ("seed", {"solver": "bayes", "samples": 3, "seed": 0}, "tiny_explicit", 1),
]


@pytest.mark.parametrize(
    ("name", "base", "fixture", "value"),
    CF_HYPERPARAMETERS,
    ids=[f"{h[0]}-{i}" for i, h in enumerate(CF_HYPERPARAMETERS)],
)
def test_every_cf_hyperparameter_changes_the_output(
    name: str, base: dict, fixture: str, value: object, request: pytest.FixtureRequest
) -> None:
    data = request.getfixturevalue(fixture)
    base = {"embedding_size": 3, "epochs": 6, **base}
    assert base.get(name) != value
    before = CollaborativeFiltering(**base)
    after = before.with_params(**{name: value})
    assert getattr(after.config, name) == value
    users, items = all_pairs(data)
    a = before.fit(data).predict(users, items)
    b = after.fit(data).predict(users, items)
    assert not np.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_dtype_sets_the_precision_of_the_learned_factors(tiny_explicit: Interactions) -> None:
    for dtype, expected in (("float32", np.float32), ("float64", np.float64)):
        model = CollaborativeFiltering(embedding_size=2, epochs=2, dtype=dtype).fit(tiny_explicit)
        assert model.item_factors_.dtype == expected


@pytest.mark.parametrize(
    ("changes", "output"),
    [({"by": "mean"}, "recommend"), ({"prior": 0.0}, "predict"), ({"prior": 0.0}, "rank")],
    ids=["by", "prior-predict", "prior-mean-ranking"],
)
def test_every_popularity_hyperparameter_changes_the_output(
    changes: dict, output: str, tiny_explicit: Interactions
) -> None:
    base = {"by": "mean"} if output == "rank" else {}
    before = Popularity(**base).fit(tiny_explicit)
    after = Popularity(**{**base, **changes}).fit(tiny_explicit)
    users, items = all_pairs(tiny_explicit)
    if output == "predict":
        assert not np.allclose(before.predict(users, items), after.predict(users, items))
    else:
        a = before.recommend(["x"], k=6, exclude_seen=False)
        b = after.recommend(["x"], k=6, exclude_seen=False)
        assert not np.allclose(a.scores, b.scores)


#: (keyword arguments, the parameter the error message must name)
INVALID = [
    ({"kind": "ordinal"}, "kind"),
    ({"embedding_size": 0}, "embedding_size"),
    ({"embedding_size": 2.5}, "embedding_size"),
    ({"embedding_size": True}, "embedding_size"),
    ({"reg": -0.1}, "reg"),
    ({"reg": float("nan")}, "reg"),
    ({"reg": "0.1"}, "reg"),
    ({"solver": "sgd"}, "solver"),
    ({"solver": "gibbs", "kind": "binary"}, "gibbs"),
    ({"samples": 0}, "samples"),
    ({"solver": "bayes", "kind": "binary"}, "bayes"),
    ({"implicit": "yes"}, "implicit"),
    ({"noise_dof": 0.0}, "noise_dof"),
    ({"noise_dof": "4"}, "noise_dof"),
    ({"epochs": 0}, "epochs"),
    ({"epochs": 2.0}, "epochs"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"learning_rate": float("inf")}, "learning_rate"),
    ({"batch_size": 0}, "batch_size"),
    ({"mean_normalize": "yes"}, "mean_normalize"),
    ({"mean_shrinkage": -1.0}, "mean_shrinkage"),
    ({"bias_reg": -1.0}, "bias_reg"),
    ({"reg_scaling": "sqrt"}, "reg_scaling"),
    ({"negative_ratio": 0.0}, "negative_ratio"),
    ({"negative_exponent": -0.5}, "negative_exponent"),
    ({"positive_weight": 0.0}, "positive_weight"),
    ({"resample_negatives": "yes"}, "resample_negatives"),
    ({"init_scale": 0.0}, "init_scale"),
    ({"als_method": "qr"}, "als_method"),
    ({"cg_steps": 0}, "cg_steps"),
    ({"early_stopping": 0}, "early_stopping"),
    ({"dtype": "float16"}, "dtype"),
    ({"seed": 1.5}, "seed"),
    ({"seed": "0"}, "seed"),
]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [*INVALID,
     pytest.param({"item_bias": "no"}, "item_bias"),
     pytest.param({"item_bias": None}, "item_bias")],
    ids=[f"{next(iter(k))}={next(iter(k.values()))!r}" for k, _ in INVALID]
    + ["item_bias='no'", "item_bias=None"],
)
def test_invalid_cf_hyperparameters_raise_config_error(kwargs: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        CollaborativeFiltering(**kwargs)


# ------------------------------------------------------------------------------ model files
def test_save_load_round_trip(
    case: Case, fitted: Model, data: Interactions, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    path = palate.save(fitted, tmp_path / "model")
    loaded = palate.load(path)
    assert type(loaded) is type(fitted)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.users_ == fitted.users_ and loaded.items_ == fitted.items_
    users = np.concatenate([data.users.ids, np.array(["stranger"], dtype=object)])
    for exclude_seen in (True, False):
        assert_same_recommendations(loaded.recommend(users, k=K, exclude_seen=exclude_seen),
                                    fitted.recommend(users, k=K, exclude_seen=exclude_seen))
    pair_users, pair_items = all_pairs(data)
    pair_users = np.concatenate([pair_users, ["stranger", data.users.ids[0]]])
    pair_items = np.concatenate([pair_items, [data.items.ids[0], "zardoz"]])
    np.testing.assert_array_equal(loaded.predict(pair_users, pair_items),
                                  fitted.predict(pair_users, pair_items))
    for name, array in learned_state(fitted).items():
        np.testing.assert_array_equal(learned_state(loaded)[name], array, err_msg=name)
    assert loaded.capabilities() == fitted.capabilities()
    if fitted.similarity_metric is not None:
        np.testing.assert_array_equal(
            loaded.similar_items(data.items.ids, k=2).similar_ids,
            fitted.similar_items(data.items.ids, k=2).similar_ids,
        )
    if fitted.can_fold_in:
        ratings = {data.items.ids[0]: 1.0, data.items.ids[1]: 1.0}
        np.testing.assert_allclose(loaded.fold_in(ratings), fitted.fold_in(ratings))
    if case.is_cf:
        assert loaded.history_ == fitted.history_  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ parameters
def test_get_params_with_params_round_trip(case: Case, fitted: Model) -> None:
    copy = fitted.with_params()
    assert type(copy) is type(fitted)
    assert not copy.is_fitted
    assert copy.get_params() == fitted.get_params()
    assert copy.with_params().get_params() == fitted.get_params()


# ------------------------------------------------------------------------------ capabilities
def test_similar_items_never_returns_the_query(fitted: Model, data: Interactions) -> None:
    if fitted.similarity_metric is None:
        with pytest.raises(CapabilityError, match="similar"):
            fitted.similar_items(data.items.ids[:1])
        return
    found = fitted.similar_items(data.items.ids, k=3)
    assert found.similar_ids.shape == found.distances.shape == (data.n_items, 3)
    for query, row in zip(data.items.ids, found.similar_ids, strict=True):
        assert query not in row.tolist()
    finite = np.where(np.isnan(found.distances), np.inf, found.distances)
    assert np.all(np.diff(finite, axis=1) >= 0)  # nearest first
    assert np.all(found.distances[np.isfinite(found.distances)] >= 0)


def test_declared_capabilities_match_behaviour(fitted: Model, data: Interactions) -> None:
    declared = fitted.capabilities()
    assert declared["model_kind"] == fitted.model_kind
    assert declared["feedback_kind"] in ("explicit", "binary", "implicit", "any")
    assert declared["score_kind"] in ("rating", "probability", "preference", "popularity")
    ratings = {data.items.ids[0]: 1.0, data.items.ids[1]: 1.0}
    if declared["can_fold_in"]:
        scores = fitted.fold_in(ratings)
        assert scores.shape == (data.n_items,) and np.isfinite(scores).all()
        ids, _ = fitted.recommend_for_ratings(ratings, k=K)
        assert not set(ratings) & set(ids.tolist())
    else:
        with pytest.raises(CapabilityError):
            fitted.fold_in(ratings)
    users, items = all_pairs(data)
    if declared["has_linear_scores"]:
        linear = fitted.linear_scores()
        rows = fitted.users_.index(users)
        cols = fitted.items_.index(items)
        raw = np.einsum("ij,ij->i", linear.user_factors[rows].astype(np.float64),
                        linear.item_factors[cols].astype(np.float64))
        if linear.user_offset is not None:
            raw += linear.user_offset[rows]
        if linear.item_offset is not None:
            raw += linear.item_offset[cols]
        np.testing.assert_allclose(fitted.link(raw), fitted.predict(users, items), rtol=1e-4,
                                   atol=1e-5)
    else:
        with pytest.raises(CapabilityError):
            fitted.linear_scores()
    scale = declared["rating_scale"]
    if scale is not None:
        assert declared["score_kind"] == "rating"
        predicted = fitted.predict(users, items)
        assert np.all((predicted >= scale[0] - 1e-6) & (predicted <= scale[1] + 1e-6))


def test_declared_explanations_match_behaviour(fitted: Model, data: Interactions) -> None:
    """``can_explain``: ``explain_items`` splits the listed items' scores into terms, names
    only the user's own items, and its terms add up; otherwise a CapabilityError."""
    assert fitted.capabilities()["can_explain"] == fitted.can_explain
    user = data.users.ids[0]
    listed = fitted.recommend([user], k=K).item_ids[0]
    listed = listed[np.array([i is not None and i == i for i in listed], dtype=bool)]
    if not fitted.can_explain:
        with pytest.raises(CapabilityError, match="can_explain"):
            fitted.explain_items(user, listed)
        return
    explained = fitted.explain_items(user, listed)
    assert [e.item_id for e in explained] == listed.tolist()
    seen = set(fitted.seen_items(user).tolist())
    for e in explained:
        assert np.isfinite(e.score)
        assert e.score == pytest.approx(e.baseline + e.personal + e.unexplained, abs=1e-9)
        for reason in e.reasons:
            if reason.kind == "history":
                assert reason.item_id in seen and reason.contribution > 0
        assert isinstance(e.describe(), str) and e.describe()
    unknown = fitted.explain_items("no-such-user", listed)
    assert all(e.personal == 0 for e in unknown)
    if fitted.can_fold_in:
        ratings = {data.items.ids[0]: 4.0, data.items.ids[1]: 2.0}
        folded = fitted.explain_items(None, listed, ratings=ratings)
        for e in folded:
            assert all(r.item_id in ratings for r in e.reasons if r.kind == "history")
