"""The ``palate`` command line, driven in-process with Typer's CliRunner.

Models are trained once per module on tiny data written to a temporary directory: a plain
ratings CSV, and a MovieLens-layout directory (ratings.csv + movies.csv) so that titles and
genres travel with the model. Only the real-data demo reads ml-latest-small (marked slow).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from palate.cli import app
from palate.cli import demo as demo_module
from palate.data.synthetic import synthetic_ratings
from palate.persist import load, read_manifest

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
FAST_CF = ["--model", "cf", "--epochs", "4", "--embedding-size", "4"]
TITLES = {
    1: "Toy Story (1995)",
    2: "Toy Story 2 (1999)",
    3: "Heat (1995)",
    4: "Matrix, The (1999)",
    5: "Heat (1972)",
}
ROW_KEYS = {"rank", "item_id", "title", "genres", "score"}


def invoke(args: list[str], input: str | None = None) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def as_json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ---------------------------------------------------------------------------- data on disk
@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def ratings_csv(workdir: Path) -> Path:
    """1,200 synthetic ratings, columns user_id,item_id,rating,timestamp."""
    data = synthetic_ratings(60, 40, 1200, seed=0)
    frame = data.ratings.to_pandas().rename(columns={"value": "rating"})
    path = workdir / "ratings.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def movielens_dir(workdir: Path) -> Path:
    """A tiny MovieLens csv-layout release: movies 1..40, three of them with real titles."""
    data = synthetic_ratings(60, 40, 1200, seed=1)
    frame = data.ratings.to_pandas()
    root = workdir / "tiny-movielens"
    root.mkdir()
    pd.DataFrame(
        {
            "userId": frame["user_id"] + 1,
            "movieId": frame["item_id"] + 1,
            "rating": frame["value"],
            "timestamp": frame["timestamp"],
        }
    ).to_csv(root / "ratings.csv", index=False)
    genres = ["Animation|Children|Comedy", "Animation|Comedy", "Action|Crime|Thriller"]
    genres += ["Action|Sci-Fi", "Comedy"]
    pd.DataFrame(
        {
            "movieId": range(1, 41),
            "title": [TITLES.get(i, f"Movie number {i} (2000)") for i in range(1, 41)],
            "genres": [genres[i - 1] if i <= len(genres) else "Drama" for i in range(1, 41)],
        }
    ).to_csv(root / "movies.csv", index=False)
    return root


@pytest.fixture(scope="module")
def csv_model(workdir: Path, ratings_csv: Path) -> Path:
    out = workdir / "csv-model"
    result = invoke(["train", "--data", ratings_csv, "--out", out, *FAST_CF])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def titled_model(workdir: Path, movielens_dir: Path) -> Path:
    out = workdir / "titled-model"
    result = invoke(["train", "--data", movielens_dir, "--out", out, *FAST_CF])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def popularity_model(workdir: Path, movielens_dir: Path) -> Path:
    out = workdir / "popularity-model"
    result = invoke(["train", "--data", movielens_dir, "--model", "popularity", "--out", out])
    assert result.exit_code == 0, result.output
    return out


# ---------------------------------------------------------------------------- the app
def test_help_lists_every_command() -> None:
    result = invoke(["--help"])
    assert result.exit_code == 0
    for command in ("data", "train", "recommend", "similar", "rate", "demo"):
        assert command in result.stdout


def test_version() -> None:
    result = invoke(["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("palate ")


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--data", "x.csv"],  # --out missing
        ["train", "--data", "x.csv", "--out", "m", "--embedding-size", "0"],
        ["train", "--data", "x.csv", "--out", "m", "--model", "deep"],
        ["recommend", "m", "--user", "1", "-k", "0"],
        ["similar", "m", "--item", "1", "--metric", "manhattan"],
        ["recommend", "m", "--user", "1", "--no-such-option"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert invoke(args).exit_code == 2


# ---------------------------------------------------------------------------- train
def test_train_reports_validation_rmse_and_saves_the_metrics(
    csv_model: Path, ratings_csv: Path, tmp_path: Path
) -> None:
    manifest = read_manifest(csv_model)
    metrics = manifest["metrics"]
    assert {"train_rmse", "validation_rmse", "baselines", "validation"} <= set(metrics)
    assert set(metrics["baselines"]) == {"item_mean", "global_mean"}
    assert metrics["validation"]["method"] == "random_split"
    assert metrics["validation"]["n_validation"] == 120

    result = invoke(["train", "--data", ratings_csv, "--out", tmp_path / "m", *FAST_CF])
    assert result.exit_code == 0, result.output
    assert "validation RMSE" in result.stdout
    assert "item mean (baseline)" in result.stdout
    assert "Saved the model to" in result.stdout


def test_train_json(ratings_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    document = as_json(
        invoke(["train", "--data", ratings_csv, "--out", out, *FAST_CF, "--json"])
    )
    assert {"model_dir", "model", "kind", "config", "data", "split", "metrics", "history"} <= set(
        document
    )
    assert document["model_dir"] == str(out)
    assert document["kind"] == "explicit"
    assert document["config"]["embedding_size"] == 4
    assert len(document["history"]) == 4
    assert {"cost", "val_rmse"} <= set(document["history"][-1])
    for row in ("model", "item_mean", "global_mean"):
        assert set(document["metrics"][row]) == {"train_rmse", "validation_rmse"}
    # the model beats the mean-only baselines on planted low-rank data
    rmse = {row: document["metrics"][row]["validation_rmse"] for row in document["metrics"]}
    assert rmse["model"] < rmse["global_mean"]


def test_train_binary_reports_ranking_metrics(ratings_csv: Path, tmp_path: Path) -> None:
    document = as_json(
        invoke(
            [
                "train", "--data", ratings_csv, "--out", tmp_path / "m", "--model", "cf",
                "--kind", "binary", "--threshold", "4", "--solver", "adam", "--epochs", "5",
                "--json",
            ]
        )
    )
    assert document["kind"] == "binary"
    assert document["split"]["method"] == "user_holdout"
    metrics = document["metrics"]
    assert set(metrics) == {"model", "popularity", "n_users"}
    assert set(metrics["model"]) == {"precision@10", "recall@10", "ndcg@10"}
    assert metrics["n_users"] > 0


def test_train_popularity(popularity_model: Path) -> None:
    manifest = read_manifest(popularity_model)
    assert manifest["model_kind"] == "popularity"
    assert set(manifest["metrics"]["baselines"]) == {"global_mean"}


def test_train_without_validation(ratings_csv: Path, tmp_path: Path) -> None:
    document = as_json(
        invoke(
            [
                "train", "--data", ratings_csv, "--out", tmp_path / "m", *FAST_CF,
                "--validation-fraction", "0", "--json",
            ]
        )
    )
    assert document["metrics"] is None
    assert document["split"]["method"] is None


def test_train_refuses_to_replace_a_model_without_overwrite(
    csv_model: Path, ratings_csv: Path
) -> None:
    result = invoke(["train", "--data", ratings_csv, "--out", csv_model, *FAST_CF])
    assert_one_line_error(result, "already exists", "--overwrite")


def test_train_missing_data_is_one_line(tmp_path: Path) -> None:
    result = invoke(["train", "--data", tmp_path / "nope.csv", "--out", tmp_path / "m"])
    assert_one_line_error(result, "nope.csv")


def test_train_explicit_on_binary_data_is_refused(tmp_path: Path) -> None:
    events = tmp_path / "clicks.csv"
    events.write_text("user_id,item_id\n1,1\n1,2\n2,1\n2,3\n3,2\n")
    result = invoke(["train", "--data", events, "--out", tmp_path / "m", "--kind", "explicit"])
    assert_one_line_error(result, "--kind binary")


# ---------------------------------------------------------------------------- recommend
def test_recommend_known_user(titled_model: Path) -> None:
    result = invoke(["recommend", titled_model, "--user", "1", "-k", "5"])
    assert result.exit_code == 0, result.output
    assert "Top 5 for user 1" in result.stdout
    assert "predicted rating" in result.stdout
    assert "not in the model" not in result.stdout


def test_recommend_json(titled_model: Path) -> None:
    document = as_json(invoke(["recommend", titled_model, "--user", "1", "-k", "5", "--json"]))
    assert document["user_id"] == 1
    assert document["known_user"] is True and document["fallback"] is False
    rows = document["recommendations"]
    assert [row["rank"] for row in rows] == list(range(1, len(rows) + 1))
    assert 0 < len(rows) <= 5
    assert all(set(row) == ROW_KEYS for row in rows)
    assert all(isinstance(row["title"], str) and row["title"] for row in rows)
    scores = [row["score"] for row in rows]
    assert scores == sorted(scores, reverse=True)


def test_recommend_include_seen(titled_model: Path) -> None:
    document = as_json(
        invoke(["recommend", titled_model, "--user", "1", "-k", "40", "--include-seen", "--json"])
    )
    assert document["include_seen"] is True
    assert len(document["recommendations"]) == 40  # every item, seen ones included


def test_recommend_unknown_user_uses_the_fallback(titled_model: Path) -> None:
    result = invoke(["recommend", titled_model, "--user", "99999", "-k", "3"])
    assert result.exit_code == 0, result.output
    assert "not in the model's training data" in result.stdout
    assert "fallback" in result.stdout

    document = as_json(invoke(["recommend", titled_model, "--user", "99999", "--json"]))
    assert document["known_user"] is False and document["fallback"] is True
    assert "fallback" in document["note"]
    assert len(document["recommendations"]) == 10


def test_recommend_without_titles(csv_model: Path) -> None:
    document = as_json(invoke(["recommend", csv_model, "--user", "0", "-k", "3", "--json"]))
    assert [row["title"] for row in document["recommendations"]] == [None] * 3


def test_recommend_popularity(popularity_model: Path) -> None:
    document = as_json(invoke(["recommend", popularity_model, "--user", "2", "--json"]))
    assert document["score"] == "mean rating"
    assert len(document["recommendations"]) == 10


def test_missing_model_dir_is_one_line_without_traceback(tmp_path: Path) -> None:
    result = invoke(["recommend", tmp_path / "no-model", "--user", "1"])
    assert_one_line_error(result, "no-model")
    assert result.stdout == ""


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    result = invoke(["recommend", tmp_path / "no-model", "--user", "1", "-v"])
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_errors_leave_stdout_clean_with_json(tmp_path: Path) -> None:
    result = invoke(["recommend", tmp_path / "no-model", "--user", "1", "--json"])
    assert_one_line_error(result)
    assert result.stdout == ""


# ---------------------------------------------------------------------------- similar
def test_similar_by_id(titled_model: Path) -> None:
    result = invoke(["similar", titled_model, "--item", "1", "-k", "4"])
    assert result.exit_code == 0, result.output
    assert "Most similar to Toy Story (1995)" in result.stdout
    assert "distance" in result.stdout


def test_similar_json(titled_model: Path) -> None:
    document = as_json(
        invoke(["similar", titled_model, "--item", "3", "-k", "4", "--metric", "cosine", "--json"])
    )
    assert document["item"] == {
        "item_id": 3, "title": "Heat (1995)", "genres": ["Action", "Crime", "Thriller"]
    }
    assert document["metric"] == "cosine"
    rows = document["similar"]
    assert len(rows) == 4
    assert all(set(row) == {"rank", "item_id", "title", "genres", "distance"} for row in rows)
    assert 3 not in [row["item_id"] for row in rows]
    distances = [row["distance"] for row in rows]
    assert distances == sorted(distances)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("TOY STORY 2", 2),  # the one title that contains it, in any case
        ("Toy Story (1995)", 1),  # exact title
        ("toy story", 1),  # exact title but for the year, though "Toy Story 2" contains it too
        ("heat (1995)", 3),
        ("the matrix", 4),  # MovieLens' "Matrix, The" read the usual way
        ("matrix, the", 4),
    ],
)
def test_similar_by_title(titled_model: Path, query: str, expected: int) -> None:
    document = as_json(invoke(["similar", titled_model, "--item", query, "--json"]))
    assert document["item"]["item_id"] == expected


@pytest.mark.parametrize(("query", "n"), [("toy", 2), ("heat", 2)])
def test_similar_ambiguous_title_lists_the_candidates(
    titled_model: Path, query: str, n: int
) -> None:
    result = invoke(["similar", titled_model, "--item", query])
    assert result.exit_code == 1
    candidates = {
        "toy": ["Toy Story (1995)", "Toy Story 2 (1999)"],
        "heat": ["Heat (1995)", "Heat (1972)"],
    }
    for title in candidates[query]:
        assert title in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and f"matches {n} items" in last
    assert "Traceback" not in result.output

    quiet = invoke(["similar", titled_model, "--item", query, "--json"])
    assert_one_line_error(quiet, f"matches {n} items", *candidates[query])
    assert quiet.stdout == ""


def test_similar_unknown_title(titled_model: Path) -> None:
    result = invoke(["similar", titled_model, "--item", "no such film"])
    assert_one_line_error(result, "no such film")


def test_similar_needs_item_features(popularity_model: Path) -> None:
    result = invoke(["similar", popularity_model, "--item", "1"])
    assert_one_line_error(result, "--model cf")


# ---------------------------------------------------------------------------- rate
def test_rate_from_a_file(titled_model: Path, tmp_path: Path) -> None:
    ratings = tmp_path / "mine.csv"
    ratings.write_text("item_id,rating\n1,5\n2,4.5\n3,1\n")
    document = as_json(invoke(["rate", titled_model, "--ratings", ratings, "-k", "5", "--json"]))
    assert [r["item_id"] for r in document["ratings"]] == [1, 2, 3]
    assert document["ratings"][0]["title"] == "Toy Story (1995)"
    rows = document["recommendations"]
    assert len(rows) == 5 and all(set(row) == ROW_KEYS for row in rows)
    assert not {1, 2, 3} & {row["item_id"] for row in rows}

    result = invoke(["rate", titled_model, "--ratings", ratings])
    assert result.exit_code == 0, result.output
    assert "Your ratings" in result.stdout and "Top 10 for you" in result.stdout


def test_rate_interactively(titled_model: Path) -> None:
    # "toy" matches two titles: pick the second; "heat (1995)" matches one, whose rating 9 is
    # refused; "42" is neither a known id nor in a title; an empty line ends
    answers = "toy\n2\n4.5\nheat (1995)\n9\n2\n42\n\n"
    result = invoke(["rate", titled_model, "-k", "3", "--json"], input=answers)
    document = as_json(result)
    assert [(r["item_id"], r["rating"]) for r in document["ratings"]] == [(2, 4.5), (3, 2.0)]
    assert "the scale is" in result.stderr  # 9 was refused
    assert len(document["recommendations"]) == 3


def test_rate_with_no_ratings(titled_model: Path) -> None:
    result = invoke(["rate", titled_model], input="\n")
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == "error: no ratings given; rate at least one item"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("item_id,rating\n12345,4\n", "12345"),
        ("item,stars\n1,4\n", "item_id,rating"),
        ("item_id,rating\n1,4\n1,5\n", "twice"),
    ],
)
def test_rate_bad_file(titled_model: Path, tmp_path: Path, content: str, fragment: str) -> None:
    ratings = tmp_path / "bad.csv"
    ratings.write_text(content)
    assert_one_line_error(invoke(["rate", titled_model, "--ratings", ratings]), fragment)


def test_rate_needs_fold_in(popularity_model: Path, tmp_path: Path) -> None:
    ratings = tmp_path / "mine.csv"
    ratings.write_text("item_id,rating\n1,5\n")
    result = invoke(["rate", popularity_model, "--ratings", ratings])
    assert_one_line_error(result, "--model cf")


# ---------------------------------------------------------------------------- data
def test_data_info_csv(ratings_csv: Path) -> None:
    result = invoke(["data", "info", ratings_csv])
    assert result.exit_code == 0, result.output
    assert "1,200" in result.stdout and "density" in result.stdout

    document = as_json(invoke(["data", "info", ratings_csv, "--json"]))
    assert document["n_ratings"] == 1200
    assert document["kind"] == "explicit"
    assert {
        "n_users", "n_items", "density", "rating_scale", "mean_rating", "rating_distribution",
        "ratings_per_user", "ratings_per_item", "most_rated", "top_genres",
    } <= set(document)
    assert sum(d["count"] for d in document["rating_distribution"]) == 1200
    assert document["top_genres"] is None


def test_data_info_movielens_layout(movielens_dir: Path) -> None:
    document = as_json(invoke(["data", "info", movielens_dir, "--json"]))
    genres = {g["genre"]: g for g in document["top_genres"]}
    assert genres["Drama"]["n_items"] == 35
    assert {"Animation", "Comedy", "Action"} <= set(genres)
    assert document["items_table_rows"] == 40
    assert all(row["title"] for row in document["most_rated"])

    result = invoke(["data", "info", movielens_dir])
    assert result.exit_code == 0, result.output
    assert "Top genres" in result.stdout and "Most-rated items" in result.stdout


def test_data_info_unknown_source() -> None:
    assert_one_line_error(invoke(["data", "info", "no-such-data"]), "no-such-data")


def test_data_download_finds_a_local_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "data" / "ml-latest-small"
    copy.mkdir(parents=True)
    (copy / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    monkeypatch.setenv("PALATE_DATA", str(tmp_path / "data"))
    document = as_json(invoke(["data", "download", "ml-latest-small", "--json"]))
    assert document == {"name": "ml-latest-small", "path": str(copy), "downloaded": False}
    result = invoke(["data", "download", "ml-latest-small"])
    assert "already available" in result.stdout


def test_data_download_offline_is_one_line(tmp_path: Path) -> None:
    result = invoke(["data", "download", "ml-100k", "--cache", tmp_path / "c"])
    assert_one_line_error(result, "ml-100k")


def test_data_download_unknown_release() -> None:
    assert_one_line_error(invoke(["data", "download", "ml-5k"]), "ml-5k")


# ---------------------------------------------------------------------------- demo
@pytest.fixture
def small_synthetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No MovieLens anywhere, and a small synthetic stand-in to keep the test quick."""
    monkeypatch.setenv("PALATE_DATA", str(tmp_path / "empty-data"))
    monkeypatch.setenv("PALATE_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(
        demo_module, "SYNTHETIC", {"n_users": 80, "n_items": 60, "n_ratings": 2000}
    )


@pytest.mark.usefixtures("small_synthetic")
def test_demo_without_data_tours_synthetic_ratings() -> None:
    result = invoke(["demo"])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "synthetic" in notes[0] and "ml-latest-small" in notes[0]
    for heading in ("Top 10 for user 0", "Most similar to Item", "Held-out RMSE"):
        assert heading in result.stdout
    assert "collaborative filtering" in result.stdout and "item mean" in result.stdout


@pytest.mark.usefixtures("small_synthetic")
def test_demo_json_and_saved_model(tmp_path: Path) -> None:
    out = tmp_path / "demo-model"
    document = as_json(invoke(["demo", "--json", "--out", out]))
    assert {
        "data", "split", "config", "user", "recommendations", "similar", "rmse", "model_dir",
        "seconds",
    } <= set(document)
    assert document["data"]["source"] == "synthetic"
    assert "127.0.0.1:9" in document["data"]["fallback_reason"]
    assert set(document["rmse"]) == {"model", "item_mean", "global_mean"}
    assert len(document["recommendations"]) == 10
    assert all("because" in row for row in document["recommendations"])
    assert len(document["similar"]["items"]) == 10
    assert document["model_dir"] == str(out)
    saved = as_json(invoke(["recommend", out, "--user", "0", "-k", "3", "--json"]))
    assert saved["recommendations"][0]["title"].startswith("Item ")


@pytest.mark.slow
@pytest.mark.skipif(
    not (SHARED_DATA / "ml-latest-small" / "ratings.csv").is_file(),
    reason="shared ml-latest-small copy not present",
)
def test_demo_on_movielens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PALATE_DATA", str(SHARED_DATA))
    document = as_json(invoke(["demo", "--json"]))
    assert document["data"]["source"] == "movielens"
    assert document["data"]["n_ratings"] == 100_836
    assert document["split"]["n_validation"] == 10_084
    assert document["similar"]["item"]["title"] == "Toy Story (1995)"
    assert all(row["title"] for row in document["recommendations"])
    # each listed film says why, naming films of the user's own history
    assert all(row["because"] for row in document["recommendations"])
    assert any("(19" in " ".join(row["because"]) for row in document["recommendations"])
    rmse = document["rmse"]
    assert rmse["model"] < rmse["item_mean"] < rmse["global_mean"]


def test_train_without_model_trains_the_hybrid_default(ratings_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "default"
    document = as_json(invoke(["train", "--data", ratings_csv, "--out", out, "--epochs", "3",
                               "--embedding-size", "5", "--json"]))
    assert document["model"] == "hybrid"
    # the model options set its collaborative filtering, which predicts the ratings
    rating = document["config"]["rating"]
    assert rating["kind"] == "collaborative"
    assert rating["params"]["epochs"] == 3 and rating["params"]["embedding_size"] == 5
    model = load(out)
    assert model.capabilities()["ranks_by"] == "blend"
    shown = as_json(invoke(["recommend", out, "--user", "0", "-k", "3", "--json"]))
    assert shown["score"] == "predicted rating" and len(shown["recommendations"]) == 3
    assert all(1 <= row["score"] <= 5 for row in shown["recommendations"])


def test_train_on_engagement_events_uses_the_top_n_blend_by_default(tmp_path: Path) -> None:
    events = tmp_path / "clicks.csv"
    rows = [f"{u},{i}" for u in range(1, 13) for i in range(1, 9) if (u + i) % 3 != 0]
    events.write_text("user_id,item_id\n" + "\n".join(rows) + "\n")
    document = as_json(invoke(["train", "--data", events, "--out", tmp_path / "m",
                               "--validation-fraction", "0", "--json"]))
    assert document["model"] == "blend"
    assert document["kind"] == "binary"
    assert document["config"]["item_model"]["kind"] == "ease"
