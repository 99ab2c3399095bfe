"""The explicit default λ shrinks with the number of training ratings."""

from __future__ import annotations

from pathlib import Path

import pytest

from palate import CollaborativeFiltering, load, save
from palate.data.synthetic import synthetic_ratings
from palate.models.collaborative import CollaborativeFilteringConfig


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1_000, 0.12),
        (100_000, 0.12),
        (900_000, 0.12 * 9**-0.25),  # 0.0693
        (1_600_000, 0.06),  # 0.12 · 16^(−1/4)
        (10_000_000, 0.05),  # 0.0379 before the floor
    ],
)
def test_explicit_rule(n: int, expected: float) -> None:
    assert CollaborativeFilteringConfig().reg_for(n) == pytest.approx(expected, rel=1e-12)


def test_given_reg_and_binary_are_not_scaled() -> None:
    assert CollaborativeFilteringConfig(reg=0.3).reg_for(10_000_000) == 0.3
    assert CollaborativeFilteringConfig(kind="binary").reg_for(10_000_000) == 0.05


def test_fit_records_and_files_keep_the_lambda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = synthetic_ratings(40, 30, 600, seed=0).ratings
    same = CollaborativeFiltering(embedding_size=3, epochs=2, reg=0.07).fit(data)
    plain = CollaborativeFiltering(embedding_size=3, epochs=2).fit(data)
    assert plain.reg_ == 0.12
    # pretend the data is large so that the rule moves λ off 0.12
    monkeypatch.setattr(CollaborativeFilteringConfig, "reg_for", lambda self, n: 0.07)
    model = CollaborativeFiltering(embedding_size=3, epochs=2).fit(data)
    assert model.reg_ == 0.07
    assert model.history_[-1]["cost"] == pytest.approx(same.history_[-1]["cost"], rel=1e-9)
    assert model.history_[-1]["cost"] != pytest.approx(plain.history_[-1]["cost"], rel=1e-6)
    loaded = load(save(model, tmp_path / "m"))
    assert loaded.reg_ == 0.07
