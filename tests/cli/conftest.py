"""What every command-line test shares: an isolated environment and a small ratings file."""

from __future__ import annotations

from pathlib import Path

import pytest

from palate.data.synthetic import synthetic_ratings


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real data or cache, no network, and wide tables that do not fold titles."""
    monkeypatch.setenv("PALATE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PALATE_DATA", raising=False)
    monkeypatch.setenv("PALATE_MOVIELENS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def ratings_csv(tmp_path: Path) -> Path:
    """40 users x 30 items, 600 explicit ratings as a csv file (user_id, item_id, rating)."""
    frame = synthetic_ratings(40, 30, 600, seed=0).ratings.to_pandas()
    path = tmp_path / "ratings.csv"
    frame.rename(columns={"value": "rating"}).to_csv(path, index=False)
    return path
