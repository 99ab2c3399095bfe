"""Shared type aliases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Id = int | str
IdArray = npt.NDArray[Any]
IdLike = Id | Sequence[Id] | npt.NDArray[Any]
Seed = int | None
FloatArray = npt.NDArray[np.floating[Any]]


__all__ = [
    "FloatArray",
    "Id",
    "IdArray",
    "IdLike",
    "Seed",
]
