"""``palate spark train`` and ``palate spark recommend-all``: the same models, trained and
applied on Apache Spark (``pip install 'palate[spark]'``)."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from palate.cli._session import JsonOption, Session, VerboseOption, session
from palate.cli.train import _check_out, manifest_metrics
from palate.errors import ArtifactError, ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

    from palate.spark import SparkInteractions

app = typer.Typer(
    help="Train and batch-recommend on Apache Spark (needs `pip install 'palate[spark]'` and "
    "Java 17+).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

MasterOption = Annotated[
    str,
    typer.Option(
        "--master",
        help="Spark master: local[*] (every core here), local[2], spark://host:7077, yarn, ...",
    ),
]
DriverMemoryOption = Annotated[
    str | None, typer.Option("--driver-memory", help="Spark driver memory, e.g. 4g.")
]


class SparkModelName(StrEnum):
    cf = "cf"
    ials = "ials"
    two_tower = "two-tower"


def _spark(master: str, driver_memory: str | None) -> Any:
    """Import palate.spark (a clear error when PySpark or Java is missing) and a session."""
    from palate import spark as palate_spark

    return palate_spark, palate_spark.spark_session(master, driver_memory=driver_memory)


def _read_events(
    s: Session, spark: SparkSession, source: str
) -> tuple[SparkInteractions, SparkInteractions | None, pd.DataFrame | None, str, Any]:
    """(train or all events, prepared test split or None, item table or None, name, the
    local dataset or None)."""
    from palate.data.loaders import RATING_FILE_COLUMNS, is_parquet_dir
    from palate.data.prepared import is_prepared
    from palate.spark import data as spark_data

    path = Path(source).expanduser()
    if path.is_dir() and is_prepared(path):
        train = spark_data.read_prepared(spark, str(path), "train")
        test_dir = path / "interactions" / "split=test"
        test = spark_data.read_prepared(spark, str(path), "test") if test_dir.exists() else None
        return train, test, None, path.name, None
    is_parquet = (path.is_file() and path.suffix.lower() in (".parquet", ".pq")) or (
        path.is_dir() and is_parquet_dir(path)
    )
    if is_parquet:
        frame = spark.read.parquet(str(path))
        for user_col, item_col in RATING_FILE_COLUMNS:
            if {user_col, item_col} <= set(frame.columns):
                break
        else:
            raise DataError(
                f"{path} has columns {frame.columns}; a ratings file needs user_id,item_id"
                "[,rating][,timestamp] or userId,movieId,rating,timestamp (rename the columns)"
            )
        value_col = "rating" if "rating" in frame.columns else None
        data = spark_data.from_spark(
            frame,
            user_col=user_col,
            item_col=item_col,
            value_col=value_col,
            timestamp_col="timestamp" if "timestamp" in frame.columns else None,
        )
        return data, None, None, path.stem if path.is_file() else path.name, None
    from palate.cli.data import load_dataset

    dataset = load_dataset(s, source)
    return (
        spark_data.from_local(spark, dataset.ratings), None, dataset.items, dataset.name, dataset
    )


def _positives(data: SparkInteractions, threshold: float) -> SparkInteractions:
    """Explicit ratings as positive events (rating >= threshold), as ``palate train`` does."""
    from pyspark.sql import functions as F

    from palate.spark import SparkInteractions

    if data.kind == "binary":
        return data
    events = data.events.where(F.col("value") >= threshold).withColumn(
        "value", F.lit(1.0).cast("float")
    )
    return SparkInteractions(events, data.user_index, data.item_index, "binary", None,
                             dict(data._cache))


def train(
    data: Annotated[
        str,
        typer.Option(
            "--data",
            metavar="NAME-OR-PATH",
            help="What `palate train --data` takes (ratings file, MovieLens directory or zip, "
            "release name), a Parquet file or directory (read by Spark), or a directory "
            "written by palate.spark.write_prepared.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory to save the palate model in.")],
    model_name: Annotated[
        SparkModelName,
        typer.Option(
            "--model",
            help="cf: explicit ratings (MLlib ALS on mean-normalised ratings, with biases); "
            "ials: implicit ALS (ratings become positives at --threshold); two-tower: "
            "palate's two-tower model trained by --num-processes data-parallel PyTorch "
            "processes (TorchDistributor) on prepared Parquet.",
        ),
    ] = SparkModelName.cf,
    master: MasterOption = "local[*]",
    driver_memory: DriverMemoryOption = None,
    embedding_size: Annotated[
        int, typer.Option(min=1, help="MLlib rank; the two-tower output size.")
    ] = 32,
    reg: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="λ per rating (MLlib regParam; default 0.1). MLlib multiplies it by each "
            "row's number of ratings (ALS-WR). two-tower: Adam's weight decay (default 0).",
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="ALS sweeps (MLlib maxIter, default 15); two-tower epochs (default 30, "
            "with early stopping).",
        ),
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option(min=0.0, help="two-tower: Adam step size (default 1e-3).")
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="two-tower: events per step over all processes (default 1024); each process "
            "takes batch-size / num-processes.",
        ),
    ] = None,
    num_processes: Annotated[
        int, typer.Option(min=1, help="two-tower: data-parallel training processes.")
    ] = 2,
    alpha: Annotated[float, typer.Option(min=0.0, help="Confidence slope α (ials).")] = 10.0,
    threshold: Annotated[
        float, typer.Option(help="With --model ials on ratings: ratings >= this are positives.")
    ] = 4.0,
    seed: Annotated[int, typer.Option(help="Seed of the split and the model.")] = 0,
    validation_fraction: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.99,
            help="Share held out for validation (random events for cf, part of each user's "
            "events for ials); 0 trains on everything. A prepared directory's test split is "
            "used instead when it has one.",
        ),
    ] = 0.1,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a model already at --out.")
    ] = False,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Train on Spark and save a palate model directory that `palate recommend` and
    `palate similar` use as they are."""
    with session(json_output, verbose) as s:
        _check_out(out, overwrite)
        ps, spark = _spark(master, driver_memory)
        from palate import save

        started = time.perf_counter()
        with s.working("reading the data on Spark"):
            events, prepared_test, items, name, dataset = _read_events(s, spark, data)
        if model_name is SparkModelName.two_tower:
            _train_two_tower(
                s, ps, spark, Path(data).expanduser(), events, items, name, dataset, out,
                options={
                    "embedding_size": embedding_size,
                    "reg": reg,
                    "epochs": epochs,
                    "learning_rate": learning_rate,
                    "batch_size": batch_size,
                    "seed": seed,
                },
                num_processes=num_processes,
                validation_fraction=validation_fraction,
                overwrite=overwrite,
            )
            return
        if model_name is SparkModelName.ials:
            events = _positives(events, threshold)
            if prepared_test is not None:
                prepared_test = _positives(prepared_test, threshold)
        elif events.kind != "explicit":
            raise ConfigError("the data holds binary events; use --model ials")
        train_part, validation = events, prepared_test
        if validation is None and validation_fraction > 0:
            method = "random" if model_name is SparkModelName.cf else "user"
            train_part, validation = ps.split(events, method, validation_fraction, seed=seed)
        split: dict[str, Any] = {
            "method": "prepared" if prepared_test is not None else (
                None if validation is None else ("random" if model_name is SparkModelName.cf
                                                 else "user")
            ),
            "validation_fraction": validation_fraction if prepared_test is None else None,
            "seed": seed,
        }
        if model_name is SparkModelName.cf:
            model: Any = ps.SparkCollaborativeFiltering(
                embedding_size=embedding_size,
                reg=0.1 if reg is None else reg,
                epochs=15 if epochs is None else epochs,
                seed=seed,
            )
        else:
            model = ps.SparkImplicitALS(
                embedding_size=embedding_size,
                reg=0.1 if reg is None else reg,
                alpha=alpha,
                epochs=15 if epochs is None else epochs,
                seed=seed,
            )
        s.say(f"Spark  {spark.version} on {spark.sparkContext.master}")
        s.say(f"Model  {model!r}")
        with s.working("training on Spark"):
            model.fit(train_part)
        fit_seconds = time.perf_counter() - started
        report: dict[str, Any] | None = None
        if validation is not None and model_name is SparkModelName.cf:
            with s.working("scoring the validation split on Spark"):
                report = {
                    "model": {
                        "train_rmse": model.rmse(train_part),
                        "validation_rmse": model.rmse(validation),
                    }
                }
        with s.working("collecting the model"):
            local = model.to_local()
        metrics = manifest_metrics(report, split)
        path = save(local, out, overwrite=overwrite, metrics=metrics, item_table=items)
        s.emit(
            {
                "model_dir": str(path),
                "model": model_name.value,
                "master": spark.sparkContext.master,
                "spark_version": spark.version,
                "spark_config": model.get_params(),
                "config": local.get_params(),
                "data": {
                    "name": name,
                    "n_users": len(local.users_),
                    "n_items": len(local.items_),
                },
                "split": split,
                "metrics": report,
                "seconds": round(fit_seconds, 3),
            }
        )
        if report is not None:
            s.say(
                f"RMSE   train {report['model']['train_rmse']:.4f}, validation "
                f"{report['model']['validation_rmse']:.4f}"
            )
        s.say(f"Saved the model to {path} ({fit_seconds:.1f} s on Spark)")


def _train_two_tower(
    s: Session,
    ps: Any,
    spark: SparkSession,
    source: Path,
    events: SparkInteractions,
    items: pd.DataFrame | None,
    name: str,
    dataset: Any,
    out: Path,
    *,
    options: dict[str, Any],
    num_processes: int,
    validation_fraction: float,
    overwrite: bool,
) -> None:
    """``palate spark train --model two-tower``: prepare Parquet unless given, train with
    TorchDistributor, report validation numbers and save."""
    import tempfile

    from pyspark.sql import functions as F

    from palate import save
    from palate.cli._evaluate import ranking_report, rating_report
    from palate.data.prepared import is_prepared, read_prepared

    started = time.perf_counter()
    positive_only = events.kind == "binary" and events.events.where(F.col("value") <= 0).limit(
        1
    ).count() == 0
    objective = (
        "ratings" if events.kind == "explicit" else ("retrieval" if positive_only else "binary")
    )
    chosen = {key: value for key, value in options.items() if value is not None}
    with tempfile.TemporaryDirectory(prefix="palate-prepared-") as scratch:
        if source.is_dir() and is_prepared(source):
            prepared = source
            split: dict[str, Any] = {"method": "prepared", "validation_fraction": None,
                                     "seed": options["seed"]}
        else:
            prepared = Path(scratch) / "prepared"
            train_part, validation = events, None
            if validation_fraction > 0:
                train_part, validation = ps.split(
                    events, "random", validation_fraction, seed=options["seed"]
                )
            with s.working("writing prepared Parquet on Spark"):
                ps.write_prepared(
                    str(prepared), train_part, validation,
                    user_features=ps.user_features(train_part),
                    item_features=ps.item_features(train_part),
                )
            split = {"method": None if validation is None else "random",
                     "validation_fraction": validation_fraction or None,
                     "seed": options["seed"]}
        s.say(f"Spark  {spark.version} on {spark.sparkContext.master}")
        s.say(f"Model  two towers ({objective}), {num_processes} training processes")
        with s.working(f"training with {num_processes} processes (TorchDistributor)"):
            model = ps.train_two_tower(
                spark,
                str(prepared),
                user_features=getattr(dataset, "user_features", None),
                item_features=getattr(dataset, "item_features", None),
                num_processes=num_processes,
                objective=objective,
                **chosen,
            )
        fit_seconds = time.perf_counter() - started
        local = read_prepared(prepared)
        report: dict[str, Any] | None = None
        if local.test is not None and len(local.test):
            with s.working("evaluating"):
                if objective == "ratings":
                    report = rating_report(model, local.train, local.test)
                else:
                    report = ranking_report(model, local.train, local.test, k=10)
    metrics = manifest_metrics(report, split)
    path = save(model, out, overwrite=overwrite, metrics=metrics, item_table=items)
    s.emit(
        {
            "model_dir": str(path),
            "model": SparkModelName.two_tower.value,
            "master": spark.sparkContext.master,
            "spark_version": spark.version,
            "config": model.get_params(),
            "training_processes": model.training_processes_,
            "data": {"name": name, "n_users": len(model.users_), "n_items": len(model.items_)},
            "split": split,
            "metrics": report,
            "history": model.history_,
            "seconds": round(fit_seconds, 3),
        }
    )
    if report is not None and objective == "ratings":
        s.say(
            f"RMSE   train {report['model']['train_rmse']:.4f}, validation "
            f"{report['model']['validation_rmse']:.4f}"
        )
    s.say(f"Saved the model to {path} ({fit_seconds:.1f} s)")


def recommend_all(
    model_dir: Annotated[
        Path, typer.Argument(metavar="DIR", help="A model directory (palate train or spark train).")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Directory to write Parquet into: OUT/recommendations (user_id, rank, "
            "item_id, score) and, with --similar-k, OUT/similar_items.",
        ),
    ],
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Items per user.")] = 10,
    similar_k: Annotated[
        int, typer.Option("--similar-k", min=0, help="Also the nearest items of every item.")
    ] = 0,
    include_seen: Annotated[
        bool, typer.Option("--include-seen", help="Keep items the user has in the training data.")
    ] = False,
    master: MasterOption = "local[*]",
    driver_memory: DriverMemoryOption = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace Parquet output already at --out.")
    ] = False,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Top-k items for every user (and similar items for every item) computed on Spark."""
    with session(json_output, verbose) as s:
        from palate import CollaborativeFiltering, ImplicitALS, load

        model = load(model_dir)
        if not isinstance(model, (CollaborativeFiltering, ImplicitALS)):
            raise ConfigError(
                f"{model_dir} holds a {type(model).__name__}; recommend-all takes a "
                "collaborative-filtering or implicit ALS model"
            )
        targets = {"recommendations": out / "recommendations"}
        if similar_k:
            targets["similar_items"] = out / "similar_items"
        for target in targets.values():
            if target.exists() and not overwrite:
                raise ArtifactError(f"{target} already exists; pass --overwrite or another --out")
        ps, spark = _spark(master, driver_memory)
        mode = "overwrite" if overwrite else "errorifexists"
        started = time.perf_counter()
        counts: dict[str, int] = {}
        with s.working("recommending on Spark"):
            recs = ps.recommend_all(model, k=k, exclude_seen=not include_seen, spark=spark)
            recs.write.mode(mode).parquet(str(targets["recommendations"]))
            counts["recommendations"] = spark.read.parquet(
                str(targets["recommendations"])
            ).count()
            if similar_k:
                similar = ps.similar_items_all(model, k=similar_k, spark=spark)
                similar.write.mode(mode).parquet(str(targets["similar_items"]))
                counts["similar_items"] = spark.read.parquet(str(targets["similar_items"])).count()
        seconds = time.perf_counter() - started
        s.emit(
            {
                "model_dir": str(model_dir),
                "out": {name: str(path) for name, path in targets.items()},
                "rows": counts,
                "k": k,
                "similar_k": similar_k,
                "include_seen": include_seen,
                "master": spark.sparkContext.master,
                "seconds": round(seconds, 3),
            }
        )
        for name, path in targets.items():
            s.say(f"Wrote {counts[name]:,} rows to {path}")


app.command("train")(train)
app.command("recommend-all")(recommend_all)
