"""Models: popularity baseline, collaborative filtering, implicit-feedback ALS, two towers."""

from palate.models.base import ModelState, Recommendations
from palate.models.collaborative import (
    CollaborativeFiltering,
    CollaborativeFilteringConfig,
    SimilarItems,
    textbook_cost,
)
from palate.models.implicit import ImplicitALS
from palate.models.popularity import Popularity
from palate.models.two_tower import TwoTower, TwoTowerConfig

__all__ = [
    "CollaborativeFiltering",
    "CollaborativeFilteringConfig",
    "ImplicitALS",
    "ModelState",
    "Popularity",
    "Recommendations",
    "SimilarItems",
    "TwoTower",
    "TwoTowerConfig",
    "textbook_cost",
]
