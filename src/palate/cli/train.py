"""``palate train``: fit a model on a training split, report held-out numbers, save it."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from palate import Interactions, save
from palate.cli._evaluate import ranking_report, rating_report, report_table
from palate.cli._models import ModelOption, data_kind, training_events
from palate.cli._session import JsonOption, Session, VerboseOption, json_safe, session
from palate.cli.data import load_dataset
from palate.errors import ArtifactError, ConfigError
from palate.evaluation.tune import validation_split
from palate.models.base import Model
from palate.models.collaborative import CollaborativeFilteringConfig
from palate.models.registry import model_spec

RANKING_K = 10
_DEFAULT = CollaborativeFilteringConfig()
_ALS_EPOCHS = CollaborativeFilteringConfig(solver="als").n_epochs
_ADAM_EPOCHS = CollaborativeFilteringConfig(solver="adam").n_epochs


class Kind(StrEnum):
    explicit = "explicit"
    binary = "binary"


class Solver(StrEnum):
    als = "als"
    adam = "adam"


class RegScaling(StrEnum):
    by_count = "count"
    plain = "none"


def train(
    ctx: typer.Context,
    data: Annotated[
        str,
        typer.Option(
            "--data",
            metavar="NAME-OR-PATH",
            help="A ratings file (.csv/.tsv/.parquet with user_id,item_id[,rating]), a "
            "MovieLens directory or zip, or a release name such as ml-latest-small.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory to save the model in.")],
    model_name: ModelOption = "hybrid",
    kind: Annotated[
        Kind | None,
        typer.Option(
            help="explicit: predict ratings; binary: predict engagement (ratings >= "
            "--threshold count as positives). Default: what the data holds."
        ),
    ] = None,
    solver: Annotated[
        Solver | None, typer.Option(help="als (fast, default) or adam (autodiff + Adam).")
    ] = None,
    embedding_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=f"Length of the item and user vectors (default {_DEFAULT.embedding_size}).",
        ),
    ] = None,
    reg: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help=(
                "L2 regularisation λ (default "
                f"{_DEFAULT.effective_reg:g} explicit up to 100,000 ratings, smaller above; "
                f"{CollaborativeFilteringConfig(kind='binary').effective_reg:g} binary)."
            ),
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=f"ALS sweeps (default {_ALS_EPOCHS}) or Adam epochs (default {_ADAM_EPOCHS}).",
        ),
    ] = None,
    learning_rate: Annotated[
        float | None,
        typer.Option(help=f"Adam step size (default {_DEFAULT.learning_rate:g})."),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Adam mini-batch size (default: full batch).")
    ] = None,
    textbook: Annotated[
        bool,
        typer.Option(
            "--textbook",
            help="cf with the curriculum's cost J exactly, mean-normalised: --no-item-bias "
            "--reg-scaling none --mean-shrinkage 0 --bias-reg 0 (implies --model cf).",
        ),
    ] = False,
    item_bias: Annotated[
        bool | None,
        typer.Option(
            "--item-bias/--no-item-bias",
            help="cf: learn an item bias c(i) beside the mean (default on).",
            show_default=False,
        ),
    ] = None,
    reg_scaling: Annotated[
        RegScaling | None,
        typer.Option(
            help="cf: count scales each vector's λ by its number of ratings (default); none is "
            "the textbook λ/2 Σ‖w‖² + λ/2 Σ‖x‖²."
        ),
    ] = None,
    mean_shrinkage: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help=f"cf: shrink item means towards the global mean by this many pseudo-ratings "
            f"(default {_DEFAULT.mean_shrinkage:g}; 0: plain means).",
        ),
    ] = None,
    bias_reg: Annotated[
        float | None,
        typer.Option(min=0.0, help="cf: the penalty on the biases (default by kind)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split and the model.")] = 0,
    threshold: Annotated[
        float, typer.Option(help="With --kind binary on ratings: ratings >= this are positives.")
    ] = 4.0,
    validation_fraction: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share held out for validation (random events for explicit ratings, part of "
            "each user's events for binary); 0 trains on everything and reports nothing.",
        ),
    ] = 0.1,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a model already at --out.")
    ] = False,
    compile_step: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="two-tower: train through autograd with the step compiled by torch.compile "
            "(the default hand-written step measured faster on CPU).",
        ),
    ] = False,
    feedback: Annotated[
        Path | None,
        typer.Option(
            "--feedback",
            metavar="DB",
            help="Also train on the ratings `palate serve` collected in this SQLite file "
            "(they replace --data's rating of the same user and item).",
        ),
    ] = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Train a model, compare it with a baseline on held-out data, and save it to --out.

    The validation numbers come from a model fitted on the training part; the model saved is
    then fitted on every event (so it knows each user's whole history), and its manifest
    records those numbers with the split they came from, and the data's item table (titles,
    genres).
    """
    with session(json_output, verbose) as s:
        _check_out(out, overwrite)
        dataset = load_dataset(s, data)
        if feedback is not None:
            dataset = with_feedback(s, dataset, feedback)
        if textbook and _by_default(ctx, "model_name"):
            model_name = "cf"
        elif _by_default(ctx, "model_name") and (
            kind is Kind.binary if kind is not None else dataset.ratings.kind != "explicit"
        ):
            # the default learns ratings; engagement events get the default top-N model
            model_name = "blend"
        spec = model_spec(model_name)
        switches = _switches(
            spec,
            textbook,
            item_bias=item_bias,
            reg_scaling=reg_scaling,
            mean_shrinkage=mean_shrinkage,
            bias_reg=bias_reg,
        )
        # models of engagement events (ials, ease) learn from the positives at --threshold
        # and keep the other rated items as 0 events: seen, so never recommended back
        ratings = training_events(
            spec, dataset.ratings, None if kind is None else kind.value, threshold
        )
        s.say(
            f"Data   {dataset.name}: {len(ratings):,} {ratings.kind} events, "
            f"{ratings.n_users:,} users, {ratings.n_items:,} items"
        )
        train_part, validation, split = _split(ratings, validation_fraction, seed)
        if validation is not None:
            s.say(
                f"Split  {len(train_part):,} train / {len(validation):,} validation events "
                f"({split['method']}, seed {seed})"
            )
        model = spec.build(
            data_kind(spec, ratings),
            solver=solver,
            embedding_size=embedding_size,
            reg=reg,
            epochs=epochs,
            learning_rate=learning_rate,
            batch_size=batch_size,
            seed=seed,
            compile=compile_step or None,
            **switches,
        )
        s.say(f"Model  {describe_model(model)}")
        fit(
            s, model, train_part, validation,
            user_features=dataset.user_features, item_features=dataset.item_features,
        )

        report: dict[str, Any] | None = None
        if validation is not None:
            with s.working("evaluating"):
                if ratings.kind == "explicit":
                    report = rating_report(model, train_part, validation)
                else:
                    report = ranking_report(model, train_part, validation, k=RANKING_K)
        if validation is not None and spec.stops_early(model):
            split["early_stopping"] = (
                "on a split the model held out of the training part; the validation events "
                "the metrics are measured on were not used to fit or stop"
            )
        metrics = manifest_metrics(report, split)
        history = list(getattr(model, "history_", []))  # with the per-epoch validation metric
        if validation is not None:
            metrics["validation"]["saved_model"] = "refitted on all events after validation"
            # the metric comes from the fit on the training part; the model saved and served
            # is fitted on every event, so it knows each user's whole history
            s.say(f"Refit  on all {len(ratings):,} events for the saved model")
            model = model.with_params()
            fit(
                s, model, ratings, None,
                user_features=dataset.user_features, item_features=dataset.item_features,
            )
        training_data = {
            "name": dataset.name,
            "events": ratings.kind,
            "n_events": len(ratings),
            "n_users": ratings.n_users,
            "n_items": ratings.n_items,
            # explicit ratings turned into engagement events: positives at this rating
            "threshold": threshold if dataset.ratings.kind != ratings.kind else None,
        }
        path = save(model, out, overwrite=overwrite, metrics=metrics, item_table=dataset.items,
                    training_data=training_data)

        s.emit(
            {
                "model_dir": str(path),
                "model": spec.name,
                "kind": ratings.kind,
                "config": model.get_params(),
                "data": training_data,
                "split": split,
                "metrics": report,
                "history": history,
            }
        )
        if report is not None:
            title = (
                "Validation: RMSE (lower is better)"
                if ratings.kind == "explicit"
                else f"Validation: {report['n_users']:,} users, training items excluded"
            )
            s.show(report_table(report, title, model_label=describe_model(model, short=True)))
        s.say(f"Saved the model to {path}")


def _by_default(ctx: typer.Context, parameter: str) -> bool:
    """Whether ``parameter`` was left at its default (not given on the command line)."""
    source = ctx.get_parameter_source(parameter)
    return source is None or source.name == "DEFAULT"


def _switches(spec: Any, textbook: bool, **given: Any) -> dict[str, Any]:
    """The cf switches given, with ``--textbook``'s preset filled in; a ConfigError where a
    switch contradicts the preset."""
    if not textbook:
        return given
    preset = spec.preset("textbook")
    for option, value in given.items():
        wanted = preset.get(option)
        value = value.value if isinstance(value, StrEnum) else value
        if value is not None and value != wanted:
            flag = "--" + option.replace("_", "-")
            raise ConfigError(
                f"--textbook sets {flag} {wanted}, but {flag} {value} was given; drop one of them"
            )
    return preset


def with_feedback(s: Session, dataset: Any, path: Path) -> Any:
    """``dataset`` with the ratings of a service feedback database merged into its ratings."""
    import dataclasses

    from palate.errors import DataError
    from palate.service.feedback import SQLiteFeedbackStore, merge_feedback

    if not path.is_file():
        raise DataError(f"no feedback database at {path}")
    with SQLiteFeedbackStore(path) as store:
        frame = store.to_frame()
    s.say(f"Feedback {len(frame):,} ratings from {path}")
    if frame.empty:
        return dataset
    return dataclasses.replace(dataset, ratings=merge_feedback(dataset.ratings, frame))


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse an unusable --out before spending time on training."""
    if not out.exists():
        return
    if out.is_dir() and (out / "manifest.json").is_file():
        if not overwrite:
            raise ArtifactError(
                f"a model already exists at {out}; pass --overwrite to replace it or choose "
                "another --out"
            )
        return
    if out.is_file() or any(out.iterdir()):
        raise ArtifactError(
            f"{out} exists and is not a palate model directory; choose another --out"
        )


def _split(
    ratings: Interactions, fraction: float, seed: int
) -> tuple[Interactions, Interactions | None, dict[str, Any]]:
    if fraction == 0:
        return ratings, None, {"method": None, "validation_fraction": 0.0, "seed": seed}
    train_part, validation, info = validation_split(ratings, fraction, seed)
    split = {
        "method": info["validation_method"],
        "validation_fraction": fraction,
        "seed": seed,
        "n_train": len(train_part),
        "n_validation": len(validation),
    }
    return train_part, validation, split


def _describe_reg(model: Any) -> str:
    """The λ a fitted model used; before fitting, the explicit default depends on data size."""
    config = model.config
    if model.is_fitted:
        return f"λ {model.reg_:g}"
    if config.reg is None and config.kind == "explicit":
        return f"λ {config.effective_reg:g} (less above 100,000 ratings)"
    return f"λ {config.effective_reg:g}"


def _describe_popularity(model: Any, short: bool) -> str:
    by = "shrunk mean rating" if model.config.by == "mean" else "count"
    return f"popularity (by {by})"


def _describe_two_tower(model: Any, short: bool) -> str:
    t = model.config
    if short:
        return "two towers"
    towers = " → ".join(str(n) for n in (*t.hidden_sizes, t.embedding_size))
    return (
        f"two towers ({t.objective}, {towers}, batch {t.batch_size}, learning rate "
        f"{t.learning_rate:g}, up to {t.epochs} epochs)"
    )


def _describe_ease(model: Any, short: bool) -> str:
    if short:
        return "EASE"
    c = model.config
    extensions = ""
    if c.dropout or c.item_exponent:
        extensions = f", dropout {c.dropout:g}, item exponent {c.item_exponent:g}"
    reg = "by data size" if c.reg is None else format(c.reg, "g")
    return f"EASE (item-to-item, λ {reg}{extensions})"


def _describe_implicit_als(model: Any, short: bool) -> str:
    c = model.config
    if short:
        return "implicit ALS"
    return (
        f"implicit ALS ({c.embedding_size} factors, λ {c.reg:g}, α {c.alpha:g}, "
        f"{c.epochs} epochs)"
    )


def _describe_collaborative(model: Any, short: bool) -> str:
    config = model.config
    if short:
        return f"collaborative filtering ({config.solver})"
    details = [
        config.kind,
        config.solver,
        f"{config.embedding_size} factors",
        _describe_reg(model),
    ]
    details.append(f"{config.n_epochs} epochs")
    if (
        not config.item_bias
        and config.reg_scaling == "none"
        and config.mean_shrinkage == 0
        and config.bias_reg == 0
    ):
        details.append("the textbook cost J, mean-normalised")
    if config.solver == "adam":
        details.append(f"learning rate {config.learning_rate:g}")
        details.append(f"batch {config.batch_size}" if config.batch_size else "full batch")
    return f"collaborative filtering ({', '.join(details)})"


def _describe_hybrid(model: Any, short: bool) -> str:
    if short:
        return "hybrid (EASE + CF rating)"
    return (
        f"hybrid: ranks by {describe_model(model.engagement, short=True)} blended with the "
        f"predicted rating (weight {model.config.rating_weight:g}) of "
        f"{describe_model(model.rating)}"
    )


def _describe_blend(model: Any, short: bool) -> str:
    if short:
        return "blend (EASE + implicit ALS)"
    return (
        f"blend: {describe_model(model.item_model, short=True)} and "
        f"{describe_model(model.factor_model, short=True)}, standardised per user "
        f"(weight {model.config.factor_weight:g} on the second)"
    )


#: How each model kind is described in the command's output.
_DESCRIPTIONS = {
    "topn_blend": _describe_blend,
    "hybrid": _describe_hybrid,
    "popularity": _describe_popularity,
    "two_tower": _describe_two_tower,
    "ease": _describe_ease,
    "implicit_als": _describe_implicit_als,
    "collaborative": _describe_collaborative,
}


def describe_model(model: Model, short: bool = False) -> str:
    """``collaborative filtering (als, 32 factors, λ 0.12, 15 epochs)`` and the like."""
    describe = _DESCRIPTIONS.get(model.model_kind)
    if describe is None:
        return type(model).__name__
    return describe(model, short)


def fit(
    s: Session,
    model: Model,
    train_part: Interactions,
    validation: Interactions | None,
    *,
    user_features: Any = None,
    item_features: Any = None,
) -> None:
    """Fit with a progress bar of the cost (and validation metric) per epoch, passing ``fit``
    what the model's registry entry says it takes (validation events, features, a callback).

    ``validation`` is the split the command reports its metric on. A model that would stop
    early on it (:meth:`ModelSpec.stops_early`: two-tower) does not get it: it stops early on
    a split it carves from ``train_part`` itself (its ``validation_fraction``), so the
    reported metric comes from events that chose nothing.
    """
    spec = model_spec(model.model_kind)
    # per-epoch validation of 0/1 labels is meaningful only with both labels present
    per_epoch = validation
    if (
        validation is not None
        and model.score_kind == "probability"
        and len(set(validation.values.tolist())) < 2
    ):
        per_epoch = None
    if spec.stops_early(model):
        per_epoch = None
    params = spec.fit_params(
        validation=per_epoch, user_features=user_features, item_features=item_features
    )
    epochs = spec.epochs(model)
    if epochs is None or "callback" not in spec.fit_inputs:
        model.fit(train_part, **params)
        return
    with s.epochs(epochs, "training") as callback:
        model.fit(train_part, callback=callback, **params)


def manifest_metrics(report: dict[str, Any] | None, split: dict[str, Any]) -> dict[str, Any]:
    """What the model directory records: the model's own numbers at the top level, the
    baselines under ``baselines``, and how the validation set was made."""
    metrics: dict[str, Any] = {"validation": split}
    if report is None:
        return metrics
    for name, values in report.items():
        if name == "model":
            metrics.update(values)
        elif isinstance(values, dict):
            metrics.setdefault("baselines", {})[name] = values
        else:
            metrics[f"validation_{name}"] = values
    return json_safe(metrics)
