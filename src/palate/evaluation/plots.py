"""Charts of evaluation results as PNG files (matplotlib, drawn off-screen).

Install the optional dependency with ``pip install 'palate[plot]'``. Every function writes one
PNG per chart and returns its path; nothing is shown on screen (the ``Agg`` backend), so the
functions work on servers and in CI.

- :func:`plot_learning_curve`: the cost J and the validation metric per epoch, from a model's
  ``history_`` (one line per history, e.g. one per cross-validation fold);
- :func:`plot_report`: each metric's mean with its 95 % interval, from an
  :class:`~palate.evaluation.EvaluationReport`;
- :func:`plot_tuning`: the validation metric against each searched parameter, from
  :class:`~palate.evaluation.tune.TuningResults`;
- :func:`bar_chart`: one value per label with optional error bars (the benchmark charts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from palate.errors import ConfigError

if TYPE_CHECKING:
    from palate.evaluation.evaluate import EvaluationReport
    from palate.evaluation.tune import TuningResults

History = Sequence[Mapping[str, float]]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            "plots need matplotlib; install it with pip install 'palate[plot]'"
        ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(target, dpi=110, format="png")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return target


def plot_learning_curve(
    histories: History | Sequence[History],
    path: str | Path,
    *,
    title: str = "Learning curve",
    labels: Sequence[str] | None = None,
) -> Path:
    """Cost and validation metrics per epoch, one line per history.

    Parameters
    ----------
    histories : list of dict, or a list of such lists
        ``model.history_``: one ``{"epoch", "cost", ["val_rmse" | "val_logloss" ...]}`` per
        epoch.
    path : str or Path
        The PNG to write.
    title : str
    labels : list of str, optional
        Legend entry per history (default ``fold 1``, ``fold 2``, ... for several).

    Returns
    -------
    Path
    """
    runs = _as_runs(histories)
    if not any(runs):
        raise ConfigError("the history is empty; fit the model before plotting its learning curve")
    validation = sorted(
        {key for run in runs for row in run for key in row if key.startswith("val")}
    )
    panels = ["cost", *validation]
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    if labels is None:
        labels = [f"fold {n}" for n in range(1, len(runs) + 1)] if len(runs) > 1 else [""]
    for axis, key in zip(axes[0], panels, strict=True):
        for run, label in zip(runs, labels, strict=False):
            points = [
                (row.get("epoch", n), row[key])
                for n, row in enumerate(run, start=1)
                if key in row and row[key] is not None and math.isfinite(row[key])
            ]
            if points:
                x, y = zip(*points, strict=True)
                axis.plot(x, y, marker="o", markersize=3, label=label or None)
        axis.set_xlabel("epoch")
        axis.set_ylabel(key)
        axis.set_title(key.replace("val_", "validation "))
        axis.grid(alpha=0.3)
        if len(runs) > 1 and key == panels[-1]:
            axis.legend(fontsize="small")
    figure.suptitle(title)
    return _save(figure, path)


def _as_runs(histories: History | Sequence[History]) -> list[list[Mapping[str, float]]]:
    items = list(histories)
    if items and isinstance(items[0], Mapping):
        return [list(items)]  # type: ignore[arg-type]
    return [list(run) for run in items]  # type: ignore[arg-type]


def plot_report(report: EvaluationReport, path: str | Path, *, title: str | None = None) -> Path:
    """Each metric's mean as a bar with its 95 % interval (where there is one).

    Error metrics (RMSE, MAE) and the others are drawn on separate panels, as their scales
    differ; novelty (bits) gets its own panel too.
    """
    groups: dict[str, list[str]] = {"error": [], "share": [], "bits": []}
    for name in report.metrics:
        base = name.split("@")[0]
        group = "error" if base in ("rmse", "mae") else "bits" if base == "novelty" else "share"
        groups[group].append(name)
    panels = [(group, names) for group, names in groups.items() if names]
    if not panels:
        raise ConfigError("the report has no metrics to plot")
    plt = _pyplot()
    widths = [max(2.2, 0.9 * len(names) + 1.2) for _, names in panels]
    figure, axes = plt.subplots(
        1,
        len(panels),
        figsize=(sum(widths), 3.8),
        squeeze=False,
        gridspec_kw={"width_ratios": widths},
    )
    for axis, (group, names) in zip(axes[0], panels, strict=True):
        means = [report[n].mean for n in names]
        lows = [report[n].ci_low for n in names]
        highs = [report[n].ci_high for n in names]
        _bars(axis, names, means, lows, highs, vertical=True)
        axis.set_ylabel(
            {"error": "error (lower is better)", "bits": "bits", "share": "value"}[group]
        )
    figure.suptitle(title or f"Evaluation (k={report.k}), 95% intervals")
    return _save(figure, path)


def _bars(
    axis: Any,
    labels: Sequence[str],
    values: Sequence[float] | np.ndarray,
    lows: Sequence[float] | None,
    highs: Sequence[float] | None,
    *,
    vertical: bool,
    highlight: Sequence[bool] | None = None,
    fmt: str = "{:.4f}",
) -> None:
    positions = np.arange(len(labels))
    values_arr = np.asarray(values, dtype=np.float64)
    error = None
    if lows is not None and highs is not None:
        low = np.asarray(lows, dtype=np.float64)
        high = np.asarray(highs, dtype=np.float64)
        ok = np.isfinite(low) & np.isfinite(high)
        error = np.vstack(
            [np.where(ok, values_arr - low, 0.0), np.where(ok, high - values_arr, 0.0)]
        )
    # value labels sit beyond the error bar
    tips = values_arr + (error[1] if error is not None else 0.0)
    colours = [
        "tab:orange" if highlight is not None and highlight[n] else "tab:blue"
        for n in range(len(labels))
    ]
    if vertical:
        axis.bar(positions, values_arr, yerr=error, color=colours, capsize=4)
        axis.set_xticks(positions, labels, rotation=30, ha="right")
        for x, v, tip in zip(positions, values_arr, tips, strict=True):
            if math.isfinite(v):
                axis.annotate(
                    fmt.format(v),
                    (x, tip),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
    else:
        axis.barh(positions, values_arr, xerr=error, color=colours, capsize=3)
        axis.set_yticks(positions, labels)
        axis.invert_yaxis()
        for y, v, tip in zip(positions, values_arr, tips, strict=True):
            if math.isfinite(v):
                axis.annotate(
                    fmt.format(v),
                    (tip, y),
                    ha="left",
                    va="center",
                    fontsize=7,
                    xytext=(3, 0),
                    textcoords="offset points",
                )
    axis.grid(alpha=0.3, axis="y" if vertical else "x")


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    path: str | Path,
    *,
    errors: Sequence[float] | None = None,
    title: str = "",
    xlabel: str = "",
    highlight: Sequence[bool] | None = None,
    limits: tuple[float, float] | None = None,
    fmt: str = "{:.4f}",
) -> Path:
    """Horizontal bars, one per label (top to bottom in the given order), with optional
    symmetric error bars; ``highlight`` colours chosen bars (e.g. palate's models)."""
    if len(labels) != len(values) or not labels:
        raise ConfigError("bar_chart needs one value per label and at least one label")
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7.5, 0.42 * len(labels) + 1.3))
    values_arr = np.asarray(values, dtype=np.float64)
    lows = highs = None
    if errors is not None:
        err = np.asarray(errors, dtype=np.float64)
        lows, highs = list(values_arr - err), list(values_arr + err)
    _bars(axis, labels, values_arr, lows, highs, vertical=False, highlight=highlight, fmt=fmt)
    axis.set_xlabel(xlabel)
    if limits is not None:
        axis.set_xlim(*limits)
    else:  # room for the value labels
        left, right = axis.get_xlim()
        axis.set_xlim(left, right + 0.08 * (right - left))
    axis.set_title(title, fontsize=10)
    return _save(figure, path)


def plot_tuning(results: TuningResults, directory: str | Path) -> list[Path]:
    """One chart per searched parameter: the validation metric of every trial against the
    parameter's value; when values repeat (a grid), the best trial per value is joined by a
    line.

    Numeric parameters spanning more than a factor 20 get a log axis. Files are
    ``tune_<parameter>.png`` in ``directory``.
    """
    frame = results.to_pandas()
    names = [
        c
        for c in frame.columns
        if c not in ("trial", results.metric, "fit_seconds", "score_seconds")
    ]
    if not names:
        raise ConfigError("the results hold no searched parameter to plot")
    plt = _pyplot()
    out: list[Path] = []
    best = results.best
    for name in names:
        figure, axis = plt.subplots(figsize=(5.2, 3.8))
        column = frame[name]
        numeric = bool(
            column.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).all()
        )
        values = frame[results.metric].to_numpy(dtype=np.float64)
        if numeric:
            x = column.to_numpy(dtype=np.float64)
            axis.scatter(x, values, alpha=0.6, label="trials")
            if column.nunique() < len(column):  # a grid: join the best trial per value
                by_value = frame.groupby(name)[results.metric]
                line = by_value.max() if results.greater_is_better else by_value.min()
                axis.plot(line.index.to_numpy(dtype=np.float64), line.to_numpy())
            positive = x[x > 0]
            if len(positive) == len(x) and positive.max() / positive.min() > 20:
                axis.set_xscale("log")
            axis.scatter(
                [best.params[name]], [best.value], color="tab:orange", zorder=3, label="best"
            )
        else:
            labels = [str(v) for v in dict.fromkeys(column.tolist())]
            position = {label: n for n, label in enumerate(labels)}
            x = np.array([position[str(v)] for v in column.tolist()], dtype=np.float64)
            axis.scatter(x, values, alpha=0.6, label="trials")
            axis.set_xticks(range(len(labels)), labels)
            axis.scatter(
                [position[str(best.params[name])]],
                [best.value],
                color="tab:orange",
                zorder=3,
                label="best",
            )
        axis.set_xlabel(name)
        direction = "higher" if results.greater_is_better else "lower"
        axis.set_ylabel(f"validation {results.metric} ({direction} is better)")
        axis.set_title(f"{results.model}: {results.metric} vs {name}", fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
        out.append(_save(figure, Path(directory) / f"tune_{_file_part(name)}.png"))
    return out


def plot_evaluation(
    report: EvaluationReport,
    directory: str | Path,
    histories: Sequence[History] | None = None,
) -> list[Path]:
    """``metrics.png`` (:func:`plot_report`) and, given fitted models' histories,
    ``learning_curve.png`` (:func:`plot_learning_curve`) in ``directory``."""
    folder = Path(directory)
    out = [plot_report(report, folder / "metrics.png")]
    runs = [list(h) for h in histories or () if h]
    if runs:
        out.append(plot_learning_curve(runs, folder / "learning_curve.png"))
    return out


def _file_part(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


__all__ = [
    "bar_chart",
    "plot_evaluation",
    "plot_learning_curve",
    "plot_report",
    "plot_tuning",
]
