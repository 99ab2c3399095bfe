"""The ``palate`` command: a thin Typer app over palate's public API.

Every command takes ``--json`` (one JSON document on stdout) and ``-v/--verbose`` (debug logs
and tracebacks). Errors palate raises on purpose print one line ``error: ...`` on stderr and
exit with status 1; usage errors exit with status 2.
"""

from __future__ import annotations

from typing import Annotated

import typer

from palate.cli import data, demo, evaluate, experiment, recommend, serve, spark, train, tune

app = typer.Typer(
    name="palate",
    help="Recommender systems: train, inspect and query collaborative-filtering models.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,
)
app.add_typer(data.app, name="data")
app.add_typer(spark.app, name="spark")
app.add_typer(experiment.app, name="experiment")
app.command("train")(train.train)
app.command("recommend")(recommend.recommend)
app.command("similar")(recommend.similar)
app.command("rate")(recommend.rate)
app.command("demo")(demo.demo)
app.command("evaluate")(evaluate.evaluate)
app.command("tune")(tune.tune)
app.command("serve")(serve.serve)


def _version(value: bool) -> None:
    if value:
        from palate.version import __version__

        typer.echo(f"palate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Recommender systems: train, inspect and query collaborative-filtering models.

    Start with `palate demo`.
    """


def main() -> None:
    """Entry point of the ``palate`` console script."""
    app()


if __name__ == "__main__":
    main()
