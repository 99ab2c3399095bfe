"""Interactions on Spark: vocabularies, validation, splits, derived features and Parquet.

A :class:`SparkInteractions` is the Spark counterpart of :class:`palate.Interactions`: the
events as a DataFrame of internal indices ``(user_idx, item_idx, value[, timestamp])`` plus
two index tables ``(idx, id)`` that are palate :class:`~palate.Vocabulary` objects once
collected. Ids are numbered in sorted order (integers numerically, strings by their UTF-8
bytes), computed without collecting anything to the driver, so the same data always gets the
same vocabularies and a model trained on Spark and its local copy agree index for index.

:func:`write_prepared` writes everything as Parquet in the layout that
:func:`palate.data.prepared.read_prepared` reads without Spark::

    DIR/prepared.json                 kind, rating scale, sizes, splits, feature columns
    DIR/users/, DIR/items/            idx (int32), id (int64 or string), one row per index
    DIR/interactions/split=train/     user_idx, item_idx (int32), value (float32)[, timestamp]
    DIR/interactions/split=test/
    DIR/user_features/, DIR/item_features/   user_idx / item_idx, then float feature columns

The index-encoded interactions are what a data-parallel trainer reads shard by shard.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from palate.data.interactions import Interactions
from palate.data.prepared import FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE
from palate.data.vocabulary import Vocabulary
from palate.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

Kind = Literal["explicit", "binary"]
_INTEGER_TYPES = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_MAX_INDEX = 2**31 - 1  # MLlib's ALS takes int ids


@dataclass(eq=False)
class SparkInteractions:
    """Events on Spark with palate vocabularies.

    Attributes
    ----------
    events : DataFrame
        Columns ``user_idx`` (int), ``item_idx`` (int), ``value`` (float)[, ``timestamp``
        (long)]; indices point into ``user_index`` / ``item_index``.
    user_index, item_index : DataFrame
        Columns ``idx`` (int) and ``id`` (long or string), one row per index 0 .. n-1.
    kind : {"explicit", "binary"}
    rating_scale : (low, high) or None
    """

    events: DataFrame
    user_index: DataFrame
    item_index: DataFrame
    kind: Kind = "explicit"
    rating_scale: tuple[float, float] | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def spark(self) -> SparkSession:
        return self.events.sparkSession

    @property
    def users(self) -> Vocabulary:
        """The user vocabulary, collected to the driver once (index order)."""
        if "users" not in self._cache:
            self._cache["users"] = collect_vocabulary(self.user_index)
        return self._cache["users"]

    @property
    def items(self) -> Vocabulary:
        """The item vocabulary, collected to the driver once (index order)."""
        if "items" not in self._cache:
            self._cache["items"] = collect_vocabulary(self.item_index)
        return self._cache["items"]

    @property
    def n_users(self) -> int:
        if "n_users" not in self._cache:
            self._cache["n_users"] = self.user_index.count()
        return int(self._cache["n_users"])

    @property
    def n_items(self) -> int:
        if "n_items" not in self._cache:
            self._cache["n_items"] = self.item_index.count()
        return int(self._cache["n_items"])

    @property
    def has_timestamps(self) -> bool:
        return "timestamp" in self.events.columns

    def count(self) -> int:
        """Number of events."""
        return int(self.events.count())

    def with_events(self, events: DataFrame) -> SparkInteractions:
        """The same vocabularies and kind over other events (e.g. one side of a split)."""
        shared = {k: v for k, v in self._cache.items() if k in ("users", "items", "n_users",
                                                                 "n_items")}
        return SparkInteractions(
            events, self.user_index, self.item_index, self.kind, self.rating_scale, dict(shared)
        )

    def with_ids(self) -> DataFrame:
        """The events with external ids: ``user_id, item_id, value[, timestamp]``."""
        users = self.user_index.select(F.col("idx").alias("user_idx"), F.col("id").alias("user_id"))
        items = self.item_index.select(F.col("idx").alias("item_idx"), F.col("id").alias("item_id"))
        frame = self.events.join(users, "user_idx").join(items, "item_idx")
        extra = ["timestamp"] if self.has_timestamps else []
        return frame.select("user_id", "item_id", "value", *extra)

    def to_local(self) -> Interactions:
        """Collect to a :class:`palate.Interactions` with the same vocabularies."""
        columns = ["user_idx", "item_idx", "value"] + (["timestamp"] if self.has_timestamps else [])
        frame = to_pandas(self.events.select(*columns))
        return Interactions(
            self.users,
            self.items,
            frame["user_idx"].to_numpy(np.int32),
            frame["item_idx"].to_numpy(np.int32),
            frame["value"].to_numpy(np.float32),
            frame["timestamp"].to_numpy(np.int64) if self.has_timestamps else None,
            kind=self.kind,
            rating_scale=self.rating_scale,
        )

    def __repr__(self) -> str:
        return f"SparkInteractions(kind={self.kind!r}, scale={self.rating_scale})"


def to_pandas(frame: DataFrame) -> pd.DataFrame:
    """``frame.toPandas()`` (collects to the driver), typed as a pandas DataFrame."""
    return cast(pd.DataFrame, frame.toPandas())


# ----------------------------------------------------------------------------- building
def from_spark(
    frame: DataFrame,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    value_col: str | None = "rating",
    timestamp_col: str | None = None,
    kind: Kind | None = None,
    rating_scale: tuple[float, float] | None = None,
    duplicates: Literal["error", "last", "first", "mean"] = "error",
) -> SparkInteractions:
    """Build :class:`SparkInteractions` from a Spark DataFrame of events.

    Parameters
    ----------
    frame : DataFrame
        One row per event, any column names.
    user_col, item_col : str
        Id columns: integers or strings.
    value_col : str or None
        Rating (explicit) or 0/1 label (binary); ``None``: every row is a positive event
        (binary, value 1).
    timestamp_col : str, optional
        Integer seconds (or a timestamp column).
    kind : {"explicit", "binary"}, optional
        Default: explicit with a value column, binary without.
    rating_scale : (low, high), optional
        Declared scale; values outside it are an error.
    duplicates : {"error", "last", "first", "mean"}
        Repeated (user, item) pairs: an error, or keep the latest / earliest event by
        timestamp (needs ``timestamp_col``), or average their values.

    Returns
    -------
    SparkInteractions
        Vocabularies number the ids in sorted order.

    Raises
    ------
    DataError
        Missing columns, null ids, NaN or null values, values outside the scale, non-0/1
        binary labels, or duplicates with ``duplicates="error"``.
    """
    if not isinstance(frame, DataFrame):
        raise DataError(f"from_spark expects a Spark DataFrame, got {type(frame).__name__}")
    needed = [c for c in (user_col, item_col, value_col, timestamp_col) if c is not None]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing column(s) {missing}; the frame has {frame.columns}. Name the columns with "
            "user_col=, item_col=, value_col=, timestamp_col="
        )
    if kind is None:
        kind = "explicit" if value_col is not None else "binary"
    if kind not in ("explicit", "binary"):
        raise ConfigError(f"kind must be 'explicit' or 'binary', got {kind!r}")
    if duplicates not in ("error", "last", "first", "mean"):
        raise ConfigError(
            f"duplicates must be 'error', 'last', 'first' or 'mean', got {duplicates!r}"
        )
    columns = [_id_column(frame, user_col, "user_id"), _id_column(frame, item_col, "item_id")]
    value = F.lit(1.0) if value_col is None else F.col(value_col).cast("double")
    columns.append(value.alias("value"))
    if timestamp_col is not None:
        ts_type = frame.schema[timestamp_col].dataType
        ts = F.col(timestamp_col)
        ts = F.unix_timestamp(ts) if isinstance(ts_type, T.TimestampType) else ts.cast("long")
        columns.append(ts.alias("timestamp"))
    events = frame.select(*columns)
    _validate(events, kind, rating_scale, value_col, timestamp_col)
    events = _resolve_duplicates(events, duplicates, timestamp_col is not None)
    user_index = index_ids(events.select(F.col("user_id").alias("id")))
    item_index = index_ids(events.select(F.col("item_id").alias("id")))
    users = user_index.select(F.col("idx").alias("user_idx"), F.col("id").alias("user_id"))
    items = item_index.select(F.col("idx").alias("item_idx"), F.col("id").alias("item_id"))
    encoded = events.join(users, "user_id").join(items, "item_id")
    extra = ["timestamp"] if timestamp_col is not None else []
    encoded = encoded.select(
        "user_idx", "item_idx", F.col("value").cast("float").alias("value"), *extra
    )
    return SparkInteractions(encoded, user_index, item_index, kind, rating_scale)


def _id_column(frame: DataFrame, name: str, alias: str) -> Column:
    data_type = frame.schema[name].dataType
    if isinstance(data_type, _INTEGER_TYPES):
        return F.col(name).cast("long").alias(alias)
    if isinstance(data_type, T.StringType):
        return F.col(name).alias(alias)
    raise DataError(
        f"id column {name!r} has type {data_type.simpleString()}; ids must be integers or "
        f"strings (cast it, e.g. frame.withColumn({name!r}, F.col({name!r}).cast('long')))"
    )


def _validate(
    events: DataFrame,
    kind: str,
    scale: tuple[float, float] | None,
    value_col: str | None,
    timestamp_col: str | None,
) -> None:
    """One pass over the data: null ids, NaN or null values, range, labels."""
    value = F.col("value")
    checks = [
        F.count(F.lit(1)).alias("n"),
        F.sum(F.col("user_id").isNull().cast("long")).alias("null_users"),
        F.sum(F.col("item_id").isNull().cast("long")).alias("null_items"),
        F.sum((value.isNull() | F.isnan(value)).cast("long")).alias("bad_values"),
        F.min(value).alias("low"),
        F.max(value).alias("high"),
        F.sum((~value.isin(0.0, 1.0)).cast("long")).alias("non_binary"),
    ]
    if timestamp_col is not None:
        checks.append(F.sum(F.col("timestamp").isNull().cast("long")).alias("null_times"))
    row = events.agg(*checks).collect()[0].asDict()
    if not row["n"]:
        raise DataError("no interactions: the input is empty")
    if row["null_users"] or row["null_items"]:
        raise DataError(
            f"{row['null_users']} null user id(s) and {row['null_items']} null item id(s); drop "
            "those rows first (frame.dropna(subset=[user_col, item_col]))"
        )
    if row["bad_values"]:
        raise DataError(
            f"{row['bad_values']} null or NaN value(s) in column {value_col!r}; drop them "
            "(frame.dropna(subset=[value_col])) or fill them"
        )
    if timestamp_col is not None and row.get("null_times"):
        raise DataError(f"{row['null_times']} null timestamp(s) in column {timestamp_col!r}")
    if kind == "binary" and row["non_binary"]:
        raise DataError(
            f"binary labels must be 0 or 1; {row['non_binary']} value(s) are not. Use "
            "kind='explicit' for ratings (or threshold them first)"
        )
    if scale is not None:
        low, high = scale
        if row["low"] < low or row["high"] > high:
            raise DataError(
                f"values range from {row['low']} to {row['high']}, outside the declared "
                f"rating_scale {scale}; fix the scale or filter the values"
            )


def _resolve_duplicates(events: DataFrame, policy: str, has_time: bool) -> DataFrame:
    keys = ["user_id", "item_id"]
    if policy == "error":
        dupes = events.groupBy(*keys).count().where(F.col("count") > 1).limit(5).collect()
        if dupes:
            pairs = [(r["user_id"], r["item_id"]) for r in dupes]
            raise DataError(
                f"duplicate (user, item) events, e.g. {pairs}; pass duplicates='last', "
                "'first' (with timestamp_col=) or 'mean' to keep one per pair"
            )
        return events
    if policy == "mean":
        aggs = [F.avg("value").alias("value")]
        if has_time:
            aggs.append(F.max("timestamp").alias("timestamp"))
        return events.groupBy(*keys).agg(*aggs)
    if not has_time:
        raise ConfigError(
            f"duplicates={policy!r} keeps the {'latest' if policy == 'last' else 'earliest'} "
            "event, which on Spark needs timestamp_col= (rows have no order); or use 'mean'"
        )
    order = F.col("timestamp").desc() if policy == "last" else F.col("timestamp").asc()
    ranked = events.withColumn(
        "_rank", F.row_number().over(Window.partitionBy(*keys).orderBy(order, F.col("value")))
    )
    return ranked.where(F.col("_rank") == 1).drop("_rank")


def index_ids(ids: DataFrame) -> DataFrame:
    """Number the distinct values of the one-column frame ``ids`` (column ``id``) 0 .. n-1
    in sorted order, without collecting them: range-partition, sort within partitions, and
    add each partition's offset. The result (``idx`` int, ``id``) is persisted, so the
    numbering is computed once.
    """
    distinct = ids.where(F.col("id").isNotNull()).distinct()
    n_parts = max(1, distinct.rdd.getNumPartitions())
    ordered = (
        distinct.repartitionByRange(n_parts, "id")
        .sortWithinPartitions("id")
        .withColumn("_part", F.spark_partition_id())
        .withColumn("_mono", F.monotonically_increasing_id())
    ).persist()
    sizes = ordered.groupBy("_part").agg(F.count(F.lit(1)).alias("n")).collect()
    offsets: dict[int, int] = {}
    total = 0
    for row in sorted(sizes, key=lambda r: r["_part"]):
        offsets[int(row["_part"])] = total
        total += int(row["n"])
    if total > _MAX_INDEX:
        raise DataError(f"{total:,} distinct ids: more than Spark's ALS can index (2³¹ − 1)")
    offset = F.create_map(*[F.lit(x) for pair in offsets.items() for x in pair])
    # monotonically_increasing_id = (partition << 33) + position within the partition
    position = F.col("_mono") - F.shiftleft(F.col("_part").cast("long"), 33)
    index = ordered.select(
        (offset[F.col("_part")] + position).cast("int").alias("idx"), F.col("id")
    ).persist()
    index.count()
    ordered.unpersist()
    return index


def collect_vocabulary(index: DataFrame) -> Vocabulary:
    """The ``(idx, id)`` table as a palate Vocabulary (ids in index order)."""
    frame = to_pandas(index.orderBy("idx"))
    if len(frame) and not np.array_equal(frame["idx"].to_numpy(), np.arange(len(frame))):
        raise DataError("the index table does not number its ids 0 .. n-1")
    return Vocabulary(frame["id"].to_numpy())


def index_from_vocabulary(spark: SparkSession, vocabulary: Vocabulary) -> DataFrame:
    """An ``(idx, id)`` table on Spark from a local vocabulary (e.g. a saved model's)."""
    ids = vocabulary.ids
    frame = pd.DataFrame({"idx": np.arange(len(ids), dtype=np.int32), "id": ids})
    id_type = T.LongType() if vocabulary.is_integer else T.StringType()
    schema = T.StructType(
        [T.StructField("idx", T.IntegerType(), False), T.StructField("id", id_type, False)]
    )
    if not vocabulary.is_integer:
        frame["id"] = frame["id"].astype(str)
    return spark.createDataFrame(frame, schema=schema)


def from_local(spark: SparkSession, data: Interactions) -> SparkInteractions:
    """Put a local :class:`palate.Interactions` on Spark, keeping its vocabularies."""
    frame = pd.DataFrame(
        {
            "user_idx": data.user_idx.astype(np.int32),
            "item_idx": data.item_idx.astype(np.int32),
            "value": data.values.astype(np.float32),
        }
    )
    fields = [
        T.StructField("user_idx", T.IntegerType(), False),
        T.StructField("item_idx", T.IntegerType(), False),
        T.StructField("value", T.FloatType(), False),
    ]
    if data.timestamps is not None:
        frame["timestamp"] = data.timestamps.astype(np.int64)
        fields.append(T.StructField("timestamp", T.LongType(), False))
    events = spark.createDataFrame(frame, schema=T.StructType(fields))
    result = SparkInteractions(
        events,
        index_from_vocabulary(spark, data.users),
        index_from_vocabulary(spark, data.items),
        data.kind,
        data.rating_scale,
    )
    result._cache.update(
        users=data.users, items=data.items, n_users=data.n_users, n_items=data.n_items
    )
    return result


# ----------------------------------------------------------------------------- splits
def _uniform(seed: int, *columns: str) -> Column:
    """A number in [0, 1) from a hash of the columns and the seed: the same for the same row
    whatever the partitioning (unlike ``rand``, which depends on it)."""
    h = F.xxhash64(F.lit(int(seed)), *[F.col(c) for c in columns])
    return (h.bitwiseAND(F.lit((1 << 53) - 1))).cast("double") / float(1 << 53)


def split(
    data: SparkInteractions,
    method: Literal["random", "user"] = "random",
    test_fraction: float = 0.2,
    *,
    seed: int = 0,
    min_events: int = 1,
) -> tuple[SparkInteractions, SparkInteractions]:
    """Train/test split on Spark, with the same vocabularies on both sides.

    Each event gets a uniform number ``u`` from a hash of ``(seed, user_idx, item_idx)``, so
    the split does not depend on how the data is partitioned.

    Parameters
    ----------
    method : {"random", "user"}
        ``random``: events with ``u < test_fraction`` go to test (about that share).
        ``user``: like :func:`palate.data.split.user_holdout` — each user with
        ``n_u > min_events`` events sends ``clip(round(test_fraction · n_u), 1,
        n_u − min_events)`` of them, those with the smallest ``u``, to test.
    test_fraction : float in (0, 1)
    seed : int
    min_events : int
        For ``user``: the fewest events a user keeps in train.

    Returns
    -------
    train, test : SparkInteractions
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ConfigError(
            f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction!r}"
        )
    u = _uniform(seed, "user_idx", "item_idx")
    events = data.events
    if method == "random":
        marked = events.withColumn("_test", u < float(test_fraction))
    elif method == "user":
        by_user = Window.partitionBy("user_idx")
        ranked = events.withColumn("_u", u).withColumn(
            "_rank", F.row_number().over(by_user.orderBy("_u", "item_idx"))
        ).withColumn("_n", F.count(F.lit(1)).over(by_user))
        wanted = F.greatest(F.floor(F.col("_n") * float(test_fraction) + 0.5), F.lit(1))
        n_test = F.least(wanted, F.greatest(F.col("_n") - int(min_events), F.lit(0)))
        marked = ranked.withColumn("_test", F.col("_rank") <= n_test).drop("_u", "_rank", "_n")
    else:
        raise ConfigError(f"method must be 'random' or 'user', got {method!r}")
    columns = list(events.columns)
    train = marked.where(~F.col("_test")).select(*columns)
    test = marked.where(F.col("_test")).select(*columns)
    return data.with_events(train), data.with_events(test)


# ----------------------------------------------------------------------------- features
def _genre_lists(item_table: DataFrame, item_col: str, genres_col: str) -> DataFrame:
    genres = F.col(genres_col)
    if isinstance(item_table.schema[genres_col].dataType, T.StringType):
        genres = F.split(genres, r"\|")
    return item_table.select(F.col(item_col).alias("id"), F.explode(genres).alias("genre")).where(
        F.col("genre").isNotNull() & (F.col("genre") != "")
    )


def _genre_names(frame: DataFrame) -> list[str]:
    return sorted(r["genre"] for r in frame.select("genre").distinct().collect())


def user_features(
    data: SparkInteractions,
    item_table: DataFrame | None = None,
    *,
    item_col: str = "item_id",
    genres_col: str = "genres",
) -> DataFrame:
    """Features of each user derived from ratings (counts, mean, mean per genre), computed on Spark.

    Compute them from the **training** split only, or offline numbers leak the test set.

    Returns
    -------
    DataFrame
        ``user_idx``, ``n_ratings``, ``mean_rating`` and, with an item table that has a
        genres column (list or ``|``-separated string), ``mean_rating_<genre>`` for every
        genre (null where the user rated nothing of that genre). Every user of the
        vocabulary has a row (``n_ratings`` 0 when the split holds none of theirs).
    """
    stats = data.events.groupBy("user_idx").agg(
        F.count(F.lit(1)).cast("float").alias("n_ratings"),
        F.avg("value").cast("float").alias("mean_rating"),
    )
    users = data.user_index.select(F.col("idx").alias("user_idx"))
    frame = users.join(stats, "user_idx", "left").fillna(0.0, subset=["n_ratings"])
    if item_table is None:
        return frame
    genres = _genre_lists(item_table, item_col, genres_col).join(
        data.item_index, "id"
    ).select(F.col("idx").alias("item_idx"), "genre")
    names = _genre_names(genres)
    per_genre = (
        data.events.join(genres, "item_idx")
        .groupBy("user_idx")
        .pivot("genre", cast(list[Any], names))
        .agg(F.avg("value").cast("float"))
    )
    renamed = per_genre.select(
        "user_idx", *[F.col(f"`{g}`").alias(f"mean_rating_{g}") for g in names]
    )
    return frame.join(renamed, "user_idx", "left")


def item_features(
    data: SparkInteractions,
    item_table: DataFrame | None = None,
    *,
    item_col: str = "item_id",
    genres_col: str = "genres",
    prior: float = 10.0,
) -> DataFrame:
    """Features of each item derived from ratings, plus genres, computed on Spark.

    Returns
    -------
    DataFrame
        ``item_idx``, ``n_ratings``, ``mean_rating``, ``shrunk_mean``
        (``(Σ y + prior · C) / (n + prior)``, C the global mean) and, with an item table,
        ``genre_<g>`` 0/1 columns (multi-hot). Every item of the vocabulary has a row.
    """
    global_mean = float(data.events.agg(F.avg("value")).collect()[0][0] or 0.0)
    stats = data.events.groupBy("item_idx").agg(
        F.count(F.lit(1)).alias("_n"), F.sum("value").alias("_sum")
    )
    items = data.item_index.select(F.col("idx").alias("item_idx"))
    frame = items.join(stats, "item_idx", "left").fillna(0, subset=["_n", "_sum"])
    frame = frame.select(
        "item_idx",
        F.col("_n").cast("float").alias("n_ratings"),
        F.when(F.col("_n") > 0, F.col("_sum") / F.col("_n")).cast("float").alias("mean_rating"),
        ((F.col("_sum") + prior * global_mean) / (F.col("_n") + prior))
        .cast("float")
        .alias("shrunk_mean"),
    )
    if item_table is None:
        return frame
    genres = _genre_lists(item_table, item_col, genres_col).join(
        data.item_index, "id"
    ).select(F.col("idx").alias("item_idx"), "genre")
    names = _genre_names(genres)
    hot = (
        genres.groupBy("item_idx")
        .pivot("genre", cast(list[Any], names))
        .agg(F.lit(1.0).cast("float"))
    )
    hot = hot.select("item_idx", *[F.col(f"`{g}`").alias(f"genre_{g}") for g in names])
    joined = frame.join(hot, "item_idx", "left")
    return joined.fillna(0.0, subset=[f"genre_{g}" for g in names])


# ----------------------------------------------------------------------------- Parquet
def write_prepared(
    path: str,
    train: SparkInteractions,
    test: SparkInteractions | None = None,
    *,
    user_features: DataFrame | None = None,
    item_features: DataFrame | None = None,
    overwrite: bool = False,
) -> str:
    """Write interactions, vocabularies and features as Parquet (layout in the module doc).

    ``palate.data.prepared.read_prepared(path)`` loads the result locally (no Spark) with
    identical vocabularies; ``palate train --data PATH`` trains on its train split.

    Returns
    -------
    str
        ``path``.
    """
    mode = "overwrite" if overwrite else "errorifexists"
    parts = train.events.withColumn("split", F.lit("train"))
    sizes = {"train": train.count()}
    if test is not None:
        parts = parts.unionByName(test.events.withColumn("split", F.lit("test")))
        sizes["test"] = test.count()
    columns = [
        F.col("user_idx").cast("int"),
        F.col("item_idx").cast("int"),
        F.col("value").cast("float"),
    ]
    if train.has_timestamps:
        columns.append(F.col("timestamp").cast("long"))
    parts.select(*columns, "split").write.mode(mode).partitionBy("split").parquet(
        f"{path}/interactions"
    )
    for name, index in (("users", train.user_index), ("items", train.item_index)):
        index.select(F.col("idx").cast("int"), "id").orderBy("idx").write.mode(mode).parquet(
            f"{path}/{name}"
        )
    features: dict[str, list[str]] = {}
    for name, frame in (("user_features", user_features), ("item_features", item_features)):
        if frame is not None:
            frame.write.mode(mode).parquet(f"{path}/{name}")
            features[name] = [c for c in frame.columns if c not in ("user_idx", "item_idx")]
    id_types = {
        name: "int64" if isinstance(index.schema["id"].dataType, T.LongType) else "string"
        for name, index in (("users", train.user_index), ("items", train.item_index))
    }
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": train.kind,
        "rating_scale": list(train.rating_scale) if train.rating_scale else None,
        "n_users": train.n_users,
        "n_items": train.n_items,
        "id_types": id_types,
        "splits": sizes,
        "timestamps": train.has_timestamps,
        "features": features,
    }
    _write_text(train.spark, f"{path}/{MANIFEST_FILE}", json.dumps(manifest, indent=2))
    logger.info("wrote prepared data to %s: %s", path, sizes)
    return path


def _write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write one small text file through Hadoop's file system (local, HDFS, S3, ...)."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    target = jvm.org.apache.hadoop.fs.Path(path)  # type: ignore[union-attr]
    stream = target.getFileSystem(conf).create(target, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def read_prepared(spark: SparkSession, path: str, split_name: str = "train") -> SparkInteractions:
    """Read one split of what :func:`write_prepared` wrote back onto Spark."""
    text = "\n".join(r["value"] for r in spark.read.text(f"{path}/{MANIFEST_FILE}").collect())
    manifest = json.loads(text)
    if manifest.get("format") != FORMAT_NAME:
        raise DataError(f"{path} is not a palate prepared-data directory")
    events = spark.read.parquet(f"{path}/interactions").where(F.col("split") == split_name)
    events = events.drop("split")
    scale = manifest.get("rating_scale")
    return SparkInteractions(
        events,
        spark.read.parquet(f"{path}/users"),
        spark.read.parquet(f"{path}/items"),
        manifest["kind"],
        tuple(scale) if scale else None,
    )


__all__ = [
    "SparkInteractions",
    "collect_vocabulary",
    "from_local",
    "from_spark",
    "index_from_vocabulary",
    "index_ids",
    "item_features",
    "read_prepared",
    "split",
    "to_pandas",
    "user_features",
    "write_prepared",
]
