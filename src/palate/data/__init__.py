"""Data layer: vocabularies, interactions, loaders, splits and synthetic data."""

from palate.data.interactions import Interactions
from palate.data.split import kfold, random_split, temporal_split, user_holdout
from palate.data.synthetic import SyntheticData, synthetic_ratings
from palate.data.vocabulary import Vocabulary

__all__ = [
    "Interactions",
    "SyntheticData",
    "Vocabulary",
    "kfold",
    "random_split",
    "synthetic_ratings",
    "temporal_split",
    "user_holdout",
]
