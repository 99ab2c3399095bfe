"""Shared type aliases and protocols."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from palate.data.interactions import Interactions
    from palate.models.scoring import Recommendations
    from palate.retrieval.index import Neighbors
    from palate.retrieval.sources import Candidates, SourceData, UserContext

Id = int | str
IdArray = npt.NDArray[Any]
IdLike = Id | Sequence[Id] | npt.NDArray[Any]
Seed = int | None
FloatArray = npt.NDArray[np.floating[Any]]


@runtime_checkable
class Recommender(Protocol):
    """What every palate model offers (see DESIGN: the model contract)."""

    def fit(self, interactions: Interactions) -> Recommender: ...

    def predict(self, user_ids: IdLike, item_ids: IdLike) -> FloatArray: ...

    def recommend(
        self, user_ids: IdLike, k: int = 10, exclude_seen: bool = True
    ) -> Recommendations: ...


@runtime_checkable
class VectorIndex(Protocol):
    """Nearest-neighbour search over the rows of a matrix (exact or approximate)."""

    @property
    def is_exact(self) -> bool: ...

    def build(self, vectors: Any) -> VectorIndex: ...

    def search(self, queries: Any, k: int, exclude: Any = None) -> Neighbors: ...

    def save(self, path: Any) -> Any: ...


@runtime_checkable
class CandidateSource(Protocol):
    """Finds candidate items for one user, with a score and provenance per item."""

    @property
    def name(self) -> str: ...

    def fit(self, data: SourceData) -> CandidateSource: ...

    def retrieve(self, user: UserContext) -> Candidates: ...

    def explain(self, anchor: int, item_label: Any) -> str: ...


@runtime_checkable
class Ranker(Protocol):
    """A model whose predictions are ``link(p(u) · q(i))`` (see palate.ranking.VectorScorer)."""

    def predict(self, user_ids: IdLike, item_ids: IdLike) -> FloatArray: ...

    def recommend(
        self, user_ids: IdLike, k: int = 10, exclude_seen: bool = True
    ) -> Recommendations: ...


__all__ = [
    "CandidateSource",
    "FloatArray",
    "Id",
    "IdArray",
    "IdLike",
    "Ranker",
    "Recommender",
    "Seed",
    "VectorIndex",
]
