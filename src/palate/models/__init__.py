"""Models: popularity baseline and collaborative filtering."""

from palate.models.base import ModelState, Recommendations
from palate.models.collaborative import (
    CollaborativeFiltering,
    CollaborativeFilteringConfig,
    SimilarItems,
    textbook_cost,
)
from palate.models.popularity import Popularity

__all__ = [
    "CollaborativeFiltering",
    "CollaborativeFilteringConfig",
    "ModelState",
    "Popularity",
    "Recommendations",
    "SimilarItems",
    "textbook_cost",
]
