"""palate: a recommender-system toolkit and service.

The public API is listed in ``__all__``; everything else is internal.
"""

from palate import datasets
from palate.data import Interactions, Vocabulary
from palate.data.features import ItemFeatures, UserFeatures
from palate.errors import (
    ArtifactError,
    ConfigError,
    DataError,
    DatasetNotFoundError,
    NotFittedError,
    PalateError,
    UnknownIdError,
)
from palate.models import (
    EASE,
    BayesianCollaborativeFiltering,
    CollaborativeFiltering,
    HybridRecommender,
    ImplicitALS,
    Popularity,
    Recommendations,
    SimilarItems,
    TopNBlend,
    TwoTower,
)
from palate.persist import load, load_artifact, save
from palate.ranking import FilteredModel, ItemPolicy, RetrieveThenRank
from palate.version import __version__

__all__ = [
    "ArtifactError",
    "BayesianCollaborativeFiltering",
    "CollaborativeFiltering",
    "ConfigError",
    "DataError",
    "DatasetNotFoundError",
    "EASE",
    "FilteredModel",
    "HybridRecommender",
    "ImplicitALS",
    "ItemPolicy",
    "Interactions",
    "ItemFeatures",
    "NotFittedError",
    "PalateError",
    "Popularity",
    "Recommendations",
    "RetrieveThenRank",
    "SimilarItems",
    "TopNBlend",
    "TwoTower",
    "UnknownIdError",
    "UserFeatures",
    "Vocabulary",
    "__version__",
    "datasets",
    "load",
    "load_artifact",
    "save",
]
