"""A SparkSession configured for palate: quiet logs, Arrow transfers, sensible local defaults."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

DEFAULT_MASTER = "local[*]"


def spark_session(
    master: str | None = DEFAULT_MASTER,
    *,
    app_name: str = "palate",
    driver_memory: str | None = None,
    shuffle_partitions: int | None = None,
    conf: Mapping[str, Any] | None = None,
    log_level: str = "ERROR",
) -> SparkSession:
    """Get (or create) a SparkSession.

    Parameters
    ----------
    master : str or None
        ``local[*]`` (every core of this machine), ``local[2]``, ``spark://host:7077``,
        ``yarn``, ... ``None`` leaves it to ``spark-submit``.
    driver_memory : str, optional
        e.g. ``"4g"``; only takes effect when this call starts the JVM.
    shuffle_partitions : int, optional
        ``spark.sql.shuffle.partitions`` (Spark's default 200 is far too many for one machine).
    conf : mapping, optional
        Any other Spark settings.

    Notes
    -----
    Batch recommendation runs NumPy code in Spark's Python workers: on a cluster, palate and
    its dependencies must be installed on the executors (or shipped with
    ``spark.archives``), and ``PYSPARK_PYTHON`` must point at that interpreter. Local
    sessions use the current interpreter.
    log_level : str
        Log level of Spark's own (JVM) logs.

    Returns
    -------
    SparkSession
        An existing active session is reused (its settings are not changed, except the
        runtime SQL settings given here).
    """
    if master is not None and master.startswith("local"):
        # Python workers of a local session run this interpreter (with palate and its
        # dependencies), not whatever `python3` is first on PATH
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    settings: dict[str, Any] = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
    }
    if driver_memory is not None:
        settings["spark.driver.memory"] = driver_memory
    if shuffle_partitions is not None:
        settings["spark.sql.shuffle.partitions"] = str(shuffle_partitions)
    settings.update({key: str(value) for key, value in (conf or {}).items()})
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(log_level)
    if shuffle_partitions is not None:
        session.conf.set("spark.sql.shuffle.partitions", str(shuffle_partitions))
    logger.info("Spark %s session on %s", session.version, session.sparkContext.master)
    return session


__all__ = ["DEFAULT_MASTER", "spark_session"]
