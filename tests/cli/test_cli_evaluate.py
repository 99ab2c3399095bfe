"""``palate evaluate`` on a small ratings CSV, driven with Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from palate.cli import app


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_evaluate_json(ratings_csv: Path) -> None:
    result = invoke(
        [
            "evaluate",
            "--data",
            ratings_csv,
            "--model",
            "popularity",
            "--folds",
            "3",
            "-k",
            "5",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert {"data", "model", "kind", "k", "metrics", "notes", "info"} <= set(document)
    assert document["k"] == 5 and document["kind"] == "explicit"
    metrics = document["metrics"]
    assert {"rmse", "mae", "precision@5", "ndcg@5", "coverage@5", "novelty"} <= set(metrics)
    for entry in metrics.values():
        assert {"mean", "ci_low", "ci_high", "n", "per_fold"} <= set(entry)
        assert entry["n"] == 3 and len(entry["per_fold"]) == 3
    assert document["info"]["n_splits"] == 3


def test_evaluate_table_with_cf(ratings_csv: Path) -> None:
    result = invoke(["evaluate", "--data", ratings_csv, "--folds", "2", "-k", "5"])
    assert result.exit_code == 0, result.output
    assert "95% CI" in result.stdout and "ndcg@5" in result.stdout and "rmse" in result.stdout


def test_evaluate_binary(ratings_csv: Path) -> None:
    result = invoke(
        [
            "evaluate",
            "--data",
            ratings_csv,
            "--model",
            "popularity",
            "--kind",
            "binary",
            "--folds",
            "2",
            "--json",
        ]
    )
    document = json.loads(result.stdout)
    assert document["kind"] == "binary"
    assert "rmse" not in document["metrics"] and "ndcg@10" in document["metrics"]


def test_evaluate_missing_data_is_one_line_error(tmp_path: Path) -> None:
    result = invoke(["evaluate", "--data", tmp_path / "nope.csv", "--json"])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")


def test_evaluate_plot_writes_pngs(ratings_csv: Path, tmp_path: Path) -> None:
    charts = tmp_path / "charts"
    result = invoke(
        ["evaluate", "--data", ratings_csv, "--folds", "2", "--plot", charts, "--json"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert sorted(Path(p).name for p in document["plots"]) == [
        "learning_curve.png",
        "metrics.png",
    ]
    for name in ("metrics.png", "learning_curve.png"):
        data = (charts / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
