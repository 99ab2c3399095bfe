"""``palate tune`` on a small ratings CSV, driven with Typer's CliRunner."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner, Result

from palate.cli import app


def invoke(args: list[object]) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_grid_writes_json(ratings_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "results" / "tune.json"
    result = invoke(
        [
            "tune",
            "--data",
            ratings_csv,
            "--grid",
            "reg=0.05,0.5;embedding_size=2,4",
            "--set",
            "epochs=2",
            "--out",
            out,
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    saved = json.loads(out.read_text())
    assert printed == saved
    assert saved["metric"] == "rmse" and saved["greater_is_better"] is False
    assert saved["fixed"] == {"kind": "explicit", "epochs": 2}
    combos = [{"reg": r, "embedding_size": e} for r, e in itertools.product([0.05, 0.5], [2, 4])]
    assert [t["params"] for t in saved["trials"]] == combos
    values = [t["value"] for t in saved["trials"]]
    assert saved["best_value"] == min(values)
    assert saved["best_params"] == combos[values.index(min(values))]
    assert saved["info"]["validation_method"] == "random_split"
    assert all(t["fit_seconds"] >= 0 for t in saved["trials"])


def test_random_search_is_repeatable_and_reports_test(ratings_csv: Path, tmp_path: Path) -> None:
    args = [
        "tune",
        "--data",
        ratings_csv,
        "--model",
        "popularity",
        "--kind",
        "binary",
        "--random",
        "4",
        "--param",
        "prior=0.1:100:log",
        "--metric",
        "ndcg@5",
        "--test-fraction",
        "0.2",
        "--seed",
        "3",
        "--json",
    ]
    first, second = invoke(args), invoke(args)
    assert first.exit_code == 0, first.output
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert [t["params"] for t in a["trials"]] == [t["params"] for t in b["trials"]]
    assert a["metric"] == "ndcg@5" and a["greater_is_better"] is True
    assert all(0.1 <= t["params"]["prior"] <= 100 for t in a["trials"])
    assert 0.0 <= a["test"]["ndcg@5"] <= 1.0 and a["test"]["n_events"] > 0
    positives = int((pd.read_csv(ratings_csv)["rating"] >= 4).sum())
    assert a["info"]["n_training_events"] + a["test"]["n_events"] == positives


def test_table_marks_best(ratings_csv: Path) -> None:
    result = invoke(["tune", "--data", ratings_csv, "--grid", "reg=0.1,1", "--set", "epochs=2"])
    assert result.exit_code == 0, result.output
    assert "2 trials" in result.stdout and "Best   rmse" in result.stdout
    assert " *" in result.stdout


def test_usage_errors_are_one_line(ratings_csv: Path) -> None:
    for args in (
        ["tune", "--data", ratings_csv],
        ["tune", "--data", ratings_csv, "--random", "3"],
        ["tune", "--data", ratings_csv, "--grid", "nonsense=1"],
        ["tune", "--data", ratings_csv, "--model", "ials", "--grid", "reg=1", "--metric", "rmse"],
    ):
        result = invoke(args)
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ")


def test_tune_plot(ratings_csv: Path, tmp_path: Path) -> None:
    result = invoke(
        [
            "tune",
            "--data",
            ratings_csv,
            "--grid",
            "reg=0.1,1;embedding_size=2,3",
            "--set",
            "epochs=2",
            "--plot",
            tmp_path / "p",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    names = sorted(Path(p).name for p in json.loads(result.stdout)["plots"])
    assert names == ["tune_embedding_size.png", "tune_reg.png"]
    assert all((tmp_path / "p" / n).read_bytes()[:4] == b"\x89PNG" for n in names)
