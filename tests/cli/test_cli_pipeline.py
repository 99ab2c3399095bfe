"""``palate recommend --pipeline CONFIG.toml --explain`` and saved pipelines."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from palate import RetrieveThenRank
from palate.cli import app
from palate.data.synthetic import synthetic_ratings
from palate.persist import load


def movielens_dir(root: Path) -> Path:
    data = synthetic_ratings(50, 40, 1000, seed=2)
    frame = data.ratings.to_pandas()
    root.mkdir()
    pd.DataFrame({"userId": frame["user_id"] + 1, "movieId": frame["item_id"] + 1,
                  "rating": frame["value"], "timestamp": frame["timestamp"]}).to_csv(
        root / "ratings.csv", index=False)
    items = data.items
    pd.DataFrame({"movieId": items["item_id"] + 1,
                  "title": [f"Movie {i}" for i in items["item_id"]],
                  "genres": ["|".join(g) for g in items["genres"]]}).to_csv(
        root / "movies.csv", index=False)
    return root


def test_recommend_with_a_pipeline_explains_and_saves(tmp_path: Path) -> None:
    data = movielens_dir(tmp_path / "ml")
    runner = CliRunner()
    model = tmp_path / "cf"
    trained = runner.invoke(app, ["train", "--data", str(data), "--model", "cf", "--epochs", "3",
                                  "--out", str(model), "--json"])
    assert trained.exit_code == 0, trained.output
    config = tmp_path / "pipeline.toml"
    config.write_text(
        f'data = "{data}"\nblock_items = [3]\n\n'
        '[[sources]]\nkind = "similar_to_recent"\nn_recent = 3\nn_similar = 5\n\n'
        '[[sources]]\nkind = "top_in_favorite_genres"\n\n'
        '[[sources]]\nkind = "popular"\ntop = 10\n'
    )
    out = tmp_path / "pipeline"
    result = runner.invoke(app, ["recommend", str(model), "--user", "1", "-k", "5",
                                 "--pipeline", str(config), "--explain",
                                 "--save-pipeline", str(out), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    rows = payload["recommendations"]
    assert len(rows) == 5 and all(row["item_id"] != 3 for row in rows)
    allowed = {"similar_to_recent", "top_in_favorite_genres", "popular"}
    for row in rows:
        assert row["sources"] and set(row["sources"]) <= allowed
        # what found it, then the terms of the ranker's score
        assert len(row["because"]) >= len(row["sources"])
    assert any(r.startswith("because you watched Movie ") for row in rows for r in row["because"])
    assert isinstance(load(out), RetrieveThenRank)
    again = runner.invoke(app, ["recommend", str(out), "--user", "1", "-k", "5", "--explain",
                                "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["recommendations"] == rows
    table = runner.invoke(app, ["recommend", str(out), "--user", "1", "-k", "3", "--explain"])
    assert table.exit_code == 0 and "why" in table.stdout


def test_pipeline_errors_are_one_line(tmp_path: Path) -> None:
    data = movielens_dir(tmp_path / "ml")
    runner = CliRunner()
    model = tmp_path / "cf"
    assert runner.invoke(app, ["train", "--data", str(data), "--model", "cf", "--epochs", "2",
                               "--out", str(model)]).exit_code == 0
    ials = tmp_path / "ials"
    assert runner.invoke(app, ["train", "--data", str(data), "--model", "ials",
                               "--epochs", "2", "--out", str(ials)]).exit_code == 0
    explain = runner.invoke(app, ["recommend", str(ials), "--user", "1", "--explain"])
    assert explain.exit_code == 1 and "not split into reasons" in explain.output
    config = tmp_path / "p.toml"
    config.write_text('[[sources]]\nkind = "popular"\n')
    no_data = runner.invoke(app, ["recommend", str(model), "--user", "1", "--pipeline",
                                  str(config)])
    assert no_data.exit_code == 1 and "data =" in no_data.output


def test_experiment_retrieval_size_writes_table_json_and_plot(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "exp"
    result = runner.invoke(app, [
        "experiment", "retrieval-size", "--synthetic-items", "300", "--synthetic-users", "60",
        "--synthetic-ratings-per-user", "20", "--embedding-size", "4", "--epochs", "2",
        "--sizes", "10,100", "--users", "20", "--test-events", "3", "--index", "hnsw",
        "--out", str(out), "--json",
    ])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [row["config"] for row in payload["rows"]][:3] == [
        "whole catalogue", "all sources", "all sources"
    ]
    assert payload["n_items"] == 300 and payload["n_users"] == 20
    assert payload["notes"]["index_recall"]["nearest_to_user"] is not None
    assert (out / "retrieval_size.png").stat().st_size > 0
    assert json.loads((out / "retrieval_size.json").read_text())["k"] == 10
    both = runner.invoke(app, ["experiment", "retrieval-size"])
    assert both.exit_code == 1 and "--data" in both.output


def test_recommend_explains_a_plain_cf_model(tmp_path: Path) -> None:
    data = movielens_dir(tmp_path / "ml")
    runner = CliRunner()
    model = tmp_path / "cf"
    assert runner.invoke(app, ["train", "--data", str(data), "--model", "cf", "--epochs", "3",
                               "--out", str(model)]).exit_code == 0
    result = runner.invoke(app, ["recommend", str(model), "--user", "1", "-k", "5", "--explain",
                                 "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["recommendations"]
    assert len(rows) == 5
    for row in rows:
        assert row["because"], row  # at least "from many of your ratings" or a named term
        terms = row["contributions"]
        assert terms["score"] == pytest.approx(
            terms["baseline"] + terms["personal"] + terms["unexplained"])
    table = runner.invoke(app, ["recommend", str(model), "--user", "1", "-k", "3", "--explain"])
    assert table.exit_code == 0 and "why" in table.stdout
