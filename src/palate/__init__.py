"""palate: a recommender-system toolkit and service."""

from palate.data import Interactions, Vocabulary
from palate.errors import (
    ArtifactError,
    ConfigError,
    DataError,
    DatasetNotFoundError,
    NotFittedError,
    PalateError,
    UnknownIdError,
)

__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "ConfigError",
    "DataError",
    "DatasetNotFoundError",
    "Interactions",
    "NotFittedError",
    "PalateError",
    "UnknownIdError",
    "Vocabulary",
    "__version__",
]
