"""``palate recommend``, ``palate similar`` and ``palate rate``: use a saved model."""

from __future__ import annotations

import dataclasses
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer

from palate import RetrieveThenRank, load_artifact
from palate.cli._items import items_table
from palate.cli._session import JsonOption, Session, VerboseOption, session
from palate.data.catalog import AmbiguousTitleError, Catalog, typed_id
from palate.errors import ConfigError, DataError, PalateError
from palate.models.base import Model

ModelDir = Annotated[
    Path, typer.Argument(metavar="DIR", help="A model directory saved by `palate train`.")
]
TopK = Annotated[int, typer.Option("-k", "--k", min=1, help="How many items to list.")]
MinRatings = Annotated[
    int,
    typer.Option(
        "--min-ratings",
        metavar="N",
        min=0,
        help="Never list items with fewer than N training events (the curriculum's lab keeps "
        "films with more than 20 ratings: --min-ratings 21).",
    ),
]
Policies = Annotated[
    list[str] | None,
    typer.Option(
        "--policy",
        metavar="'COLUMN OP VALUE'",
        help="List only items whose attribute passes, e.g. 'year>=1970', 'genres!=Horror' "
        "(operators == != < <= > >= in, not in, contains, not contains); repeat for more. "
        "The columns are those of the item table saved with the model.",
    ),
]


class Metric(StrEnum):
    euclidean = "euclidean"
    cosine = "cosine"


def load_model_that_can(model_dir: Path, capability: str, otherwise: str) -> tuple[Any, Any]:
    """The artifact and its model, or a one-line error when the model lacks ``capability``
    (``"can_fold_in"`` or ``"similarity_metric"`` of :meth:`Model.capabilities`)."""
    artifact = load_artifact(model_dir)
    if not artifact.model.capabilities().get(capability):
        kind = artifact.manifest.get("model_kind")
        raise ConfigError(f"{model_dir} holds a {kind} model, which {otherwise}")
    return artifact, artifact.model


def with_filters(
    model: Any, artifact: Any, model_dir: Path, min_ratings: int, policies: list[str] | None
) -> Any:
    """``model`` restricted by --min-ratings and --policy (a FilteredModel), or as it is."""
    if not min_ratings and not policies:
        return model
    from palate.ranking import FilteredModel, parse_policy

    table = artifact.item_table
    if policies and table is None:
        raise ConfigError(
            f"{model_dir} was saved without an item table, so --policy has no columns to read; "
            "train it on a dataset with items (e.g. palate train --data ml-latest-small) or "
            "leave --policy out"
        )
    parsed = [parse_policy(text, table) for text in policies or ()]
    return FilteredModel(model, table, min_ratings=min_ratings, policies=parsed)


def filters_note(min_ratings: int, policies: list[str] | None) -> dict[str, Any]:
    return {"min_ratings": min_ratings, "policies": list(policies or ())}


def score_meaning(model: Model, fallback: bool = False) -> tuple[str, str]:
    """Column name and number format of a model's recommendation scores, from what the model
    declares they are (:attr:`Model.score_kind`): a predicted rating only for rating models;
    EASE's and implicit ALS's scores are preferences, comparable within one user only."""
    if model.score_kind == "popularity":
        if model.get_params().get("by") == "mean":
            return "mean rating", "{:.2f}"
        return "events", "{:,.0f}"
    if fallback:  # the fallback list: shrunk mean ratings, or counts of events
        if model.rating_scale is not None:
            return "mean rating", "{:.2f}"
        return "events", "{:,.0f}"
    return {
        "rating": ("predicted rating", "{:.2f}"),
        "probability": ("probability", "{:.3f}"),
        "preference": ("preference", "{:.3f}"),
    }[model.score_kind]


def recommend(
    model_dir: ModelDir,
    user: Annotated[str, typer.Option("--user", help="The user's id.")],
    k: TopK = 10,
    include_seen: Annotated[
        bool,
        typer.Option("--include-seen", help="Also list items the user has in the training data."),
    ] = False,
    pipeline: Annotated[
        Path | None,
        typer.Option(
            "--pipeline",
            metavar="CONFIG.toml",
            help="Retrieve candidates from sources, then rank them with the model in DIR. The "
            "TOML lists the sources, filters and `data` (the events the sources read).",
        ),
    ] = None,
    save_pipeline: Annotated[
        Path | None,
        typer.Option(
            "--save-pipeline",
            metavar="OUT",
            help="Also save the pipeline built from --pipeline as a model directory.",
        ),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Say why each item is shown: the terms of its score (the user's items that "
            "contribute most, or popularity) and, for a pipeline, the sources that found it.",
        ),
    ] = False,
    min_ratings: MinRatings = 0,
    policy: Policies = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Top-k items for a user; an unknown user gets the model's fallback list.

    With --pipeline (or a DIR saved with --save-pipeline), candidates come from several
    sources (similar to recent items, favourite genres, segment, popular, nearest to the user
    vector) and the model ranks only those; --explain shows which source found each item.
    """
    with session(json_output, verbose) as s:
        artifact = load_artifact(model_dir)
        model: Any = artifact.model
        if pipeline is not None:
            model = build_pipeline(s, model, pipeline, artifact.item_table)
            if save_pipeline is not None:
                from palate import save

                save(model, save_pipeline, item_table=artifact.item_table)
                s.say(f"Saved the pipeline to {save_pipeline}.")
        elif save_pipeline is not None:
            raise ConfigError("--save-pipeline saves what --pipeline builds; pass --pipeline too")
        if explain and not model.can_explain:
            raise ConfigError(
                f"{model_dir} holds a {artifact.manifest.get('model_kind')} model, whose "
                "scores are not split into reasons; explain with a collaborative, ease, hybrid "
                "or popularity model, or pass --pipeline CONFIG.toml"
            )
        model = with_filters(model, artifact, model_dir, min_ratings, policy)
        catalog = Catalog(artifact.item_table, model.items_)
        user_id = typed_id(user, model.users_)
        known = user_id in model.users_
        result = model.recommend([user_id], k=k, exclude_seen=not include_seen)
        fallback = bool(result.fallback[0])
        value_name, value_format = score_meaning(model, fallback)
        rows = catalog.rows(result.item_ids[0], result.shown[0])
        if explain:
            explain_rows(model, user_id, rows, catalog, k, include_seen)
        note = None
        if not known:
            note = f"user {user} is not in the model's training data; " + (
                "showing the fallback for unknown users (items with the best shrunk mean "
                "rating, or the most popular ones)"
                if fallback
                else "this model recommends the same items to everyone"
            )
        s.emit(
            {
                "model_dir": str(artifact.path),
                "model_kind": artifact.manifest.get("model_kind"),
                "user_id": user_id,
                "known_user": known,
                "fallback": fallback,
                "note": note,
                "k": k,
                "include_seen": include_seen,
                "filters": filters_note(min_ratings, policy),
                "score": value_name,
                "score_kind": "popularity" if fallback else model.score_kind,
                "recommendations": rows,
            }
        )
        if note:
            s.say(f"Note: {note}.")
        s.show(
            items_table(
                rows,
                title=f"Top {k} for user {user}",
                value_name=value_name,
                value_key="score",
                value_format=value_format,
                with_titles=catalog.has_titles,
                reason_key="because" if explain else None,
            )
        )


def explain_rows(
    model: Any, user_id: Any, rows: list[dict[str, Any]], catalog: Catalog, k: int,
    include_seen: bool,
) -> None:
    """``row["because"]``: the named terms of each listed item's score (the model's
    ``explain_items``), after, for a pipeline, what its sources say (``row["sources"]``)."""
    ids = [row["item_id"] for row in rows]
    explained = model.explain_items(user_id, ids) if ids else []
    ratings = model.feedback_kind != "implicit"
    found = {}
    if isinstance(model, RetrieveThenRank):
        found = {
            r.item_id: r
            for r in model.explain(
                user_id, k=k, exclude_seen=not include_seen, item_label=catalog.label
            )
        }
    for row, explanation in zip(rows, explained, strict=True):
        terms = dataclasses.replace(
            explanation, reasons=tuple(r for r in explanation.reasons if r.kind != "source")
        )
        sourced = found.get(row["item_id"])
        if sourced is not None:
            row["sources"] = list(sourced.sources)
        row["because"] = [*(sourced.because if sourced else ()),
                          *terms.phrases(catalog.label, ratings)]
        row["contributions"] = {
            "score": explanation.score,
            "baseline": explanation.baseline,
            "personal": explanation.personal,
            "unexplained": explanation.unexplained,
        }


#: The threshold ``palate train`` turns ratings into positives at by default (--threshold).
TRAIN_THRESHOLD = 4.0
#: The least share of shared events (see :func:`check_pipeline_data`) that counts as the same
#: data when the fingerprints differ.
SAME_DATA_SHARE = 0.5


def build_pipeline(s: Session, ranker: Any, config_path: Path, item_table: Any) -> Any:
    """A RetrieveThenRank from a TOML configuration, fitted on the events its ``data`` names
    (restricted to the users and items the ranker knows).

    The configuration's ``data`` must be the data the ranker was trained on
    (:func:`check_pipeline_data`): the sources read the users' histories from it, and another
    data set's histories would recommend films the user has already rated. Every error is a
    :class:`~palate.errors.PalateError` (one line on the command line) naming the fix.
    """
    from palate.cli.data import load_dataset
    from palate.ranking import read_pipeline_config

    if isinstance(ranker, RetrieveThenRank):
        raise ConfigError("the model directory already holds a pipeline; drop --pipeline")
    config = read_pipeline_config(config_path)
    source = config.get("data")
    if not isinstance(source, str):
        raise ConfigError(
            f"{config_path} must name the events the sources read, e.g. data = \"ml-1m\" "
            "(a dataset name or a ratings file, as for --data)"
        )
    pipeline = RetrieveThenRank.from_config(ranker, config)
    dataset = load_dataset(s, source)
    check_pipeline_data(s, ranker, dataset.ratings, config_path, source)
    events = dataset.ratings
    keep = ranker.users_.contains(events.user_ids) & ranker.items_.contains(events.item_ids)
    events = events.subset(keep.nonzero()[0])
    users = _user_table(dataset)
    with s.working("retrieval sources"):
        try:
            pipeline.fit(
                events,
                item_table=item_table if item_table is not None else dataset.items,
                user_table=users,
            )
        except PalateError:
            raise
        except Exception as exc:  # a bug, not a setting: still one line (-v: the traceback)
            raise ConfigError(
                f"could not build the pipeline of {config_path} on {source}: "
                f"{type(exc).__name__}: {exc}; check its sources and policies against the "
                "data's item and user tables (run with -v for the traceback)"
            ) from exc
    return pipeline


def check_pipeline_data(
    s: Session, model: Any, events: Any, config_path: Path | str, source: str
) -> None:
    """Refuse ``events`` (what ``data = source`` in ``config_path`` names) unless they are
    the data ``model`` was trained on.

    ``palate train`` saves a model fitted on every event of ``--data`` as loaded, or, for
    engagement models, on those events turned into 0/1 labels at ``--threshold``: every event
    kept, below the threshold as 0 (``--model ials`` / ``ease``), or the positives only
    (``--kind binary``). Its manifest records the fingerprint of those events
    (``Interactions.fingerprint()``), which the model carries as ``data_fingerprint_``.

    The rule:

    1. the events as loaded, or converted in any of those ways at the default threshold
       (4.0), have the model's fingerprint: the same data, accepted;
    2. otherwise (another ``--threshold``, ``--feedback`` merged in, a model trained on a
       split in Python, a model file without a fingerprint) the histories are compared:
       with ``shared`` the number of (user, item) events that are both in ``events`` and
       among the model's training events (its ``seen_`` pairs), the data is accepted, with
       a note, when ``shared`` is at least half of the model's training events or at least
       half of ``events``, and refused otherwise. Events of the same data coincide almost
       entirely (all of the model's events are in the data after a conversion or a split);
       another data set's coincide only by accident (3% of a model trained on MovieLens
       ml-latest-small are events of ml-1m, whose user and item ids overlap with it).

    Raises
    ------
    DataError
        The events are another data set's; the message names both fingerprints and the fix.
    """
    trained_on = getattr(model, "data_fingerprint_", None)
    if trained_on is not None and trained_on in _training_fingerprints(events):
        return
    seen = model.seen_
    users = model.users_.index(events.user_ids, missing="ignore")
    items = model.items_.index(events.item_ids, missing="ignore")
    known = (users >= 0) & (items >= 0)
    shared = int(np.count_nonzero(np.asarray(seen[users[known], items[known]]).ravel()))
    n_model, n_events = int(seen.nnz), len(events)
    share_of_model = shared / max(n_model, 1)
    share_of_events = shared / max(n_events, 1)
    if max(share_of_model, share_of_events) >= SAME_DATA_SHARE:
        s.note(
            f"{config_path} names data = {source!r}, which is not exactly the data the model "
            f"was trained on (fingerprint {_short(trained_on)}), but {share_of_model:.0%} of "
            "the model's training events are in it; using it"
        )
        return
    raise DataError(
        f"{config_path} names data = {source!r} ({n_events:,} events, fingerprint "
        f"{_short(events.fingerprint())}), but the model was trained on other data "
        f"({n_model:,} events, fingerprint {_short(trained_on)}; {share_of_model:.0%} of them "
        "are in it), so the sources would read other users' histories. Point `data` at the "
        f"data the model was trained on, or train a model on {source} (palate train --data "
        f"{source} --out DIR)"
    )


def _training_fingerprints(events: Any) -> set[str]:
    """Fingerprints of ``events`` as ``palate train`` fits them (its own conversion), at the
    default threshold."""
    from palate.cli._models import as_kind

    found = {events.fingerprint()}
    for keep_negatives in (True, False):
        try:
            converted = as_kind(events, "binary", TRAIN_THRESHOLD, keep_negatives)
        except PalateError:  # no event reaches the threshold: no such model was trained
            continue
        found.add(converted.fingerprint())
    return found


def _user_table(dataset: Any) -> Any:
    """The dataset's user table with the columns palate derives (``zip_region``), or None."""
    from palate.data.dataset import with_derived_user_columns

    return None if dataset.users is None else with_derived_user_columns(dataset.users)


def _short(fingerprint: str | None) -> str:
    if fingerprint is None:
        return "not recorded"
    return fingerprint.split(":", 1)[-1][:12]


def similar(
    model_dir: ModelDir,
    item: Annotated[
        str,
        typer.Option(
            "--item",
            metavar="ID-OR-TITLE",
            help="An item id, or part of a title (case-insensitive) that matches one item.",
        ),
    ],
    k: TopK = 10,
    metric: Annotated[
        Metric,
        typer.Option(help="euclidean: smallest ‖x(k) − x(i)‖²; cosine: 1 − cos(x(k), x(i))."),
    ] = Metric.euclidean,
    min_ratings: MinRatings = 0,
    policy: Policies = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Items whose learned features are closest to an item's."""
    with session(json_output, verbose) as s:
        artifact, model = load_model_that_can(
            model_dir,
            "similarity_metric",
            "has no item features; similar items need --model cf, ials or two-tower",
        )
        catalog = Catalog(artifact.item_table, model.items_)
        item_id = resolve_item(s, catalog, item)
        model = with_filters(model, artifact, model_dir, min_ratings, policy)
        result = model.similar_items([item_id], k=k, metric=metric.value)
        rows = catalog.rows(result.similar_ids[0], result.distances[0], value_name="distance")
        s.emit(
            {
                "model_dir": str(artifact.path),
                "item": catalog.describe(item_id),
                "metric": metric.value,
                "k": k,
                "filters": filters_note(min_ratings, policy),
                "similar": rows,
            }
        )
        s.show(
            items_table(
                rows,
                title=f"Most similar to {catalog.label(item_id)} ({metric.value})",
                value_name="distance",
                value_format="{:.4f}",
                with_titles=catalog.has_titles,
            )
        )


def resolve_item(s: Session, catalog: Catalog, query: str) -> Any:
    """``catalog.resolve``, listing the candidates on stderr when a title is ambiguous."""
    try:
        return catalog.resolve(query)
    except AmbiguousTitleError as exc:
        if not s.json:
            s.err.print(
                items_table(
                    [{**row, "rank": n} for n, row in enumerate(exc.candidates, start=1)],
                    title=f"Items matching {query!r}",
                    value_name=None,
                )
            )
        raise


def rate(
    model_dir: ModelDir,
    ratings_file: Annotated[
        Path | None,
        typer.Option(
            "--ratings",
            metavar="FILE",
            help="CSV with columns item_id,rating (instead of rating interactively).",
        ),
    ] = None,
    k: TopK = 10,
    min_ratings: MinRatings = 0,
    policy: Policies = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Rate a few items as a new user and get recommendations at once (fold-in).

    Without --ratings: search for a title, pick it, give a rating; an empty search line
    finishes. The model's item vectors stay fixed; only the new user's vector is solved.
    """
    with session(json_output, verbose) as s:
        artifact, model = load_model_that_can(
            model_dir, "can_fold_in", "cannot take a new user's ratings; use --model cf"
        )
        catalog = Catalog(artifact.item_table, model.items_)
        if ratings_file is not None:
            ratings = read_ratings_file(ratings_file, catalog)
        else:
            ratings = ask_ratings(s, catalog, model)
        if not ratings:
            raise ConfigError("no ratings given; rate at least one item")
        item_ids, scores = with_filters(
            model, artifact, model_dir, min_ratings, policy
        ).recommend_for_ratings(ratings, k=k)
        scores = model.listed_fold_in_predictions(ratings, item_ids, scores)
        value_name, value_format = score_meaning(model)
        rows = catalog.rows(item_ids, scores)
        rated = [{**catalog.describe(i), "rating": r} for i, r in ratings.items()]
        s.emit(
            {
                "model_dir": str(artifact.path),
                "ratings": rated,
                "k": k,
                "filters": filters_note(min_ratings, policy),
                "score": value_name,
                "score_kind": model.score_kind,
                "recommendations": rows,
            }
        )
        rated_table = items_table(
            [{**row, "rank": ""} for row in rated],
            title="Your ratings",
            value_name="rating",
            value_format="{:g}",
            with_titles=catalog.has_titles,
        )
        s.show(rated_table)
        s.show(
            items_table(
                rows,
                title=f"Top {k} for you",
                value_name=value_name,
                value_key="score",
                value_format=value_format,
                with_titles=catalog.has_titles,
            )
        )


def read_ratings_file(path: Path, catalog: Catalog) -> dict[Any, float]:
    """``{item_id: rating}`` from a CSV with columns item_id (or movieId) and rating."""
    try:
        frame = pd.read_csv(path, dtype={"item_id": str, "movieId": str})
    except FileNotFoundError:
        raise DataError(f"no such ratings file: {path}") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {path} as CSV: {exc}") from exc
    item_col = next((c for c in ("item_id", "movieId") if c in frame.columns), None)
    value_col = next((c for c in ("rating", "value") if c in frame.columns), None)
    if item_col is None or value_col is None:
        raise DataError(
            f"{path} has columns {list(frame.columns)}; a ratings file needs a header row "
            "item_id,rating"
        )
    values = pd.to_numeric(frame[value_col], errors="coerce")
    if values.isna().any():
        raise DataError(f"{path}: column {value_col!r} must hold numbers on every row")
    items = [catalog.typed_id(str(i)) for i in frame[item_col]]
    if len(set(items)) != len(items):
        raise DataError(f"{path} rates an item twice; keep one rating per item")
    return dict(zip(items, values.astype(float).tolist(), strict=True))


def _ask(s: Session, prompt: str) -> str | None:
    """One line from stdin (the prompt goes to stderr); None at end of input."""
    try:
        answer = s.err.input(prompt)
    except EOFError:
        answer = None
    if not sys.stdin.isatty():  # piped answers are not echoed: end the prompt's line
        s.err.print()
    return answer


def _rating_bounds(model: Model) -> tuple[float, float] | None:
    if model.feedback_kind == "binary":
        return (0.0, 1.0)
    return model.rating_scale


def ask_ratings(s: Session, catalog: Catalog, model: Any) -> dict[Any, float]:
    """Search, pick and rate items on the terminal until an empty search line."""
    bounds = _rating_bounds(model)
    binary = model.feedback_kind == "binary"
    how = "part of a title or an item id" if catalog.has_titles else "an item id"
    s.err.print(f"Rate a few items: type {how}; an empty line finishes.", markup=False)
    ratings: dict[Any, float] = {}
    while True:
        query = _ask(s, "search> ")
        if query is None or not query.strip():
            return ratings
        item_id = _pick(s, catalog, query)
        if item_id is None:
            continue
        if binary:
            question = f"did you like {catalog.label(item_id)}? 1 yes / 0 no> "
        elif bounds:
            question = f"rating for {catalog.label(item_id)} ({bounds[0]:g} to {bounds[1]:g})> "
        else:
            question = f"rating for {catalog.label(item_id)}> "
        value = _ask_number(s, question, bounds, whole=binary)
        if value is None:
            continue
        ratings[item_id] = value
        s.err.print(f"  rated {catalog.label(item_id)}: {value:g}", markup=False)


def _pick(s: Session, catalog: Catalog, query: str) -> Any:
    item_id = catalog.typed_id(query)
    if catalog.knows(item_id):
        return item_id
    candidates = catalog.search(query)
    if not candidates:
        s.err.print(f"  nothing the model knows matches {query!r}", markup=False)
        return None
    if len(candidates) == 1:
        return candidates[0]["item_id"]
    for number, candidate in enumerate(candidates, start=1):
        line = f"  {number:>2}. {candidate['title']}  (id {candidate['item_id']})"
        s.err.print(line, markup=False)
    while True:
        answer = _ask(s, "pick a number (empty to search again)> ")
        if answer is None or not answer.strip():
            return None
        if answer.strip().isdigit() and 1 <= int(answer) <= len(candidates):
            return candidates[int(answer) - 1]["item_id"]
        s.err.print(f"  type a number from 1 to {len(candidates)}", markup=False)


def _ask_number(
    s: Session, question: str, bounds: tuple[float, float] | None, whole: bool
) -> float | None:
    while True:
        answer = _ask(s, question)
        if answer is None or not answer.strip():
            return None
        try:
            value = float(answer)
        except ValueError:
            s.err.print("  type a number (empty to skip this item)", markup=False)
            continue
        if whole and value not in (0.0, 1.0):
            s.err.print("  type 1 or 0", markup=False)
            continue
        if bounds and not bounds[0] <= value <= bounds[1]:
            s.err.print(f"  the scale is {bounds[0]:g} to {bounds[1]:g}", markup=False)
            continue
        return value
