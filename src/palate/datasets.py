"""Datasets by name or path: MovieLens releases (found locally or downloaded) and ratings files.

This is the user-facing name of the dataset functions; it only re-exports them from the data
layer, where they live: :mod:`palate.data.loaders` (:func:`movielens`,
:func:`load_interactions`, :func:`find_movielens`, :func:`data_dirs`),
:mod:`palate.data.download`, :mod:`palate.data.movielens` (the releases and their readers) and
:mod:`palate.data.dataset` (:class:`Dataset`).

>>> from palate import datasets
>>> datasets.available()[:3]
['ml-latest-small', 'ml-100k', 'ml-1m']
>>> data = datasets.movielens("ml-100k")  # doctest: +SKIP
>>> data = datasets.load_interactions("my_events.parquet")  # doctest: +SKIP

Downloads come from GroupLens over HTTPS (``$PALATE_MOVIELENS_URL`` overrides the server),
are checked against digests pinned in :mod:`palate.data.movielens` and unpacked into
``$PALATE_CACHE`` (default ``~/.cache/palate``). Local copies are looked for first in each
directory of ``$PALATE_DATA``. MovieLens is licensed by GroupLens for research use; see the
README.txt in each release and cite Harper & Konstan (2015).
"""

from palate.data.dataset import Dataset, MovieLensDataset
from palate.data.download import default_cache_dir, download_movielens
from palate.data.loaders import data_dirs, find_movielens, load_interactions, movielens
from palate.data.movielens import RELEASES, MovieLensRelease, available

__all__ = [
    "RELEASES",
    "Dataset",
    "MovieLensDataset",
    "MovieLensRelease",
    "available",
    "data_dirs",
    "default_cache_dir",
    "download_movielens",
    "find_movielens",
    "load_interactions",
    "movielens",
]
