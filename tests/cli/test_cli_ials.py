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
    manifest = read_manifest(out)
    assert manifest["model_kind"] == "implicit_als"
    # the manifest says what the model was fitted on, and how ratings became events
    assert manifest["training_data"] == payload["data"] == {
        "name": "ratings", "events": "binary", "n_events": 2000,
        "n_users": payload["data"]["n_users"], "n_items": payload["data"]["n_items"],
        "threshold": 4.0,
    }
    model = load(out)
    assert model.config.embedding_size == 8 and model.config.epochs == 3
    user = str(frame["user_id"].iloc[0])
    rec = runner.invoke(app, ["recommend", str(out), "--user", user, "-k", "5", "--json"])
    assert rec.exit_code == 0, rec.output
    items = [row["item_id"] for row in json.loads(rec.stdout)["recommendations"]]
    assert len(items) == 5 and len(set(items)) == 5


def test_train_ease_on_ratings_then_recommend_and_similar(tmp_path: Path) -> None:
    frame = synthetic_ratings(80, 60, 2000, seed=4).ratings.to_pandas()
    csv = tmp_path / "ratings.csv"
    frame.rename(columns={"value": "rating"}).to_csv(csv, index=False)
    out = tmp_path / "ease"
    runner = CliRunner()
    result = runner.invoke(
        app, ["train", "--data", str(csv), "--model", "ease", "--reg", "20", "--out", str(out),
              "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kind"] == "binary"
    assert read_manifest(out)["model_kind"] == "ease"
    assert load(out).config.reg == 20
    user = str(frame["user_id"].iloc[0])
    rec = runner.invoke(app, ["recommend", str(out), "--user", user, "-k", "5", "--json"])
    assert rec.exit_code == 0, rec.output
    items = [row["item_id"] for row in json.loads(rec.stdout)["recommendations"]]
    assert len(set(items)) == 5
    expected = load(out).recommend([frame["user_id"].iloc[0]], k=5).item_ids[0]
    assert [str(i) for i in items] == [str(i) for i in expected]
    item = str(frame["item_id"].iloc[0])
    sim = runner.invoke(app, ["similar", str(out), "--item", item, "-k", "3", "--json"])
    assert sim.exit_code == 0, sim.output


def test_tune_ease_regularisation_on_a_grid(tmp_path: Path) -> None:
    frame = synthetic_ratings(80, 60, 2000, seed=5).ratings.to_pandas()
    csv = tmp_path / "ratings.csv"
    frame.rename(columns={"value": "rating"}).to_csv(csv, index=False)
    out = tmp_path / "trials.json"
    result = CliRunner().invoke(
        app, ["tune", "--data", str(csv), "--model", "ease", "--grid", "reg=5,50",
              "--out", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    trials = json.loads(out.read_text())["trials"]
    assert sorted(t["params"]["reg"] for t in trials) == [5, 50]
