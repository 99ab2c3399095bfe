"""Every ``--model`` of ``palate train``, ``tune`` and ``evaluate`` builds the model its name
says (names and aliases from :mod:`palate.models.registry`), on the small ratings file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from palate import (
    EASE,
    BayesianCollaborativeFiltering,
    CollaborativeFiltering,
    ImplicitALS,
    Popularity,
    TopNBlend,
    TwoTower,
)
from palate.cli import app
from palate.models.base import Model
from palate.persist import load, read_manifest

CLASSES: dict[str, type[Model]] = {
    "cf": CollaborativeFiltering,
    "bayes": BayesianCollaborativeFiltering,
    "ials": ImplicitALS,
    "ease": EASE,
    "blend": TopNBlend,
    "two-tower": TwoTower,
    "popularity": Popularity,
}
ALIASES = {"collaborative": "cf", "bayesian": "bayes", "implicit_als": "ials",
           "two_tower": "two-tower"}
#: Small settings so that each run takes a fraction of a second.
FAST = {
    "cf": ["--epochs", "2", "--embedding-size", "2"],
    "bayes": ["--epochs", "1", "--embedding-size", "2"],
    "ials": ["--epochs", "2", "--embedding-size", "2"],
    "ease": [],
    "blend": ["--epochs", "2", "--embedding-size", "2"],
    "two-tower": ["--epochs", "1", "--embedding-size", "4", "--batch-size", "256"],
    "popularity": [],
}
#: A grid each model can search, and a setting held fixed to keep trials short.
GRIDS = {
    "cf": ["--grid", "reg=0.05,0.5", "--set", "epochs=2"],
    "bayes": ["--grid", "embedding_size=2,3", "--set", "epochs=1"],
    "ials": ["--grid", "reg=1,10", "--set", "epochs=2"],
    "ease": ["--grid", "reg=10,100"],
    "blend": ["--grid", "factor_weight=0.2,0.6"],
    "two-tower": ["--grid", "learning_rate=0.001,0.01", "--set", "epochs=1"],
    "popularity": ["--grid", "prior=1,10"],
}
#: What the data becomes for each model: engagement events for ials, ease and blend.
KINDS = {"cf": "explicit", "bayes": "explicit", "ials": "binary", "ease": "binary",
         "blend": "binary", "two-tower": "explicit", "popularity": "explicit"}


def invoke(args: list[object]) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def canonical(name: str) -> str:
    return ALIASES.get(name, name)


@pytest.mark.parametrize("name", [*CLASSES, *ALIASES])
def test_train_saves_the_model_named(name: str, ratings_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = invoke(["train", "--data", ratings_csv, "--model", name, *FAST[canonical(name)],
                     "--out", out, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["model"] == canonical(name)
    assert document["kind"] == KINDS[canonical(name)]
    model = load(out)
    assert type(model) is CLASSES[canonical(name)]
    assert read_manifest(out)["model_kind"] == model.model_kind
    assert document["metrics"] is not None


@pytest.mark.parametrize("name", [*CLASSES, *ALIASES])
def test_tune_searches_the_model_named(name: str, ratings_csv: Path) -> None:
    model = canonical(name)
    result = invoke(["tune", "--data", ratings_csv, "--model", name, *GRIDS[model],
                     "--test-fraction", "0.2", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["model"] == CLASSES[model].__name__
    assert document["kind"] == KINDS[model]
    assert len(document["trials"]) == 2
    assert document["metric"] == ("rmse" if KINDS[model] == "explicit" else "ndcg@10")
    assert document["test"]["n_events"] > 0


def test_tune_fits_each_model_to_the_data(ratings_csv: Path) -> None:
    fixed = {}
    for name, kind in (("two-tower", "explicit"), ("two-tower", "binary"), ("cf", "binary"),
                       ("popularity", "binary")):
        result = invoke(["tune", "--data", ratings_csv, "--model", name, "--kind", kind,
                         *GRIDS[name], "--json"])
        assert result.exit_code == 0, result.output
        fixed[name, kind] = json.loads(result.stdout)["fixed"]
    # binary ratings at the threshold are all positives: the retrieval objective
    assert fixed["two-tower", "explicit"] == {"objective": "ratings", "epochs": 1}
    assert fixed["two-tower", "binary"] == {"objective": "retrieval", "epochs": 1}
    assert fixed["cf", "binary"] == {"kind": "binary", "epochs": 2}
    assert fixed["popularity", "binary"] == {"by": "count"}


@pytest.mark.parametrize("name", [*CLASSES, "two_tower"])
def test_evaluate_cross_validates_the_model_named(name: str, ratings_csv: Path) -> None:
    result = invoke(["evaluate", "--data", ratings_csv, "--model", name, "--folds", "2",
                     "-k", "5", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["model"] == canonical(name)
    assert document["kind"] == KINDS[canonical(name)]
    assert "ndcg@5" in document["metrics"]
    assert ("rmse" in document["metrics"]) == (KINDS[canonical(name)] == "explicit")


@pytest.mark.parametrize("command", ["train", "tune", "evaluate"])
def test_an_unknown_model_is_a_usage_error_listing_the_models(
    command: str, ratings_csv: Path, tmp_path: Path
) -> None:
    out = ["--out", tmp_path / "m"] if command == "train" else []
    result = invoke([command, "--data", ratings_csv, "--model", "deep", *out])
    assert result.exit_code == 2
    models = "cf, bayes, ials, ease, blend, two-tower, hybrid, popularity"
    assert f"'deep' is not a model; choose from {models}" in (
        " ".join(result.output.replace("│", " ").split())
    )


@pytest.mark.parametrize(
    ("name", "args", "fragment"),
    [
        ("ease", ["--epochs", "3"], "--epochs does not apply to --model ease (it takes --reg)"),
        ("ials", ["--learning-rate", "0.1"],
         "--learning-rate does not apply to --model ials"),
        ("popularity", ["--embedding-size", "4"],
         "--embedding-size does not apply to --model popularity"),
        ("cf", ["--compile"], "--compile applies to --model two-tower only"),
    ],
)
def test_train_refuses_an_option_the_model_does_not_take(
    name: str, args: list[str], fragment: str, ratings_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "model"
    result = invoke(["train", "--data", ratings_csv, "--model", name, *args, "--out", out])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
    assert not out.exists()
