"""``palate tune``: grid or random search of a model's hyperparameters on a validation split."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from palate.cli._models import ModelOption, data_kind, training_events
from palate.cli._session import JsonOption, VerboseOption, json_safe, session
from palate.cli.data import load_dataset
from palate.cli.train import Kind, _split
from palate.errors import ConfigError
from palate.evaluation.evaluate import evaluate
from palate.evaluation.tune import (
    LOWER_IS_BETTER,
    TuningResults,
    grid_search,
    parse_grid,
    parse_space,
    parse_value,
    random_search,
)
from palate.models.registry import model_spec


def tune(
    data: Annotated[
        str,
        typer.Option(
            "--data",
            metavar="NAME-OR-PATH",
            help="Training events: a ratings file, a MovieLens directory or zip, or a release "
            "name. The validation split is carved from them (see --test-fraction).",
        ),
    ],
    model_name: ModelOption = "cf",
    grid: Annotated[
        str | None,
        typer.Option(
            "--grid",
            metavar="SPEC",
            help="Grid search over every combination, e.g. 'reg=0.05,0.1;embedding_size=16,32'.",
        ),
    ] = None,
    n_random: Annotated[
        int | None,
        typer.Option(
            "--random", metavar="N", min=1, help="Random search: N trials drawn from --param."
        ),
    ] = None,
    params: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="SPEC",
            help="A random-search parameter (repeat): name=a,b,c (choices), name=low:high "
            "(uniform; integers when both are) or name=low:high:log (log-uniform).",
        ),
    ] = None,
    fixed: Annotated[
        list[str] | None,
        typer.Option(
            "--set", metavar="NAME=VALUE", help="A parameter held fixed in every trial (repeat)."
        ),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help="rmse or mae (minimised; explicit ratings) or precision|recall|ndcg|map|"
            "hit_rate@K (maximised). Default: rmse for explicit ratings, ndcg@10 otherwise."
        ),
    ] = None,
    kind: Annotated[
        Kind | None,
        typer.Option(help="explicit or binary (ratings >= --threshold become positives)."),
    ] = None,
    validation_fraction: Annotated[
        float,
        typer.Option(min=0.01, max=0.9, help="Share of the training events used for validation."),
    ] = 0.1,
    test_fraction: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.9,
            help="Hold this share of --data out first as a test set, tune on the rest, then "
            "refit the best setting on the rest and score it once on the test set. 0: all of "
            "--data is training data.",
        ),
    ] = 0.0,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Length of ranked lists.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the splits and of random search.")] = 0,
    threshold: Annotated[
        float, typer.Option(help="Ratings >= this are relevant (and positives for binary).")
    ] = 4.0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write every trial and the best as JSON here.")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", metavar="DIR", help="Write PNG charts of metric vs parameter."),
    ] = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Search hyperparameters: every trial fits a fresh model on the training events minus a
    validation split and is scored on that split; the test data is never used to choose.

    Prints every trial and the best setting; --out saves them as JSON.
    """
    with session(json_output, verbose) as s:
        if (grid is None) == (n_random is None):
            raise ConfigError("give either --grid SPEC or --random N with --param SPEC")
        if n_random is not None and not params:
            raise ConfigError("--random needs at least one --param, e.g. --param reg=0.01:1:log")
        if grid is not None and params:
            raise ConfigError("--param is for --random; put grid values in --grid")
        dataset = load_dataset(s, data)
        spec = model_spec(model_name)
        ratings = training_events(spec, dataset.ratings, kind.value if kind else None, threshold)
        chosen_metric = metric or ("rmse" if ratings.kind == "explicit" else f"ndcg@{k}")
        if chosen_metric.split("@")[0].lower() in LOWER_IS_BETTER and ratings.kind != "explicit":
            raise ConfigError(f"{chosen_metric} needs explicit ratings; use --metric ndcg@{k}")
        # every trial builds the --model class, fitted to the kind of data, and fits it on the
        # data's features where the model reads them
        model = spec.model_class()
        fixed_params = spec.kind_arguments(data_kind(spec, ratings))
        fit_params = spec.fit_params(
            user_features=dataset.user_features, item_features=dataset.item_features
        )
        for item in fixed or []:
            name, _, value = item.partition("=")
            if not _ or not name.strip():
                raise ConfigError(f"cannot read --set {item!r}; write name=value")
            fixed_params[name.strip()] = parse_value(value)

        train_part, test_part = ratings, None
        if test_fraction > 0:
            train_part, test_part, _info = _split(ratings, test_fraction, seed)
        s.say(
            f"Data   {dataset.name}: {len(train_part):,} training {ratings.kind} events"
            + (f", {len(test_part):,} test events held out" if test_part is not None else "")
        )
        relevance = threshold if ratings.kind == "explicit" else None
        options: dict[str, Any] = {
            "metric": chosen_metric,
            "fixed": fixed_params,
            "validation_fraction": validation_fraction,
            "seed": seed,
            "k": k,
            "relevance_threshold": relevance,
            "fit_params": fit_params,
        }
        if grid is not None:
            space = parse_grid(grid)
            total = math.prod(len(v) for v in space.values())
            s.say(f"Search grid of {total} settings over {', '.join(space)}, by {chosen_metric}")
            with s.epochs(total, "tuning") as callback:
                results = grid_search(model, train_part, space, callback=callback, **options)
        else:
            assert n_random is not None and params
            distributions = dict(parse_space(p) for p in params)
            s.say(
                f"Search {n_random} random settings of {', '.join(distributions)} "
                f"(seed {seed}), by {chosen_metric}"
            )
            with s.epochs(n_random, "tuning") as callback:
                results = random_search(
                    model, train_part, distributions, n_random, callback=callback, **options
                )

        document: dict[str, Any] = {"data": dataset.name, "kind": ratings.kind}
        document.update(results.to_dict())
        if test_part is not None:
            best = model(**fixed_params, **results.best_params).fit(train_part, **fit_params)
            report = evaluate(
                best,
                train_part,
                test_part,
                k=int(results.info["k"]),
                metrics=[chosen_metric],
                relevance_threshold=relevance,
                n_bootstrap=0,
            )
            test_value = report[results.metric].mean
            document["test"] = {
                "fraction": test_fraction,
                "n_events": len(test_part),
                results.metric: test_value,
                "note": "best setting refitted on all training events, scored once on the test "
                "events",
            }
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(json_safe(document), indent=2) + "\n", encoding="utf-8")
        charts: list[str] = []
        if plot is not None:
            from palate.evaluation.plots import plot_tuning

            charts = [str(p) for p in plot_tuning(results, plot)]
            document["plots"] = charts
        s.emit(document)
        s.show(trials_table(results))
        s.say(f"Best   {results.metric} {results.best_value:.4f} with {results.best_params}")
        if test_part is not None:
            s.say(f"Test   {results.metric} {document['test'][results.metric]:.4f} (best refitted)")
        if out is not None:
            s.say(f"Saved the trials to {out}")
        for chart in charts:
            s.say(f"Wrote {chart}")


def trials_table(results: TuningResults) -> Table:
    """Every trial: parameters, metric, fit seconds; the best marked."""
    frame = results.to_pandas()
    best = results.best.number
    table = Table(
        title=f"{len(frame)} trials of {results.model} ({results.metric}, "
        f"{'higher' if results.greater_is_better else 'lower'} is better)",
        title_justify="left",
        title_style="bold",
    )
    names = [
        c
        for c in frame.columns
        if c not in ("trial", results.metric, "fit_seconds", "score_seconds")
    ]
    for column in ["trial", *names, results.metric, "fit s"]:
        table.add_column(column, justify="left" if column in names else "right")
    for values in frame.to_dict("records"):
        mark = " *" if values["trial"] == best else ""
        table.add_row(
            f"{values['trial']}{mark}",
            *(_short(values[n]) for n in names),
            f"{values[results.metric]:.4f}",
            f"{values['fit_seconds']:.2f}",
        )
    return table


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
