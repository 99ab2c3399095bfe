"""palate on Apache Spark: prepare data, train ALS and batch-recommend where the data lives.

Install with ``pip install 'palate[spark]'`` (PySpark) and a Java runtime (17 or newer).
Importing :mod:`palate` never imports PySpark; importing ``palate.spark`` checks both and
raises :class:`~palate.errors.MissingDependencyError` naming what to install.

============================  ===============================================================
:func:`spark_session`         a local or cluster SparkSession with quiet logs
:func:`from_spark`            a Spark DataFrame (any column names, int or str ids) ->
                              :class:`SparkInteractions` with palate vocabularies
:func:`split`                 random or per-user splits computed on Spark
:func:`user_features`,        features derived from ratings (counts, means, per-genre means)
:func:`item_features`
:func:`write_prepared`        Parquet that :func:`palate.data.prepared.read_prepared` loads
:class:`SparkCollaborativeFiltering`  explicit ratings with MLlib's ALS, palate's conventions
:class:`SparkImplicitALS`     confidence-weighted ALS for positive-only data with MLlib's ALS
:func:`recommend_all`,        top-k for every user / nearest items for every item, on Spark
:func:`similar_items_all`
:func:`train_two_tower`       :class:`palate.TwoTower` trained by data-parallel PyTorch
                              processes (TorchDistributor) on prepared Parquet
============================  ===============================================================

Examples
--------
>>> from palate import spark as ps                                   # doctest: +SKIP
>>> session = ps.spark_session("local[*]")                          # doctest: +SKIP
>>> data = ps.from_spark(session.read.parquet("events"), user_col="uid",
...                      item_col="sku", value_col="stars")          # doctest: +SKIP
>>> model = ps.SparkCollaborativeFiltering(embedding_size=32).fit(data)   # doctest: +SKIP
>>> palate.save(model.to_local(), "models/cf")                      # doctest: +SKIP
>>> ps.recommend_all(model, k=10).write.parquet("recs")             # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from palate.errors import MissingDependencyError

INSTALL_HINT = "pip install 'palate[spark]'"


def _check_environment() -> None:
    """Raise MissingDependencyError unless PySpark imports and a Java runtime is found."""
    try:
        found = importlib.util.find_spec("pyspark") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MissingDependencyError(
            f"palate.spark needs PySpark: install it with {INSTALL_HINT} "
            "(and a Java 17+ runtime for Spark)"
        )
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return
    if shutil.which("java") is None:
        raise MissingDependencyError(
            "palate.spark needs a Java runtime (17 or newer) for Spark: install one (e.g. "
            "apt-get install openjdk-17-jre-headless) and put `java` on PATH or set JAVA_HOME; "
            f"PySpark itself comes with {INSTALL_HINT}"
        )


_check_environment()

from palate.spark.als import SparkCollaborativeFiltering, SparkImplicitALS  # noqa: E402
from palate.spark.batch import recommend_all, similar_items_all  # noqa: E402
from palate.spark.data import (  # noqa: E402
    SparkInteractions,
    from_spark,
    item_features,
    split,
    user_features,
    write_prepared,
)
from palate.spark.session import spark_session  # noqa: E402
from palate.spark.two_tower import train_two_tower  # noqa: E402

__all__ = [
    "INSTALL_HINT",
    "SparkCollaborativeFiltering",
    "SparkImplicitALS",
    "SparkInteractions",
    "from_spark",
    "item_features",
    "recommend_all",
    "similar_items_all",
    "spark_session",
    "split",
    "train_two_tower",
    "user_features",
    "write_prepared",
]
