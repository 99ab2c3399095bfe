"""``palate recommend --pipeline``: the configuration's ``data`` is checked against the data the
model was trained on, policies on columns with missing values filter those items out, and
whatever goes wrong while building the pipeline is one line ``error: ...``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import Result
from typer.testing import CliRunner

from palate.cli import app
from palate.data.synthetic import synthetic_ratings
from palate.datasets import load_interactions
from palate.retrieval.sources import Popular

#: every fifth film has no year in its title (MovieLens has a few such films)
NO_YEAR = 5


def movielens_dir(root: Path, seed: int) -> Path:
    """A MovieLens-layout directory: 60 users, 200 films, 1,500 ratings (sparse enough that
    two seeds share about an eighth of their (user, film) pairs by accident)."""
    data = synthetic_ratings(60, 200, 1500, seed=seed)
    frame = data.ratings.to_pandas()
    root.mkdir()
    pd.DataFrame({"userId": frame["user_id"] + 1, "movieId": frame["item_id"] + 1,
                  "rating": frame["value"], "timestamp": frame["timestamp"]}).to_csv(
        root / "ratings.csv", index=False)
    items = data.items
    titles = [f"Film {i}" if i % NO_YEAR == 0 else f"Film {i} ({year})"
              for i, year in zip(items["item_id"], items["year"], strict=True)]
    pd.DataFrame({"movieId": items["item_id"] + 1, "title": titles,
                  "genres": ["|".join(g) for g in items["genres"]]}).to_csv(
        root / "movies.csv", index=False)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pipeline-data")
    return {"mine": movielens_dir(root / "mine", seed=2),
            "other": movielens_dir(root / "other", seed=3)}


@pytest.fixture(scope="module")
def models(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pipeline-models")
    runner = CliRunner()
    out = {}
    for name, options in {
        "cf": ["--model", "cf", "--epochs", "2"],
        "ials": ["--model", "ials", "--epochs", "2"],
        "ials-3.5": ["--model", "ials", "--epochs", "2", "--threshold", "3.5"],
    }.items():
        out[name] = root / name
        trained = runner.invoke(app, ["train", "--data", str(data["mine"]), *options,
                                      "--out", str(out[name])])
        assert trained.exit_code == 0, trained.output
    return out


def pipeline_config(path: Path, data: Path, policies: str = "") -> Path:
    path.write_text(
        f'data = "{data}"\n\n'
        '[[sources]]\nkind = "similar_to_recent"\nn_recent = 3\nn_similar = 5\n\n'
        '[[sources]]\nkind = "popular"\ntop = 30\n' + policies
    )
    return path


def recommend(model: Path, config: Path, *more: str) -> Result:
    return CliRunner().invoke(app, ["recommend", str(model), "--user", "1", "-k", "10",
                                    "--pipeline", str(config), *more])


def assert_one_line_error(result: Result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def fingerprint(model: Path) -> str:
    manifest = json.loads((model / "manifest.json").read_text())
    return str(manifest["data_fingerprint"]).split(":", 1)[1][:12]


def test_another_datasets_events_are_refused(
    data: dict[str, Path], models: dict[str, Path], tmp_path: Path
) -> None:
    config = pipeline_config(tmp_path / "p.toml", data["other"])
    theirs = load_interactions(str(data["other"])).ratings.fingerprint().split(":")[1][:12]
    for name in ("cf", "ials"):
        assert_one_line_error(
            recommend(models[name], config, "--json"),
            str(data["other"]), theirs, fingerprint(models[name]),
            "Point `data` at the data the model", f"palate train --data {data['other']}",
        )


def test_the_models_own_data_is_accepted(
    data: dict[str, Path], models: dict[str, Path], tmp_path: Path
) -> None:
    config = pipeline_config(tmp_path / "p.toml", data["mine"])
    for name in ("cf", "ials"):  # the same events, as palate train converted them: no remark
        result = recommend(models[name], config, "--json")
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
        assert len(json.loads(result.stdout)["recommendations"]) == 10
    # another threshold: not the same fingerprint, but every training event is in the data
    result = recommend(models["ials-3.5"], config, "--json")
    assert result.exit_code == 0, result.output
    assert "note:" in result.stderr and "100% of the model's training events" in result.stderr


def test_a_model_trained_on_a_split_accepts_the_whole_data(
    data: dict[str, Path], models: dict[str, Path], tmp_path: Path
) -> None:
    from palate import CollaborativeFiltering, save
    from palate.data.split import random_split

    ratings = load_interactions(str(data["mine"])).ratings
    train, _ = random_split(ratings, test_fraction=0.3, seed=0)
    model = CollaborativeFiltering(epochs=2).fit(train)
    save(model, tmp_path / "split-cf")
    result = recommend(tmp_path / "split-cf", pipeline_config(tmp_path / "p.toml", data["mine"]))
    assert result.exit_code == 0, result.output
    assert "note:" in result.stderr
    refused = recommend(tmp_path / "split-cf", pipeline_config(tmp_path / "q.toml", data["other"]))
    assert_one_line_error(refused, "Point `data`")


def test_a_policy_on_a_column_with_missing_values_filters_them_out(
    data: dict[str, Path], models: dict[str, Path], tmp_path: Path
) -> None:
    policy = '\n[[policies]]\ncolumn = "year"\nop = ">="\nvalue = 1970\n'
    config = pipeline_config(tmp_path / "p.toml", data["mine"], policy)
    result = recommend(models["cf"], config, "--explain", "--json")
    assert result.exit_code == 0, result.output
    shown = [row["item_id"] for row in json.loads(result.stdout)["recommendations"]]
    assert shown
    items = pd.read_csv(data["mine"] / "movies.csv")
    year = items.set_index("movieId")["title"].str.extract(r"\((\d{4})\)$")[0]
    for item in shown:
        assert (item - 1) % NO_YEAR != 0, f"film {item} has no year and was shown"
        assert int(year[item]) >= 1970


def test_a_wrong_policy_value_is_one_line(
    data: dict[str, Path], models: dict[str, Path], tmp_path: Path
) -> None:
    policy = '\n[[policies]]\ncolumn = "year"\nop = ">="\nvalue = "1970"\n'
    config = pipeline_config(tmp_path / "p.toml", data["mine"], policy)
    assert_one_line_error(recommend(models["cf"], config), "policy year >=", "without quotes")


def test_an_unexpected_failure_is_one_line(
    data: dict[str, Path], models: dict[str, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: Popular, data: object) -> Popular:
        raise RuntimeError("something palate did not foresee")

    monkeypatch.setattr(Popular, "fit", broken)
    config = pipeline_config(tmp_path / "p.toml", data["mine"])
    assert_one_line_error(
        recommend(models["cf"], config), "could not build the pipeline of", "RuntimeError",
        "something palate did not foresee", "-v",
    )
    verbose = recommend(models["cf"], config, "-v")
    assert verbose.exit_code == 1 and "Traceback" in verbose.output
