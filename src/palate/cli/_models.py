"""``--model`` and the events a model trains on: what ``palate train``, ``tune`` and
``evaluate`` share, read from :mod:`palate.models.registry`."""

from __future__ import annotations

from typing import Annotated

import typer

from palate.data.interactions import Interactions
from palate.errors import ConfigError
from palate.models.registry import ModelSpec, model_names, model_spec, model_specs

#: ``cf: collaborative filtering; ials: ...; popularity.``
MODEL_HELP = "; ".join(
    f"{spec.name}: {spec.summary}" if spec.summary else spec.name for spec in model_specs()
) + "."


def _model_name(value: str) -> str:
    """``--model``'s value as the model's name (aliases and model kinds are accepted)."""
    try:
        return model_spec(value).name
    except ConfigError:
        raise typer.BadParameter(
            f"{value!r} is not a model; choose from {', '.join(model_names())}"
        ) from None


ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        metavar=f"<{'|'.join(model_names())}>",
        callback=_model_name,
        help=MODEL_HELP,
    ),
]


def as_kind(
    ratings: Interactions, kind: str | None, threshold: float, keep_negatives: bool = False
) -> Interactions:
    """The events as ``kind``: explicit ratings become positives at ``threshold`` or above
    (the others dropped, or kept as 0 labels with ``keep_negatives``); 0/1 values read as
    ratings become binary labels."""
    if kind is None or kind == ratings.kind:
        return ratings
    if kind == "explicit":
        raise ConfigError(
            "the data holds binary events (no rating column), so --kind explicit cannot be "
            "trained on it; use --kind binary"
        )
    values = ratings.values
    if len(values) and bool(((values == 0) | (values == 1)).all()):
        return Interactions.from_arrays(
            ratings.user_ids,
            ratings.item_ids,
            values,
            ratings.timestamps,
            kind="binary",
            users=ratings.users,
            items=ratings.items,
        )
    return ratings.binarize(threshold, keep_negatives=keep_negatives)


def training_events(
    spec: ModelSpec, ratings: Interactions, kind: str | None, threshold: float
) -> Interactions:
    """The events ``spec``'s model trains on: ``kind`` (None: what the data holds), or
    engagement events for models that train on nothing else: ratings at ``threshold`` or
    above become positives and the others stay as 0 events (seen, so never recommended back,
    and never relevant in an evaluation) — the same events in train, evaluate and tune."""
    if spec.engagement_only:
        return as_kind(ratings, "binary", threshold, keep_negatives=True)
    return as_kind(ratings, kind, threshold)


def data_kind(spec: ModelSpec, events: Interactions) -> str:
    """The kind of data to build ``spec``'s model for (see :meth:`ModelSpec.data_kind`)."""
    return spec.data_kind(events.kind, positive_only=events.is_positive_only)


__all__ = ["MODEL_HELP", "ModelOption", "as_kind", "data_kind", "training_events"]
