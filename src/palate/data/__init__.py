"""Data layer: vocabularies, interactions, loaders, splits and synthetic data."""

from palate.data.interactions import Interactions
from palate.data.vocabulary import Vocabulary

__all__ = ["Interactions", "Vocabulary"]
