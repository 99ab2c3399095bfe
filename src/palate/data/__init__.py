"""Data layer: vocabularies, interactions, features, loaders, splits and synthetic data.

Modules:

- :mod:`~palate.data.vocabulary`, :mod:`~palate.data.interactions`, :mod:`~palate.data.features`:
  external ids <-> indices, the immutable events, user / item feature tables;
- :mod:`~palate.data.split`, :mod:`~palate.data.synthetic`: splits and synthetic ratings;
- :mod:`~palate.data.movielens`: the GroupLens MovieLens layouts, their readers and the
  releases palate knows; :mod:`~palate.data.download`: fetching a release into the cache;
- :mod:`~palate.data.loaders`: :func:`~palate.data.loaders.movielens` and
  :func:`~palate.data.loaders.load_interactions`, returning a
  :class:`~palate.data.dataset.Dataset` (:mod:`~palate.data.dataset`);
- :mod:`~palate.data.prepared`: data prepared on Spark, read without Spark.

Users reach the dataset functions as :mod:`palate.datasets`, which re-exports them.
"""

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
