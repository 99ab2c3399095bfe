"""Shared type aliases and protocols."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from palate.data.interactions import Interactions
    from palate.models.base import Recommendations

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


__all__ = ["FloatArray", "Id", "IdArray", "IdLike", "Recommender", "Seed"]
