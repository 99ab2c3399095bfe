"""What every command shares: output to people or machines, errors, logs, progress bars.

Each command runs its body inside :func:`session`. Results go to stdout: Rich tables for
people, or exactly one JSON document with ``--json``. Everything else (progress bars, logs,
warnings, errors) goes to stderr. A :class:`~palate.errors.PalateError` becomes one line
``error: ...`` and exit status 1; ``-v`` adds the traceback and debug logs.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.status import Status

JsonOption = Annotated[
    bool,
    typer.Option(
        "--json", help="Print one JSON document on stdout (for scripts) instead of tables."
    ),
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show debug logs and full tracebacks.")
]

#: Called as ``progress(bytes_done, bytes_total_or_None)`` by palate.datasets downloads.
DownloadCallback = Callable[[int, "int | None"], None]
#: Called as ``callback(epoch, metrics)`` by ``CollaborativeFiltering.fit``.
EpochCallback = Callable[[int, dict[str, float]], None]


class Session:
    """Output channels of one command invocation."""

    def __init__(self, json_output: bool, verbose: bool) -> None:
        self.json = json_output
        self.verbose = verbose
        # Created per invocation so that they write to the sys.stdout / sys.stderr of the
        # moment (test runners swap them).
        self.out = Console(highlight=False, soft_wrap=False)
        self.err = Console(stderr=True, highlight=False)
        self._status: Status | None = None

    # ------------------------------------------------------------------ results
    def show(self, *renderables: RenderableType) -> None:
        """Print tables or text for people (nothing with ``--json``)."""
        if not self.json:
            self.out.print(*renderables)

    def say(self, text: str) -> None:
        """A plain line for people (nothing with ``--json``); no Rich markup is parsed."""
        if not self.json:
            self.out.print(text, markup=False, soft_wrap=True)

    def emit(self, document: Mapping[str, Any]) -> None:
        """Write the one JSON document of a ``--json`` run (nothing without ``--json``)."""
        if self.json:
            sys.stdout.write(json.dumps(json_safe(document), indent=2, allow_nan=False) + "\n")
            sys.stdout.flush()

    def note(self, text: str) -> None:
        """A remark on stderr, shown in both modes (stdout stays machine-readable)."""
        self.err.print(f"note: {text}", markup=False, soft_wrap=True)

    # ------------------------------------------------------------------ progress
    @property
    def interactive(self) -> bool:
        """Whether stderr is a terminal (progress bars are drawn only then)."""
        return self.err.is_terminal

    @contextmanager
    def epochs(self, total: int, description: str) -> Iterator[EpochCallback]:
        """A progress bar over training epochs showing the cost and validation metric."""
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=self.err,
            disable=not self.interactive,
        )
        with progress:
            task = progress.add_task(description, total=total, metrics="")

            def callback(epoch: int, metrics: dict[str, float]) -> None:
                progress.update(task, completed=epoch, metrics=format_epoch_metrics(metrics))

            yield callback

    @contextmanager
    def download(self, what: str) -> Iterator[DownloadCallback]:
        """A byte-counting progress bar, shown only once a download actually starts."""
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=self.err,
            disable=not self.interactive,
        )
        task: list[Any] = []
        try:

            def callback(done: int, total: int | None) -> None:
                if not task:
                    if self._status is not None:  # one live display at a time
                        self._status.stop()
                    progress.start()
                    task.append(progress.add_task(f"downloading {what}", total=total))
                progress.update(task[0], completed=done, total=total)

            yield callback
        finally:
            if task:
                progress.stop()

    @contextmanager
    def working(self, message: str) -> Iterator[None]:
        """A spinner with a message while something without steps runs."""
        if not self.interactive:
            yield
            return
        status = self.err.status(message)
        self._status = status
        try:
            with status:
                yield
        finally:
            self._status = None


def format_epoch_metrics(metrics: Mapping[str, float]) -> str:
    """``cost 23,127.1  val_rmse 0.8607`` from the callback's metrics."""
    parts = []
    for name, value in metrics.items():
        if name == "epoch":
            continue
        parts.append(f"{name} {value:,.1f}" if abs(value) >= 100 else f"{name} {value:.4f}")
    return "  ".join(parts)


def json_safe(value: Any) -> Any:
    """Plain JSON types: NumPy scalars and arrays unwrapped, NaN and infinity as None."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # NumPy
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


@contextmanager
def _palate_logging(console: Console, verbose: bool) -> Iterator[None]:
    logger = logging.getLogger("palate")
    handler = RichHandler(
        console=console, show_time=False, show_path=verbose, markup=False, rich_tracebacks=False
    )
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


@contextmanager
def session(json_output: bool = False, verbose: bool = False) -> Iterator[Session]:
    """Run a command body: logs on stderr, palate errors mapped to one line and exit 1."""
    from palate.errors import PalateError  # imported here: keeps ``palate --help`` fast

    current = Session(json_output, verbose)
    with _palate_logging(current.err, verbose):
        try:
            yield current
        except PalateError as exc:
            if verbose:
                current.err.print_exception(show_locals=False)
            message = _one_line(str(exc)) or type(exc).__name__
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("error: interrupted", err=True)
            raise typer.Exit(130) from None


__all__ = [
    "JsonOption",
    "Session",
    "VerboseOption",
    "format_epoch_metrics",
    "json_safe",
    "session",
]
