"""The curated public API: what ``palate.__all__`` promises exists, is documented, and stays put."""

from __future__ import annotations

import inspect

import palate

EXPECTED = {
    "ArtifactError",
    "BayesianCollaborativeFiltering",
    "CollaborativeFiltering",
    "ConfigError",
    "DataError",
    "DatasetNotFoundError",
    "EASE",
    "FilteredModel",
    "HybridRecommender",
    "ImplicitALS",
    "ItemPolicy",
    "Interactions",
    "ItemFeatures",
    "NotFittedError",
    "PalateError",
    "Popularity",
    "Recommendations",
    "RetrieveThenRank",
    "SimilarItems",
    "TopNBlend",
    "TwoTower",
    "UnknownIdError",
    "UserFeatures",
    "Vocabulary",
    "__version__",
    "datasets",
    "load",
    "load_artifact",
    "save",
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(palate.__all__) == EXPECTED
    assert len(palate.__all__) == len(set(palate.__all__))


def test_every_public_name_exists_and_is_documented() -> None:
    for name in palate.__all__:
        obj = getattr(palate, name)
        if name == "__version__":
            assert isinstance(obj, str) and obj.count(".") == 2
            continue
        assert inspect.getdoc(obj), f"palate.{name} has no docstring"


def test_errors_share_one_base_class() -> None:
    for name in ("ArtifactError", "ConfigError", "DataError", "DatasetNotFoundError",
                 "NotFittedError", "UnknownIdError"):
        assert issubclass(getattr(palate, name), palate.PalateError)


def test_importing_palate_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, palate; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
