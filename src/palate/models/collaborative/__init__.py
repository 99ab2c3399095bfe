"""Collaborative filtering: item features x(i), user parameters w(j) and biases b(j) learned
from explicit ratings or binary feedback by minimising the cost J.

Modules, one job each: :mod:`~palate.models.collaborative.config` (hyperparameters and their
checks), :mod:`~palate.models.collaborative.cost` (J and its penalty),
:mod:`~palate.models.collaborative.model` (the :class:`CollaborativeFiltering` model).
"""

from palate.models.collaborative.config import CollaborativeFilteringConfig
from palate.models.collaborative.cost import sparse_cost, textbook_cost
from palate.models.collaborative.model import CollaborativeFiltering

__all__ = [
    "CollaborativeFiltering",
    "CollaborativeFilteringConfig",
    "sparse_cost",
    "textbook_cost",
]
