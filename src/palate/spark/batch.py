"""Batch recommendation on Spark: top-k for every user, nearest items for every item.

Both are one computation — for every query row q and candidate row c::

    score(q, c) = v(q)·u(c) + a(q) + e(c)

keep the k best candidates per query, skipping excluded pairs. Queries and candidates are cut
into blocks of ``block_size`` rows; every (query block, candidate block) pair is one task that
scores a dense ``block × block`` matrix in NumPy and keeps its top k per query; a final
ranking per query keeps the best k overall. This is the shape of MLlib's
``recommendForAllUsers`` (blockify, cross join, top-k by key) with palate's prediction
formula and seen-item exclusion added.

======================  =========================  ==========================  ============
use                     v(q), a(q)                 u(c), e(c)                  excluded
======================  =========================  ==========================  ============
top-k, explicit CF      w(j), b(j)                 x(i), c(i) + μ(i)           seen items
top-k, implicit ALS     w(u), 0                    x(i), 0                     seen items
similar items           2 x(i), −‖x(i)‖²           x(k), −‖x(k)‖²              the item itself
======================  =========================  ==========================  ============

so the top-k score is the model's prediction (clipped to the rating scale afterwards, or put
through the sigmoid for binary models, as :meth:`palate.CollaborativeFiltering.recommend`)
and the similar-items score is ``−‖x(k) − x(i)‖²`` (cosine: the same on unit vectors, halved:
``1 − cos``). Candidates with ``e = −∞`` (items without training events, for similar items)
are never returned.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from palate.errors import ConfigError
from palate.models.collaborative import CollaborativeFiltering, CollaborativeFilteringConfig
from palate.models.collaborative.ranking import support_weights
from palate.models.implicit import ImplicitALS
from palate.models.scoring import check_k
from palate.spark.als import SparkCollaborativeFiltering, SparkImplicitALS, dot
from palate.spark.data import index_from_vocabulary

logger = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = 4096
AnyModel = SparkCollaborativeFiltering | SparkImplicitALS | CollaborativeFiltering | ImplicitALS

_PACKED = T.StructType(
    [
        T.StructField("block", T.IntegerType()),
        T.StructField("ids", T.BinaryType()),
        T.StructField("vectors", T.BinaryType()),
        T.StructField("offsets", T.BinaryType()),
        T.StructField("exclude_ptr", T.BinaryType()),
        T.StructField("exclude_idx", T.BinaryType()),
    ]
)
_SCORED = T.StructType(
    [
        T.StructField("query", T.IntegerType()),
        T.StructField("candidate", T.IntegerType()),
        T.StructField("score", T.DoubleType()),
    ]
)


@dataclass
class FactorTables:
    """A model's rows on Spark: ``(idx, vector, offset)`` per user and per item.

    ``trained`` marks items with training events (candidates for similar items); ``seen``
    holds ``(user_idx, item_idx)`` of training events; ``link`` is how raw scores become the
    model's scores (``"clip"`` to ``scale``, ``"sigmoid"`` or ``None``).
    """

    users: DataFrame
    items: DataFrame
    seen: DataFrame | None
    user_index: DataFrame
    item_index: DataFrame
    dim: int
    link: str | None = None
    scale: tuple[float, float] | None = None
    #: ``(idx, vector, trained, scale)`` of the item vectors of similar items (the model's
    #: ``similarity_vectors``, each distance multiplied by ``scale``); None: ``items``
    similarity: DataFrame | None = None


# ----------------------------------------------------------------------------- model tables
def factor_tables(model: AnyModel, spark: SparkSession | None = None) -> FactorTables:
    """The :class:`FactorTables` of a Spark-trained or a local palate model."""
    if isinstance(model, (SparkCollaborativeFiltering, SparkImplicitALS)):
        return _tables_from_spark_model(model)
    if isinstance(model, (CollaborativeFiltering, ImplicitALS)):
        if spark is None:
            spark = SparkSession.getActiveSession()
        if spark is None:
            raise ConfigError(
                "a local model needs a SparkSession to run on: pass spark=palate.spark."
                "spark_session(...)"
            )
        return _tables_from_local_model(spark, model)
    raise ConfigError(
        f"batch recommendation takes a SparkCollaborativeFiltering, SparkImplicitALS, "
        f"CollaborativeFiltering or ImplicitALS, not {type(model).__name__}"
    )


def _zeros(dim: int) -> Column:
    return F.array_repeat(F.lit(0.0).cast("float"), dim)


def _tables_from_spark_model(
    model: SparkCollaborativeFiltering | SparkImplicitALS,
) -> FactorTables:
    data = model.fitted_data()
    d = model.embedding_size
    users = data.user_index.select("idx").join(
        model.user_factors_.select(F.col("id").alias("idx"), "features"),  # type: ignore[union-attr]
        "idx",
        "left",
    )
    items = data.item_index.select("idx").join(
        model.item_factors_.select(F.col("id").alias("idx"), "features"),  # type: ignore[union-attr]
        "idx",
        "left",
    )
    user_offset: Column = F.lit(0.0)
    item_offset: Column = F.lit(0.0)
    link, scale = None, None
    if isinstance(model, SparkCollaborativeFiltering):
        users = users.join(
            model.user_bias_.withColumnRenamed("user_idx", "idx"), "idx", "left"  # type: ignore[union-attr]
        )
        items = items.join(
            model.item_offsets_.withColumnRenamed("item_idx", "idx"), "idx", "left"  # type: ignore[union-attr]
        )
        user_offset = F.coalesce(F.col("b"), F.lit(0.0))
        item_offset = F.coalesce(F.col("mu") + F.col("c"), F.lit(model.global_mean_))
        link, scale = "clip", data.rating_scale
    user_rows = users.select(
        "idx",
        F.coalesce(F.col("features"), _zeros(d)).alias("vector"),
        user_offset.cast("double").alias("offset"),
    )
    item_rows = items.select(
        "idx",
        F.coalesce(F.col("features"), _zeros(d)).alias("vector"),
        item_offset.cast("double").alias("offset"),
        F.col("features").isNotNull().alias("trained"),
    )
    similarity = None
    if isinstance(model, SparkCollaborativeFiltering):
        # rank and find similar items as the local model does (rank_by="confidence")
        similarity = item_rows
        user_rows, item_rows, scales = _confidence_rows(model, user_rows, item_rows)
        similarity = similarity.join(scales, "idx", "left").fillna({"scale": 1.0})
        d += 1
    return FactorTables(
        users=user_rows,
        items=item_rows,
        seen=data.events.select("user_idx", "item_idx"),
        user_index=data.user_index,
        item_index=data.item_index,
        dim=d,
        link=link,
        scale=scale,
        similarity=similarity,
    )


def _confidence_rows(
    model: SparkCollaborativeFiltering, users: DataFrame, items: DataFrame
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """User and item rows whose dot product is the confidence ranking of
    :meth:`palate.CollaborativeFiltering.ranking_scores`: ``C + (r̂ − C) w(i)`` with
    ``w(i) = n(i) / (n(i) + m n̄)``, as ``[w(u), b(u)] · [x(i) w(i), w(i)] + offset(i)``."""
    counts, _, _, _ = model.item_aggregates()
    weight, factor = support_weights(counts, CollaborativeFilteringConfig().confidence_prior)
    C = float(model.global_mean_)
    spark = users.sparkSession
    weights = spark.createDataFrame(
        pd.DataFrame({"idx": np.arange(len(weight), dtype=np.int32), "w": weight}),
        schema="idx int, w double",
    )
    items = items.join(weights, "idx", "left").select(
        "idx",
        F.concat(
            F.transform(F.col("vector"), lambda v: (v * F.col("w")).cast("float")),
            F.array(F.col("w").cast("float")),
        ).alias("vector"),
        ((F.col("offset") - F.lit(C)) * F.col("w") + F.lit(C)).alias("offset"),
        "trained",
    )
    users = users.select(
        "idx",
        F.concat(F.col("vector"), F.array(F.col("offset").cast("float"))).alias("vector"),
        F.lit(0.0).cast("double").alias("offset"),
    )
    # similar items: each distance times 1 + n̄ / n(k) (items without events are no candidates)
    factor = np.where(np.isfinite(factor), factor, 1.0)
    scales = spark.createDataFrame(
        pd.DataFrame({"idx": np.arange(len(factor), dtype=np.int32), "scale": factor}),
        schema="idx int, scale double",
    )
    return users, items, scales


def _rows_frame(
    spark: SparkSession, vectors: np.ndarray, offsets: np.ndarray, trained: np.ndarray | None
) -> DataFrame:
    frame = pd.DataFrame(
        {
            "idx": np.arange(len(vectors), dtype=np.int32),
            "vector": list(np.asarray(vectors, dtype=np.float32)),
            "offset": np.asarray(offsets, dtype=np.float64),
        }
    )
    fields = [
        T.StructField("idx", T.IntegerType(), False),
        T.StructField("vector", T.ArrayType(T.FloatType(), False), False),
        T.StructField("offset", T.DoubleType(), False),
    ]
    if trained is not None:
        frame["trained"] = np.asarray(trained, dtype=bool)
        fields.append(T.StructField("trained", T.BooleanType(), False))
    return spark.createDataFrame(frame, schema=T.StructType(fields))


def _tables_from_local_model(
    spark: SparkSession, model: CollaborativeFiltering | ImplicitALS
) -> FactorTables:
    """The tables of a local model, read through its contract: the factors it ranks by
    (``ranking_scores``), its link, and the vectors of its similar items."""
    seen = model.seen_
    coo = seen.tocoo()
    trained = model.similarity_candidates()
    ranking = model.ranking_scores()
    W, X = ranking.user_factors, ranking.item_factors
    user_offsets = (
        np.zeros(len(W)) if ranking.user_offset is None
        else np.asarray(ranking.user_offset, dtype=np.float64)
    )
    item_offsets = (
        np.zeros(len(X)) if ranking.item_offset is None
        else np.asarray(ranking.item_offset, dtype=np.float64)
    )
    link: str | None = None
    scale: tuple[float, float] | None = None
    if model.score_kind == "probability":
        link = "sigmoid"
    elif model.rating_scale is not None:
        link, scale = "clip", model.rating_scale
    seen_frame = spark.createDataFrame(
        pd.DataFrame({"user_idx": coo.row.astype(np.int32), "item_idx": coo.col.astype(np.int32)}),
        schema="user_idx int, item_idx int",
    )
    vectors = model.similarity_vectors()
    similarity = _rows_frame(spark, vectors, np.zeros(len(vectors)), trained)
    factors = model.similarity_scale()
    similarity = similarity.join(
        spark.createDataFrame(
            pd.DataFrame({
                "idx": np.arange(len(vectors), dtype=np.int32),
                "scale": np.ones(len(vectors)) if factors is None else np.where(
                    np.isfinite(factors), factors, 1.0),
            }),
            schema="idx int, scale double",
        ),
        "idx",
    )
    return FactorTables(
        users=_rows_frame(spark, W, user_offsets, None),
        items=_rows_frame(spark, X, item_offsets, trained),
        seen=seen_frame,
        user_index=index_from_vocabulary(spark, model.users_),
        item_index=index_from_vocabulary(spark, model.items_),
        dim=int(W.shape[1]),
        link=link,
        scale=scale,
        similarity=similarity,
    )


# ----------------------------------------------------------------------------- block top-k
def _pack(dim: int, block_size: int) -> Any:
    def pack(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.sort_values("idx", kind="stable")
        ids = frame["idx"].to_numpy(np.int32)
        vectors = np.zeros((len(frame), dim), dtype=np.float32)
        if len(frame):
            vectors[:] = np.stack(frame["vector"].to_numpy())
        offsets = frame["offset"].to_numpy(np.float64)
        lists = frame["exclude"].to_numpy() if "exclude" in frame.columns else [None] * len(ids)
        lengths = np.array([0 if x is None else len(x) for x in lists], dtype=np.int64)
        pointer = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        flat = np.zeros(0, dtype=np.int32)
        if pointer[-1]:
            flat = np.concatenate([np.asarray(x, dtype=np.int32) for x in lists if x is not None])
        return pd.DataFrame(
            {
                "block": [int(ids[0]) // block_size if len(ids) else 0],
                "ids": [ids.tobytes()],
                "vectors": [vectors.tobytes()],
                "offsets": [offsets.tobytes()],
                "exclude_ptr": [pointer.tobytes()],
                "exclude_idx": [flat.astype(np.int32).tobytes()],
            }
        )

    return pack


def _score(dim: int, k: int) -> Any:
    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            parts = []
            for row in batch.itertuples(index=False):
                q_ids = np.frombuffer(row.q_ids, dtype=np.int32)
                c_ids = np.frombuffer(row.c_ids, dtype=np.int32)
                if not len(q_ids) or not len(c_ids):
                    continue
                Q = np.frombuffer(row.q_vectors, dtype=np.float32).reshape(len(q_ids), dim)
                C = np.frombuffer(row.c_vectors, dtype=np.float32).reshape(len(c_ids), dim)
                scores = (Q.astype(np.float64) @ C.T.astype(np.float64))
                scores += np.frombuffer(row.q_offsets, dtype=np.float64)[:, None]
                scores += np.frombuffer(row.c_offsets, dtype=np.float64)[None, :]
                pointer = np.frombuffer(row.q_exclude_ptr, dtype=np.int64)
                excluded = np.frombuffer(row.q_exclude_idx, dtype=np.int32)
                if len(excluded):
                    owner = np.repeat(np.arange(len(q_ids)), np.diff(pointer))
                    pos = np.searchsorted(c_ids, excluded).clip(max=len(c_ids) - 1)
                    hit = c_ids[pos] == excluded
                    scores[owner[hit], pos[hit]] = -np.inf
                kk = min(k, len(c_ids))
                if kk < len(c_ids):
                    top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
                else:
                    top = np.broadcast_to(np.arange(len(c_ids)), scores.shape)
                values = np.take_along_axis(scores, top, axis=1)
                keep = np.isfinite(values)
                parts.append(
                    pd.DataFrame(
                        {
                            "query": np.repeat(q_ids, kk)[keep.ravel()],
                            "candidate": c_ids[top].ravel()[keep.ravel()],
                            "score": values.ravel()[keep.ravel()],
                        }
                    )
                )
            if parts:
                yield pd.concat(parts, ignore_index=True)
            else:
                yield pd.DataFrame(
                    {
                        "query": np.zeros(0, np.int32),
                        "candidate": np.zeros(0, np.int32),
                        "score": np.zeros(0, np.float64),
                    }
                )

    return score


def block_top_k(
    queries: DataFrame,
    candidates: DataFrame,
    k: int,
    dim: int,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> DataFrame:
    """Top-k candidates per query by ``v(q)·u(c) + a(q) + e(c)``, on Spark.

    Parameters
    ----------
    queries : DataFrame
        ``idx`` (int), ``vector`` (array of float, length ``dim``), ``offset`` (double),
        ``exclude`` (array of candidate idx, may be null).
    candidates : DataFrame
        ``idx``, ``vector``, ``offset`` (−∞: never returned).
    k, dim, block_size : int

    Returns
    -------
    DataFrame
        ``query``, ``rank`` (1 = best), ``candidate``, ``score``; ties broken by the smaller
        candidate index. Fewer than k rows for a query where fewer candidates remain.
    """
    k = check_k(k)
    if not isinstance(block_size, int) or block_size < 1:
        raise ConfigError(f"block_size must be a positive integer, got {block_size!r}")
    packed_schema = _PACKED

    def blocks(frame: DataFrame, prefix: str) -> DataFrame:
        grouped = frame.withColumn("_block", (F.col("idx") / block_size).cast("int"))
        packed = grouped.groupBy("_block").applyInPandas(
            lambda f: _pack(dim, block_size)(f.drop(columns=["_block"])), schema=packed_schema
        )
        return packed.select(*[F.col(c).alias(f"{prefix}_{c}") for c in packed.columns])

    if "exclude" not in candidates.columns:
        candidates = candidates.withColumn("exclude", F.lit(None).cast("array<int>"))
    pairs = blocks(queries, "q").crossJoin(blocks(candidates, "c"))
    scored = pairs.mapInPandas(_score(dim, k), schema=_SCORED)
    order = Window.partitionBy("query").orderBy(F.col("score").desc(), F.col("candidate").asc())
    ranked = scored.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= k)
    return ranked.select("query", "rank", "candidate", "score")


# ----------------------------------------------------------------------------- public API
def _with_ids(frame: DataFrame, tables: FactorTables, query_name: str, item_name: str) -> DataFrame:
    queries = tables.user_index if query_name == "user_id" else tables.item_index
    return (
        frame.join(queries.select(F.col("idx").alias("query"), F.col("id").alias(query_name)),
                   "query")
        .join(tables.item_index.select(F.col("idx").alias("candidate"),
                                       F.col("id").alias(item_name)), "candidate")
    )


def recommend_all(
    model: AnyModel,
    k: int = 10,
    exclude_seen: bool = True,
    *,
    spark: SparkSession | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> DataFrame:
    """Top-k items for every user of the model, computed on Spark.

    Parameters
    ----------
    model : SparkCollaborativeFiltering, SparkImplicitALS, CollaborativeFiltering or ImplicitALS
        A local model is put on Spark first (``spark`` or the active session).
    k : int
    exclude_seen : bool
        Skip each user's training items.
    block_size : int
        Rows per block of the scoring matrix (memory per task ≈ 8 · block_size² bytes).

    Returns
    -------
    DataFrame
        ``user_id``, ``rank`` (1..k), ``item_id``, ``score`` (the model's prediction, as
        :meth:`palate.CollaborativeFiltering.recommend` gives it); write it with
        ``.write.parquet(path)``.
    """
    tables = factor_tables(model, spark)
    queries = tables.users
    if exclude_seen and tables.seen is not None:
        lists = tables.seen.groupBy(F.col("user_idx").alias("idx")).agg(
            F.collect_list("item_idx").alias("exclude")
        )
        queries = queries.join(lists, "idx", "left")
    top = block_top_k(queries, tables.items.drop("trained"), k, tables.dim, block_size=block_size)
    score = F.col("score")
    if tables.link == "clip" and tables.scale is not None:
        score = F.least(F.greatest(score, F.lit(tables.scale[0])), F.lit(tables.scale[1]))
    elif tables.link == "sigmoid":
        score = 1.0 / (1.0 + F.exp(-score))
    top = top.withColumn("score", score.cast("float"))
    return _with_ids(top, tables, "user_id", "item_id").select(
        "user_id", "rank", "item_id", "score"
    )


def similar_items_all(
    model: AnyModel,
    k: int = 10,
    metric: Literal["euclidean", "cosine"] = "euclidean",
    *,
    spark: SparkSession | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> DataFrame:
    """The k nearest items of every trained item (smallest ‖x(k) − x(i)‖²), computed on Spark.

    Returns
    -------
    DataFrame
        ``item_id``, ``rank``, ``similar_id``, ``distance``: ``‖x(k) − x(i)‖²`` (euclidean)
        or ``1 − cos`` (cosine), as :meth:`palate.CollaborativeFiltering.similar_items`.
        Items without training events are neither queried nor returned.
    """
    if metric not in ("euclidean", "cosine"):
        raise ConfigError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
    tables = factor_tables(model, spark)
    x = F.col("vector")
    if metric == "cosine":
        norm = F.greatest(F.sqrt(dot(x, x)), F.lit(1e-12))
        x = F.transform(x, lambda v: (v / norm).cast("float"))
    source = tables.similarity
    if source is None:
        source = tables.items.withColumn("scale", F.lit(1.0))
    items = source.select("idx", x.alias("vector"), "trained", "scale")
    first = items.select("vector").first()
    dim = tables.dim if first is None else len(first[0])
    squared = dot(F.col("vector"), F.col("vector"))
    # −s(k) ‖x(i) − x(k)‖² = [2 x(i), −‖x(i)‖²] · [s(k) x(k), s(k)] − s(k) ‖x(k)‖²
    candidates = items.select(
        "idx",
        F.concat(
            F.transform(F.col("vector"), lambda v: (v * F.col("scale")).cast("float")),
            F.array(F.col("scale").cast("float")),
        ).alias("vector"),
        F.when(F.col("trained"), -squared * F.col("scale"))
        .otherwise(F.lit(float("-inf")))
        .alias("offset"),
    )
    queries = items.where(F.col("trained")).select(
        "idx",
        F.concat(
            F.transform(F.col("vector"), lambda v: (v * 2.0).cast("float")),
            F.array((-squared).cast("float")),
        ).alias("vector"),
        F.lit(0.0).alias("offset"),
        F.array(F.col("idx")).alias("exclude"),
    )
    top = block_top_k(queries, candidates, k, dim + 1, block_size=block_size)
    distance = F.greatest(-F.col("score"), F.lit(0.0))
    if metric == "cosine":
        distance = distance / 2.0
    top = top.withColumn("distance", distance.cast("float"))
    return _with_ids(top, tables, "item_id", "similar_id").select(
        "item_id", "rank", "similar_id", "distance"
    )


__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "FactorTables",
    "block_top_k",
    "factor_tables",
    "recommend_all",
    "similar_items_all",
]
