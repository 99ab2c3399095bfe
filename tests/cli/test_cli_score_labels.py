"""Scores are labelled by what the model declares they are (``Model.score_kind``): EASE's and
implicit ALS's scores are preferences, never "predicted rating"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from palate.cli import app

#: model -> (the score_kind it declares, the column name people see)
EXPECTED = {
    "cf": ("rating", "predicted rating"),
    "ease": ("preference", "preference"),
    "ials": ("preference", "preference"),
    "popularity": ("popularity", "mean rating"),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from palate.data.synthetic import synthetic_ratings

    root = tmp_path_factory.mktemp("labels")
    frame = synthetic_ratings(40, 30, 600, seed=0).ratings.to_pandas()
    ratings = root / "ratings.csv"
    frame.rename(columns={"value": "rating"}).to_csv(ratings, index=False)
    runner = CliRunner()
    out = {}
    for name in EXPECTED:
        out[name] = root / name
        options = ["--epochs", "2"] if name in ("cf", "ials") else []
        trained = runner.invoke(app, ["train", "--data", str(ratings), "--model", name,
                                      *options, "--out", str(out[name])])
        assert trained.exit_code == 0, trained.output
    return out


@pytest.mark.parametrize("name", list(EXPECTED))
def test_recommend_labels_scores_by_the_models_score_kind(
    name: str, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    kind, label = EXPECTED[name]
    runner = CliRunner()
    result = runner.invoke(app, ["recommend", str(models[name]), "--user", "1", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["score_kind"], payload["score"]) == (kind, label)
    table = runner.invoke(app, ["recommend", str(models[name]), "--user", "1"])
    assert table.exit_code == 0, table.output
    assert label in table.stdout
    if kind != "rating":
        assert "predicted rating" not in table.stdout


def test_an_unknown_users_fallback_is_labelled_as_popularity(models: dict[str, Path]) -> None:
    result = CliRunner().invoke(
        app, ["recommend", str(models["ease"]), "--user", "nobody", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["fallback"] and (payload["score_kind"], payload["score"]) == (
        "popularity", "events",
    )


def test_rate_labels_eases_scores_as_preferences(models: dict[str, Path], tmp_path: Path) -> None:
    ratings = tmp_path / "mine.csv"
    ratings.write_text("item_id,rating\n1,1\n2,1\n")
    result = CliRunner().invoke(
        app, ["rate", str(models["ease"]), "--ratings", str(ratings), "-k", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["score_kind"], payload["score"]) == ("preference", "preference")
