"""Exceptions raised by palate.

Every error a user can cause derives from :class:`PalateError`, and its message names the fix.
The CLI maps these to a one-line message and exit code 1.
"""

from __future__ import annotations


class PalateError(Exception):
    """Base class of every error palate raises on purpose."""


class ConfigError(PalateError, ValueError):
    """A hyperparameter or option has an invalid value."""


class DataError(PalateError, ValueError):
    """Input data is malformed: missing columns, NaN ratings, duplicates, out-of-scale values."""


class UnknownIdError(PalateError, KeyError):
    """An external user or item id is not in the vocabulary and no fallback applies."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class NotFittedError(PalateError, RuntimeError, AttributeError):
    """A model method or learned attribute (``item_factors_``) was used before ``fit``.

    Also an AttributeError, so ``hasattr(model, "item_factors_")`` is False before fit.
    """


class CapabilityError(PalateError, TypeError):
    """The model cannot do what was asked (e.g. similar items from a popularity model); the
    message names a model that can. What a model can do is in ``model.capabilities()``."""


class ArtifactError(PalateError, OSError):
    """A model directory is missing, corrupt, tampered with, or of an unsupported format."""


class DatasetNotFoundError(PalateError, FileNotFoundError):
    """A dataset is not available locally and could not be downloaded."""


class MissingDependencyError(PalateError, ImportError):
    """An optional part of palate needs a package or program that is not installed."""


__all__ = [
    "ArtifactError",
    "CapabilityError",
    "ConfigError",
    "DataError",
    "DatasetNotFoundError",
    "MissingDependencyError",
    "NotFittedError",
    "PalateError",
    "UnknownIdError",
]
