"""``palate train --model ials``: implicit-feedback ALS from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from palate.cli import app
from palate.data.synthetic import synthetic_ratings
from palate.persist import load, read_manifest


def test_train_ials_on_ratings_then_recommend(tmp_path: Path) -> None:
    frame = synthetic_ratings(80, 60, 2000, seed=3).ratings.to_pandas()
    csv = tmp_path / "ratings.csv"
    frame.rename(columns={"value": "rating"}).to_csv(csv, index=False)
    out = tmp_path / "ials"
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["train", "--data", str(csv), "--model", "ials", "--embedding-size", "8",
         "--epochs", "3", "--out", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["kind"] == "binary"  # ratings became positives at the threshold
    assert read_manifest(out)["model_kind"] == "implicit_als"
    model = load(out)
    assert model.config.embedding_size == 8 and model.config.epochs == 3
    user = str(frame["user_id"].iloc[0])
    rec = runner.invoke(app, ["recommend", str(out), "--user", user, "-k", "5", "--json"])
    assert rec.exit_code == 0, rec.output
    items = [row["item_id"] for row in json.loads(rec.stdout)["recommendations"]]
    assert len(items) == 5 and len(set(items)) == 5
