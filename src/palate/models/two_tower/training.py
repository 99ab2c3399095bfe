"""The training loop of the two-tower model: mini-batches gathered by index, Adam, early
stopping on a validation split.

Every feature row is encoded once before training into two dense matrices (users x features,
items x features); a mini-batch is a slice of a per-epoch permutation of the training events,
and its inputs are gathered from those matrices with ``index_select`` — no Python work per
example.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import scipy.special
import torch

from palate.data.interactions import Interactions
from palate.models.two_tower.losses import binary_loss, ratings_loss, retrieval_loss
from palate.models.two_tower.manual import (
    PAIR_OBJECTIVES,
    FlatAdam,
    FlatParameters,
    ManualTower,
    pair_head,
)
from palate.models.two_tower.towers import Tower, l2_normalise

logger = logging.getLogger(__name__)

Callback = Callable[[int, dict[str, float]], None]


@dataclass
class Events:
    """Training (or validation) events as tensors: user and item rows, targets."""

    user_idx: torch.Tensor
    item_idx: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.user_idx)


@dataclass
class Batch:
    """One mini-batch of (user row, item row, target) and what the training loop drew for it.

    ``user_ids`` / ``item_ids``: the id embedding rows (default ``u`` / ``i``; id dropout
    replaces some by the "no id" row). ``user_drop`` / ``item_drop`` (bool, one per
    example) mark the examples whose derived features are replaced by their cold values
    (cold-start dropout). ``negatives``: item rows drawn uniformly, extra negatives of the
    retrieval objective (``negative_drop``: their cold-start dropout).
    """

    u: torch.Tensor
    i: torch.Tensor
    t: torch.Tensor
    user_ids: torch.Tensor | None = None
    item_ids: torch.Tensor | None = None
    user_drop: torch.Tensor | None = None
    item_drop: torch.Tensor | None = None
    negatives: torch.Tensor | None = None
    negative_drop: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.negatives is not None and len(self.negatives) == 0:
            self.negatives = self.negative_drop = None

    def item_rows(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """What the item tower reads: the batch's item rows followed by the extra
        negatives', their id embedding rows, and their cold-start dropout marks (None when
        no example is marked)."""
        rows = self.i
        ids = self.i if self.item_ids is None else self.item_ids
        drop = self.item_drop
        if self.negatives is None:
            return rows, ids, drop
        if drop is not None or self.negative_drop is not None:
            unmarked = [torch.zeros(len(x), dtype=torch.bool, device=x.device)
                        for x in (self.i, self.negatives)]
            drop = torch.cat([unmarked[0] if drop is None else drop,
                              unmarked[1] if self.negative_drop is None else self.negative_drop])
        return (torch.cat([rows, self.negatives]), torch.cat([ids, self.negatives]), drop)


@dataclass
class TowerInputs:
    """The encoded feature matrices the towers read, one row per known user / item."""

    users: torch.Tensor
    items: torch.Tensor
    log_q: torch.Tensor | None = None  # log item frequencies (retrieval objective)
    user_cold: ColdColumns | None = None  # derived user columns and their no-history values
    item_cold: ColdColumns | None = None


@dataclass
class ColdColumns:
    """Which encoded columns are derived from ratings, and their values for a row with no
    history (the cold row), both of the encoded width."""

    mask: torch.Tensor  # bool, (width,)
    values: torch.Tensor  # float32, (width,)

    def apply(self, x: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
        """``x`` with the derived columns of the rows where ``drop`` is set replaced by
        their cold values: ``x'[r, c] = cold[c]`` if ``drop[r]`` and ``mask[c]``."""
        replace = drop[:, None] & self.mask[None, :]
        return torch.where(replace, self.values[None, :], x)

    def __post_init__(self) -> None:
        columns = self.mask.nonzero().squeeze(1)
        self._columns = columns
        # derived columns side by side (the usual layout): one slice, written in place
        first, end = (int(columns[0]), int(columns[-1]) + 1) if len(columns) else (0, 0)
        self._span = slice(first, end) if end - first == len(columns) else None

    def apply_(self, x: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
        """:meth:`apply` in place on ``x`` (only the derived columns are written)."""
        if self._span is not None:
            part = x[:, self._span]
            torch.where(drop[:, None], self.values[self._span], part, out=part)
            return x
        rows = drop.nonzero().squeeze(1)
        if len(rows):
            x.index_put_((rows[:, None], self._columns[None, :]), self.values[self._columns])
        return x


@dataclass(frozen=True)
class LoopSettings:
    objective: str
    epochs: int
    batch_size: int
    learning_rate: float
    reg: float
    temperature: float
    id_dropout: float
    early_stopping: int | None
    derived_dropout: tuple[float, float] = (0.0, 0.0)  # cold-start dropout: (users, items)
    compile: bool = False
    uniform_negatives: int = 0  # retrieval: items drawn uniformly as extra negatives
    log_q_correction: bool = True  # retrieval: subtract the log sampling frequency


@dataclass(frozen=True)
class Targets:
    """How events become the training examples of an objective: (user row, item row, target).

    ratings: every event, the rating scaled to [−1, 1], ``t = 2 (y − low) / (high − low) − 1``;
    binary: every event, its 0/1 label; retrieval: the positive events (every event of
    explicit data, the 1 labels of binary data), target 1.
    """

    objective: str
    rating_scale: tuple[float, float] | None = None

    def __call__(
        self, user_idx: np.ndarray, item_idx: np.ndarray, values: np.ndarray, kind: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(user rows, item rows, targets) of events in index form; ``kind`` is the data's
        (``"explicit"`` or ``"binary"``)."""
        u = np.asarray(user_idx).astype(np.int64)
        i = np.asarray(item_idx).astype(np.int64)
        y = np.asarray(values).astype(np.float64)
        if self.objective == "ratings":
            return u, i, self.scaled(y)
        if self.objective == "binary":
            return u, i, y
        keep = y > 0 if kind == "binary" else np.ones(len(y), dtype=bool)
        return u[keep], i[keep], np.ones(int(keep.sum()))

    def of(self, data: Interactions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The examples of every event of ``data``."""
        return self(data.user_idx, data.item_idx, data.values, data.kind)

    def scaled(self, y: np.ndarray) -> np.ndarray:
        """Ratings scaled to [−1, 1]."""
        low, high = self.scale
        return 2.0 * (y - low) / (high - low) - 1.0

    @property
    def scale(self) -> tuple[float, float]:
        """The rating scale (ratings objective)."""
        if self.rating_scale is None:
            raise ValueError("the ratings objective needs a rating scale")
        return self.rating_scale


def to_events(
    parts: tuple[np.ndarray, np.ndarray, np.ndarray], device: torch.device
) -> Events:
    """(user rows, item rows, targets) arrays as :class:`Events` on ``device``."""
    return Events(
        torch.as_tensor(parts[0], dtype=torch.long).to(device),
        torch.as_tensor(parts[1], dtype=torch.long).to(device),
        torch.as_tensor(parts[2], dtype=torch.float32).to(device),
    )


def log_frequencies(item_idx: np.ndarray, n_items: int) -> np.ndarray:
    """``log q(i)``, the log share of the training examples that hold item i (at least one
    count), float32 (n_items,): the sampling correction of the retrieval loss."""
    counts = np.bincount(item_idx, minlength=n_items).astype(np.float64)
    return np.log(np.maximum(counts, 1.0) / max(len(item_idx), 1)).astype(np.float32)


def tower_inputs(
    users: np.ndarray,
    items: np.ndarray,
    device: torch.device,
    log_q: np.ndarray | None = None,
    cold: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> TowerInputs:
    """:class:`TowerInputs` on ``device`` from encoded rows (float32), the log item
    frequencies and, per side (``"user"``, ``"item"``), the mask of the derived columns and
    their no-history values (a side without derived columns is left out)."""
    columns = {
        side: ColdColumns(torch.as_tensor(mask).to(device), torch.as_tensor(values).to(device))
        for side, (mask, values) in (cold or {}).items()
        if mask.any()
    }
    return TowerInputs(
        torch.as_tensor(users).to(device),
        torch.as_tensor(items).to(device),
        None if log_q is None else torch.as_tensor(log_q, dtype=torch.float32).to(device),
        columns.get("user"),
        columns.get("item"),
    )


def held_out(seed: int, fraction: float, start: int, stop: int) -> np.ndarray:
    """Which events ``start .. stop − 1`` the internal validation split holds out: those whose
    draw ``u < fraction``, the draws being the first ``stop`` numbers of
    ``numpy.random.default_rng(seed).random`` (computed for the range alone, so a process
    reading one shard of the events marks the same events as :meth:`TwoTower.fit`)."""
    bits = np.random.PCG64(seed)  # what default_rng(seed) draws from
    bits.advance(start)  # one 64-bit draw per number
    return np.random.Generator(bits).random(stop - start) < fraction


def validation_split(
    data: Interactions, seed: int, fraction: float
) -> tuple[Interactions, np.ndarray | None, Interactions | None]:
    """The internal validation split of :meth:`TwoTower.fit`: (the events the weights are
    fitted on, the held-out mask :func:`held_out` draws, the held-out events); no split
    (``data, None, None``) where it would hold out nothing or everything."""
    held = held_out(seed, fraction, 0, len(data))
    if held.any() and not held.all():
        return data.subset(np.flatnonzero(~held)), held, data.subset(np.flatnonzero(held))
    return data, None, None


@dataclass(frozen=True)
class TrainingPlan:
    """Everything the training loop needs, as :meth:`TwoTower.prepare_fit
    <palate.models.two_tower.model.TwoTower.prepare_fit>` hands it over.

    :meth:`train` runs :func:`train_towers` over the plan (what ``fit`` does); training done
    elsewhere hands its weights to ``load_tower_weights``. Either way ``finish_fit(history)``
    then makes the model serve.

    Attributes
    ----------
    seed : int
        Of the validation split and the shuffling (``config.seed``, or one drawn at random).
    fitting : Interactions
        The events the weights are fitted on (the training events less the internal
        validation split).
    held : ndarray of bool or None
        Which training events the internal validation split holds out (``held_out(seed,
        validation_fraction, 0, n)``); None without an internal split.
    inputs : TowerInputs
        The encoded rows of the users and items of the training data (the first rows of the
        catalogue), log item frequencies (retrieval) and the derived columns' no-history
        values (cold-start dropout), on the model's device.
    settings : LoopSettings
    targets : Targets
        How events become examples (what :attr:`events` holds for ``fitting``).
    user_tower, item_tower : Tower
        The model's towers (``user_tower_``, ``item_tower_``) with their initial weights.
    validation : Events or None
        The examples early stopping watches (:attr:`evaluate`), or None.
    device : torch.device
    """

    seed: int
    fitting: Interactions
    held: np.ndarray | None
    inputs: TowerInputs
    settings: LoopSettings
    targets: Targets
    user_tower: Tower
    item_tower: Tower
    validation: Events | None
    device: torch.device

    @functools.cached_property
    def events(self) -> Events:
        """The training examples of :attr:`fitting`, on the device (made when first read)."""
        return to_events(self.targets.of(self.fitting), self.device)

    @property
    def evaluate(self) -> Callable[[], dict[str, float]] | None:
        """The validation metrics of the towers' current weights, or None (no validation
        examples)."""
        if self.validation is None or len(self.validation) == 0:
            return None
        return functools.partial(
            validation_metrics, self.user_tower, self.item_tower, self.inputs, self.validation,
            self.settings, self.targets.rating_scale,
        )

    def train(self, callback: Callback | None = None) -> list[dict[str, float]]:
        """Train both towers on :attr:`events` (shuffled by a generator seeded with
        :attr:`seed`, early stopping on :attr:`evaluate`); return the per-epoch history."""
        return train_towers(
            self.user_tower, self.item_tower, self.inputs, self.events, self.settings,
            torch.Generator().manual_seed(self.seed), evaluate=self.evaluate, callback=callback,
        )


def validation_metrics(
    user_tower: Tower,
    item_tower: Tower,
    inputs: TowerInputs,
    val: Events,
    settings: LoopSettings,
    rating_scale: tuple[float, float] | None,
) -> dict[str, float]:
    """The validation metric of the objective on ``val``: ``val_rmse`` (on the rating scale,
    predictions clipped to it), ``val_logloss`` or ``val_loss`` (the retrieval loss over
    batches of ``batch_size``)."""
    with torch.no_grad():
        if settings.objective == "retrieval":
            total, n = 0.0, 0
            for start in range(0, len(val), settings.batch_size):
                sel = slice(start, start + settings.batch_size)
                loss = batch_loss(
                    user_tower, item_tower, inputs,
                    Batch(val.user_idx[sel], val.item_idx[sel], val.targets[sel]), settings,
                )
                total += float(loss) * len(val.user_idx[sel])
                n += len(val.user_idx[sel])
            return {"val_loss": total / max(n, 1)}
        v_u = user_tower(inputs.users.index_select(0, val.user_idx), val.user_idx)
        v_m = item_tower(inputs.items.index_select(0, val.item_idx), val.item_idx)
        s = (v_u * v_m).sum(1).double().cpu().numpy()
    t = val.targets.double().cpu().numpy()
    if settings.objective == "ratings":
        low, high = Targets("ratings", rating_scale).scale
        half = (high - low) / 2
        return {"val_rmse": float(np.sqrt(np.mean(((np.clip(s, -1, 1) - t) * half) ** 2)))}
    p = np.clip(scipy.special.expit(s / settings.temperature), 1e-7, 1 - 1e-7)
    return {"val_logloss": float(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)))}


class GradientSync(Protocol):
    """How a data-parallel process keeps its replica in step with the others (see
    :mod:`palate.models.two_tower.distributed`)."""

    def gradients(self, params: list[torch.nn.Parameter]) -> None:
        """Replace every gradient by its mean over the processes (after ``backward``)."""

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar over the processes."""


def batch_features(
    inputs: TowerInputs, batch: Batch
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The encoded rows the towers read for one batch: (users, items, extra negatives or
    None), the derived columns of the examples the batch marks for cold-start dropout
    replaced by their cold values."""
    x_u = inputs.users.index_select(0, batch.u)
    if batch.user_drop is not None and inputs.user_cold is not None:
        x_u = inputs.user_cold.apply(x_u, batch.user_drop)
    rows, _, drop = batch.item_rows()
    x_items = inputs.items.index_select(0, rows)
    if drop is not None and inputs.item_cold is not None:
        x_items = inputs.item_cold.apply(x_items, drop)
    n = len(batch.i)
    return x_u, x_items[:n], None if batch.negatives is None else x_items[n:]


def objective_loss(
    settings: LoopSettings,
    inputs: TowerInputs,
    v_u: torch.Tensor,
    v_m: torch.Tensor,
    i: torch.Tensor,
    t: torch.Tensor,
    v_n: torch.Tensor | None = None,
    negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    """The objective of ``settings`` on the tower outputs of one batch: user vectors ``v_u``,
    item vectors ``v_m`` of the items ``i``, targets ``t``, and (retrieval) the vectors
    ``v_n`` of the extra negatives ``negatives``."""
    if settings.objective == "ratings":
        return ratings_loss(v_u, v_m, t)
    if settings.objective == "binary":
        return binary_loss(v_u, v_m, t, settings.temperature)
    assert inputs.log_q is not None
    log_q = inputs.log_q.index_select(0, i)
    if v_n is None or negatives is None:
        if not settings.log_q_correction:
            log_q = torch.zeros_like(log_q)
        return retrieval_loss(v_u, v_m, i, log_q, settings.temperature)
    log_q_n = inputs.log_q.index_select(0, negatives)
    if settings.log_q_correction:
        log_q = mixed_log_q(log_q, len(i), len(negatives), len(inputs.log_q))
        log_q_n = mixed_log_q(log_q_n, len(i), len(negatives), len(inputs.log_q))
    else:
        log_q, log_q_n = torch.zeros_like(log_q), torch.zeros_like(log_q_n)
    return retrieval_loss(v_u, v_m, i, log_q, settings.temperature, v_n, negatives, log_q_n)


def batch_loss(
    user_tower: Tower, item_tower: Tower, inputs: TowerInputs, batch: Batch,
    settings: LoopSettings,
) -> torch.Tensor:
    """The objective on one batch, through autograd."""
    x_u, x_m, x_n = batch_features(inputs, batch)
    v_u = user_tower(x_u, batch.u if batch.user_ids is None else batch.user_ids)
    v_m = item_tower(x_m, batch.i if batch.item_ids is None else batch.item_ids)
    v_n = None if x_n is None else item_tower(x_n, batch.negatives)
    return objective_loss(settings, inputs, v_u, v_m, batch.i, batch.t, v_n, batch.negatives)


def manual_step(
    towers: tuple[ManualTower, ManualTower], inputs: TowerInputs, batch: Batch,
    settings: LoopSettings,
) -> torch.Tensor:
    """:func:`batch_loss` and its gradients by hand: the towers' passes of
    :mod:`~palate.models.two_tower.manual` (the item tower takes the batch's items and the
    extra negatives in one pass), the ratings and binary objectives and their gradient in
    one compiled pass (:func:`~palate.models.two_tower.manual.pair_head`, on the CPU), other
    objectives and devices through autograd from the tower outputs on.
    Writes the gradient of every tower parameter into its ``.grad`` and returns the loss
    (no graph). Run with gradient recording off."""
    users, items = towers
    u, i, t, negatives = batch.u, batch.i, batch.t, batch.negatives
    n = len(u)
    o_u = users.forward(inputs.users, u, u if batch.user_ids is None else batch.user_ids,
                        batch.user_drop, inputs.user_cold)
    o_items = items.forward(inputs.items, *batch.item_rows(), inputs.item_cold)
    if settings.objective in PAIR_OBJECTIVES and o_u.device.type == "cpu":
        grad_u = users.buffer("loss_grad", n, o_u.shape[1])
        grad_items = items.buffer("loss_grad", n, o_u.shape[1])
        loss = torch.tensor(pair_head(settings.objective, o_u, o_items, t,
                                      settings.temperature, grad_u, grad_items))
    else:  # autograd from the tower outputs on
        with torch.enable_grad():
            leaves = o_u.detach().requires_grad_(), o_items.detach().requires_grad_()
            v_u, v_items = l2_normalise(leaves[0]), l2_normalise(leaves[1])
            v_n = None if negatives is None else v_items[n:]
            loss = objective_loss(settings, inputs, v_u, v_items[:n], i, t, v_n, negatives)
            grad_u, grad_items = torch.autograd.grad(loss, leaves)
    # last in, first out: the item tower's activations are the ones still in cache
    items.backward(grad_items)
    users.backward(grad_u)
    return loss.detach()


def mixed_log_q(log_q: torch.Tensor, in_batch: int, uniform: int, n_items: int
                ) -> torch.Tensor:
    """``log(B q + B'/N)``: the log of an item's expected number of draws among ``in_batch``
    (B) positives drawn with frequencies q and ``uniform`` (B') items drawn uniformly from
    ``n_items`` (N)."""
    return torch.logaddexp(log_q + math.log(in_batch),
                           torch.full_like(log_q, math.log(uniform / n_items)))


def compiled_loss() -> Callable[..., torch.Tensor]:
    """:func:`batch_loss` compiled with ``torch.compile`` (``compile=True``).

    Compilation happens at the first call; if it fails there (no C++ compiler, an
    unsupported build), the loss is computed uncompiled from then on, with a warning.
    """
    compiled = torch.compile(batch_loss)
    state: dict[str, Any] = {"loss": compiled, "checked": False}

    def loss(*args: Any) -> torch.Tensor:
        if state["checked"]:
            return state["loss"](*args)
        try:
            value = compiled(*args)
        except Exception as exc:  # any compiler failure: train without it
            logger.warning("torch.compile failed (%s: %s); training uncompiled",
                           type(exc).__name__, exc)
            state["loss"] = batch_loss
            value = batch_loss(*args)
        state["checked"] = True
        return value

    return loss


def make_optimizer(params: list[torch.nn.Parameter], settings: LoopSettings) -> torch.optim.Adam:
    """Adam; ``reg`` is its weight decay, the gradient of ``reg/2 ‖W‖²``."""
    try:
        return torch.optim.Adam(
            params, lr=settings.learning_rate, weight_decay=settings.reg, fused=True
        )
    except (RuntimeError, TypeError):  # no fused kernel for this device / build
        return torch.optim.Adam(
            params, lr=settings.learning_rate, weight_decay=settings.reg, foreach=True
        )


def _dropped(
    ids: torch.Tensor, rate: float, n_ids: int, generator: torch.Generator
) -> torch.Tensor:
    """Ids with a random share ``rate`` replaced by the "no id" row (trains the cold path)."""
    drop = torch.rand(ids.shape, generator=generator, device="cpu").to(ids.device) < rate
    return torch.where(drop, n_ids, ids)


def _drop_mask(n: int, rate: float, generator: torch.Generator, device: torch.device
               ) -> torch.Tensor:
    """A random share ``rate`` of ``n`` examples (drawn on the CPU generator)."""
    return (torch.rand(n, generator=generator, device="cpu") < rate).to(device)


def train_towers(
    user_tower: Tower,
    item_tower: Tower,
    inputs: TowerInputs,
    events: Events,
    settings: LoopSettings,
    generator: torch.Generator,
    evaluate: Callable[[], dict[str, float]] | None = None,
    callback: Callback | None = None,
    sync: GradientSync | None = None,
    epoch_size: int | None = None,
) -> list[dict[str, float]]:
    """Train both towers jointly; return the per-epoch history.

    With ``evaluate`` (validation metrics, lower is better for the first one) and
    ``settings.early_stopping``, training stops after that many epochs without improvement
    and the best epoch's weights are restored.

    Data-parallel training runs this loop in every process on that process's shard of the
    events, with ``sync`` averaging the gradients after each backward pass and the epoch
    losses, and ``epoch_size`` (the largest shard) making every process take the same number
    of steps: a shorter shard's permutation wraps around. ``evaluate`` must then return the
    same metrics in every process (so that early stopping agrees).
    """
    params = [p for tower in (user_tower, item_tower) for p in tower.parameters()]
    manual: tuple[ManualTower, ManualTower] | None = None
    optimizer: torch.optim.Optimizer | FlatAdam
    if settings.compile:
        loss_of_batch = compiled_loss()
        optimizer = make_optimizer(params, settings)
    else:  # the step by hand, every weight in one flat tensor
        flat = FlatParameters((user_tower, item_tower))
        params = [flat.flat]
        manual = (ManualTower(user_tower, flat), ManualTower(item_tower, flat))
        optimizer = FlatAdam(flat.flat, settings.learning_rate, settings.reg)
    n = len(events)
    steps = n if epoch_size is None else max(n, epoch_size)
    batch = settings.batch_size
    hybrid = user_tower.id_embedding is not None or item_tower.id_embedding is not None
    user_rate, item_rate = settings.derived_dropout
    history: list[dict[str, float]] = []
    best: tuple[float, int, list[dict[str, torch.Tensor]]] | None = None
    device = events.user_idx.device
    for epoch in range(1, settings.epochs + 1):
        user_tower.train()
        item_tower.train()
        order = torch.randperm(n, generator=generator)
        if epoch_size is not None and epoch_size > n:
            order = order.repeat(-(-epoch_size // max(n, 1)))[:epoch_size]
        order = order.to(device)
        u_all = events.user_idx.index_select(0, order)
        i_all = events.item_idx.index_select(0, order)
        t_all = events.targets.index_select(0, order)
        total = torch.zeros((), dtype=torch.float64, device=device)
        n_batches = 0
        # cold-start dropout of the epoch's examples, drawn at once
        user_drops = item_drops = None
        if user_rate > 0 and inputs.user_cold is not None:
            user_drops = _drop_mask(steps, user_rate, generator, device)
        if item_rate > 0 and inputs.item_cold is not None:
            item_drops = _drop_mask(steps, item_rate, generator, device)
        for start in range(0, steps, batch):
            u = u_all[start : start + batch]
            i = i_all[start : start + batch]
            t = t_all[start : start + batch]
            user_ids = item_ids = None
            if hybrid and settings.id_dropout > 0:
                user_ids = _dropped(u, settings.id_dropout, user_tower.n_ids, generator)
                item_ids = _dropped(i, settings.id_dropout, item_tower.n_ids, generator)
            user_drop = None if user_drops is None else user_drops[start : start + batch]
            item_drop = None if item_drops is None else item_drops[start : start + batch]
            negatives = negative_drop = None
            if settings.objective == "retrieval" and settings.uniform_negatives > 0:
                negatives = torch.randint(
                    len(inputs.items), (settings.uniform_negatives,), generator=generator
                ).to(device)
                if item_rate > 0 and inputs.item_cold is not None:
                    negative_drop = _drop_mask(len(negatives), item_rate, generator, device)
            batch_ = Batch(u, i, t, user_ids, item_ids, user_drop, item_drop, negatives,
                           negative_drop)
            if manual is not None:
                with torch.no_grad():
                    loss = manual_step(manual, inputs, batch_, settings)
            else:
                assert isinstance(optimizer, torch.optim.Optimizer)
                loss = loss_of_batch(user_tower, item_tower, inputs, batch_, settings)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            if sync is not None:
                sync.gradients(params)
            optimizer.step()
            total += loss.detach()
            n_batches += 1
        if sync is not None:
            total = sync.mean(total)
        metrics: dict[str, float] = {
            "epoch": float(epoch),
            "loss": float(total) / max(n_batches, 1),
        }
        if not math.isfinite(metrics["loss"]):
            from palate.errors import ConfigError

            raise ConfigError(
                f"training diverged at epoch {epoch} (loss {metrics['loss']}); lower the "
                "learning_rate"
            )
        if evaluate is not None:
            user_tower.eval()
            item_tower.eval()
            metrics.update(evaluate())
        history.append(metrics)
        logger.debug("epoch %d: %s", epoch, metrics)
        if callback is not None:
            callback(epoch, metrics)
        if evaluate is not None and settings.early_stopping is not None:
            score = next(v for k, v in metrics.items() if k.startswith("val_"))
            if best is None or score < best[0]:
                best = (score, epoch, [_copy_state(user_tower), _copy_state(item_tower)])
            elif epoch - best[1] >= settings.early_stopping:
                logger.info("early stopping at epoch %d (best %d)", epoch, best[1])
                break
    if best is not None:
        user_tower.load_state_dict(best[2][0])
        item_tower.load_state_dict(best[2][1])
    for p in (*user_tower.parameters(), *item_tower.parameters()):
        p.grad = None
    user_tower.eval()
    item_tower.eval()
    return history


def _copy_state(module: torch.nn.Module) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


__all__ = [
    "Batch",
    "ColdColumns",
    "Events",
    "GradientSync",
    "LoopSettings",
    "Targets",
    "TowerInputs",
    "TrainingPlan",
    "batch_features",
    "batch_loss",
    "held_out",
    "log_frequencies",
    "make_optimizer",
    "manual_step",
    "mixed_log_q",
    "objective_loss",
    "to_events",
    "tower_inputs",
    "train_towers",
    "validation_metrics",
    "validation_split",
]
