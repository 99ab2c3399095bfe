"""The allow-list of model kinds a model file may name.

A model file records only a ``model_kind`` string. Loading maps it to a class through this
allow-list, never through a class path stored in the file, so a crafted file cannot make
palate import or run arbitrary code. Entries are ``"module:Class"`` strings imported lazily,
so registering a kind does not import heavy model modules until a model of that kind is loaded.
"""

from __future__ import annotations

import importlib
import re

from palate.errors import ArtifactError, ConfigError
from palate.models.base import Model

_KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")
_TARGET_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

_MODEL_KINDS: dict[str, str] = {
    "popularity": "palate.models.popularity:Popularity",
    "collaborative": "palate.models.collaborative.model:CollaborativeFiltering",
    "implicit_als": "palate.models.implicit:ImplicitALS",
    "ease": "palate.models.ease:EASE",
    "two_tower": "palate.models.two_tower.model:TwoTower",
    "retrieve_then_rank": "palate.ranking.pipeline:RetrieveThenRank",
}


def register_model_kind(kind: str, target: str | type[Model], *, replace: bool = False) -> None:
    """Allow model files of ``kind`` to be loaded as ``target``.

    Parameters
    ----------
    kind : str
        The class attribute ``model_kind`` of the model class: lower-case letters, digits,
        ``_`` and ``-``, starting with a letter.
    target : str or type
        ``"package.module:ClassName"`` (imported only when a model of this kind is loaded),
        or the class itself. The class must subclass :class:`palate.models.base.Model`.
    replace : bool
        Re-point an already registered kind at another class. Without it, registering a
        kind that maps elsewhere raises :class:`~palate.errors.ConfigError`.

    Examples
    --------
    >>> register_model_kind("my-model", "my_package.models:MyModel")  # doctest: +SKIP
    """
    if not isinstance(kind, str) or not _KIND_PATTERN.match(kind):
        raise ConfigError(
            f"model kind {kind!r} is not valid; use lower-case letters, digits, '_' or '-', "
            "starting with a letter (at most 64 characters)"
        )
    if isinstance(target, type):
        if not issubclass(target, Model):
            raise ConfigError(
                f"{target.__name__} does not subclass palate.models.base.Model; "
                "only palate models can be registered"
            )
        target = f"{target.__module__}:{target.__qualname__}"
    if not isinstance(target, str) or not _TARGET_PATTERN.match(target):
        raise ConfigError(
            f"model target {target!r} is not valid; give 'package.module:ClassName' or the class"
        )
    current = _MODEL_KINDS.get(kind)
    if current is not None and current != target and not replace:
        raise ConfigError(
            f"model kind {kind!r} is already registered as {current!r}; "
            "pass replace=True to re-point it"
        )
    _MODEL_KINDS[kind] = target


def registered_model_kinds() -> dict[str, str]:
    """A copy of the allow-list: model kind -> ``"module:Class"``."""
    return dict(_MODEL_KINDS)


def is_registered(kind: str) -> bool:
    """Whether model files of ``kind`` can be loaded."""
    return kind in _MODEL_KINDS


def resolve_model_class(kind: str) -> type[Model]:
    """Import and return the class registered for ``kind``.

    Raises
    ------
    ArtifactError
        If ``kind`` is not in the allow-list, cannot be imported, or does not name a
        :class:`~palate.models.base.Model` subclass whose ``model_kind`` is ``kind``.
    """
    target = _MODEL_KINDS.get(kind) if isinstance(kind, str) else None
    if target is None:
        known = ", ".join(sorted(_MODEL_KINDS))
        raise ArtifactError(
            f"model kind {kind!r} is not one palate can load (known: {known}); if it comes from "
            "your own code, call palate.persist.register_model_kind(kind, 'module:Class') first"
        )
    module_name, _, attribute_path = target.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
        for attribute in attribute_path.split("."):
            obj = getattr(obj, attribute)
    except (ImportError, AttributeError) as exc:
        raise ArtifactError(
            f"model kind {kind!r} maps to {target!r}, which cannot be imported ({exc}); "
            "install the package that provides it or fix the registration"
        ) from exc
    if not (isinstance(obj, type) and issubclass(obj, Model)):
        raise ArtifactError(
            f"model kind {kind!r} maps to {target!r}, which is not a palate Model subclass; "
            "fix the registration"
        )
    if obj.model_kind != kind:
        raise ArtifactError(
            f"model kind {kind!r} maps to {target!r}, whose model_kind is {obj.model_kind!r}; "
            "fix the registration so the two agree"
        )
    return obj


__all__ = [
    "is_registered",
    "register_model_kind",
    "registered_model_kinds",
    "resolve_model_class",
]
