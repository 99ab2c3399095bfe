"""grid_search / random_search: coverage of the grid, seeding, the validation split, the best."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import pytest

from palate import CollaborativeFiltering, Interactions, Popularity
from palate.data.split import random_split
from palate.data.synthetic import synthetic_ratings
from palate.errors import ConfigError
from palate.evaluation.tune import (
    IntUniform,
    LogUniform,
    TuningResults,
    Uniform,
    grid_search,
    parse_grid,
    parse_space,
    random_search,
    validation_split,
)


@pytest.fixture(scope="module")
def ratings() -> Interactions:
    return synthetic_ratings(60, 40, 1500, seed=0).ratings


class Spy:
    """Predicts the training mean + ``offset``; records every pair it fits on or scores."""

    log: list[dict[str, Any]] = []

    def __init__(self, offset: float = 0.0, width: int = 1, label: str = "a") -> None:
        self.params = {"offset": offset, "width": width, "label": label}
        self.mean = math.nan
        Spy.log.append({"params": self.params, "fit": set(), "scored": set(), "users": set()})

    def fit(self, data: Interactions) -> Spy:
        self.mean = float(data.values.mean())
        Spy.log[-1]["fit"] = set(zip(data.user_ids.tolist(), data.item_ids.tolist(), strict=True))
        return self

    def predict(self, user_ids: Any, item_ids: Any) -> np.ndarray:
        Spy.log[-1]["scored"] |= set(
            zip(np.asarray(user_ids).tolist(), np.asarray(item_ids).tolist(), strict=True)
        )
        return np.full(len(user_ids), self.mean + self.params["offset"])


@pytest.fixture(autouse=True)
def clear_log() -> None:
    Spy.log.clear()


def pairs(data: Interactions) -> set[tuple[int, int]]:
    return set(zip(data.user_ids.tolist(), data.item_ids.tolist(), strict=True))


def test_grid_covers_every_combination(ratings: Interactions) -> None:
    grid = {"offset": [0.0, 0.5, -0.5], "width": [1, 2], "label": ["a", "b"]}
    results = grid_search(Spy, ratings, grid, metric="rmse")
    expected = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    assert [t.params for t in results.trials] == expected
    assert [entry["params"] for entry in Spy.log] == expected
    assert [t.number for t in results.trials] == list(range(1, 13))


class FeatureSpy(Spy):
    """A Spy whose fit takes features, as TwoTower's does."""

    def fit(self, data: Interactions, *, item_features: Any = None) -> FeatureSpy:
        Spy.log[-1]["item_features"] = item_features
        return super().fit(data)  # type: ignore[return-value]


def test_fit_params_reach_every_trial(ratings: Interactions) -> None:
    table = {"genres": "in every fit"}
    grid_search(FeatureSpy, ratings, {"offset": [0.0, 0.5]}, fit_params={"item_features": table})
    random_search(FeatureSpy, ratings, {"offset": [0.0, 0.5]}, 2,
                  fit_params={"item_features": table})
    assert [entry["item_features"] for entry in Spy.log] == [table] * 4


def test_validation_split_never_touches_test_rows(ratings: Interactions) -> None:
    train, test = random_split(ratings, test_fraction=0.2, seed=1)
    results = grid_search(Spy, train, {"offset": [0.0, 0.25]}, validation_fraction=0.2, seed=3)
    train_pairs, test_pairs = pairs(train), pairs(test)
    fit_part, validation, info = validation_split(train, 0.2, seed=3)
    assert info["n_fit_events"] + info["n_validation_events"] == len(train)
    for entry in Spy.log:
        assert entry["fit"] and not entry["fit"] & test_pairs
        assert not entry["scored"] & test_pairs
        assert entry["fit"] | entry["scored"] <= train_pairs
        assert not entry["fit"] & entry["scored"]  # validation is held out of fitting
        assert entry["fit"] == pairs(fit_part) and entry["scored"] == pairs(validation)
    assert results.info["n_validation_events"] == len(validation)


def test_best_is_argmin_of_rmse_and_values_are_known(ratings: Interactions) -> None:
    offsets = [0.8, -0.3, 0.1, 0.0, 1.5]
    results = grid_search(Spy, ratings, {"offset": offsets}, metric="rmse", seed=5)
    fit_part, validation, _ = validation_split(ratings, 0.1, seed=5)
    mean = fit_part.values.mean()
    for trial, offset in zip(results.trials, offsets, strict=True):
        expected = math.sqrt(np.mean((mean + offset - validation.values) ** 2))
        assert trial.value == pytest.approx(expected, rel=1e-6)  # float32 values
        assert trial.fit_seconds >= 0 and trial.score_seconds >= 0
    values = [t.value for t in results.trials]
    assert results.best.number == int(np.argmin(values)) + 1
    assert results.best_params == {"offset": offsets[int(np.argmin(values))]}
    assert not results.greater_is_better


def test_best_is_argmax_for_ranking_metrics(ratings: Interactions) -> None:
    binary = ratings.binarize(4.0)
    results = grid_search(
        Popularity, binary, {"by": ["count", "mean"], "prior": [0.0, 50.0]}, metric="ndcg@5"
    )
    assert results.metric == "ndcg@5" and results.greater_is_better
    values = [t.value for t in results.trials]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert results.best.value == max(values)
    assert results.best.number == int(np.argmax(values)) + 1
    assert results.info["validation_method"] == "user_holdout" and results.info["k"] == 5


def test_random_search_is_seeded_and_draws_in_range(ratings: Interactions) -> None:
    space: dict[str, Any] = {
        "offset": Uniform(-1.0, 1.0),
        "width": IntUniform(2, 4),
        "label": ["a", "b", "c"],
    }
    first = random_search(Spy, ratings, space, n_trials=8, seed=11)
    again = random_search(Spy, ratings, space, n_trials=8, seed=11)
    other = random_search(Spy, ratings, space, n_trials=8, seed=12)
    params = [t.params for t in first.trials]
    assert params == [t.params for t in again.trials]
    assert params != [t.params for t in other.trials]
    assert [t.value for t in first.trials] == [t.value for t in again.trials]
    assert all(-1.0 <= p["offset"] <= 1.0 for p in params)
    assert all(p["width"] in (2, 3, 4) and isinstance(p["width"], int) for p in params)
    assert all(p["label"] in ("a", "b", "c") for p in params)
    assert len({p["offset"] for p in params}) == 8


def test_log_uniform_covers_orders_of_magnitude() -> None:
    rng = np.random.default_rng(0)
    draws = np.array([LogUniform(1e-3, 1e1).sample(rng) for _ in range(2000)])
    assert draws.min() >= 1e-3 and draws.max() <= 1e1
    # uniform in log10: about a quarter of the draws in each decade
    share = np.mean(draws < 1e-2)
    assert 0.2 < share < 0.3


def test_results_frame_and_json_round_trip(ratings: Interactions) -> None:
    results = grid_search(Spy, ratings, {"offset": [0.0, 0.5], "width": [1, 3]})
    frame = results.to_pandas()
    assert list(frame.columns) == [
        "trial",
        "offset",
        "width",
        "rmse",
        "fit_seconds",
        "score_seconds",
    ]
    assert len(frame) == 4 and frame["rmse"].tolist() == [t.value for t in results.trials]
    document = json.loads(results.to_json())
    assert document["best_params"] == results.best_params
    assert document["best_value"] == pytest.approx(results.best_value)
    assert len(document["trials"]) == 4
    assert {"params", "value", "fit_seconds", "trial"} <= set(document["trials"][0])
    back = TuningResults.from_dict(document)
    assert back.best_params == results.best_params and back.metric == "rmse"


def test_real_model_grid(ratings: Interactions) -> None:
    results = grid_search(
        CollaborativeFiltering,
        ratings,
        {"reg": [0.0, 0.5]},
        fixed={"embedding_size": 4, "epochs": 3, "reg_scaling": "none"},
    )
    assert results.fixed["embedding_size"] == 4
    assert all(math.isfinite(t.value) for t in results.trials)


def test_errors_name_the_fix(ratings: Interactions) -> None:
    with pytest.raises(ConfigError, match="no parameter 'regularization'"):
        grid_search(CollaborativeFiltering, ratings, {"regularization": [1.0]})
    with pytest.raises(ConfigError, match="needs explicit ratings"):
        grid_search(Popularity, ratings.binarize(4.0), {"prior": [1.0]}, metric="rmse")
    with pytest.raises(ConfigError, match="unknown metric"):
        grid_search(Spy, ratings, {"offset": [0.0]}, metric="auc")
    with pytest.raises(ConfigError, match="both searched and fixed"):
        grid_search(Spy, ratings, {"offset": [0.0]}, fixed={"offset": 1.0})
    with pytest.raises(ConfigError, match="non-empty"):
        grid_search(Spy, ratings, {"offset": []})
    with pytest.raises(ConfigError, match="n_trials"):
        random_search(Spy, ratings, {"offset": [0.0]}, n_trials=0)


def test_parse_grid_and_space() -> None:
    assert parse_grid("reg=0.05,0.1;embedding_size=16,32;solver=als") == {
        "reg": [0.05, 0.1],
        "embedding_size": [16, 32],
        "solver": ["als"],
    }
    assert parse_space("reg=0.01:1:log") == ("reg", LogUniform(0.01, 1.0))
    assert parse_space("embedding_size=8:64") == ("embedding_size", IntUniform(8, 64))
    assert parse_space("alpha=0.5:2") == ("alpha", Uniform(0.5, 2.0))
    assert parse_space("item_bias=true,false") == ("item_bias", [True, False])
    for bad in ("reg", "reg=", "reg=1:0", "reg=a:b"):
        with pytest.raises(ConfigError):
            parse_space(bad) if bad != "reg=" else parse_grid(bad)
