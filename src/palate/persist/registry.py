"""The allow-list of model kinds a model file may name.

A model file records only a ``model_kind`` string. Loading maps it to a class through this
allow-list, never through a class path stored in the file, so a crafted file cannot make
palate import or run arbitrary code. Entries are ``"module:Class"`` strings imported lazily,
so registering a kind does not import heavy model modules until a model of that kind is loaded.

The allow-list is the one table of :mod:`palate.models.registry`, which the command line,
tuning and the benchmarks read as well: a kind registered here is known to all of them.
"""

from __future__ import annotations

from palate.errors import ArtifactError, PalateError
from palate.models.base import Model
from palate.models.registry import (
    is_registered,
    kind_class,
    register_model_kind,
    registered_model_kinds,
)


def resolve_model_class(kind: str) -> type[Model]:
    """Import and return the class registered for ``kind``.

    Raises
    ------
    ArtifactError
        If ``kind`` is not in the allow-list, cannot be imported, or does not name a
        :class:`~palate.models.base.Model` subclass whose ``model_kind`` is ``kind``.
    """
    if not (isinstance(kind, str) and is_registered(kind)):
        known = ", ".join(sorted(registered_model_kinds()))
        raise ArtifactError(
            f"model kind {kind!r} is not one palate can load (known: {known}); if it comes from "
            "your own code, call palate.persist.register_model_kind(kind, 'module:Class') first"
        )
    try:
        return kind_class(kind)
    except PalateError as exc:
        raise ArtifactError(str(exc)) from exc


__all__ = [
    "is_registered",
    "register_model_kind",
    "registered_model_kinds",
    "resolve_model_class",
]
