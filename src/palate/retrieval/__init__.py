"""Retrieval for large catalogues: vector indexes and candidate sources.

- :class:`ExactIndex` and :class:`FaissIndex` answer nearest-neighbour queries behind one
  interface (:class:`palate.retrieval.index.VectorIndexBase`), with per-query exclusions.
- :mod:`palate.retrieval.sources` gathers candidates for a user from several sources, each
  with its provenance.
"""

from palate.retrieval.factory import load_index, make_index
from palate.retrieval.faiss_index import FaissIndex
from palate.retrieval.index import ExactIndex, Neighbors

__all__ = ["ExactIndex", "FaissIndex", "Neighbors", "load_index", "make_index"]
