"""Data-parallel training of the two towers with ``torch.distributed``.

Every process runs :func:`palate.models.two_tower.training.train_towers` — the same loop as
:meth:`TwoTower.fit` — on its own shard of the training events, with a replica of both towers:

- the driver runs :meth:`TwoTower.prepare_fit` once (vocabularies, derived features and
  encoders, initial weights) and sends the processes a small :class:`ShardJob` (encoded
  feature rows and initial weights, no events);
- process r of W reads rows ``[r n / W, (r + 1) n / W)`` of the Parquet training split (only
  the row groups that hold them) and drops the events of the internal validation split (the
  same events :meth:`TwoTower.fit` holds out, see
  :func:`~palate.models.two_tower.training.held_out`);
- after every backward pass the gradients are averaged over the processes with one
  all-reduce (what ``DistributedDataParallel`` does), so every replica takes the same Adam
  step: with a per-process batch of ``batch_size / W`` the step is that of one process on a
  batch of ``batch_size`` (the mean loss over the union of the W local batches);
- every process takes the same number of steps per epoch (a shorter shard wraps around);
  epoch losses and validation metrics are reduced over the processes, so early stopping
  stops every process at the same epoch.

The replicas end with identical weights; each process returns them with checksums of every
replica (all-gathered) so the caller can check that they agree, and the driver loads them
into its model (:meth:`TwoTower.load_tower_weights`, :meth:`TwoTower.finish_fit`). The
processes build no model: they train two towers with the functions of
:mod:`palate.models.two_tower.training` and :mod:`palate.models.two_tower.towers`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from palate.data.features import ItemFeatures, UserFeatures
from palate.data.prepared import PreparedData, read_prepared
from palate.data.vocabulary import Vocabulary
from palate.errors import DataError, PalateError

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from palate.models.two_tower.model import TwoTower
    from palate.models.two_tower.training import Events

logger = logging.getLogger(__name__)

EVENT_COLUMNS = ("user_idx", "item_idx", "value")


@dataclass(frozen=True)
class ShardJob:
    """What every training process needs besides its shard of the events.

    Attributes
    ----------
    params : dict
        ``TwoTower.get_params()``.
    events_path : str
        The Parquet training split (``DIR/interactions/split=train`` of prepared data), a path
        every process can read.
    n_events : int
        Its number of rows.
    kind : str
        ``"explicit"`` or ``"binary"``.
    rating_scale : (low, high) or None
    seed : int
        Of the validation split and the shuffling (process r shuffles with ``seed + r``).
    held_fraction : float or None
        Share of the events held out for early stopping, or None for no validation.
    user_inputs, item_inputs : ndarray of float32
        The encoded feature rows of the users and items of the training data (the rows the
        events index; their number is that of the towers' id embeddings).
    log_q : ndarray or None
        Log item frequencies (retrieval objective).
    initial_weights : dict of str -> ndarray
        Both towers' starting weights (``user_tower.<name>``, ``item_tower.<name>``).
    cold_columns : dict of str -> (ndarray of bool, ndarray of float32)
        Per side ("user", "item"): the derived columns and their no-history values, for
        cold-start dropout (absent: the side has no derived columns).
    """

    params: dict[str, Any]
    events_path: str
    n_events: int
    kind: str
    rating_scale: tuple[float, float] | None
    seed: int
    held_fraction: float | None
    user_inputs: np.ndarray
    item_inputs: np.ndarray
    log_q: np.ndarray | None
    initial_weights: dict[str, np.ndarray]
    cold_columns: dict[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(
        default_factory=dict
    )


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of process ``rank``: ``[r n / W, (r + 1) n / W)``."""
    return rank * n // world_size, (rank + 1) * n // world_size


def read_rows(path: str, start: int, stop: int) -> dict[str, np.ndarray]:
    """Rows ``start .. stop − 1`` of a Parquet dataset (in the order ``read_prepared`` reads
    it), reading only the row groups that hold them.

    Returns
    -------
    dict
        ``user_idx``, ``item_idx`` (int64) and ``value`` (float64) arrays.
    """
    try:
        dataset = ds.dataset(path, format="parquet")
        pieces: list[pa.Table] = []
        offset = 0
        for fragment in dataset.get_fragments():
            if offset >= stop:
                break
            fragment.ensure_complete_metadata()
            for group in fragment.split_by_row_group():
                # (count_rows() of a row-group fragment counts the whole file)
                size = sum(info.num_rows for info in group.row_groups)
                low, high = max(start, offset), min(stop, offset + size)
                if low < high:
                    table = group.to_table(columns=list(EVENT_COLUMNS))
                    pieces.append(table.slice(low - offset, high - low))
                offset += size
                if offset >= stop:
                    break
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path} as Parquet: {exc}") from exc
    if pieces:
        table = pa.concat_tables(pieces)
        return {
            "user_idx": table["user_idx"].to_numpy().astype(np.int64),
            "item_idx": table["item_idx"].to_numpy().astype(np.int64),
            "value": table["value"].to_numpy().astype(np.float64),
        }
    return {c: np.zeros(0, np.float64 if c == "value" else np.int64) for c in EVENT_COLUMNS}


class AllReduceGradients:
    """Averages gradients and scalars over the processes of the default process group (one
    all-reduce of all gradients flattened into one buffer per step)."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size

    def gradients(self, params: list[torch.nn.Parameter]) -> None:
        import torch
        import torch.distributed as dist

        grads = []
        for p in params:
            if p.grad is None:  # keep the buffer layout the same in every process
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        return self.sum(value) / self.world_size

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        total = value.detach().clone()
        dist.all_reduce(total)
        return total

    def max(self, value: int) -> int:
        import torch
        import torch.distributed as dist

        top = torch.tensor([value], dtype=torch.long)
        dist.all_reduce(top, op=dist.ReduceOp.MAX)
        return int(top.item())

    def gather(self, value: torch.Tensor) -> list[torch.Tensor]:
        import torch
        import torch.distributed as dist

        out = [torch.zeros_like(value) for _ in range(self.world_size)]
        dist.all_gather(out, value)
        return out


def _combine(
    metrics: dict[str, float], n: int, sync: AllReduceGradients | None
) -> dict[str, float]:
    """Validation metrics of every process's events combined into those of all the events:
    RMSE from the sum of squares, the others as means weighted by event counts."""
    if sync is None:
        return metrics
    import torch

    names = sorted(metrics)
    local = [n * (metrics[k] ** 2 if k.endswith("rmse") else metrics[k]) if n else 0.0
             for k in names]
    totals = sync.sum(torch.tensor([*local, float(n)], dtype=torch.float64)).tolist()
    count = max(totals[-1], 1.0)
    return {
        k: float(np.sqrt(v / count)) if k.endswith("rmse") else v / count
        for k, v in zip(names, totals[:-1], strict=True)
    }


def train_process(job: ShardJob, backend: str = "gloo") -> dict[str, Any]:
    """Train on this process's shard; the body each data-parallel process runs.

    Joins the process group of ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ...
    in the environment) when there is more than one process; with one process it trains
    exactly as :meth:`TwoTower.fit` does on the same events.

    Returns
    -------
    dict
        ``weights`` (both towers, as :meth:`TwoTower.tower_weights` names them), ``history``,
        ``replica_checksums`` (per process: the sum and the sum of squares of its weights),
        ``shard_sizes`` (training events per process) and ``world_size``.
    """
    import torch
    import torch.distributed as dist

    from palate.models.two_tower.config import TwoTowerConfig
    from palate.models.two_tower.towers import load_tower_arrays, make_tower, tower_arrays
    from palate.models.two_tower.training import (
        Targets,
        held_out,
        to_events,
        tower_inputs,
        train_towers,
        validation_metrics,
    )

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    joined = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend)
        joined = True
    try:
        rank = dist.get_rank() if world_size > 1 else 0
        sync = AllReduceGradients(world_size) if world_size > 1 else None
        config = TwoTowerConfig(**job.params)
        device = torch.device(config.device)
        user_tower = make_tower(config, job.user_inputs.shape[1], len(job.user_inputs))
        item_tower = make_tower(config, job.item_inputs.shape[1], len(job.item_inputs), "item")
        load_tower_arrays(user_tower, item_tower, job.initial_weights, device)
        targets = Targets(config.objective, job.rating_scale)

        start, stop = shard_bounds(job.n_events, rank, world_size)
        rows = read_rows(job.events_path, start, stop)
        if len(rows["value"]) != stop - start:
            raise DataError(
                f"{job.events_path} holds fewer rows than the {job.n_events} announced"
            )
        held = np.zeros(stop - start, dtype=bool)
        if job.held_fraction is not None:
            held = held_out(job.seed, job.held_fraction, start, stop)

        def events(mask: np.ndarray) -> Events:
            examples = targets(
                rows["user_idx"][mask], rows["item_idx"][mask], rows["value"][mask], job.kind
            )
            return to_events(examples, device)

        train_events = events(~held)
        epoch_size = len(train_events) if sync is None else sync.max(len(train_events))
        if epoch_size == 0:
            raise DataError("no training events in any shard; pass more data")
        inputs = tower_inputs(
            job.user_inputs, job.item_inputs, device, job.log_q, job.cold_columns
        )
        settings = config.loop_settings()
        if world_size > 1:
            settings = dataclasses.replace(
                settings, batch_size=max(1, settings.batch_size // world_size)
            )
        evaluate = None
        if job.held_fraction is not None:
            val = events(held)
            n_val = len(val)
            total_val = n_val if sync is None else int(sync.sum(torch.tensor(n_val)).item())
            if total_val:

                def evaluate() -> dict[str, float]:
                    local = (
                        validation_metrics(
                            user_tower, item_tower, inputs, val, settings, job.rating_scale
                        )
                        if n_val else {}
                    )
                    if not local:  # this shard holds no validation events: still reduce
                        local = {_VALIDATION_METRIC[settings.objective]: 0.0}
                    return _combine(local, n_val, sync)

        history = train_towers(
            user_tower,
            item_tower,
            inputs,
            train_events,
            settings,
            torch.Generator().manual_seed(job.seed + rank),
            evaluate=evaluate,
            sync=sync,
            epoch_size=epoch_size,
        )
        weights = tower_arrays(user_tower, item_tower)
        flat = np.concatenate([w.reshape(-1).astype(np.float64) for w in weights.values()])
        mine = torch.tensor([flat.sum(), (flat**2).sum()], dtype=torch.float64)
        sizes = torch.tensor([len(train_events)], dtype=torch.long)
        if sync is not None:
            checksums = [c.tolist() for c in sync.gather(mine)]
            shard_sizes = [int(s.item()) for s in sync.gather(sizes)]
        else:
            checksums, shard_sizes = [mine.tolist()], [len(train_events)]
        logger.info("process %d of %d: %d training events", rank, world_size, len(train_events))
        return {
            "weights": weights,
            "history": history,
            "replica_checksums": checksums,
            "shard_sizes": shard_sizes,
            "world_size": world_size,
        }
    finally:
        if joined:
            dist.destroy_process_group()


def _with_prepared(
    given: Any, frame: pd.DataFrame | None, vocabulary: Vocabulary, cls: type[Any]
) -> Any:
    """Feature table ``given`` (or none) plus the numeric columns of a prepared feature frame
    (indexed by vocabulary index); a prepared column named like a given one is left out."""
    if frame is None:
        return given
    ids = vocabulary.ids
    prepared = frame.reindex(range(len(ids))).reset_index(drop=True)
    columns: dict[str, str] = dict(given.columns) if given is not None else {}
    merged = given.rows(ids).reset_index(drop=True) if given is not None else None
    extra = [c for c in prepared.columns if c not in columns]
    table = prepared[extra] if merged is None else merged.join(prepared[extra])
    columns.update({c: "numeric" for c in extra})
    table.insert(0, cls.default_id_column, ids)
    return cls(table, columns)


def plan_shards(
    model: TwoTower,
    prepared: str | PathLike[str],
    *,
    user_features: UserFeatures | None = None,
    item_features: ItemFeatures | None = None,
    prepared_features: bool = True,
) -> ShardJob:
    """Prepare ``model`` on the driver and describe the work of the training processes.

    Reads the prepared data (:func:`palate.data.prepared.read_prepared`), runs
    :meth:`TwoTower.prepare_fit` on the train split (the model then holds its vocabularies,
    encoders, serving data and initial weights), and returns the :class:`ShardJob` every
    process gets.

    Parameters
    ----------
    prepared_features : bool
        Add the prepared directory's feature columns (computed on Spark, e.g. counts, mean
        ratings, genre indicators) to the towers' inputs as numeric features.
    """
    root = Path(prepared)
    data: PreparedData = read_prepared(root)
    train = data.train
    if prepared_features:
        user_features = _with_prepared(user_features, data.user_features, train.users,
                                       UserFeatures)
        item_features = _with_prepared(item_features, data.item_features, train.items,
                                       ItemFeatures)
    plan = model.prepare_fit(train, user_features=user_features, item_features=item_features)
    inputs = plan.inputs
    return ShardJob(
        params=model.get_params(),
        events_path=str(root / "interactions" / "split=train"),
        n_events=len(train),
        kind=train.kind,
        rating_scale=plan.targets.rating_scale,
        seed=plan.seed,
        held_fraction=model.config.validation_fraction if plan.held is not None else None,
        user_inputs=inputs.users.cpu().numpy(),
        item_inputs=inputs.items.cpu().numpy(),
        log_q=None if inputs.log_q is None else inputs.log_q.cpu().numpy(),
        initial_weights=model.tower_weights(),
        cold_columns={
            side: (c.mask.cpu().numpy(), c.values.cpu().numpy())
            for side, c in (("user", inputs.user_cold), ("item", inputs.item_cold))
            if c is not None
        },
    )


def finish(model: TwoTower, result: dict[str, Any]) -> TwoTower:
    """Load what :func:`train_process` returned into the model :func:`plan_shards` prepared.

    Raises
    ------
    PalateError
        The processes' replicas ended with different weights (the gradients were not
        averaged in step).
    """
    checksums = np.asarray(result["replica_checksums"], dtype=np.float64)
    spread = np.abs(checksums - checksums[0]).max(initial=0.0)
    if spread > 1e-9 * max(1.0, float(np.abs(checksums[0]).max())):
        raise PalateError(
            f"the {len(checksums)} training processes ended with different weights "
            f"(checksums {checksums.tolist()}); every process must run the same steps"
        )
    model.load_tower_weights(result["weights"])
    return model.finish_fit(result["history"])


_VALIDATION_METRIC = {"ratings": "val_rmse", "binary": "val_logloss", "retrieval": "val_loss"}


__all__ = [
    "AllReduceGradients",
    "ShardJob",
    "finish",
    "plan_shards",
    "read_rows",
    "shard_bounds",
    "train_process",
]
