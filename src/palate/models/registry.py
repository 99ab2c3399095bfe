"""One registry of palate's models: the name of each model, its class, and how to build and fit it.

Two tables, kept together so that every tool reads the same one:

- the **allow-list of model kinds**: ``model_kind`` -> ``"module:Class"``, imported lazily. Model
  files are loaded through it (:mod:`palate.persist.registry`), and
  :func:`register_model_kind` adds your own models to it;
- a :class:`ModelSpec` for each model the command line, tuning and the benchmarks name
  (``cf``, ``ials``, ``ease``, ``two-tower``, ``popularity``): its name and aliases, its
  model kind (so its class comes from the allow-list), the data it trains on, which options map
  to which constructor arguments, and how its ``fit`` takes a progress callback, held-out events
  and features.

Examples
--------
>>> from palate.models.registry import build_model, model_class, model_spec
>>> model_class("ials").__name__
'ImplicitALS'
>>> build_model("cf", "binary", embedding_size=8).get_params()["kind"]
'binary'
>>> model_spec("two_tower").name
'two-tower'
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from palate.errors import ConfigError, MissingDependencyError
from palate.models.base import Model
from palate.models.two_tower.config import COLD_ITEMS, WARM

# ---------------------------------------------------------------------------- model kinds
_KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")
_TARGET_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

#: The allow-list: model kind -> "module:Class" (imported only when needed).
_MODEL_KINDS: dict[str, str] = {
    "popularity": "palate.models.popularity:Popularity",
    "collaborative": "palate.models.collaborative.model:CollaborativeFiltering",
    "bayes": "palate.models.collaborative.bayes_model:BayesianCollaborativeFiltering",
    "implicit_als": "palate.models.implicit:ImplicitALS",
    "ease": "palate.models.ease:EASE",
    "two_tower": "palate.models.two_tower.model:TwoTower",
    "retrieve_then_rank": "palate.ranking.pipeline:RetrieveThenRank",
    "hybrid": "palate.models.hybrid:HybridRecommender",
    "topn_blend": "palate.models.blend:TopNBlend",
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
    """Whether ``kind`` is in the allow-list."""
    return kind in _MODEL_KINDS


def kind_class(kind: str) -> type[Model]:
    """Import and return the class the allow-list names for ``kind``.

    Raises
    ------
    MissingDependencyError
        If the module it names cannot be imported.
    ConfigError
        If ``kind`` is not in the allow-list, or does not name a
        :class:`~palate.models.base.Model` subclass whose ``model_kind`` is ``kind``.
    """
    target = _MODEL_KINDS.get(kind) if isinstance(kind, str) else None
    if target is None:
        known = ", ".join(sorted(_MODEL_KINDS))
        raise ConfigError(
            f"model kind {kind!r} is not registered (known: {known}); if it comes from your "
            "own code, call palate.persist.register_model_kind(kind, 'module:Class') first"
        )
    module_name, _, attribute_path = target.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
        for attribute in attribute_path.split("."):
            obj = getattr(obj, attribute)
    except (ImportError, AttributeError) as exc:
        error = MissingDependencyError if isinstance(exc, ImportError) else ConfigError
        raise error(
            f"model kind {kind!r} maps to {target!r}, which cannot be imported ({exc}); "
            "install the package that provides it or fix the registration"
        ) from exc
    if not (isinstance(obj, type) and issubclass(obj, Model)):
        raise ConfigError(
            f"model kind {kind!r} maps to {target!r}, which is not a palate Model subclass; "
            "fix the registration"
        )
    if obj.model_kind != kind:
        raise ConfigError(
            f"model kind {kind!r} maps to {target!r}, whose model_kind is {obj.model_kind!r}; "
            "fix the registration so the two agree"
        )
    return obj


def component_model(
    value: Model | Mapping[str, Any] | None, default: str, role: str, examples: str
) -> Model:
    """A composite model's part: ``value`` as given (a model, copied unfitted with its
    parameters, or ``{"kind": ..., "params": {...}}``), or a ``default`` kind with its
    defaults. ``role`` and ``examples`` word the error."""
    if value is None:
        return kind_class(default)()
    if isinstance(value, Model):
        return value.with_params()
    if isinstance(value, Mapping) and isinstance(value.get("kind"), str):
        return kind_class(value["kind"])(**dict(value.get("params", {})))
    raise ConfigError(
        f"{role} must be a palate model (e.g. {examples}) or "
        f"{{'kind': ..., 'params': {{...}}}}, got {value!r}"
    )



# ---------------------------------------------------------------------------- model specs
#: What a model trains on, in words: explicit ratings, or engagement events (0/1 labels,
#: clicks, ratings made positives at a threshold).
EXPLICIT_RATINGS = "explicit ratings"
ENGAGEMENT_EVENTS = "engagement events"
_DATA_WORDS = {"explicit": EXPLICIT_RATINGS, "binary": ENGAGEMENT_EVENTS}

#: What a model's ``fit`` can take besides the training events: ``callback`` (called after
#: every epoch: progress bars), ``validation`` (held-out events scored after every epoch) and
#: ``features`` (``user_features`` and ``item_features`` tables).
FitInput = Literal["callback", "validation", "features"]


@dataclass(frozen=True)
class ModelSpec:
    """What the command line, tuning and the benchmarks need to know about one model.

    Attributes
    ----------
    name : str
        The name the command line takes (``--model cf``).
    model_kind : str
        The model's ``model_kind``: its class is the one the allow-list names for it.
    summary : str
        A few words for ``--help`` (empty: the name says it).
    aliases : tuple of str
        Other names accepted for the model (its model kind is always one).
    data_kinds : mapping of str to object
        The kinds of data it trains on — ``"explicit"`` ratings, ``"binary"`` engagement
        events, and optionally ``"positive"`` (binary events that are all positives, where a
        model has a dedicated objective) — each with the value :attr:`kind_argument` takes for
        it (None where the model has no such argument).
    kind_argument : str or None
        The constructor argument set from the kind of data (``kind``, ``objective``, ``by``).
    options : mapping of str to str or None
        Option -> constructor argument. None: the option is accepted and has no effect (the
        ``seed`` of a deterministic model).
    fit_inputs : frozenset of str
        What ``fit`` takes besides the events (see :data:`FitInput`).
    epochs_attribute : str or None
        The attribute of ``model.config`` holding the number of epochs ``fit`` runs (the
        length of a progress bar); None for models fitted in one step.
    presets : mapping of str to mapping
        Named sets of options (``--textbook``: the curriculum's exact cost J for ``cf``).
    early_stopping_attribute : str or None
        The attribute of ``model.config`` that, when set, makes ``fit(validation=...)`` stop
        early on those events (choose the epoch, and so the model, there); None for models
        that never do.
    """

    name: str
    model_kind: str
    summary: str = ""
    aliases: tuple[str, ...] = ()
    data_kinds: Mapping[str, Any] = field(default_factory=dict)
    kind_argument: str | None = None
    options: Mapping[str, str | None] = field(default_factory=dict)
    fit_inputs: frozenset[FitInput] = frozenset()
    epochs_attribute: str | None = None
    #: component -> the model kind it is by default, for options that set a component's
    #: parameter (``"rating.epochs"``)
    components: Mapping[str, str] = field(default_factory=dict)
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    early_stopping_attribute: str | None = None

    def stops_early(self, model: Model) -> bool:
        """Whether ``model.fit(validation=events)`` chooses its epoch on ``events``: then a
        metric measured on ``events`` afterwards is not held out, and the events to report on
        must not be passed to ``fit`` (the model stops early on a split of its own)."""
        if "validation" not in self.fit_inputs or self.early_stopping_attribute is None:
            return False
        return bool(getattr(model.config, self.early_stopping_attribute))

    def preset(self, name: str) -> dict[str, Any]:
        """The options of preset ``name``; a ConfigError naming the models that have it."""
        if name not in self.presets:
            others = [spec.name for spec in _SPECS.values() if name in spec.presets]
            where = f"; it applies to --model {', '.join(others)}" if others else ""
            raise ConfigError(f"--{name} does not apply to --model {self.name}{where}")
        return dict(self.presets[name])

    @property
    def trains_on(self) -> tuple[str, ...]:
        """``("explicit ratings", "engagement events")`` or the one of them it takes."""
        return tuple(_DATA_WORDS[kind] for kind in _DATA_WORDS if kind in self.data_kinds)

    @property
    def engagement_only(self) -> bool:
        """Whether it trains on engagement events only (ratings must become positives)."""
        return self.trains_on == (ENGAGEMENT_EVENTS,)

    def model_class(self) -> type[Model]:
        """The class the allow-list names for :attr:`model_kind` (imported now)."""
        return kind_class(self.model_kind)

    def data_kind(self, kind: str, positive_only: bool = False) -> str:
        """The kind to build the model for, given the data's ``kind`` (``"explicit"`` or
        ``"binary"``): ``"positive"`` for positive-only events where the model has a dedicated
        objective for them."""
        if kind == "binary" and positive_only and "positive" in self.data_kinds:
            return "positive"
        return kind

    def kind_arguments(self, kind: str | None) -> dict[str, Any]:
        """The constructor arguments that fit the model to data of ``kind`` (``"explicit"``,
        ``"binary"`` or ``"positive"``; None: the model's defaults)."""
        if kind is None:
            return {}
        if kind == "positive" and "positive" not in self.data_kinds:
            kind = "binary"  # positive-only events are binary events
        if kind not in self.data_kinds:
            words = _DATA_WORDS.get(kind, repr(kind))
            fix = (
                "; make the ratings positives first (--kind binary, or "
                "Interactions.binarize(threshold))"
                if kind == "explicit"
                else ""
            )
            raise ConfigError(
                f"model {self.name!r} trains on {' or '.join(self.trains_on)}, not {words}{fix}"
            )
        value = self.data_kinds[kind]
        if self.kind_argument is None or value is None:
            return {}
        return {self.kind_argument: value}

    def constructor_arguments(self, kind: str | None = None, **options: Any) -> dict[str, Any]:
        """The keyword arguments of the model's class for ``kind`` and ``options``.

        Options whose value is None are left to the model's default; an enum stands for its
        value.

        Raises
        ------
        ConfigError
            If an option does not apply to this model (the message names the option, the
            model, the options it takes and the models the option applies to).
        """
        arguments = self.kind_arguments(kind)
        for option, value in options.items():
            if value is None:
                continue
            if option not in self.options:
                raise ConfigError(self._not_an_option(option))
            argument = self.options[option]
            if argument is None:
                continue
            plain = value.value if isinstance(value, Enum) else value
            if "." in argument:  # "rating.epochs": a parameter of a component model
                component, parameter = argument.split(".", 1)
                nested = arguments.setdefault(
                    component, {"kind": self.components[component], "params": {}}
                )
                nested["params"][parameter] = plain
            else:
                arguments[argument] = plain
        return arguments

    def build(self, kind: str | None = None, **options: Any) -> Model:
        """A new, unfitted model for data of ``kind`` with ``options`` (see
        :meth:`constructor_arguments`)."""
        arguments = self.constructor_arguments(kind, **options)
        return self.model_class()(**arguments)

    def fit_params(
        self,
        *,
        callback: Any = None,
        validation: Any = None,
        user_features: Any = None,
        item_features: Any = None,
    ) -> dict[str, Any]:
        """The keyword arguments of ``fit`` among these that the model takes (None ones left
        out): ``model.fit(events, **spec.fit_params(...))``."""
        given: dict[FitInput, dict[str, Any]] = {
            "callback": {"callback": callback},
            "validation": {"validation": validation},
            "features": {"user_features": user_features, "item_features": item_features},
        }
        return {
            name: value
            for what, values in given.items()
            if what in self.fit_inputs
            for name, value in values.items()
            if value is not None
        }

    def epochs(self, model: Model) -> int | None:
        """How many epochs ``model.fit`` runs (None: fitted in one step)."""
        if self.epochs_attribute is None:
            return None
        return int(getattr(model.config, self.epochs_attribute))

    def _not_an_option(self, option: str) -> str:
        flag = "--" + option.replace("_", "-")
        takes = [o for o, argument in self.options.items() if argument is not None]
        taken = (
            f"it takes {', '.join('--' + o.replace('_', '-') for o in takes)}"
            if takes
            else "it takes none of the model options"
        )
        others = [
            spec.name
            for spec in _SPECS.values()
            if spec.options.get(option) is not None and spec.name != self.name
        ]
        where = (
            f"; {flag} applies to --model {', '.join(others)} only"
            if others
            else f"; no model takes {flag}"
        )
        return f"{flag} does not apply to --model {self.name} ({taken}){where}"


#: The curriculum's cost J exactly, with mean normalisation: no learned item bias c(i), one λ
#: for every vector (not scaled by counts), plain (unshrunk) item means, no bias penalty.
TEXTBOOK: Mapping[str, Any] = {
    "item_bias": False,
    "reg_scaling": "none",
    "mean_shrinkage": 0.0,
    "bias_reg": 0.0,
}


def _same(*names: str) -> dict[str, str | None]:
    """Options named as the constructor arguments they set."""
    return {name: name for name in names}


#: ``seed`` of a model that draws nothing at random: accepted, no effect.
_NO_SEED: dict[str, str | None] = {"seed": None}

_SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="cf",
            model_kind="collaborative",
            summary="collaborative filtering",
            aliases=("collaborative",),
            data_kinds={"explicit": "explicit", "binary": "binary"},
            kind_argument="kind",
            options=_same(
                "solver", "embedding_size", "reg", "epochs", "learning_rate", "batch_size", "seed",
                "item_bias", "reg_scaling", "mean_shrinkage", "bias_reg",
            ),
            fit_inputs=frozenset({"callback", "validation"}),
            epochs_attribute="n_epochs",
            presets={"textbook": TEXTBOOK},
            early_stopping_attribute="early_stopping",
        ),
        ModelSpec(
            name="bayes",
            model_kind="bayes",
            summary="fully Bayesian collaborative filtering with implicit terms (Gibbs "
            "sampling): the most accurate rating predictor",
            aliases=("bayesian",),
            data_kinds={"explicit": None},
            options=_same("embedding_size", "epochs", "seed"),
            fit_inputs=frozenset({"callback", "validation"}),
            epochs_attribute="n_sweeps",
        ),
        ModelSpec(
            name="ials",
            model_kind="implicit_als",
            summary="implicit-feedback ALS (positive-only data; ratings become positives at "
            "--threshold)",
            aliases=("implicit_als",),
            data_kinds={"binary": None},
            options=_same("embedding_size", "reg", "epochs", "seed"),
            fit_inputs=frozenset({"callback"}),
            epochs_attribute="epochs",
        ),
        ModelSpec(
            name="ease",
            model_kind="ease",
            summary="closed-form item-to-item model for positive-only data on catalogues up "
            "to ~30k items",
            data_kinds={"binary": None},
            options={**_same("reg"), **_NO_SEED},
        ),
        ModelSpec(
            name="blend",
            model_kind="topn_blend",
            summary="EASE and implicit-feedback ALS blended (positive-only data; the "
            "default for engagement events; the model options set its ALS)",
            aliases=("topn-blend",),
            data_kinds={"binary": None},
            options={
                name: f"factor_model.{name}" for name in ("embedding_size", "epochs", "seed")
            },
            components={"factor_model": "implicit_als"},
        ),
        ModelSpec(
            name="two-tower",
            model_kind="two_tower",
            summary="content-based deep model on user and item features (serves new items "
            "and users)",
            aliases=("two_tower",),
            data_kinds={"explicit": "ratings", "binary": "binary", "positive": "retrieval"},
            kind_argument="objective",
            options=_same(
                "embedding_size", "reg", "epochs", "learning_rate", "batch_size", "seed",
                "compile",
            ),
            fit_inputs=frozenset({"callback", "validation", "features"}),
            epochs_attribute="epochs",
            early_stopping_attribute="early_stopping",
            presets={"cold_items": COLD_ITEMS, "warm": WARM},
        ),
        ModelSpec(
            name="hybrid",
            model_kind="hybrid",
            summary="ranks like a top-N model (EASE on every rated item) blended with "
            "collaborative filtering's predicted rating, which it predicts (the default; the "
            "model options set its collaborative filtering)",
            data_kinds={"explicit": None},
            options={
                name: f"rating.{name}"
                for name in ("solver", "embedding_size", "reg", "epochs", "learning_rate",
                             "batch_size", "seed")
            },
            components={"rating": "collaborative"},
        ),
        ModelSpec(
            name="popularity",
            model_kind="popularity",
            data_kinds={"explicit": "mean", "binary": "count"},
            kind_argument="by",
            options=dict(_NO_SEED),
        ),
    )
}


def _lookup() -> dict[str, ModelSpec]:
    table: dict[str, ModelSpec] = {}
    for spec in _SPECS.values():
        for name in (spec.name, spec.model_kind, *spec.aliases):
            table.setdefault(name, spec)
    return table


def model_names() -> tuple[str, ...]:
    """The names the command line takes, in the order ``--help`` lists them."""
    return tuple(_SPECS)


def model_specs() -> tuple[ModelSpec, ...]:
    """The spec of every named model, in the order of :func:`model_names`."""
    return tuple(_SPECS.values())


def model_spec(name: str) -> ModelSpec:
    """The spec of the model called ``name`` (a name, an alias or a model kind).

    Raises
    ------
    ConfigError
        If no model has that name; the message lists the names.
    """
    spec = _lookup().get(name) if isinstance(name, str) else None
    if spec is None:
        raise ConfigError(f"unknown model {name!r}; choose from {', '.join(model_names())}")
    return spec


def model_class(name: str) -> type[Model]:
    """The class of the model called ``name`` (a name, an alias or a model kind)."""
    return model_spec(name).model_class()


def build_model(name: str, kind: str | None = None, **options: Any) -> Model:
    """A new, unfitted model called ``name`` for data of ``kind`` with ``options``.

    Parameters
    ----------
    name : str
        ``"cf"``, ``"ials"``, ``"ease"``, ``"two-tower"``, ``"popularity"`` or an alias.
    kind : {"explicit", "binary", "positive"}, optional
        The data it will be fitted on; sets the argument that depends on it (``kind`` of
        collaborative filtering, ``objective`` of two towers, ``by`` of popularity). None: the
        model's defaults.
    **options
        Options of :attr:`ModelSpec.options` (``embedding_size``, ``reg``, ``epochs``,
        ``learning_rate``, ``batch_size``, ``solver``, ``seed``, ``compile``); None values
        keep the model's default.

    Raises
    ------
    ConfigError
        For an unknown name (listing the names), data the model cannot train on, or an
        option that does not apply to the model (naming both).

    Examples
    --------
    >>> build_model("two-tower", "explicit", epochs=2).config.objective
    'ratings'
    """
    return model_spec(name).build(kind, **options)


__all__ = [
    "ENGAGEMENT_EVENTS",
    "EXPLICIT_RATINGS",
    "FitInput",
    "ModelSpec",
    "build_model",
    "component_model",
    "is_registered",
    "kind_class",
    "model_class",
    "model_names",
    "model_spec",
    "model_specs",
    "register_model_kind",
    "registered_model_kinds",
]
