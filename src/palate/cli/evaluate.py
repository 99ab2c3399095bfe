"""``palate evaluate``: cross-validate a model with default hyperparameters."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from palate.cli._models import ModelOption, data_kind, training_events
from palate.cli._session import JsonOption, VerboseOption, session
from palate.cli.data import load_dataset
from palate.cli.train import Kind, describe_model
from palate.evaluation.evaluate import EvaluationReport, cross_validate
from palate.models.base import Model
from palate.models.registry import model_spec


def evaluate(
    data: Annotated[
        str,
        typer.Option(
            "--data",
            metavar="NAME-OR-PATH",
            help="A ratings file (.csv/.tsv/.parquet with user_id,item_id[,rating]), a "
            "MovieLens directory or zip, or a release name such as ml-latest-small.",
        ),
    ],
    model_name: ModelOption = "cf",
    kind: Annotated[
        Kind | None,
        typer.Option(
            help="explicit: ratings; binary: engagement (ratings >= --threshold count as "
            "positives). Default: what the data holds."
        ),
    ] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Number of folds.")] = 5,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Length of the ranked lists.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the folds and the model.")] = 0,
    threshold: Annotated[
        float,
        typer.Option(
            help="Ratings >= this are relevant test items (and positives with --kind binary)."
        ),
    ] = 4.0,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="DIR",
            help="Write PNG charts here: metrics.png (means with 95% intervals) and, for "
            "trained models, learning_curve.png (cost and held-out metric per epoch, per fold).",
        ),
    ] = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Cross-validate a model with its default hyperparameters: a fresh model is fitted on
    each training part and scored on its fold.

    Reports each metric's mean over folds with a 95% interval (Student t over the fold
    means). Ranking metrics leave out each user's training items.
    """
    with session(json_output, verbose) as s:
        dataset = load_dataset(s, data)
        spec = model_spec(model_name)
        ratings = training_events(
            spec, dataset.ratings, None if kind is None else kind.value, threshold
        )
        s.say(
            f"Data   {dataset.name}: {len(ratings):,} {ratings.kind} events, "
            f"{ratings.n_users:,} users, {ratings.n_items:,} items"
        )

        def make_model() -> Model:
            return spec.build(data_kind(spec, ratings), seed=seed)

        s.say(f"Model  {describe_model(make_model())}, {folds}-fold cross-validation")
        items = dataset.items
        if items is not None and not {"item_id", "genres"} <= set(items.columns):
            items = None
        with s.working("cross-validating"):
            report = cross_validate(
                make_model,
                ratings,
                n_splits=folds,
                seed=seed,
                k=k,
                items=items,
                relevance_threshold=threshold if ratings.kind == "explicit" else None,
                # the per-epoch held-out RMSE is recorded for the learning curve only
                validate_epochs=plot is not None and ratings.kind == "explicit",
                fit_params=spec.fit_params(
                    user_features=dataset.user_features, item_features=dataset.item_features
                ),
            )
        document: dict[str, Any] = {
            "data": dataset.name,
            "model": spec.name,
            "kind": ratings.kind,
            **report.to_dict(),
        }
        charts: list[str] = []
        if plot is not None:
            from palate.evaluation.plots import plot_evaluation

            histories = [fold.info.get("history", []) for fold in report.folds]
            charts = [str(path) for path in plot_evaluation(report, plot, histories)]
            document["plots"] = charts
        s.emit(document)
        s.show(report_table(report, f"{folds}-fold cross-validation, k={k}"))
        for note in report.notes:
            s.say(f"note: {note}")
        for chart in charts:
            s.say(f"Wrote {chart}")


def report_table(report: EvaluationReport, title: str) -> Table:
    """Metric, mean and 95% interval as a Rich table."""
    table = Table(title=title, title_justify="left", title_style="bold")
    table.add_column("metric")
    table.add_column("mean", justify="right")
    table.add_column("95% CI", justify="right")
    for name, summary in report.metrics.items():
        ci = (
            f"{summary.ci_low:.4f} – {summary.ci_high:.4f}"
            if math.isfinite(summary.ci_low) and math.isfinite(summary.ci_high)
            else "n/a"
        )
        mean = f"{summary.mean:.4f}" if math.isfinite(summary.mean) else "n/a"
        table.add_row(name, mean, ci)
    return table
