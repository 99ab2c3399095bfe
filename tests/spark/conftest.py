"""One local Spark session for every test in this directory (marked ``spark``).

Without PySpark or Java the tests are skipped with the reason, for convenience on a
developer machine; with ``PALATE_REQUIRE_SPARK=1`` (set by CI) a missing Spark is an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent



def pytest_configure(config: pytest.Config) -> None:
    # PySpark 4 warns on every pandas conversion that it does not fully support pandas 3
    config.addinivalue_line("filterwarnings", "ignore:PySpark does not yet fully support pandas")
    config.addinivalue_line("filterwarnings", "ignore:The copy keyword is deprecated")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.spark)


def _palate_spark() -> Any:
    from palate.errors import MissingDependencyError

    try:
        from palate import spark as palate_spark
    except MissingDependencyError as exc:
        if os.environ.get("PALATE_REQUIRE_SPARK") == "1":
            pytest.fail(f"Spark is required here (PALATE_REQUIRE_SPARK=1): {exc}")
        pytest.skip(str(exc))
    return palate_spark


@pytest.fixture(scope="session")
def ps() -> Any:
    """The ``palate.spark`` module (skips or fails as described above)."""
    return _palate_spark()


@pytest.fixture(scope="session")
def spark(ps: Any) -> Iterator[Any]:
    """A local[2] SparkSession: UI off, small driver memory, 4 shuffle partitions, quiet."""
    session = ps.spark_session(
        "local[2]",
        app_name="palate-tests",
        driver_memory="1g",
        shuffle_partitions=4,
        conf={
            "spark.ui.enabled": "false",
            "spark.default.parallelism": "2",
            "spark.sql.adaptive.enabled": "false",
        },
        log_level="ERROR",
    )
    yield session
    session.stop()
