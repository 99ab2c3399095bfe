"""Evaluation: rating and ranking metrics (pure functions on arrays), evaluate and
cross-validate models."""

from palate.evaluation.evaluate import (
    EvaluationReport,
    MetricSummary,
    cross_validate,
    evaluate,
)
from palate.evaluation.metrics import (
    average_precision_at_k,
    catalog_coverage,
    hit_rate_at_k,
    mae,
    map_at_k,
    mean_over_users,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    rmse,
)

__all__ = [
    "EvaluationReport",
    "MetricSummary",
    "cross_validate",
    "evaluate",
    "average_precision_at_k",
    "catalog_coverage",
    "hit_rate_at_k",
    "mae",
    "map_at_k",
    "mean_over_users",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "rmse",
]
