"""Data-parallel training of :class:`palate.TwoTower` launched by Spark's ``TorchDistributor``.

The towers are trained by ``num_processes`` PyTorch processes that Spark starts (with
``torchrun``), each on its shard of the Parquet training split that
:func:`palate.spark.write_prepared` wrote, averaging gradients over the processes with
``torch.distributed`` (gloo on CPU, NCCL on GPUs) — see
:mod:`palate.models.two_tower.distributed` for what each process does. The driver prepares
the model (vocabularies, feature encoders, initial weights, the seen-items matrix it serves
with) and loads the trained weights back: the result is a plain :class:`palate.TwoTower` that
:func:`palate.save`, ``palate recommend`` and ``palate serve`` use as they are.
"""

from __future__ import annotations

import contextlib
import io
import logging
from os import PathLike
from typing import Any

from pyspark.sql import SparkSession

from palate.data.features import ItemFeatures, UserFeatures
from palate.errors import ConfigError, DataError
from palate.models.two_tower import TwoTower
from palate.models.two_tower.distributed import finish, plan_shards, train_process

logger = logging.getLogger(__name__)


class _LogLines(io.TextIOBase):
    """A text stream that logs each line written to it (at DEBUG)."""

    def __init__(self) -> None:
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        for line in lines:
            if line.strip():
                logger.debug("training process: %s", line)
        return len(text)


def train_two_tower(
    spark: SparkSession,
    prepared: str | PathLike[str],
    *,
    user_features: UserFeatures | None = None,
    item_features: ItemFeatures | None = None,
    prepared_features: bool = True,
    num_processes: int = 2,
    local_mode: bool = True,
    use_gpu: bool = False,
    **options: Any,
) -> TwoTower:
    """Train a :class:`palate.TwoTower` on prepared data with ``num_processes`` data-parallel
    PyTorch processes started by ``pyspark.ml.torch.distributor.TorchDistributor``.

    Each of the W processes reads rows ``[r n / W, (r + 1) n / W)`` of the training split and
    trains a replica of both towers on them with a batch of ``batch_size / W``; the gradients
    are averaged over the processes after every backward pass, so each step is the step one
    process would take on a batch of ``batch_size``, and the replicas stay identical (checked
    at the end). The internal validation split and early stopping are those of
    :meth:`TwoTower.fit` (validation metrics reduced over all the shards).

    Parameters
    ----------
    spark : SparkSession
        The session TorchDistributor runs in.
    prepared : path
        A directory written by :func:`palate.spark.write_prepared`, on a file system every
        process can read (local in local mode; a shared mount on a cluster).
    user_features, item_features : UserFeatures, ItemFeatures, optional
        Attributes, as for :meth:`TwoTower.fit`.
    prepared_features : bool
        Also feed the towers the prepared directory's feature columns (counts, mean ratings,
        genre indicators computed on Spark) as numeric features. They were computed on the
        whole train split, validation events included.
    num_processes : int
        Training processes (W).
    local_mode : bool
        ``True``: the processes run on the driver machine; ``False``: in Spark tasks (a
        barrier stage) on the executors.
    use_gpu : bool
        One GPU per process (set ``device="cuda"`` too).
    **options
        :class:`palate.TwoTower` hyperparameters (``embedding_size``, ``epochs``,
        ``batch_size``, ``learning_rate``, ``objective``, ...).

    Returns
    -------
    TwoTower
        Fitted; ``history_`` holds the per-epoch loss averaged over the processes.

    Examples
    --------
    >>> ps.write_prepared("prepared", train, test,
    ...                   item_features=ps.item_features(train))    # doctest: +SKIP
    >>> model = ps.train_two_tower(spark, "prepared", epochs=5, num_processes=4)  # doctest: +SKIP
    >>> palate.save(model, "models/towers")                             # doctest: +SKIP
    """
    from pyspark.ml.torch.distributor import TorchDistributor

    if isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1:
        raise ConfigError(f"num_processes must be a positive integer, got {num_processes!r}")
    model = TwoTower(**options)
    if use_gpu != model.config.device.startswith("cuda"):
        raise ConfigError(
            "use_gpu=True needs device='cuda' and device='cuda' needs use_gpu=True "
            f"(got use_gpu={use_gpu}, device={model.config.device!r})"
        )
    job = plan_shards(
        model,
        prepared,
        user_features=user_features,
        item_features=item_features,
        prepared_features=prepared_features,
    )
    if job.n_events < num_processes:
        raise DataError(
            f"{job.n_events} training events cannot be shared by {num_processes} processes; "
            "use fewer processes"
        )
    logger.info(
        "training two towers on %d events with %d processes (%s)",
        job.n_events, num_processes, "local" if local_mode else "Spark tasks",
    )
    if SparkSession.getActiveSession() is None:
        raise ConfigError("TorchDistributor needs an active SparkSession; start one first")
    distributor = TorchDistributor(
        num_processes=num_processes, local_mode=local_mode, use_gpu=use_gpu
    )
    # TorchDistributor copies the processes' output to sys.stdout: send it to the log
    with contextlib.redirect_stdout(_LogLines()):
        result = distributor.run(train_process, job, "nccl" if use_gpu else "gloo")
    if not isinstance(result, dict) or result.get("world_size") != num_processes:
        raise DataError(f"the training processes returned no model ({type(result).__name__})")
    finish(model, result)
    model.training_processes_ = {  # type: ignore[attr-defined]
        "world_size": result["world_size"],
        "shard_sizes": result["shard_sizes"],
        "replica_checksums": result["replica_checksums"],
    }
    return model


__all__ = ["train_two_tower"]
