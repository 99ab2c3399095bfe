"""Evaluation: rating and ranking metrics (pure functions on arrays), evaluate and
cross-validate models, search hyperparameters on a validation split of the training data."""

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
    intra_list_diversity,
    mae,
    map_at_k,
    mean_over_users,
    most_popular_items,
    ndcg_at_k,
    novelty,
    popularity_bias,
    precision_at_k,
    recall_at_k,
    rmse,
)
from palate.evaluation.tune import (
    TuningResults,
    grid_search,
    random_search,
)

__all__ = [
    "EvaluationReport",
    "MetricSummary",
    "TuningResults",
    "cross_validate",
    "evaluate",
    "grid_search",
    "random_search",
    "average_precision_at_k",
    "catalog_coverage",
    "hit_rate_at_k",
    "intra_list_diversity",
    "mae",
    "map_at_k",
    "mean_over_users",
    "most_popular_items",
    "ndcg_at_k",
    "novelty",
    "popularity_bias",
    "precision_at_k",
    "recall_at_k",
    "rmse",
]
