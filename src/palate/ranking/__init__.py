"""Ranking: the retrieve-then-rank pipeline (a few hundred candidates gathered cheaply, then
ranked by the model), business filters and explanations."""

from palate.ranking.filters import (
    FilteredModel,
    ItemFilter,
    ItemPolicy,
    allowed_items,
    parse_policy,
)
from palate.ranking.pipeline import RankedItem, RetrieveThenRank, read_pipeline_config
from palate.ranking.scorer import VectorScorer

__all__ = [
    "FilteredModel",
    "ItemFilter",
    "ItemPolicy",
    "RankedItem",
    "RetrieveThenRank",
    "VectorScorer",
    "allowed_items",
    "parse_policy",
    "read_pipeline_config",
]
