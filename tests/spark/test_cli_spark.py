"""``palate spark train`` writes a model directory ``palate recommend`` uses as it is;
``palate spark recommend-all`` writes Parquet equal to ``palate recommend``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from palate.cli.main import app
from palate.data.synthetic import synthetic_ratings

pytestmark = pytest.mark.slow  # each test starts a Spark job from the command line

runner = CliRunner()


def test_spark_train_then_recommend(spark: Any, tmp_path: Path) -> None:
    frame = synthetic_ratings(40, 30, 500, seed=1).ratings.to_pandas()
    frame = frame.rename(columns={"value": "rating"}).drop(columns=["timestamp"], errors="ignore")
    frame["user_id"] = "u" + frame["user_id"].astype(str)
    source = tmp_path / "ratings.parquet"
    frame.to_parquet(source)
    out = tmp_path / "model"
    result = runner.invoke(
        app,
        ["spark", "train", "--data", str(source), "--out", str(out), "--master", "local[2]",
         "--embedding-size", "4", "--epochs", "3", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["config"]["reg_scaling"] == "count" and report["data"]["n_users"] == 40
    assert report["metrics"]["model"]["validation_rmse"] > 0
    shown = runner.invoke(app, ["recommend", str(out), "--user", "u3", "-k", "4", "--json"])
    assert shown.exit_code == 0, shown.output
    listed = [row["item_id"] for row in json.loads(shown.stdout)["recommendations"]]
    assert len(listed) == 4

    recs_dir = tmp_path / "batch"
    done = runner.invoke(
        app,
        ["spark", "recommend-all", str(out), "--out", str(recs_dir), "-k", "4",
         "--similar-k", "2", "--master", "local[2]", "--json"],
    )
    assert done.exit_code == 0, done.output
    rows = json.loads(done.stdout)["rows"]
    assert rows["similar_items"] > 0
    recs = pd.read_parquet(recs_dir / "recommendations")
    assert len(recs) == rows["recommendations"]
    mine = recs[recs["user_id"] == "u3"].sort_values("rank")["item_id"].tolist()
    assert mine == listed
    again = runner.invoke(app, ["spark", "recommend-all", str(out), "--out", str(recs_dir)])
    assert again.exit_code == 1 and "--overwrite" in again.output


def test_spark_train_two_tower_then_recommend(spark: Any, tmp_path: Path) -> None:
    frame = synthetic_ratings(40, 30, 600, seed=2).ratings.to_pandas()
    frame = frame.rename(columns={"value": "rating"}).drop(columns=["timestamp"], errors="ignore")
    source = tmp_path / "ratings.parquet"
    frame.to_parquet(source)
    out = tmp_path / "towers"
    result = runner.invoke(
        app,
        ["spark", "train", "--model", "two-tower", "--data", str(source), "--out", str(out),
         "--master", "local[2]", "--num-processes", "2", "--epochs", "1", "--embedding-size",
         "8", "--batch-size", "64", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["training_processes"]["world_size"] == 2
    assert report["config"]["objective"] == "ratings" and len(report["history"]) == 1
    assert report["metrics"]["model"]["validation_rmse"] > 0
    user = str(frame["user_id"].iloc[0])
    shown = runner.invoke(app, ["recommend", str(out), "--user", user, "-k", "3", "--json"])
    assert shown.exit_code == 0, shown.output
    assert len(json.loads(shown.stdout)["recommendations"]) == 3
