"""Collaborative filtering: item features x(i), user parameters w(j) and biases b(j) learned
from explicit ratings or binary feedback by minimising the cost J.

One job per module:

- :mod:`~palate.models.collaborative.config` — the hyperparameters and their checks;
- :mod:`~palate.models.collaborative.cost` — J on dense arrays (:func:`textbook_cost`), on
  observed entries in torch (:func:`sparse_cost`), and its penalty;
- :mod:`~palate.models.collaborative.parameters` — the learned arrays X, W, b, c, μ;
- :mod:`~palate.models.collaborative.entries` — each epoch's entries (sampled negatives for
  positive-only data) and the item means μ(i);
- :mod:`~palate.models.collaborative.als`, :mod:`~palate.models.collaborative.adam`,
  :mod:`~palate.models.collaborative.gibbs`, :mod:`~palate.models.collaborative.bayes` —
  the solvers;
- :mod:`~palate.models.collaborative.fold_in` — users solved with the items fixed;
- :mod:`~palate.models.collaborative.model` — :class:`CollaborativeFiltering`, which ties
  them together behind the model contract, and
  :mod:`~palate.models.collaborative.bayes_model` — :class:`BayesianCollaborativeFiltering`,
  the model with ``solver="bayes"`` and its measured defaults.
"""

from palate.models.collaborative.bayes_model import BayesianCollaborativeFiltering
from palate.models.collaborative.config import CollaborativeFilteringConfig
from palate.models.collaborative.cost import sparse_cost, textbook_cost
from palate.models.collaborative.model import CollaborativeFiltering

__all__ = [
    "BayesianCollaborativeFiltering",
    "CollaborativeFiltering",
    "CollaborativeFilteringConfig",
    "sparse_cost",
    "textbook_cost",
]
