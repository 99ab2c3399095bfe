"""``--min-ratings`` and ``--policy`` on ``palate recommend``, ``similar`` and ``rate``: no listed
item fails them, and a policy the item table cannot check is a one-line error naming the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from palate.cli import app
from palate.data.synthetic import synthetic_ratings

FAST_CF = ["--model", "cf", "--epochs", "4", "--embedding-size", "4"]


def invoke(args: list[Any]) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def as_json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, pd.Series]:
    """A MovieLens-layout directory: 40 films, years 1950..2007, every third a horror film."""
    frame = synthetic_ratings(60, 40, 1200, seed=1).ratings.to_pandas()
    root = tmp_path_factory.mktemp("filters") / "movielens"
    root.mkdir()
    pd.DataFrame(
        {
            "userId": frame["user_id"] + 1,
            "movieId": frame["item_id"] + 1,
            "rating": frame["value"],
            "timestamp": frame["timestamp"],
        }
    ).to_csv(root / "ratings.csv", index=False)
    movies = pd.DataFrame(
        {
            "movieId": range(1, 41),
            "title": [f"Film {i} ({1950 + 3 * (i % 20)})" for i in range(1, 41)],
            "genres": ["Horror|Drama" if i % 3 == 0 else "Comedy" for i in range(1, 41)],
        }
    )
    movies.to_csv(root / "movies.csv", index=False)
    counts = (frame["item_id"] + 1).value_counts()
    return root, movies.set_index("movieId"), counts


@pytest.fixture(scope="module")
def model_dir(data: tuple[Path, pd.DataFrame, pd.Series]) -> Path:
    out = data[0].parent / "model"
    result = invoke(["train", "--data", data[0], "--out", out, *FAST_CF])
    assert result.exit_code == 0, result.output
    return out


FILTERS = ["--min-ratings", 30, "--policy", "year>=1970", "--policy", "genres!=Horror"]


def _passes(item: Any, data: tuple[Path, pd.DataFrame, pd.Series]) -> bool:
    _, movies, counts = data
    item = int(item)
    return bool(
        counts[item] >= 30
        and int(movies.loc[item, "title"][-5:-1]) >= 1970
        and "Horror" not in movies.loc[item, "genres"]
    )


def _check(rows: list[dict[str, Any]], data: tuple[Path, pd.DataFrame, pd.Series]) -> None:
    assert rows
    assert all(_passes(row["item_id"], data) for row in rows)


def test_recommend_similar_and_rate_list_only_items_that_pass(
    model_dir: Path, data: tuple[Path, pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    document = as_json(invoke(["recommend", model_dir, "--user", 1, "-k", 3, *FILTERS, "--json"]))
    _check(document["recommendations"], data)
    assert document["filters"] == {
        "min_ratings": 30, "policies": ["year>=1970", "genres!=Horror"]
    }
    unfiltered = as_json(invoke(["recommend", model_dir, "--user", 1, "-k", 40, "--json"]))
    passing = [r["item_id"] for r in unfiltered["recommendations"] if _passes(r["item_id"], data)]
    assert [r["item_id"] for r in document["recommendations"]] == passing[:3]

    similar = as_json(invoke(["similar", model_dir, "--item", 2, "-k", 3, *FILTERS, "--json"]))
    _check(similar["similar"], data)

    ratings = tmp_path / "mine.csv"
    ratings.write_text("item_id,rating\n1,5\n2,1\n")
    rated = as_json(
        invoke(["rate", model_dir, "--ratings", ratings, "-k", 3, *FILTERS, "--json"])
    )
    _check(rated["recommendations"], data)


def test_an_unreadable_policy_is_a_one_line_error(model_dir: Path) -> None:
    result = invoke(["recommend", model_dir, "--user", 1, "--policy", "year>>1970"])
    assert result.exit_code == 1, result.output
    assert "COLUMN OP VALUE" in result.stderr and "Traceback" not in result.output
    result = invoke(["recommend", model_dir, "--user", 1, "--policy", "rating>3"])
    assert result.exit_code == 1
    assert "no column 'rating'" in result.stderr and "genres" in result.stderr
