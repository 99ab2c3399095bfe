"""``palate train --textbook``: collaborative filtering with the curriculum's cost J exactly
(mean-normalised; no item bias, plain λ, plain means, no bias penalty), and the switches it
stands for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner, Result

from palate import CollaborativeFiltering, Interactions, load
from palate.cli import app
from palate.persist import read_manifest

FAST = ["--epochs", "4", "--embedding-size", "3", "--validation-fraction", "0"]
TEXTBOOK = {"item_bias": False, "reg_scaling": "none", "mean_shrinkage": 0.0, "bias_reg": 0.0}


def invoke(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_textbook_trains_the_curriculums_model(ratings_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "textbook"
    result = invoke("train", "--data", ratings_csv, "--out", out, "--textbook", *FAST, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["model"] == "cf"
    manifest = read_manifest(out)
    assert manifest["model_kind"] == "collaborative"
    assert {key: manifest["config"][key] for key in TEXTBOOK} == TEXTBOOK
    # the same model as the Python API's textbook configuration
    events = Interactions.from_csv(ratings_csv)
    expected = CollaborativeFiltering(embedding_size=3, epochs=4, seed=0, **TEXTBOOK).fit(events)
    saved = load(out)
    users, items = events.user_ids[:50], events.item_ids[:50]
    np.testing.assert_allclose(
        saved.predict(users, items), expected.predict(users, items), rtol=1e-5, atol=1e-5
    )


def test_the_switches_one_by_one(ratings_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "switches"
    result = invoke(
        "train", "--data", ratings_csv, "--out", out, "--model", "cf", *FAST,
        "--no-item-bias", "--reg-scaling", "none", "--mean-shrinkage", "0", "--bias-reg", "0",
    )
    assert result.exit_code == 0, result.output
    assert {key: read_manifest(out)["config"][key] for key in TEXTBOOK} == TEXTBOOK


def test_textbook_refuses_what_contradicts_it(ratings_csv: Path, tmp_path: Path) -> None:
    result = invoke("train", "--data", ratings_csv, "--out", tmp_path / "a", "--textbook",
                    "--item-bias")
    assert result.exit_code == 1
    assert "--textbook sets --item-bias False" in result.stderr
    result = invoke("train", "--data", ratings_csv, "--out", tmp_path / "b", "--textbook",
                    "--model", "ials")
    assert result.exit_code == 1
    assert "--textbook does not apply to --model ials; it applies to --model cf" in result.stderr
    result = invoke("train", "--data", ratings_csv, "--out", tmp_path / "c", "--model", "ease",
                    "--no-item-bias")
    assert result.exit_code == 1
    assert "--item-bias does not apply to --model ease" in result.stderr
