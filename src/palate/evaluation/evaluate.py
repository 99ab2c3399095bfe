"""Evaluate a fitted model on held-out data, and cross-validate a model factory.

:func:`evaluate` scores one (train, test) split:

- **rating metrics** (explicit test data and a model with ``predict``): RMSE and MAE over the
  test pairs;
- **ranking metrics** (a model with ``recommend``): precision, recall, NDCG, MAP (the mean of
  per-user average precision) and hit rate at ``k`` for every test user with at least one
  relevant test event (``value >= relevance_threshold`` for explicit data, ``value > 0`` for
  binary data). Each user's training items are removed from their list (``exclude_train``);
- **beyond-accuracy metrics** on the same lists: catalogue coverage at ``k``, novelty,
  popularity bias and, given an item table with genres, intra-list diversity.

Definitions (``count(i)`` = training events of item ``i``, ``U`` = users with a training
event, ``L(u)`` = the list of user ``u`` after removing training items, at most ``k`` long):

- ``novelty(u) = mean_{i ∈ L(u)} −log2 p(i)`` with ``p(i) = max(count(i), 1) / |U|``, the
  share of training users who interacted with ``i`` (an item never seen in training counts as
  seen once, so the value stays finite);
- ``popularity_bias(u) = |L(u) ∩ T| / |L(u)|`` where ``T`` holds the ``ceil(0.1 · n_items)``
  items with the most training events (ties broken by vocabulary order);
- ``diversity(u) = mean over pairs {a, b} ⊂ L(u) of 1 − |G(a) ∩ G(b)| / |G(a) ∪ G(b)|``, the
  Jaccard distance of genre sets (0 when both are empty); undefined for lists shorter than 2;
- ``coverage@k = |∪_u L(u)| / n_items`` over the training catalogue (one number, no interval).

Confidence intervals (95 %):

- per-user metrics: the normal approximation ``mean ± 1.96 · sd / √n`` over users (``sd`` with
  ``ddof=1``; no interval when ``n < 2``);
- MAE: the same normal approximation over the test rows' absolute errors;
- RMSE: a percentile bootstrap over test rows (``n_bootstrap`` resamples,
  ``numpy.random.default_rng(seed)``), since RMSE is not a mean of per-row values;
- coverage: none for a single split;
- :func:`cross_validate`: ``mean ± t_{0.975, n−1} · sd / √n`` over the fold means (Student's t,
  as the number of folds is small).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from palate.data.catalog import genre_list
from palate.data.interactions import Interactions
from palate.data.split import kfold
from palate.errors import ConfigError, DataError
from palate.evaluation.metrics import (
    average_precision_at_k,
    catalog_coverage,
    hit_rate_at_k,
    intra_list_diversity,
    mae,
    most_popular_items,
    ndcg_at_k,
    novelty,
    popularity_bias,
    precision_at_k,
    recall_at_k,
    rmse,
)

#: every metric :func:`evaluate` knows, in report order
METRICS = (
    "rmse",
    "mae",
    "precision",
    "recall",
    "ndcg",
    "map",
    "hit_rate",
    "coverage",
    "novelty",
    "popularity_bias",
    "diversity",
)
_AT_K = {"precision", "recall", "ndcg", "map", "hit_rate", "coverage"}
_RATING = {"rmse", "mae"}
_Z95 = 1.959963984540054
#: share of the catalogue counted as "most popular" by popularity_bias
POPULAR_SHARE = 0.1


# ---------------------------------------------------------------------------- report
@dataclass(frozen=True)
class MetricSummary:
    """One metric: its mean, 95 % interval, sample size and the values it came from.

    ``values`` are per-user values (ranking metrics of :func:`evaluate`), per-fold means
    (:func:`cross_validate`), or empty (RMSE, MAE and coverage of a single split).
    """

    name: str
    mean: float
    ci_low: float
    ci_high: float
    n: int
    values: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": _finite(self.mean),
            "ci_low": _finite(self.ci_low),
            "ci_high": _finite(self.ci_high),
            "n": int(self.n),
        }


@dataclass(frozen=True)
class EvaluationReport:
    """What :func:`evaluate` or :func:`cross_validate` measured.

    Attributes
    ----------
    metrics : dict of str to MetricSummary
        Keyed by display name (``"rmse"``, ``"ndcg@10"``, ``"novelty"``, ...).
    k : int
    notes : tuple of str
        How the numbers were made (exclusions, relevance, interval methods).
    info : dict
        Facts such as ``n_users``, ``relevance_threshold``, ``exclude_train``, ``n_splits``.
    folds : tuple of EvaluationReport
        The per-fold reports of :func:`cross_validate`; empty otherwise.
    """

    metrics: dict[str, MetricSummary]
    k: int
    notes: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)
    folds: tuple[EvaluationReport, ...] = ()

    def __getitem__(self, name: str) -> MetricSummary:
        try:
            return self.metrics[name]
        except KeyError:
            raise KeyError(
                f"no metric {name!r} in this report; it has {', '.join(self.metrics)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.metrics

    def to_pandas(self) -> pd.DataFrame:
        """One row per metric: ``metric, mean, ci_low, ci_high, n``."""
        rows = [
            {
                "metric": name,
                "mean": m.mean,
                "ci_low": m.ci_low,
                "ci_high": m.ci_high,
                "n": m.n,
            }
            for name, m in self.metrics.items()
        ]
        return pd.DataFrame(rows, columns=["metric", "mean", "ci_low", "ci_high", "n"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"k", "metrics": {name: {mean, ci_low, ci_high, n[, per_fold]}},
        "notes", "info"}``; NaN becomes None."""
        metrics: dict[str, Any] = {}
        for name, m in self.metrics.items():
            entry = m.to_dict()
            if self.folds:
                entry["per_fold"] = [_finite(float(v)) for v in m.values]
            metrics[name] = entry
        return {
            "k": self.k,
            "metrics": metrics,
            "notes": list(self.notes),
            "info": _plain(self.info),
        }

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as a JSON string (keyword arguments go to ``json.dumps``)."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    def __repr__(self) -> str:
        lines = [f"EvaluationReport(k={self.k}, {len(self.metrics)} metrics)"]
        width = max((len(name) for name in self.metrics), default=6)
        for name, m in self.metrics.items():
            ci = (
                f"[{m.ci_low:.4f}, {m.ci_high:.4f}]"
                if math.isfinite(m.ci_low) and math.isfinite(m.ci_high)
                else "[n/a]"
            )
            lines.append(f"  {name:<{width}}  {m.mean:.4f}  95% CI {ci}  n={m.n}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return _finite(value)
    return value


# ---------------------------------------------------------------------------- intervals
def normal_interval(values: Iterable[float]) -> tuple[float, float, float, int]:
    """``(mean, low, high, n)`` with ``mean ± 1.96 · sd / √n`` over the non-NaN values.

    Examples
    --------
    >>> [round(v, 4) for v in normal_interval([0.0, 1.0])[:3]]
    [0.5, -0.48, 1.48]
    """
    return _interval(values, lambda n: _Z95)


def t_interval(values: Iterable[float]) -> tuple[float, float, float, int]:
    """``(mean, low, high, n)`` with ``mean ± t_{0.975, n−1} · sd / √n`` (for few samples)."""
    from scipy.stats import t

    return _interval(values, lambda n: float(t.ppf(0.975, n - 1)))


def _interval(
    values: Iterable[float], critical: Callable[[int], float]
) -> tuple[float, float, float, int]:
    array = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, float)
    array = array[~np.isnan(array)]
    n = int(array.size)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(array.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    half = critical(n) * float(array.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half, n


def _summary(name: str, values: np.ndarray, critical: str = "normal") -> MetricSummary:
    mean, low, high, n = (normal_interval if critical == "normal" else t_interval)(values)
    return MetricSummary(name, mean, low, high, n, np.asarray(values, dtype=np.float64))


# ---------------------------------------------------------------------------- evaluate
def _check_metrics(metrics: Sequence[str] | None) -> list[str]:
    if metrics is None:
        return list(METRICS)
    if isinstance(metrics, str):
        metrics = [metrics]
    chosen = []
    for name in metrics:
        base = str(name).split("@")[0].lower()
        if base not in METRICS:
            raise ConfigError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
        chosen.append(base)
    return [m for m in METRICS if m in chosen]


def _display(name: str, k: int) -> str:
    return f"{name}@{k}" if name in _AT_K else name


def evaluate(
    model: Any,
    train: Interactions,
    test: Interactions,
    *,
    k: int = 10,
    metrics: Sequence[str] | None = None,
    exclude_train: bool = True,
    items: pd.DataFrame | None = None,
    relevance_threshold: float | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> EvaluationReport:
    """Score a fitted model on held-out events.

    Parameters
    ----------
    model : fitted model
        Needs ``predict(user_ids, item_ids)`` for RMSE / MAE and ``recommend(user_ids, k,
        exclude_seen=...)`` (returning :class:`~palate.models.base.Recommendations` or anything
        with ``item_ids`` of shape (n_users, width)) for the other metrics.
    train, test : Interactions
        The events the model was fitted on, and the held-out events.
    k : int
        Length of the ranked lists.
    metrics : sequence of str, optional
        Names from :data:`METRICS` (``"ndcg"`` or ``"ndcg@10"``); default: all that apply.
    exclude_train : bool
        Remove each user's training items from their list (asking the model for
        ``k + |train items of u|`` items so that ``k`` remain).
    items : DataFrame, optional
        Columns ``item_id`` and ``genres`` (lists, or ``"A|B"`` strings) for diversity.
    relevance_threshold : float, optional
        A test event is relevant when ``value >= relevance_threshold``; default 4.0 for
        explicit data, and ``value > 0`` for binary data.
    n_bootstrap, seed : int
        Resamples and seed of the RMSE bootstrap interval.

    Returns
    -------
    EvaluationReport

    Examples
    --------
    >>> from palate import Popularity
    >>> from palate.data.synthetic import synthetic_ratings
    >>> from palate.data.split import random_split
    >>> data = synthetic_ratings(30, 20, 300, seed=0).ratings
    >>> train, test = random_split(data, test_fraction=0.2, seed=0)
    >>> report = evaluate(Popularity(by="mean").fit(train), train, test, k=5)
    >>> sorted(report.metrics)[:3]
    ['coverage@5', 'hit_rate@5', 'mae']
    """
    if not isinstance(train, Interactions) or not isinstance(test, Interactions):
        raise DataError("evaluate expects train and test as palate.Interactions")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    if len(test) == 0:
        raise DataError("the test set is empty; nothing to evaluate")
    wanted = _check_metrics(metrics)
    results: dict[str, MetricSummary] = {}
    notes: list[str] = []
    info: dict[str, Any] = {"n_test_events": len(test), "exclude_train": bool(exclude_train)}

    rating_wanted = [m for m in wanted if m in _RATING]
    if rating_wanted and test.kind == "explicit" and hasattr(model, "predict"):
        results.update(_rating_metrics(model, test, rating_wanted, n_bootstrap, seed, notes))

    ranking_wanted = [m for m in wanted if m not in _RATING]
    if ranking_wanted and hasattr(model, "recommend"):
        if relevance_threshold is None:
            relevance_threshold = 4.0 if test.kind == "explicit" else None
        ranked = _ranking_metrics(
            model, train, test, k, ranking_wanted, exclude_train, items, relevance_threshold
        )
        results.update(ranked.pop("metrics"))
        notes.extend(ranked.pop("notes"))
        info.update(ranked)
    if not results:
        raise ConfigError(
            "no metric applies: RMSE / MAE need explicit test data and a model with predict(); "
            "ranking metrics need a model with recommend()"
        )
    ordered = {
        _display(m, k): results[_display(m, k)] for m in METRICS if _display(m, k) in results
    }
    return EvaluationReport(ordered, k, tuple(notes), info)


def _rating_metrics(
    model: Any,
    test: Interactions,
    wanted: list[str],
    n_bootstrap: int,
    seed: int,
    notes: list[str],
) -> dict[str, MetricSummary]:
    predicted = np.asarray(model.predict(test.user_ids, test.item_ids), dtype=np.float64)
    observed = test.values.astype(np.float64)
    defined = ~np.isnan(predicted)
    if not defined.all():
        notes.append(f"{int((~defined).sum())} test pairs without a prediction were left out")
        predicted, observed = predicted[defined], observed[defined]
    if predicted.size == 0:
        raise DataError("the model predicted nothing (all NaN) for the test pairs")
    out: dict[str, MetricSummary] = {}
    errors = predicted - observed
    n = errors.size
    if "rmse" in wanted:
        value = rmse(observed, predicted)
        low = high = math.nan
        if n >= 2 and n_bootstrap > 0:
            rng = np.random.default_rng(seed)
            squared = errors**2
            boot = np.empty(n_bootstrap)
            for b in range(n_bootstrap):  # one resample at a time keeps memory at O(n)
                boot[b] = math.sqrt(squared[rng.integers(0, n, n)].mean())
            low, high = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
        out["rmse"] = MetricSummary("rmse", value, low, high, n)
        notes.append(
            f"RMSE interval: percentile bootstrap over test rows ({n_bootstrap} resamples, "
            f"seed {seed})"
        )
    if "mae" in wanted:
        _, low, high, _ = normal_interval(np.abs(errors))
        out["mae"] = MetricSummary("mae", mae(observed, predicted), low, high, n)
    return out


def _user_sets(data: Interactions, mask: np.ndarray | None = None) -> dict[Any, set[Any]]:
    frame = data.to_pandas()
    if mask is not None:
        frame = frame[mask]
    return {
        user: set(group.tolist()) for user, group in frame.groupby("user_id", sort=False)["item_id"]
    }


def _ranking_metrics(
    model: Any,
    train: Interactions,
    test: Interactions,
    k: int,
    wanted: list[str],
    exclude_train: bool,
    items: pd.DataFrame | None,
    threshold: float | None,
) -> dict[str, Any]:
    values = test.values
    relevant_mask = values > 0 if threshold is None else values >= threshold
    relevant_sets = _user_sets(test, relevant_mask)
    if not relevant_sets:
        rule = "value > 0" if threshold is None else f"value >= {threshold:g}"
        raise DataError(
            f"no test event is relevant ({rule}); lower relevance_threshold or check the split"
        )
    users = list(relevant_sets)
    train_sets = _user_sets(train) if exclude_train else {}
    extra = max((len(train_sets.get(u, ())) for u in users), default=0)
    width = k + extra
    raw = model.recommend(np.asarray(users), k=width, exclude_seen=exclude_train)
    raw_items = np.asarray(getattr(raw, "item_ids", raw))
    lists: list[list[Any]] = []
    for row, user in zip(raw_items, users, strict=True):
        seen = train_sets.get(user, set())
        kept: list[Any] = []
        for item in row.tolist():
            if _padding(item) or item in seen or item in kept:
                continue
            kept.append(item)
            if len(kept) == k:
                break
        lists.append(kept)
    recommended = np.empty((len(users), k), dtype=object)
    recommended[:] = None
    for r, kept in enumerate(lists):
        recommended[r, : len(kept)] = kept
    relevant = [relevant_sets[u] for u in users]

    per_user: dict[str, np.ndarray] = {}
    functions = {
        "precision": precision_at_k,
        "recall": recall_at_k,
        "ndcg": ndcg_at_k,
        "map": average_precision_at_k,
        "hit_rate": hit_rate_at_k,
    }
    for name, function in functions.items():
        if name in wanted:
            per_user[name] = function(recommended, relevant, k)
    counts = train.item_counts().astype(np.float64)
    if "novelty" in wanted:
        count_of = dict(zip(train.items.ids.tolist(), counts.tolist(), strict=True))
        n_train_users = max(int(np.count_nonzero(train.user_counts())), 1)
        per_user["novelty"] = novelty(recommended, count_of, n_train_users, k)
    if "popularity_bias" in wanted:
        popular = most_popular_items(train.items.ids, counts, POPULAR_SHARE)
        per_user["popularity_bias"] = popularity_bias(recommended, popular, k)
    notes = []
    if "diversity" in wanted and items is not None:
        per_user["diversity"] = intra_list_diversity(recommended, _genre_sets(items), k)

    metrics: dict[str, MetricSummary] = {}
    for name, array in per_user.items():
        metrics[_display(name, k)] = _summary(_display(name, k), array)
    if "coverage" in wanted:
        flat = [i for kept in lists for i in kept]
        n_items = max(train.n_items, len(set(flat)))
        value = catalog_coverage(recommended, n_items=n_items, k=k) if n_items else math.nan
        metrics[_display("coverage", k)] = MetricSummary(
            _display("coverage", k), value, math.nan, math.nan, len(users)
        )
    rule = "value > 0" if threshold is None else f"value >= {threshold:g}"
    notes.append(
        f"ranking metrics over {len(users)} test users with a relevant test event ({rule})"
    )
    if exclude_train:
        notes.append("each user's training items were excluded from their recommendations")
    notes.append("ranking-metric intervals: normal approximation over users, mean ± 1.96·sd/√n")
    return {
        "metrics": metrics,
        "notes": notes,
        "n_users": len(users),
        "relevance_threshold": threshold,
    }


def _padding(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return bool(np.isnan(value)) or value == -1
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value) == -1
    return False


def _genre_sets(items: pd.DataFrame) -> dict[Any, frozenset[Any]]:
    if "item_id" not in items.columns or "genres" not in items.columns:
        raise DataError("items must have columns item_id and genres to measure diversity")
    out: dict[Any, frozenset[Any]] = {}
    for item, genres in zip(items["item_id"].tolist(), items["genres"].tolist(), strict=True):
        out[item] = frozenset(genre_list(genres))
    return out


# ---------------------------------------------------------------------------- cross-validate
def _takes_validation(model: Any) -> bool:
    """Whether ``model.fit`` takes ``validation=``; refuses models that would stop early on
    it."""
    import inspect

    try:
        parameters = inspect.signature(model.fit).parameters
    except (TypeError, ValueError):
        return False
    if "validation" not in parameters:
        return False
    if getattr(getattr(model, "config", None), "early_stopping", None):
        raise ConfigError(
            "validate_epochs records a learning curve on each test fold; a model with "
            "early_stopping would choose its epoch there. Set early_stopping=None or "
            "validate_epochs=False"
        )
    return True


def cross_validate(
    make_model: Callable[[], Any],
    data: Interactions,
    *,
    n_splits: int = 5,
    seed: int = 0,
    k: int = 10,
    metrics: Sequence[str] | None = None,
    exclude_train: bool = True,
    items: pd.DataFrame | None = None,
    relevance_threshold: float | None = None,
    callback: Callable[[int, EvaluationReport], None] | None = None,
    validate_epochs: bool = False,
    fit_params: Mapping[str, Any] | None = None,
) -> EvaluationReport:
    """K-fold cross-validation: fit a fresh model on each training part, evaluate on its fold.

    The events are split by :func:`palate.data.split.kfold` (disjoint folds that together
    cover ``data``). Each metric's mean is the mean of the fold means, with a Student-t 95 %
    interval across folds: ``mean ± t_{0.975, n_splits−1} · sd / √n_splits``; the fold means
    are kept in ``report[name].values`` and the fold reports in ``report.folds``.

    Parameters
    ----------
    make_model : callable
        Called with no arguments once per fold; returns an unfitted model with ``fit``.
    data : Interactions
    n_splits, seed : int
        Passed to ``kfold``.
    k, metrics, exclude_train, items, relevance_threshold
        Passed to :func:`evaluate`.
    callback : callable, optional
        ``callback(fold_number, fold_report)`` after each fold (1-based).
    validate_epochs : bool
        Pass each fold's held-out events to ``fit(validation=...)`` of models that take it,
        so that their ``history_`` records the held-out metric after every epoch (a learning
        curve). It is only recorded: a model with ``early_stopping`` set is refused, as it
        would pick its epoch on the test fold.
    fit_params : mapping, optional
        Keyword arguments of every ``fit`` (e.g. ``user_features`` and ``item_features`` of
        :class:`~palate.TwoTower`).

    A fitted model's ``history_`` (cost per epoch, and the held-out metric with
    ``validate_epochs``) is kept in ``report.folds[f].info["history"]``.

    Returns
    -------
    EvaluationReport
    """
    if not callable(make_model):
        raise ConfigError(
            "make_model must be a callable that returns a new model, e.g. "
            "lambda: CollaborativeFiltering()"
        )
    reports = []
    for fold, (train, test) in enumerate(kfold(data, n_splits=n_splits, seed=seed), start=1):
        model = make_model()
        if validate_epochs and _takes_validation(model):
            model.fit(train, validation=test, **(fit_params or {}))
        else:
            model.fit(train, **(fit_params or {}))
        report = evaluate(
            model,
            train,
            test,
            k=k,
            metrics=metrics,
            exclude_train=exclude_train,
            items=items,
            relevance_threshold=relevance_threshold,
            seed=seed,
        )
        history = getattr(model, "history_", None)
        if history:
            report.info["history"] = [dict(row) for row in history]
        reports.append(report)
        if callback is not None:
            callback(fold, report)
    names = [name for name in reports[0].metrics if all(name in r for r in reports)]
    summaries = {
        name: _summary(name, np.array([r[name].mean for r in reports]), critical="t")
        for name in names
    }
    notes = [note for note in reports[0].notes if "interval" not in note and "over " not in note]
    notes.append(
        f"{n_splits}-fold cross-validation (seed {seed}); intervals: Student t over fold means"
    )
    info = {
        "n_splits": n_splits,
        "seed": seed,
        "exclude_train": bool(exclude_train),
        "n_events": len(data),
    }
    return EvaluationReport(summaries, int(k), tuple(notes), info, tuple(reports))


__all__ = [
    "METRICS",
    "EvaluationReport",
    "MetricSummary",
    "cross_validate",
    "evaluate",
    "normal_interval",
    "t_interval",
]
