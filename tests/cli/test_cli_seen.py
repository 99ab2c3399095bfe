"""A recommendation list never holds an item the user already rated, for models trained and
served through the command line on MovieLens ml-latest-small — whatever the model learns from
(ratings, or only the ratings >= 4 as positives) and whatever part was held out for the
reported metric."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import palate
from palate.cli.main import app

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (SHARED_DATA / "ml-latest-small" / "ratings.csv").is_file(),
        reason="shared ml-latest-small copy not present",
    ),
]

MODELS = {
    "cf": ["--epochs", "5"],
    "ials": ["--epochs", "5"],
    "ease": [],
    "two-tower": ["--epochs", "2"],
}


@pytest.fixture(scope="module")
def rated() -> dict[int, set[int]]:
    dataset = palate.datasets.movielens(path=SHARED_DATA / "ml-latest-small", download=False)
    frame = dataset.ratings.to_pandas()
    return {int(u): set(group.tolist()) for u, group in frame.groupby("user_id")["item_id"]}


@pytest.mark.parametrize("name", list(MODELS))
def test_recommend_returns_no_rated_item_for_any_user(
    name: str, rated: dict[int, set[int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PALATE_DATA", str(SHARED_DATA))
    out = tmp_path / name
    runner = CliRunner()
    trained = runner.invoke(
        app, ["train", "--data", "ml-latest-small", "--model", name, "--out", str(out),
              *MODELS[name]],
    )
    assert trained.exit_code == 0, trained.output
    # one user through the command itself ...
    shown = runner.invoke(app, ["recommend", str(out), "--user", "1", "-k", "10", "--json"])
    assert shown.exit_code == 0, shown.output
    listed = {row["item_id"] for row in json.loads(shown.stdout)["recommendations"]}
    assert len(listed) == 10 and not listed & rated[1]
    # ... and every user through the model the command saved
    model = palate.load(out)
    users = np.array(sorted(rated))
    recs = model.recommend(users, k=10)
    assert not recs.fallback.any()  # the saved model was fitted on every user's events
    for user, row in zip(users.tolist(), recs.item_ids.tolist(), strict=True):
        assert not set(row) & rated[user], (name, user)
