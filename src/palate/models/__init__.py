"""Models: popularity baseline, collaborative filtering, implicit-feedback ALS, EASE, their
top-N blend, two towers."""

from palate.models.base import Model, ModelState
from palate.models.blend import TopNBlend
from palate.models.collaborative import (
    BayesianCollaborativeFiltering,
    CollaborativeFiltering,
    CollaborativeFilteringConfig,
    textbook_cost,
)
from palate.models.ease import EASE
from palate.models.hybrid import HybridRecommender
from palate.models.implicit import ImplicitALS
from palate.models.popularity import Popularity
from palate.models.scoring import Recommendations, SimilarItems
from palate.models.two_tower import TwoTower, TwoTowerConfig

__all__ = [
    "BayesianCollaborativeFiltering",
    "CollaborativeFiltering",
    "CollaborativeFilteringConfig",
    "EASE",
    "HybridRecommender",
    "ImplicitALS",
    "Model",
    "ModelState",
    "Popularity",
    "Recommendations",
    "SimilarItems",
    "TopNBlend",
    "TwoTower",
    "TwoTowerConfig",
    "textbook_cost",
]
