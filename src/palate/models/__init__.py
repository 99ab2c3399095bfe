"""Models: popularity baseline and collaborative filtering."""

from palate.models.base import ModelState, Recommendations
from palate.models.popularity import Popularity

__all__ = ["ModelState", "Popularity", "Recommendations"]
