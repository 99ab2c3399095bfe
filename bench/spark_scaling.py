"""Spark ALS (MLlib, local mode) beside palate's local ALS on the same synthetic ratings.

For each size n, ``palate.data.synthetic.synthetic_ratings(n / 100 users, n / 500 items, n)``
(as ``scaling_als.py``) is drawn once and written to Parquet. Then, in the same run:

- palate: ``CollaborativeFiltering(solver="als", embedding_size=D, epochs=E)``; seconds per
  sweep = the median gap between consecutive epoch callbacks.
- Spark: the Parquet read by Spark, ``palate.spark.from_spark`` (vocabularies, validation),
  then ``SparkCollaborativeFiltering(embedding_size=D, epochs=E)`` and the same with
  ``epochs=1``; seconds per MLlib iteration = ``(T_E − T_1) / (E − 1)``, which removes the
  fixed cost (means, biases, caching) from the per-iteration figure. A fit on 100k ratings
  runs first, so the JVM's code compilation is not counted.

Usage::

    python spark_scaling.py [--sizes 1m,10m] [--epochs 6] [--master local[*]] [--driver-memory 8g]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    RESULTS_DIR,
    command_line,
    git_commit,
    library_versions,
    machine_note,
    now_iso,
    parse_list,
    print_table,
    write_json,
)

EMBEDDING_SIZE = 32
EPOCHS = 6
SEED = 0
SIZES = {"1m": 1_000_000, "10m": 10_000_000, "50m": 50_000_000}


def local_als(data: Any, epochs: int) -> dict[str, float]:
    from palate import CollaborativeFiltering

    stamps: list[float] = []
    model = CollaborativeFiltering(
        solver="als", embedding_size=EMBEDDING_SIZE, epochs=epochs, seed=SEED
    )
    start = time.perf_counter()
    model.fit(data, callback=lambda epoch, metrics: stamps.append(time.perf_counter()))
    total = time.perf_counter() - start
    gaps = np.diff([start, *stamps])
    return {"fit_seconds": total, "seconds_per_sweep": float(np.median(gaps[1:])),
            "sweep_seconds": [float(g) for g in gaps]}


def warm_up(spark: Any, workdir: Path) -> float:
    """One untimed-as-result MLlib fit on 100k ratings: the JVM compiles ALS's code paths."""
    from palate import spark as ps
    from palate.data.synthetic import synthetic_ratings

    parquet = workdir / "warm-up.parquet"
    frame = synthetic_ratings(1_000, 200, 100_000, seed=SEED).ratings.to_pandas()
    frame.rename(columns={"value": "rating"}).drop(
        columns=["timestamp"], errors="ignore").to_parquet(parquet)
    start = time.perf_counter()
    data = ps.from_spark(spark.read.parquet(str(parquet)), rating_scale=(1.0, 5.0))
    model = ps.SparkCollaborativeFiltering(embedding_size=EMBEDDING_SIZE, epochs=2, seed=SEED)
    model.fit(data)
    model.item_factors_.count()  # type: ignore[union-attr]
    return time.perf_counter() - start


def spark_als(spark: Any, parquet: Path, epochs: int) -> dict[str, float]:
    from palate import spark as ps

    start = time.perf_counter()
    data = ps.from_spark(spark.read.parquet(str(parquet)), rating_scale=(1.0, 5.0))
    data.events.persist().count()
    prepare = time.perf_counter() - start
    fits = {}
    for n_epochs in (1, epochs):
        model = ps.SparkCollaborativeFiltering(
            embedding_size=EMBEDDING_SIZE, epochs=n_epochs, seed=SEED
        )
        start = time.perf_counter()
        model.fit(data)
        model.item_factors_.count()  # type: ignore[union-attr]
        model.user_factors_.count()  # type: ignore[union-attr]
        fits[n_epochs] = time.perf_counter() - start
        model.item_factors_.unpersist()  # type: ignore[union-attr]
        model.user_factors_.unpersist()  # type: ignore[union-attr]
    data.events.unpersist()
    per_iteration = (fits[epochs] - fits[1]) / (epochs - 1)
    return {"prepare_seconds": prepare, "fit_seconds": fits[epochs], "fit_1_epoch_seconds":
            fits[1], "seconds_per_iteration": per_iteration}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1m,10m")
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--epochs", type=int, default=EPOCHS,
                        help="iterations of the timed fits (at least 2; 3 keeps 50M near 20 min)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "spark_scaling.json")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: seconds per iteration is (T_E - T_1) / (E - 1)")
    from palate import spark as ps
    from palate.data.synthetic import synthetic_ratings

    spark = ps.spark_session(
        args.master, driver_memory=args.driver_memory, shuffle_partitions=8,
        conf={"spark.ui.enabled": "false"},
    )
    rows, records = [], []
    workdir = Path(tempfile.mkdtemp(prefix="palate-spark-bench-"))
    try:
        # the first fit in a JVM also compiles ALS's code paths: done once, on small data
        warm_up_seconds = warm_up(spark, workdir)
        for label in parse_list(args.sizes) or []:
            n = SIZES[label]
            data = synthetic_ratings(n // 100, n // 500, n, seed=SEED).ratings
            parquet = workdir / f"{label}.parquet"
            frame = data.to_pandas().rename(columns={"value": "rating"})
            frame.drop(columns=["timestamp"], errors="ignore").to_parquet(parquet)
            del frame
            local = local_als(data, args.epochs)
            del data
            on_spark = spark_als(spark, parquet, args.epochs)
            fit_ratio = on_spark["fit_seconds"] / local["fit_seconds"]
            records.append({"size": label, "n_ratings": n, "n_users": n // 100,
                            "n_items": n // 500, "palate": local, "spark": on_spark,
                            "spark_fit_over_palate_fit": fit_ratio})
            per_iteration = on_spark["seconds_per_iteration"]
            rows.append([label, f"{local['seconds_per_sweep']:.3f}",
                         f"{local['fit_seconds']:.1f}", f"{on_spark['prepare_seconds']:.1f}",
                         f"{on_spark['fit_1_epoch_seconds']:.1f}",
                         f"{on_spark['fit_seconds']:.1f}",
                         f"{per_iteration:.2f}" if per_iteration > 0 else "below noise",
                         f"{fit_ratio:.1f}x"])
            print(records[-1], flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(
        f"ALS on {args.master}, rank {EMBEDDING_SIZE}",
        ["size", "palate s/sweep", f"palate fit s ({args.epochs})", "Spark prepare s",
         "Spark fit s (1 it.)", f"Spark fit s ({args.epochs} it.)", "Spark s/iteration",
         "Spark fit / palate fit"],
        rows,
    )
    write_json(args.out, {
        "benchmark": "spark_scaling", "command": command_line(), "date": now_iso(),
        "git_commit": git_commit(), "machine": machine_note(), "versions": {
            **library_versions(), "pyspark": spark.version},
        "master": spark.sparkContext.master, "driver_memory": args.driver_memory,
        "embedding_size": EMBEDDING_SIZE, "epochs": args.epochs,
        "warm_up_fit_seconds": warm_up_seconds, "results": records,
    })
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
