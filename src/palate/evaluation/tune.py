"""Hyperparameter search: grid and random search on a validation split of the training data.

The test data never enters a search. :func:`grid_search` and :func:`random_search` take the
*training* events only and carve a validation split from them (:func:`validation_split`):

- explicit ratings: a uniformly random ``validation_fraction`` of the events
  (:func:`palate.data.split.random_split`);
- binary / implicit events: a random ``validation_fraction`` of each user's events, every user
  keeping at least one in the fitting part (:func:`palate.data.split.user_holdout`).

Each trial fits a fresh model with one parameter setting on the fitting part and scores it on
the validation part with :func:`palate.evaluation.evaluate` (ranking metrics leave out each
user's fitting items). The best trial is the argmin of the metric for errors (``rmse``,
``mae``) and the argmax for everything else; ties go to the earlier trial.

Random search draws every trial's parameters from ``numpy.random.default_rng(seed)``: a list
is a uniform choice, ``LogUniform(low, high)`` draws ``exp(U(log low, log high))``,
``Uniform(low, high)`` draws ``U(low, high)`` and ``IntUniform(low, high)`` an integer in
``[low, high]``.

Examples
--------
>>> from palate import CollaborativeFiltering
>>> from palate.data.synthetic import synthetic_ratings
>>> data = synthetic_ratings(60, 40, 1500, seed=0).ratings
>>> results = grid_search(CollaborativeFiltering, data,
...                       {"reg": [0.05, 0.5], "embedding_size": [4, 8]},
...                       fixed={"epochs": 3}, metric="rmse")
>>> len(results.trials)
4
>>> sorted(results.best_params)
['embedding_size', 'reg']
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from palate.data.interactions import Interactions
from palate.data.split import random_split, user_holdout
from palate.errors import ConfigError, DataError
from palate.evaluation.evaluate import _finite, _plain, evaluate

#: metrics where smaller is better; every other metric is maximised
LOWER_IS_BETTER = frozenset({"rmse", "mae"})
#: metrics a search can optimise (ranking metrics take ``@k``)
SEARCH_METRICS = ("rmse", "mae", "precision", "recall", "ndcg", "map", "hit_rate")

TrialCallback = Callable[[int, dict[str, float]], None]


# ---------------------------------------------------------------------------- distributions
@dataclass(frozen=True)
class Uniform:
    """``U(low, high)``, a float."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class LogUniform:
    """``exp(U(log low, log high))``, a float; for scales such as λ or a learning rate."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (self.low > 0 and self.high > 0):
            raise ConfigError(
                f"a log-uniform range needs low, high > 0, got {self.low}, {self.high}"
            )

    def sample(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


@dataclass(frozen=True)
class IntUniform:
    """An integer drawn uniformly from ``[low, high]`` (both included)."""

    low: int
    high: int

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high + 1))


Distribution = Uniform | LogUniform | IntUniform


def _check_range(name: str, dist: Distribution) -> None:
    if not dist.low <= dist.high:
        raise ConfigError(f"{name}: the range {dist.low}:{dist.high} is empty (low > high)")


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Trial:
    """One fitted and scored parameter setting."""

    number: int
    params: dict[str, Any]
    value: float
    fit_seconds: float
    score_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.number,
            "params": _plain(self.params),
            "value": _finite(self.value),
            "fit_seconds": self.fit_seconds,
            "score_seconds": self.score_seconds,
        }


@dataclass(frozen=True)
class TuningResults:
    """Every trial of a search and the best one.

    Attributes
    ----------
    trials : tuple of Trial
        In the order they ran.
    metric : str
        Display name of the metric (``"rmse"``, ``"ndcg@10"``).
    greater_is_better : bool
    model : str
        The model's class name.
    fixed : dict
        Parameters held at the same value in every trial.
    info : dict
        How the validation split was made (method, fraction, seed, sizes) and the search kind.
    """

    trials: tuple[Trial, ...]
    metric: str
    greater_is_better: bool
    model: str
    fixed: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> Trial:
        """The trial with the best finite value (the earliest on ties)."""
        scored = [t for t in self.trials if math.isfinite(t.value)]
        if not scored:
            raise DataError(f"no trial produced a finite {self.metric}")
        sign = -1.0 if self.greater_is_better else 1.0
        return min(scored, key=lambda t: (sign * t.value, t.number))

    @property
    def best_params(self) -> dict[str, Any]:
        """The searched parameters of the best trial (without ``fixed``)."""
        return dict(self.best.params)

    @property
    def best_value(self) -> float:
        return self.best.value

    def to_pandas(self) -> pd.DataFrame:
        """One row per trial: ``trial``, one column per parameter, the metric, seconds."""
        names = list(dict.fromkeys(name for t in self.trials for name in t.params))
        rows = [
            {
                "trial": t.number,
                **{name: t.params.get(name) for name in names},
                self.metric: t.value,
                "fit_seconds": t.fit_seconds,
                "score_seconds": t.score_seconds,
            }
            for t in self.trials
        ]
        columns = ["trial", *names, self.metric, "fit_seconds", "score_seconds"]
        return pd.DataFrame(rows, columns=columns)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: metric, direction, model, fixed parameters, best trial, every trial."""
        best = self.best
        return {
            "model": self.model,
            "metric": self.metric,
            "greater_is_better": self.greater_is_better,
            "fixed": _plain(self.fixed),
            "best_params": _plain(best.params),
            "best_value": _finite(best.value),
            "best_trial": best.number,
            "info": _plain(self.info),
            "trials": [t.to_dict() for t in self.trials],
        }

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as a JSON string (keyword arguments go to ``json.dumps``)."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_json` (indented) to ``path``; returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_json(indent=2) + "\n", encoding="utf-8")
        return target

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> TuningResults:
        """Rebuild results from :meth:`to_dict` (e.g. a saved JSON file)."""
        trials = tuple(
            Trial(
                int(t["trial"]),
                dict(t["params"]),
                math.nan if t["value"] is None else float(t["value"]),
                float(t["fit_seconds"]),
                float(t["score_seconds"]),
            )
            for t in document["trials"]
        )
        return cls(
            trials,
            str(document["metric"]),
            bool(document["greater_is_better"]),
            str(document.get("model", "")),
            dict(document.get("fixed", {})),
            dict(document.get("info", {})),
        )

    def __repr__(self) -> str:
        best = self.best
        return (
            f"TuningResults({len(self.trials)} trials of {self.model}, {self.metric}: best "
            f"{best.value:.4f} with {best.params})"
        )


# ---------------------------------------------------------------------------- validation
def validation_split(
    train: Interactions, fraction: float = 0.1, seed: int = 0
) -> tuple[Interactions, Interactions, dict[str, Any]]:
    """Carve ``(fit part, validation part, description)`` out of the training events only.

    Explicit ratings: a random ``fraction`` of the events; binary events: a random
    ``fraction`` of each user's events (every user keeps at least one to fit on).
    """
    if not isinstance(train, Interactions):
        raise DataError("tuning expects the training events as palate.Interactions")
    if train.kind == "explicit":
        fit_part, validation = random_split(train, test_fraction=fraction, seed=seed)
        method = "random_split"
    else:
        fit_part, validation = user_holdout(train, fraction=fraction, seed=seed)
        method = "user_holdout"
    info = {
        "validation_method": method,
        "validation_fraction": fraction,
        "seed": seed,
        "n_training_events": len(train),
        "n_fit_events": len(fit_part),
        "n_validation_events": len(validation),
    }
    return fit_part, validation, info


# ---------------------------------------------------------------------------- searches
def grid_search(
    model: Callable[..., Any],
    train: Interactions,
    grid: Mapping[str, Sequence[Any]],
    *,
    metric: str = "rmse",
    fixed: Mapping[str, Any] | None = None,
    validation_fraction: float = 0.1,
    seed: int = 0,
    k: int = 10,
    relevance_threshold: float | None = None,
    callback: TrialCallback | None = None,
    fit_params: Mapping[str, Any] | None = None,
) -> TuningResults:
    """Fit and score every combination of ``grid`` (the Cartesian product, in the order the
    keys and values are given).

    Parameters
    ----------
    model : class or callable
        Called as ``model(**fixed, **params)`` for each trial, e.g.
        :class:`~palate.CollaborativeFiltering`.
    train : Interactions
        Training events only; the validation split is carved from them.
    grid : mapping of str to sequence
        Values to try per constructor argument.
    metric : str
        ``rmse`` / ``mae`` (minimised) or ``precision`` / ``recall`` / ``ndcg`` / ``map`` /
        ``hit_rate`` (maximised; ``ndcg@10`` sets ``k``).
    fixed : mapping, optional
        Constructor arguments shared by every trial (e.g. ``{"kind": "binary"}``).
    validation_fraction, seed : float, int
        The validation split (see :func:`validation_split`); ``seed`` is not passed to models.
    k : int
        Length of the ranked lists for ranking metrics.
    relevance_threshold : float, optional
        Passed to :func:`~palate.evaluation.evaluate` (default 4.0 for explicit data).
    callback : callable(trial_number, {"value", "best"}), optional
        Called after each trial (progress bars).
    fit_params : mapping, optional
        Keyword arguments of every trial's ``fit`` (e.g. ``user_features`` and
        ``item_features`` of :class:`~palate.TwoTower`).

    Returns
    -------
    TuningResults
    """
    names = list(grid)
    if not names:
        raise ConfigError("the grid is empty; give at least one parameter with its values")
    values = []
    for name in names:
        options = list(grid[name]) if not isinstance(grid[name], (str, bytes)) else []
        if not options:
            raise ConfigError(f"grid parameter {name!r} needs a non-empty list of values")
        values.append(options)
    settings = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
    return _search(
        model,
        train,
        settings,
        kind="grid",
        metric=metric,
        fixed=fixed,
        validation_fraction=validation_fraction,
        seed=seed,
        k=k,
        relevance_threshold=relevance_threshold,
        callback=callback,
        fit_params=fit_params,
    )


def random_search(
    model: Callable[..., Any],
    train: Interactions,
    space: Mapping[str, Sequence[Any] | Distribution],
    n_trials: int,
    *,
    metric: str = "rmse",
    fixed: Mapping[str, Any] | None = None,
    validation_fraction: float = 0.1,
    seed: int = 0,
    k: int = 10,
    relevance_threshold: float | None = None,
    callback: TrialCallback | None = None,
    fit_params: Mapping[str, Any] | None = None,
) -> TuningResults:
    """Fit and score ``n_trials`` settings drawn from ``space`` with
    ``numpy.random.default_rng(seed)`` (same seed, same trials).

    ``space`` maps each constructor argument to a list (uniform choice) or a distribution
    (:class:`Uniform`, :class:`LogUniform`, :class:`IntUniform`). The other arguments are
    those of :func:`grid_search`.
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or n_trials < 1:
        raise ConfigError(f"n_trials must be a positive integer, got {n_trials!r}")
    if not space:
        raise ConfigError("the search space is empty; give at least one parameter")
    for name, dist in space.items():
        if isinstance(dist, (Uniform, LogUniform, IntUniform)):
            _check_range(name, dist)
        elif isinstance(dist, (str, bytes)) or not list(dist):
            raise ConfigError(f"parameter {name!r} needs a non-empty list or a distribution")
    rng = np.random.default_rng(seed)
    settings = [{name: _draw(dist, rng) for name, dist in space.items()} for _ in range(n_trials)]
    return _search(
        model,
        train,
        settings,
        kind="random",
        metric=metric,
        fixed=fixed,
        validation_fraction=validation_fraction,
        seed=seed,
        k=k,
        relevance_threshold=relevance_threshold,
        callback=callback,
        fit_params=fit_params,
    )


def _draw(dist: Sequence[Any] | Distribution, rng: np.random.Generator) -> Any:
    if isinstance(dist, (Uniform, LogUniform, IntUniform)):
        return dist.sample(rng)
    options = list(dist)
    value = options[int(rng.integers(len(options)))]
    return value.item() if isinstance(value, np.generic) else value


def _metric_name(metric: str, k: int) -> tuple[str, str, int]:
    """(base name, display name, k) of ``metric`` (``ndcg@5`` sets k = 5)."""
    text = str(metric).strip().lower()
    base, _, at = text.partition("@")
    if base not in SEARCH_METRICS:
        raise ConfigError(f"unknown metric {metric!r}; choose from {', '.join(SEARCH_METRICS)}")
    if at:
        try:
            k = int(at)
        except ValueError:
            raise ConfigError(f"metric {metric!r}: the part after @ must be an integer") from None
    display = base if base in LOWER_IS_BETTER else f"{base}@{k}"
    return base, display, k


def _check_params(model: Callable[..., Any], names: Sequence[str]) -> None:
    try:
        signature = inspect.signature(model)
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return
    known = list(signature.parameters)
    unknown = [name for name in names if name not in known]
    if unknown:
        label = getattr(model, "__name__", type(model).__name__)
        raise ConfigError(
            f"{label} has no parameter {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(known)}"
        )


def _search(
    model: Callable[..., Any],
    train: Interactions,
    settings: list[dict[str, Any]],
    *,
    kind: str,
    metric: str,
    fixed: Mapping[str, Any] | None,
    validation_fraction: float,
    seed: int,
    k: int,
    relevance_threshold: float | None,
    callback: TrialCallback | None,
    fit_params: Mapping[str, Any] | None = None,
) -> TuningResults:
    if not callable(model):
        raise ConfigError("model must be a model class or a callable returning a new model")
    base, display, k = _metric_name(metric, k)
    fixed = dict(fixed or {})
    overlap = sorted(set(fixed) & set(settings[0]))
    if overlap:
        raise ConfigError(f"{', '.join(overlap)} is both searched and fixed; keep it in one")
    _check_params(model, [*fixed, *settings[0]])
    fit_part, validation, info = validation_split(train, validation_fraction, seed)
    if base in LOWER_IS_BETTER and validation.kind != "explicit":
        raise ConfigError(f"{base} needs explicit ratings; use a ranking metric such as ndcg@10")
    info["search"] = kind
    info["n_trials"] = len(settings)
    info["k"] = k
    greater = base not in LOWER_IS_BETTER
    trials: list[Trial] = []
    best = math.nan
    for number, params in enumerate(settings, start=1):
        candidate = model(**fixed, **params)
        start = time.perf_counter()
        candidate.fit(fit_part, **(fit_params or {}))
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        report = evaluate(
            candidate,
            fit_part,
            validation,
            k=k,
            metrics=[base],
            relevance_threshold=relevance_threshold,
            n_bootstrap=0,
        )
        score_seconds = time.perf_counter() - start
        value = float(report[display].mean) if display in report else math.nan
        trials.append(Trial(number, dict(params), value, fit_seconds, score_seconds))
        if math.isfinite(value) and (
            not math.isfinite(best) or (value > best if greater else value < best)
        ):
            best = value
        if callback is not None:
            callback(number, {display: value, "best": best})
    label = getattr(model, "__name__", type(model).__name__)
    return TuningResults(tuple(trials), display, greater, label, fixed, info)


# ---------------------------------------------------------------------------- text forms
def parse_value(text: str) -> Any:
    """``"16"`` -> 16, ``"0.1"`` -> 0.1, ``"true"`` -> True, ``"none"`` -> None, else str."""
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_grid(text: str) -> dict[str, list[Any]]:
    """``"reg=0.05,0.1;embedding_size=16,32"`` -> ``{"reg": [0.05, 0.1], "embedding_size":
    [16, 32]}``."""
    grid: dict[str, list[Any]] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        name, values = _split_assignment(part)
        grid[name] = [parse_value(v) for v in values.split(",") if v.strip()]
        if not grid[name]:
            raise ConfigError(f"grid parameter {name!r} has no values; write {name}=v1,v2")
    if not grid:
        raise ConfigError("the grid is empty; write e.g. 'reg=0.05,0.1;embedding_size=16,32'")
    return grid


def parse_space(text: str) -> tuple[str, Sequence[Any] | Distribution]:
    """One random-search parameter: ``name=a,b,c`` (choices), ``name=low:high`` (uniform;
    integers when both bounds are integers) or ``name=low:high:log`` (log-uniform)."""
    name, spec = _split_assignment(text)
    if ":" not in spec:
        choices = [parse_value(v) for v in spec.split(",") if v.strip()]
        if not choices:
            raise ConfigError(f"parameter {name!r} has no values; write {name}=v1,v2")
        return name, choices
    pieces = [p.strip() for p in spec.split(":")]
    if len(pieces) not in (2, 3) or (len(pieces) == 3 and pieces[2].lower() != "log"):
        raise ConfigError(
            f"cannot read {text!r}; write {name}=low:high, {name}=low:high:log or {name}=a,b,c"
        )
    low, high = (parse_value(p) for p in pieces[:2])
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise ConfigError(f"{name}: the bounds of {spec!r} must be numbers")
    dist: Distribution
    if len(pieces) == 3:
        dist = LogUniform(float(low), float(high))
    elif isinstance(low, int) and isinstance(high, int):
        dist = IntUniform(low, high)
    else:
        dist = Uniform(float(low), float(high))
    _check_range(name, dist)
    return name, dist


def _split_assignment(text: str) -> tuple[str, str]:
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ConfigError(f"cannot read {text.strip()!r}; write name=values")
    return name, values.strip()


__all__ = [
    "IntUniform",
    "LOWER_IS_BETTER",
    "LogUniform",
    "SEARCH_METRICS",
    "Trial",
    "TuningResults",
    "Uniform",
    "grid_search",
    "parse_grid",
    "parse_space",
    "parse_value",
    "random_search",
    "validation_split",
]
