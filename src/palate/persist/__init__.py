"""Safe model files: save a fitted model as a directory and load it back without pickle.

Examples
--------
>>> from palate.persist import load, save
>>> save(model, "models/popularity")  # doctest: +SKIP
>>> model = load("models/popularity")  # doctest: +SKIP
"""

from palate.persist.artifact import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Artifact,
    load,
    load_artifact,
    read_manifest,
    save,
)
from palate.persist.registry import register_model_kind, registered_model_kinds

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Artifact",
    "load",
    "load_artifact",
    "read_manifest",
    "register_model_kind",
    "registered_model_kinds",
    "save",
]
