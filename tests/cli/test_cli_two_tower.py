"""``palate train --model two-tower`` and the commands that use its model files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from palate import TwoTower
from palate.cli import app
from palate.data.synthetic import synthetic_ratings
from palate.persist import load, read_manifest

FAST = ["--epochs", "2", "--embedding-size", "8", "--batch-size", "256"]


def movielens_dir(root: Path) -> Path:
    """A tiny MovieLens csv-layout release (ratings, movies with genres and years)."""
    data = synthetic_ratings(60, 40, 1200, seed=1)
    frame = data.ratings.to_pandas()
    root.mkdir()
    pd.DataFrame({"userId": frame["user_id"] + 1, "movieId": frame["item_id"] + 1,
                  "rating": frame["value"], "timestamp": frame["timestamp"]}).to_csv(
        root / "ratings.csv", index=False)
    items = data.items
    pd.DataFrame({"movieId": items["item_id"] + 1,
                  "title": [f"Movie {i} ({y})" for i, y in zip(items["item_id"], items["year"],
                                                              strict=True)],
                  "genres": ["|".join(g) for g in items["genres"]]}).to_csv(
        root / "movies.csv", index=False)
    return root


def test_train_two_tower_then_recommend_and_similar(tmp_path: Path) -> None:
    data = movielens_dir(tmp_path / "ml")
    out = tmp_path / "tt"
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--data", str(data), "--model", "two-tower", *FAST,
                                 "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["model"] == "two-tower"
    assert payload["config"]["objective"] == "ratings"
    assert payload["metrics"]["model"]["validation_rmse"] > 0
    assert read_manifest(out)["model_kind"] == "two_tower"
    model = load(out)
    assert isinstance(model, TwoTower) and model.config.embedding_size == 8
    # the item table's features were used
    assert "genres" in model.features_.item_side.encoder.columns
    rec = runner.invoke(app, ["recommend", str(out), "--user", "1", "-k", "5", "--json"])
    assert rec.exit_code == 0, rec.output
    rows = json.loads(rec.stdout)["recommendations"]
    assert len(rows) == 5 and rows[0]["title"].startswith("Movie ")
    sim = runner.invoke(app, ["similar", str(out), "--item", "1", "-k", "3", "--json"])
    assert sim.exit_code == 0, sim.output
    assert len(json.loads(sim.stdout)["similar"]) == 3
    table = runner.invoke(app, ["recommend", str(out), "--user", "1", "-k", "3"])
    assert table.exit_code == 0 and "predicted rating" in table.stdout


def test_two_tower_on_positive_only_events_uses_the_retrieval_objective(tmp_path: Path) -> None:
    frame = synthetic_ratings(50, 30, 800, seed=2).ratings.to_pandas()
    csv = tmp_path / "clicks.csv"
    frame[["user_id", "item_id"]].to_csv(csv, index=False)
    out = tmp_path / "tt"
    result = CliRunner().invoke(app, ["train", "--data", str(csv), "--model", "two-tower", *FAST,
                                      "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["config"]["objective"] == "retrieval"


@pytest.mark.slow
def test_compile_is_a_two_tower_option(tmp_path: Path) -> None:
    data = movielens_dir(tmp_path / "ml")
    runner = CliRunner()
    refused = runner.invoke(app, ["train", "--data", str(data), "--model", "cf", "--compile",
                                  "--out", str(tmp_path / "cf")])
    assert refused.exit_code != 0
    assert "--compile applies to --model two-tower only" in refused.output
    assert not (tmp_path / "cf").exists()
    result = runner.invoke(app, ["train", "--data", str(data), "--model", "two-tower", *FAST,
                                 "--compile", "--out", str(tmp_path / "tt"), "--json"])
    assert result.exit_code == 0, result.output
    assert load(tmp_path / "tt").config.compile is True


def test_the_reported_metric_comes_from_events_early_stopping_never_saw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Early stopping runs on a split the model carves from the training part; the reported
    validation RMSE is measured on the command's validation events, which neither fitted the
    weights nor chose the epoch."""
    import numpy as np

    from palate.datasets import movielens
    from palate.evaluation.metrics import rmse
    from palate.evaluation.tune import validation_split

    data = movielens_dir(tmp_path / "ml")
    calls: list[tuple[TwoTower, object, dict[str, object]]] = []
    original = TwoTower.fit

    def spy(self: TwoTower, interactions: object, *args: object, **kwargs: object) -> TwoTower:
        calls.append((self, interactions, dict(kwargs)))
        return original(self, interactions, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(TwoTower, "fit", spy)
    out = tmp_path / "tt"
    result = CliRunner().invoke(app, ["train", "--data", str(data), "--model", "two-tower",
                                      "--epochs", "6", "--embedding-size", "8",
                                      "--batch-size", "128", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)

    ratings = movielens(path=data, download=False).ratings
    _, validation, _ = validation_split(ratings, 0.1, 0)
    model, fitted_on, kwargs = calls[0]  # the fit whose metric is reported (then a refit)
    assert kwargs.get("validation") is None  # it stopped early on a split of its own
    assert model.config.early_stopping and model.config.validation_fraction > 0
    held = set(zip(validation.user_ids.tolist(), validation.item_ids.tolist(), strict=True))
    seen = set(zip(fitted_on.user_ids.tolist(), fitted_on.item_ids.tolist(), strict=True))  # type: ignore[attr-defined]
    assert held and not held & seen
    reported = payload["metrics"]["model"]["validation_rmse"]
    measured = rmse(validation.values, model.predict(validation.user_ids, validation.item_ids))
    assert np.isclose(reported, measured, rtol=1e-5)
    manifest = read_manifest(out)
    assert manifest["metrics"]["validation_rmse"] == pytest.approx(reported)
    assert "not used to fit or stop" in manifest["metrics"]["validation"]["early_stopping"]
