"""The architecture, checked: the import-linter contracts of pyproject.toml hold (layers point
one way, no circles, private modules stay home), no module imports another package's private
name, and nothing outside ``palate.models`` reads a private attribute of a model — the service,
the ranking pipeline, model files, evaluation and the command line use the public contract of
:class:`palate.models.base.Model` and its declared capabilities."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import palate
from palate import (
    EASE,
    CollaborativeFiltering,
    ImplicitALS,
    Interactions,
    Popularity,
    RetrieveThenRank,
    TwoTower,
)
from palate.models.base import Model
from palate.retrieval.sources import Popular, SimilarToRecent

SRC = Path(__file__).resolve().parents[1] / "src" / "palate"


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    if not lint_imports.exists():
        pytest.fail("import-linter is not installed: pip install -e '.[dev]'")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=SRC.parents[1], capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout.split("Contracts:")[-1], result.stdout


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_module_imports_a_private_name_of_another_package() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = "palate." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if not node.module.startswith("palate") or (
                    _package(node.module) == _package(module)
                ):
                    continue
                for alias in node.names:
                    private_module = any(
                        part.startswith("_") and not part.startswith("__")
                        for part in node.module.split(".")
                    )
                    if private_module or (
                        alias.name.startswith("_") and not alias.name.startswith("__")
                    ):
                        found.append(f"{module}: from {node.module} import {alias.name}")
    assert found == []


def _owner_modules(model: Model) -> set[str]:
    """Modules allowed to read the model's private attributes: palate.models and the
    modules that define the model's own classes."""
    return {klass.__module__ for klass in type(model).__mro__}


@pytest.fixture
def private_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records every read of a model's private attribute made from outside palate.models."""
    seen: list[str] = []
    original = object.__getattribute__

    def getattribute(self: Model, name: str) -> Any:
        if name.startswith("_") and not name.startswith("__"):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if (
                caller.startswith("palate.")
                and not caller.startswith("palate.models")
                and caller not in _owner_modules(self)
            ):
                seen.append(f"{caller} read {type(self).__name__}.{name}")
        return original(self, name)

    monkeypatch.setattr(Model, "__getattribute__", getattribute)
    yield seen


def _models(data: Interactions) -> list[Model]:
    tower = {"hidden_sizes": (8,), "embedding_size": 4, "epochs": 2, "batch_size": 4,
             "early_stopping": None, "validation_fraction": 0.0}
    return [
        CollaborativeFiltering(embedding_size=3, epochs=3).fit(data),
        ImplicitALS(embedding_size=3, epochs=2).fit(data),
        EASE(reg=1.0).fit(data),
        Popularity().fit(data),
        TwoTower(**tower).fit(data),
    ]


def test_nothing_outside_models_reads_a_private_attribute_of_a_model(
    tiny_explicit: Interactions, private_reads: list[str], tmp_path: Path
) -> None:
    from palate.ranking.scorer import VectorScorer
    from palate.service.engine import ServedModel

    data = tiny_explicit
    users, items = data.users.ids, data.items.ids
    for n, model in enumerate(_models(data)):
        path = palate.save(model, tmp_path / f"model-{n}")
        loaded = palate.load(path)
        loaded.recommend(users, k=3)
        loaded.predict(users[:2], items[:2])
        served = ServedModel.load(path)
        served.describe()
        served.recommend([users[0], "stranger"], 3, True, {}, explain=True)
        served.scores([(users[0], items[0])], {})
        if served.can_find_similar:
            served.similar([items[0]], 3)
        if served.can_fold_in:
            live = {users[0]: (1, {items[0]: 4.0})}
            served.recommend([users[0]], 3, True, live, explain=True)
            served.scores([(users[0], items[1])], live)
        if model.has_linear_scores:
            VectorScorer.from_model(model)
    pipeline = RetrieveThenRank(
        CollaborativeFiltering(embedding_size=3, epochs=3),
        [SimilarToRecent(), Popular(top=5)],
    ).fit(data)
    pipeline.recommend(users, k=3)
    pipeline.explain(users[0], k=3)
    palate.load(palate.save(pipeline, tmp_path / "pipeline")).recommend(users[:1], k=3)
    assert private_reads == [], "\n".join(sorted(set(private_reads)))


def test_the_check_itself_catches_a_private_read(
    tiny_explicit: Interactions, private_reads: list[str]
) -> None:
    model = Popularity().fit(tiny_explicit)
    # a read made from a module outside palate.models is recorded
    namespace = {"__name__": "palate.service.example", "model": model}
    exec("model._check_fitted", namespace)  # noqa: S102 - the check must see another module
    assert private_reads == ["palate.service.example read Popularity._check_fitted"]
    # and a read from palate.models is not
    namespace["__name__"] = "palate.models.example"
    exec("model._check_fitted", namespace)  # noqa: S102
    assert len(private_reads) == 1
