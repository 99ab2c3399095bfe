"""Collaborative filtering on Spark with MLlib's distributed ALS, in palate's conventions.

Explicit ratings (:class:`SparkCollaborativeFiltering`) predict, like
:class:`palate.CollaborativeFiltering`::

    ŷ(i,j) = w(j)·x(i) + b(j) + c(i) + μ(i)

computed in four steps on Spark:

1. μ(i), the item mean shrunk towards the global mean C by m pseudo-ratings
   (``mean_shrinkage``): ``μ(i) = (Σ_j y(i,j) + m C) / (n(i) + m)`` — palate's mean
   normalisation (m = 0 is the plain item mean μ(i) of mean normalisation).
2. The biases b(j), c(i) (``biases=True``) by ``bias_epochs`` alternating closed-form sweeps
   on the residuals y − μ, each row's λ_b multiplied by its count as in the factor step:
   ``b(j) = Σ_i (y − μ(i) − c(i)) / (n(j) (1 + λ_b))`` and the same for c(i).
3. x(i), w(j) by MLlib's ALS on the residuals ``y − μ(i) − b(j) − c(i)``.
4. Everything stays on Spark (DataFrames of factors and offsets); :meth:`to_local` collects it
   into a :class:`palate.CollaborativeFiltering` that predicts the same numbers.

palate's local ALS learns b(j) and c(i) jointly with the factors by default (they are extra
columns of each ridge solve). MLlib's ALS has no bias terms, so here they are fitted first and
held fixed: a baseline-then-factors decomposition of the same prediction formula — what local
``CollaborativeFiltering(bias_fit="first")`` fits, the setting :meth:`to_local` records.

Regularisation: MLlib's ALS is "ALS-WR" (Zhou et al., 2008). Each user's normal equations are
``(Xᵀ_j X_j + regParam · n(j) I) w(j) = Xᵀ_j r(j)``, with n(j) the user's number of ratings —
the minimiser of ::

    1/2 Σ_{r(i,j)=1} (w(j)·x(i) − r(i,j))² + regParam/2 (Σ_j n(j) ‖w(j)‖² + Σ_i n(i) ‖x(i)‖²)

The cost J's λ multiplies ‖w‖² and ‖x‖² once (palate's ``reg_scaling="none"``). MLlib's cost is
palate's ``reg_scaling="count"`` with ``reg_count_floor=0``, so ``reg`` here is the same
number as palate's ``reg`` under those settings, and :meth:`to_local` records them. A
textbook λ corresponds to ``regParam ≈ λ / mean count`` only on average.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp
from pyspark.ml.recommendation import ALS
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from palate.errors import ConfigError, DataError, NotFittedError
from palate.models.base import ModelState, seen_arrays
from palate.models.collaborative import CollaborativeFiltering
from palate.models.implicit import ImplicitALS
from palate.models.popularity import popularity_from_counts
from palate.spark.data import SparkInteractions, to_pandas

logger = logging.getLogger(__name__)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _non_negative(value: Any, name: str) -> float:
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def dot(left: Column, right: Column) -> Column:
    """``Σ_k left[k] · right[k]`` of two array columns, in Spark SQL."""
    return F.aggregate(F.zip_with(left, right, lambda a, b: a * b), F.lit(0.0), lambda s, v: s + v)


class _SparkALSBase:
    """What both Spark models share: MLlib settings, fitted checks, factor collection."""

    def __init__(
        self,
        embedding_size: int,
        reg: float,
        epochs: int,
        seed: int | None,
        num_blocks: int | None,
        checkpoint_interval: int,
    ) -> None:
        self.embedding_size = _positive_int(embedding_size, "embedding_size")
        self.reg = _non_negative(reg, "reg")
        self.epochs = _positive_int(epochs, "epochs")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ConfigError(f"seed must be an int or None, got {seed!r}")
        self.seed = seed
        self.num_blocks = None if num_blocks is None else _positive_int(num_blocks, "num_blocks")
        self.checkpoint_interval = int(checkpoint_interval)
        self.data_: SparkInteractions | None = None
        self.user_factors_: DataFrame | None = None
        self.item_factors_: DataFrame | None = None

    def _als(self, rating_col: str, spark: Any = None, **extra: Any) -> ALS:
        if spark is not None:
            self._check_checkpoint_dir(spark)
        settings: dict[str, Any] = dict(
            rank=self.embedding_size,
            maxIter=self.epochs,
            regParam=self.reg,
            userCol="user_idx",
            itemCol="item_idx",
            ratingCol=rating_col,
            nonnegative=False,
            coldStartStrategy="nan",
            checkpointInterval=self.checkpoint_interval,
            **extra,
        )
        if self.seed is not None:
            settings["seed"] = int(self.seed)
        if self.num_blocks is not None:
            settings["numUserBlocks"] = settings["numItemBlocks"] = self.num_blocks
        return ALS(**settings)

    def _check_checkpoint_dir(self, spark: Any) -> None:
        """MLlib's ALS checkpoints every ``checkpoint_interval`` sweeps only with a checkpoint
        directory; without one, many sweeps grow a lineage that overflows the JVM stack. A
        local session gets a temporary directory; a cluster needs one on shared storage."""
        context = spark.sparkContext
        if self.epochs <= self.checkpoint_interval or context.getCheckpointDir() is not None:
            return
        if context.master.startswith("local"):
            import tempfile

            path = tempfile.mkdtemp(prefix="palate-spark-checkpoints-")
            context.setCheckpointDir(path)
            logger.info("checkpointing ALS every %d sweeps in %s", self.checkpoint_interval, path)
        else:
            logger.warning(
                "%d ALS sweeps without a checkpoint directory may overflow the JVM stack; call "
                "spark.sparkContext.setCheckpointDir(<shared path>) first", self.epochs
            )

    def fitted_data(self) -> SparkInteractions:
        if self.data_ is None or self.user_factors_ is None or self.item_factors_ is None:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call .fit(spark_interactions) "
                "first"
            )
        return self.data_

    def _factor_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(W, X) as float32 arrays in vocabulary order; rows MLlib did not learn are 0."""
        data = self.fitted_data()
        d = self.embedding_size
        out = []
        for table, n in ((self.user_factors_, data.n_users), (self.item_factors_, data.n_items)):
            frame = to_pandas(table.select("id", "features"))  # type: ignore[union-attr]
            matrix = np.zeros((n, d), dtype=np.float32)
            if len(frame):
                matrix[frame["id"].to_numpy(np.int64)] = np.stack(frame["features"].to_numpy())
            out.append(matrix)
        return out[0], out[1]

    def _seen_arrays(self) -> dict[str, np.ndarray]:
        """The users x items matrix of training events as CSR arrays (for exclude_seen)."""
        data = self.fitted_data()
        pairs = to_pandas(data.events.select("user_idx", "item_idx"))
        seen = sp.csr_matrix(
            (
                np.ones(len(pairs), dtype=np.float32),
                (pairs["user_idx"].to_numpy(np.int64), pairs["item_idx"].to_numpy(np.int64)),
            ),
            shape=(data.n_users, data.n_items),
        )
        seen.sum_duplicates()
        seen.sort_indices()
        return seen_arrays(seen)

    def item_aggregates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Per item: events, sum of values, positive events; and the global mean."""
        data = self.fitted_data()
        stats = to_pandas(
            data.events.groupBy("item_idx")
            .agg(
                F.count(F.lit(1)).alias("n"),
                F.sum("value").alias("total"),
                F.sum((F.col("value") > 0).cast("long")).alias("positives"),
            )
        )
        n = np.zeros(data.n_items)
        total = np.zeros(data.n_items)
        positives = np.zeros(data.n_items)
        idx = stats["item_idx"].to_numpy(np.int64)
        n[idx] = stats["n"].to_numpy(np.float64)
        total[idx] = stats["total"].to_numpy(np.float64)
        positives[idx] = stats["positives"].to_numpy(np.float64)
        global_mean = float(total.sum() / max(n.sum(), 1.0))
        return n, total, positives, global_mean


class SparkCollaborativeFiltering(_SparkALSBase):
    """Explicit-rating collaborative filtering trained by MLlib's ALS (see the module doc).

    Parameters
    ----------
    embedding_size : int
        n, the length of x(i) and w(j) (MLlib ``rank``).
    reg : float
        λ per rating (MLlib ``regParam``): each row's penalty is ``reg · n(row)``, as palate's
        ``reg_scaling="count", reg_count_floor=0``.
    epochs : int
        ALS sweeps (MLlib ``maxIter``).
    mean_normalize : bool
        Subtract μ(i) before ALS (mean normalisation) and add it back in predictions.
    mean_shrinkage : float
        m pseudo-ratings that shrink μ(i) towards the global mean.
    biases : bool
        Fit a user bias b(j) and an item bias c(i) before the factors.
    bias_reg : float
        λ_b per rating on the biases.
    bias_epochs : int
        Alternating bias sweeps.
    seed : int or None
    num_blocks : int, optional
        MLlib ``numUserBlocks`` = ``numItemBlocks`` (default: Spark's, 10).
    checkpoint_interval : int
        MLlib's lineage checkpoint interval (effective only with a checkpoint directory).

    Examples
    --------
    >>> model = SparkCollaborativeFiltering(embedding_size=32, reg=0.1).fit(data)  # doctest: +SKIP
    >>> local = model.to_local()            # a palate.CollaborativeFiltering    # doctest: +SKIP
    """

    def __init__(
        self,
        embedding_size: int = 32,
        reg: float = 0.1,
        epochs: int = 15,
        *,
        mean_normalize: bool = True,
        mean_shrinkage: float = 5.0,
        biases: bool = True,
        bias_reg: float = 0.1,
        bias_epochs: int = 3,
        seed: int | None = 0,
        num_blocks: int | None = None,
        checkpoint_interval: int = 10,
    ) -> None:
        super().__init__(embedding_size, reg, epochs, seed, num_blocks, checkpoint_interval)
        self.mean_normalize = bool(mean_normalize)
        self.mean_shrinkage = _non_negative(mean_shrinkage, "mean_shrinkage")
        self.biases = bool(biases)
        self.bias_reg = _non_negative(bias_reg, "bias_reg")
        self.bias_epochs = _positive_int(bias_epochs, "bias_epochs")
        self.global_mean_: float = 0.0
        self.item_offsets_: DataFrame | None = None  # item_idx, mu, c
        self.user_bias_: DataFrame | None = None  # user_idx, b

    def get_params(self) -> dict[str, Any]:
        return {
            "embedding_size": self.embedding_size,
            "reg": self.reg,
            "epochs": self.epochs,
            "mean_normalize": self.mean_normalize,
            "mean_shrinkage": self.mean_shrinkage,
            "biases": self.biases,
            "bias_reg": self.bias_reg,
            "bias_epochs": self.bias_epochs,
            "seed": self.seed,
        }

    # ------------------------------------------------------------------ training
    def fit(self, data: SparkInteractions) -> SparkCollaborativeFiltering:
        """Fit μ, the biases and the factors on Spark. Returns self."""
        if not isinstance(data, SparkInteractions):
            raise DataError(
                "fit expects palate.spark.SparkInteractions; build it with "
                "palate.spark.from_spark(frame, user_col=..., item_col=..., value_col=...)"
            )
        if data.kind != "explicit":
            raise DataError(
                "SparkCollaborativeFiltering fits explicit ratings; use SparkImplicitALS for "
                "binary or positive-only data"
            )
        events = data.events.select("user_idx", "item_idx", F.col("value").cast("double"))
        events = events.persist()
        self.global_mean_ = float(events.agg(F.avg("value")).collect()[0][0])
        items = data.item_index.select(F.col("idx").alias("item_idx"))
        users = data.user_index.select(F.col("idx").alias("user_idx"))
        m, C = self.mean_shrinkage, self.global_mean_
        if self.mean_normalize:
            stats = events.groupBy("item_idx").agg(
                F.sum("value").alias("total"), F.count(F.lit(1)).alias("n")
            )
            mu = items.join(stats, "item_idx", "left").select(
                "item_idx",
                F.when(F.col("n") > 0, (F.col("total") + m * C) / (F.col("n") + m))
                .otherwise(C)
                .alias("mu"),
            )
        else:
            mu = items.select("item_idx", F.lit(0.0).alias("mu"))
        mu = mu.persist()
        residual = events.join(mu, "item_idx").select(
            "user_idx", "item_idx", (F.col("value") - F.col("mu")).alias("r")
        ).persist()
        c = items.select("item_idx", F.lit(0.0).alias("c"))
        b = users.select("user_idx", F.lit(0.0).alias("b"))
        if self.biases:
            shrink = 1.0 + self.bias_reg
            for _ in range(self.bias_epochs):
                b = self._bias_step(residual, c, "user_idx", "item_idx", "c", "b", shrink, users)
                c = self._bias_step(residual, b, "item_idx", "user_idx", "b", "c", shrink, items)
        offsets = mu.join(c, "item_idx").persist()
        b = b.persist()
        target = (
            residual.join(offsets, "item_idx")
            .join(b, "user_idx")
            .select("user_idx", "item_idx", (F.col("r") - F.col("c") - F.col("b")).alias("r"))
        )
        fitted = self._als("r", data.spark).fit(target)
        self.user_factors_ = fitted.userFactors.persist()
        self.item_factors_ = fitted.itemFactors.persist()
        self.item_offsets_, self.user_bias_ = offsets, b
        self.data_ = data
        residual.unpersist()
        events.unpersist()
        logger.info("fitted %s", self)
        return self

    @staticmethod
    def _bias_step(
        residual: DataFrame,
        other: DataFrame,
        key: str,
        other_key: str,
        other_name: str,
        name: str,
        shrink: float,
        rows: DataFrame,
    ) -> DataFrame:
        """One closed-form bias half-sweep: Σ (r − other) / (n (1 + λ_b)) per ``key``."""
        sums = (
            residual.join(other, other_key)
            .groupBy(key)
            .agg((F.sum(F.col("r") - F.col(other_name)) / (F.count(F.lit(1)) * shrink)).alias(name))
        )
        # materialise each step so the lineage stays short
        return rows.join(sums, key, "left").fillna(0.0, subset=[name]).localCheckpoint()

    # ------------------------------------------------------------------ scoring on Spark
    def predict(self, pairs: DataFrame) -> DataFrame:
        """Predicted ratings of ``(user_idx, item_idx)`` rows, on Spark.

        Returns ``pairs`` with a ``prediction`` column: ``w·x + b + c + μ`` clipped to the
        rating scale; an unknown user gets μ(i) + c(i), an unknown item the global mean
        (as :meth:`palate.CollaborativeFiltering.predict`).
        """
        data = self.fitted_data()
        users = self.user_factors_.select(  # type: ignore[union-attr]
            F.col("id").alias("user_idx"), F.col("features").alias("_w")
        ).join(self.user_bias_, "user_idx", "full")  # type: ignore[arg-type]
        items = self.item_factors_.select(  # type: ignore[union-attr]
            F.col("id").alias("item_idx"), F.col("features").alias("_x")
        ).join(self.item_offsets_, "item_idx", "full")  # type: ignore[arg-type]
        joined = pairs.join(users, "user_idx", "left").join(items, "item_idx", "left")
        interaction = F.coalesce(dot(F.col("_w"), F.col("_x")), F.lit(0.0))
        raw = F.when(
            F.col("mu").isNull(), F.lit(self.global_mean_)
        ).otherwise(F.col("mu") + F.col("c") + F.coalesce(F.col("b"), F.lit(0.0)) + interaction)
        if data.rating_scale is not None:
            low, high = data.rating_scale
            raw = F.least(F.greatest(raw, F.lit(low)), F.lit(high))
        return joined.withColumn("prediction", raw.cast("float")).drop("_w", "_x", "mu", "c", "b")

    def rmse(self, test: SparkInteractions) -> float:
        """Root mean squared error of :meth:`predict` on held-out events, on Spark."""
        scored = self.predict(test.events.select("user_idx", "item_idx", "value"))
        value = scored.agg(F.sqrt(F.avg((F.col("prediction") - F.col("value")) ** 2))).collect()
        return float(value[0][0])

    # ------------------------------------------------------------------ local copy
    def to_local(self) -> CollaborativeFiltering:
        """Collect into a :class:`palate.CollaborativeFiltering` that predicts the same.

        The vocabularies are the data's; the config records palate's equivalents of the
        Spark settings (``reg_scaling="count", reg_count_floor=0``, ``item_bias=biases``,
        ``bias_fit="first"``);
        the seen-items matrix and the fallback (shrunk item means) come from the training
        events. The result saves with :func:`palate.save` and serves like any local model.
        """
        data = self.fitted_data()
        W, X = self._factor_arrays()
        mu = np.full(data.n_items, self.global_mean_)
        c = np.zeros(data.n_items)
        b = np.zeros(data.n_users)
        offsets = to_pandas(self.item_offsets_)  # type: ignore[arg-type]
        idx = offsets["item_idx"].to_numpy(np.int64)
        mu[idx] = offsets["mu"].to_numpy(np.float64)
        c[idx] = offsets["c"].to_numpy(np.float64)
        user_bias = to_pandas(self.user_bias_)  # type: ignore[arg-type]
        b[user_bias["user_idx"].to_numpy(np.int64)] = user_bias["b"].to_numpy(np.float64)
        n, total, _, global_mean = self.item_aggregates()
        fallback, _ = popularity_from_counts(n, total, global_mean, by="mean")
        config = CollaborativeFiltering(
            kind="explicit",
            embedding_size=self.embedding_size,
            reg=self.reg,
            solver="als",
            epochs=self.epochs,
            mean_normalize=self.mean_normalize,
            mean_shrinkage=self.mean_shrinkage,
            item_bias=self.biases,
            bias_reg=self.bias_reg,
            bias_fit="first",
            bias_epochs=self.bias_epochs,
            reg_scaling="count",
            reg_count_floor=0.0,
            seed=self.seed,
        ).get_params()
        state = ModelState(
            config=config,
            arrays={
                "item_factors": X,
                "user_factors": W,
                "user_bias": b.astype(np.float32),
                "item_bias": c.astype(np.float32),
                "item_means": mu.astype(np.float32),
                "fallback_scores": fallback,
                **self._seen_arrays(),
            },
            vocabularies={"users": data.users, "items": data.items},
            extra={
                "global_mean": self.global_mean_,
                "rating_scale": list(data.rating_scale) if data.rating_scale else None,
                "history": [],
                "count_floors": [1.0, 1.0],
            },
        )
        return CollaborativeFiltering.from_state(state)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"SparkCollaborativeFiltering({params})"


class SparkImplicitALS(_SparkALSBase):
    """Confidence-weighted ALS for positive-only data, trained by MLlib's ALS.

    MLlib's ``implicitPrefs=True`` minimises (Hu, Koren & Volinsky, 2008)::

        Σ_{all u,i} c(u,i) (p(u,i) − w(u)·x(i))² + regParam (Σ_u n(u) ‖w(u)‖² + Σ_i n(i) ‖x(i)‖²)

    with p = 1 where value > 0, c = 1 + α·value, and n the number of engaged events per row.
    :class:`palate.ImplicitALS` minimises the same data term with an unscaled λ; the
    ``reg`` here is MLlib's per-event λ (``λ_palate ≈ reg · n(row)`` row by row). :meth:`to_local`
    gives an ImplicitALS with these factors (its scores are ``w·x`` exactly); the recorded
    ``reg`` is MLlib's.

    Parameters
    ----------
    embedding_size : int
    reg : float
        MLlib ``regParam`` (multiplied by each row's number of engaged events).
    alpha : float
        Confidence slope α.
    epochs : int
    seed : int or None
    num_blocks : int, optional
    checkpoint_interval : int
    """

    def __init__(
        self,
        embedding_size: int = 64,
        reg: float = 0.1,
        alpha: float = 10.0,
        epochs: int = 15,
        *,
        seed: int | None = 0,
        num_blocks: int | None = None,
        checkpoint_interval: int = 10,
    ) -> None:
        super().__init__(embedding_size, reg, epochs, seed, num_blocks, checkpoint_interval)
        alpha_value = _non_negative(alpha, "alpha")
        if alpha_value == 0:
            raise ConfigError("alpha must be > 0")
        self.alpha = alpha_value

    def get_params(self) -> dict[str, Any]:
        return {
            "embedding_size": self.embedding_size,
            "reg": self.reg,
            "alpha": self.alpha,
            "epochs": self.epochs,
            "seed": self.seed,
        }

    def fit(self, data: SparkInteractions) -> SparkImplicitALS:
        """Fit user and item vectors on the engagement events (value > 0). Returns self."""
        if not isinstance(data, SparkInteractions):
            raise DataError("fit expects palate.spark.SparkInteractions (palate.spark.from_spark)")
        low = data.events.agg(F.min("value")).collect()[0][0]
        if low is not None and low < 0:
            raise DataError("implicit feedback values must be >= 0; shift or drop negative values")
        fitted = self._als("value", data.spark, implicitPrefs=True, alpha=self.alpha).fit(
            data.events.select("user_idx", "item_idx", "value")
        )
        self.user_factors_ = fitted.userFactors.persist()
        self.item_factors_ = fitted.itemFactors.persist()
        self.data_ = data
        return self

    def to_local(self) -> ImplicitALS:
        """Collect into a :class:`palate.ImplicitALS` with the same vocabularies and scores."""
        data = self.fitted_data()
        W, X = self._factor_arrays()
        n, total, positives, global_mean = self.item_aggregates()
        fallback, _ = popularity_from_counts(
            n, total, global_mean, by="count",
            positives=positives if data.kind == "binary" else None,
        )
        config = ImplicitALS(
            embedding_size=self.embedding_size,
            reg=self.reg,
            alpha=self.alpha,
            epochs=self.epochs,
            seed=self.seed,
        ).get_params()
        state = ModelState(
            config=config,
            arrays={
                "user_factors": W,
                "item_factors": X,
                "fallback_scores": fallback,
                **self._seen_arrays(),
            },
            vocabularies={"users": data.users, "items": data.items},
            extra={"history": []},
        )
        return ImplicitALS.from_state(state)

    def predict(self, pairs: DataFrame) -> DataFrame:
        """Preference scores ``w·x`` of ``(user_idx, item_idx)`` rows (0 for unknown users)."""
        self.fitted_data()
        users = self.user_factors_.select(  # type: ignore[union-attr]
            F.col("id").alias("user_idx"), F.col("features").alias("_w")
        )
        items = self.item_factors_.select(  # type: ignore[union-attr]
            F.col("id").alias("item_idx"), F.col("features").alias("_x")
        )
        joined = pairs.join(users, "user_idx", "left").join(items, "item_idx", "left")
        score = F.when(F.col("_x").isNull(), F.lit(None)).otherwise(
            F.coalesce(dot(F.col("_w"), F.col("_x")), F.lit(0.0))
        )
        return joined.withColumn("prediction", score.cast("float")).drop("_w", "_x")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"SparkImplicitALS({params})"


__all__ = ["SparkCollaborativeFiltering", "SparkImplicitALS", "dot"]
