"""Models: popularity baseline, collaborative filtering, implicit-feedback ALS."""

from palate.models.base import ModelState, Recommendations
from palate.models.collaborative import (
    CollaborativeFiltering,
    CollaborativeFilteringConfig,
    SimilarItems,
    textbook_cost,
)
from palate.models.implicit import ImplicitALS
from palate.models.popularity import Popularity

__all__ = [
    "CollaborativeFiltering",
    "CollaborativeFilteringConfig",
    "ImplicitALS",
    "ModelState",
    "Popularity",
    "Recommendations",
    "SimilarItems",
    "textbook_cost",
]
