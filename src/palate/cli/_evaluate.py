"""Held-out numbers for ``palate train`` and ``palate demo``: the model beside simple baselines.

Explicit ratings are scored by RMSE against two mean-only baselines: the global mean of the
training ratings, and each item's mean training rating shrunk towards it
(``palate.Popularity(by="mean")``). Binary feedback is scored by precision, recall and NDCG at
k on the validation users, with the items each user has in training excluded from their list,
against the most-popular items (``palate.Popularity(by="count")``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.table import Table

from palate import Interactions, Popularity
from palate.evaluation.metrics import (
    mean_over_users,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    rmse,
)

#: Display names of the rows in reports.
LABELS = {
    "model": "model",
    "item_mean": "item mean (baseline)",
    "global_mean": "global mean (baseline)",
    "popularity": "most popular (baseline)",
}

METRIC_LABELS = {"train_rmse": "train RMSE", "validation_rmse": "validation RMSE"}


def _rmse_of(model: Any, data: Interactions) -> float:
    return rmse(data.values, model.predict(data.user_ids, data.item_ids))


def rating_report(model: Any, train: Interactions, validation: Interactions) -> dict[str, Any]:
    """``{"model": {...}, "item_mean": {...}, "global_mean": {...}}`` of train and validation
    RMSE; the item-mean row is left out when the model is that baseline itself."""
    report: dict[str, dict[str, float]] = {
        "model": {
            "train_rmse": _rmse_of(model, train),
            "validation_rmse": _rmse_of(model, validation),
        }
    }
    if not isinstance(model, Popularity):
        item_mean = Popularity(by="mean").fit(train)
        report["item_mean"] = {
            "train_rmse": _rmse_of(item_mean, train),
            "validation_rmse": _rmse_of(item_mean, validation),
        }
    mean = train.global_mean()
    report["global_mean"] = {
        "train_rmse": rmse(train.values, np.full(len(train), mean)),
        "validation_rmse": rmse(validation.values, np.full(len(validation), mean)),
    }
    return report


def ranking_report(
    model: Any, train: Interactions, validation: Interactions, k: int = 10
) -> dict[str, Any]:
    """``{"model": {...}, "popularity": {...}, "n_users": n}`` of precision, recall and NDCG
    at ``k`` over the validation users, relevant = their positive validation items.

    Each model is asked for exactly ``k`` items with ``exclude_seen=True`` (it leaves out its
    own training items). :func:`palate.evaluation.evaluate` asks for ``k`` + the most training
    items of any user instead, so as not to rely on that: its numbers differ from these where
    scores tie around rank ``k`` (the most-popular baseline), and it costs several times more
    on large data, which is why ``palate train`` does not call it.
    """
    frame = validation.to_pandas()
    frame = frame[frame["value"] > 0]
    relevant = frame.groupby("user_id", sort=False)["item_id"].apply(list)
    users = relevant.index.to_numpy()
    models: dict[str, Any] = {"model": model}
    if not isinstance(model, Popularity):
        models["popularity"] = Popularity(by="count").fit(train)
    report: dict[str, Any] = {}
    for name, candidate in models.items():
        recommended = candidate.recommend(users, k=k, exclude_seen=True).item_ids
        lists = list(relevant.to_numpy())
        report[name] = {
            f"precision@{k}": mean_over_users(precision_at_k(recommended, lists, k)),
            f"recall@{k}": mean_over_users(recall_at_k(recommended, lists, k)),
            f"ndcg@{k}": mean_over_users(ndcg_at_k(recommended, lists, k)),
        }
    report["n_users"] = len(users)
    return report


def report_table(report: dict[str, Any], title: str, model_label: str) -> Table:
    """The rows of a report (model first, then baselines) as a Rich table."""
    rows = {name: values for name, values in report.items() if isinstance(values, dict)}
    metrics = list(next(iter(rows.values())))
    table = Table(title=title, title_justify="left", title_style="bold")
    table.add_column("")
    for metric in metrics:
        table.add_column(METRIC_LABELS.get(metric, metric), justify="right")
    for name, values in rows.items():
        label = model_label if name == "model" else LABELS.get(name, name)
        table.add_row(label, *(_number(values.get(metric)) for metric in metrics))
    return table


def _number(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.4f}"


__all__ = ["LABELS", "rating_report", "ranking_report", "report_table"]
