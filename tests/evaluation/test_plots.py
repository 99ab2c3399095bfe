"""PNG charts: learning curves, reports, tuning results, bar charts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from palate import CollaborativeFiltering, Interactions, Popularity
from palate.data.split import random_split
from palate.data.synthetic import synthetic_ratings
from palate.errors import ConfigError
from palate.evaluation import cross_validate, grid_search
from palate.evaluation.plots import (
    bar_chart,
    plot_evaluation,
    plot_learning_curve,
    plot_report,
    plot_tuning,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_png(path: Path) -> np.ndarray:
    """The image as an array, after checking the file is a non-empty PNG."""
    import matplotlib.image

    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.01  # something was drawn
    return image


@pytest.fixture(scope="module")
def ratings() -> Interactions:
    return synthetic_ratings(50, 30, 900, seed=0).ratings


def test_learning_curve_has_a_panel_per_series(ratings: Interactions, tmp_path: Path) -> None:
    train, validation = random_split(ratings, test_fraction=0.2, seed=0)
    model = CollaborativeFiltering(embedding_size=4, epochs=5).fit(train, validation=validation)
    assert {"cost", "val_rmse"} <= set(model.history_[0])
    both = read_png(plot_learning_curve(model.history_, tmp_path / "curve.png"))
    cost_only = [{"epoch": r["epoch"], "cost": r["cost"]} for r in model.history_]
    single = read_png(plot_learning_curve(cost_only, tmp_path / "cost.png"))
    assert both.shape[1] > 1.6 * single.shape[1]  # two panels side by side


def test_learning_curve_rejects_empty_history(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fit the model"):
        plot_learning_curve([], tmp_path / "x.png")


def test_cross_validation_plots(ratings: Interactions, tmp_path: Path) -> None:
    report = cross_validate(
        lambda: CollaborativeFiltering(embedding_size=4, epochs=4),
        ratings,
        n_splits=3,
        k=5,
        validate_epochs=True,
    )
    histories = [fold.info["history"] for fold in report.folds]
    assert all(len(h) == 4 and "val_rmse" in h[-1] for h in histories)
    paths = plot_evaluation(report, tmp_path / "eval", histories)
    assert [p.name for p in paths] == ["metrics.png", "learning_curve.png"]
    for path in paths:
        read_png(path)


def test_validate_epochs_refuses_early_stopping(ratings: Interactions) -> None:
    with pytest.raises(ConfigError, match="early_stopping"):
        cross_validate(
            lambda: CollaborativeFiltering(epochs=3, early_stopping=1),
            ratings,
            n_splits=2,
            validate_epochs=True,
        )


def test_report_chart_without_intervals(ratings: Interactions, tmp_path: Path) -> None:
    from palate.evaluation import evaluate

    train, test = random_split(ratings, test_fraction=0.2, seed=0)
    report = evaluate(Popularity(by="mean").fit(train), train, test, k=5, metrics=["coverage"])
    read_png(plot_report(report, tmp_path / "r.png"))


def test_tuning_charts_one_per_parameter(ratings: Interactions, tmp_path: Path) -> None:
    results = grid_search(
        CollaborativeFiltering,
        ratings,
        {"reg": [0.01, 1.0], "solver": ["als", "adam"]},
        fixed={"embedding_size": 2, "epochs": 2},
    )
    paths = plot_tuning(results, tmp_path / "tune")
    assert sorted(p.name for p in paths) == ["tune_reg.png", "tune_solver.png"]
    for path in paths:
        read_png(path)


def test_bar_chart(tmp_path: Path) -> None:
    path = bar_chart(
        ["a", "b", "c"],
        [0.3, 0.5, 0.4],
        tmp_path / "bars.png",
        errors=[0.01, 0.02, 0.0],
        highlight=[True, False, False],
        title="t",
    )
    image = read_png(path)
    # the highlighted bar is orange: some pixels are strongly red and weakly blue
    rgb = image[..., :3]
    assert np.any((rgb[..., 0] > 0.9) & (rgb[..., 2] < 0.2))
    with pytest.raises(ConfigError):
        bar_chart(["a"], [1.0, 2.0], tmp_path / "bad.png")
