"""The training step of the towers written out by hand: the default loop's fast path.

A tower is a few dense layers on a batch of 1,024 rows; run through autograd, a training step
spends about as much time creating tensors, recording the graph and walking it as multiplying
matrices (a fresh 1 MB activation per layer, which glibc hands back to the system and faults
in again at the next step, and a dozen small operations for the normalisation and the
loss). Here the same step is written out once:

- :class:`FlatParameters` moves every weight of both towers into one flat tensor (each
  ``nn.Parameter`` keeps its name and shape as a view of it, so ``state_dict`` and the model
  files are unchanged) with a view of one flat gradient each, and :class:`FlatAdam` updates
  them all with one fused Adam call;
- :class:`ManualTower` runs the dense layers of a
  :class:`~palate.models.two_tower.towers.Tower` forward into buffers it keeps from step to
  step, and backward by the chain rule: for ``o_l = h_{l−1} W_lᵀ + b_l``,
  ``∂L/∂W_l = gᵀ h_{l−1}``, ``∂L/∂b_l = Σ_rows g``, ``∂L/∂h_{l−1} = g W_l`` masked where
  the ReLU gave 0; for the id embedding, the columns of ``∂L/∂x`` that came from it, added
  to the rows of the ids. Each activation carries a column of ones and each layer's
  ``[W | b]`` is one block, so a layer is one product forward (``[h | 1] [W | b]ᵀ``) and
  one for both its gradients (``gᵀ [h | 1]``);
- :func:`pair_head` takes the outputs ``o_u``, ``o_m`` of both towers to the loss of the
  ratings or binary objective and its gradient in one compiled pass over the rows (unit
  vectors ``v = o / ‖o‖``, ``s = v_u · v_m``, then ``∂L/∂o_u = ∂L/∂s (v_m − s v_u) / ‖o_u‖``
  and the mirror for ``o_m``); the retrieval objective goes through autograd on the tower
  outputs alone.

The formulas are those of :meth:`Tower.forward
<palate.models.two_tower.towers.Tower.forward>` and of the losses of
:mod:`~palate.models.two_tower.losses` (rounded in another order than autograd's); tests
check the loss and every gradient against autograd.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numba import njit
from torch import nn

from palate.models.two_tower.towers import NORM_EPS, Tower

if TYPE_CHECKING:
    from palate.models.two_tower.training import ColdColumns


#: Buffer rows are padded to a multiple of this many floats (64 bytes).
ROW_ALIGN = 16


class FlatParameters:
    """The parameters of ``modules`` as views into one flat tensor, and their gradients as
    views into one flat gradient.

    After construction every parameter's ``.data`` is a view of :attr:`flat` (its values
    unchanged) and its ``.grad`` a view of ``flat.grad``; an optimiser over ``[flat]`` updates
    every parameter at once. The weight and bias of each ``nn.Linear`` lie side by side as
    one (out, in + 1) block, ``[W | b]`` (:attr:`blocks`), so that one product with an input
    carrying a column of ones computes ``h Wᵀ + b`` and one product gives the gradient of
    both.
    """

    def __init__(self, modules: Iterable[nn.Module]) -> None:
        modules = list(modules)
        params = [p for module in modules for p in module.parameters()]
        if not params:
            raise ValueError("no parameters to flatten")
        first = params[0]
        total = sum(p.numel() for p in params)
        self.flat = nn.Parameter(torch.empty(total, dtype=first.dtype, device=first.device))
        flat_grad = self.flat.grad = torch.zeros_like(self.flat)
        #: ``[W | b]`` of each linear layer and its gradient block
        self.blocks: dict[nn.Linear, tuple[torch.Tensor, torch.Tensor]] = {}
        placed: set[int] = set()
        offset = 0

        def region(rows: int, columns: int) -> tuple[torch.Tensor, torch.Tensor]:
            nonlocal offset
            size = rows * columns
            values = self.flat.data[offset : offset + size].view(rows, columns)
            grads = flat_grad[offset : offset + size].view(rows, columns)
            offset += size
            return values, grads

        def place(p: torch.Tensor, values: torch.Tensor, grads: torch.Tensor) -> None:
            values.copy_(p.detach())
            p.data = values
            p.grad = grads
            placed.add(id(p))

        for module in modules:
            for layer in module.modules():
                if isinstance(layer, nn.Linear) and layer.bias is not None:
                    out, width = layer.weight.shape
                    block, grad_block = region(out, width + 1)
                    place(layer.weight, block[:, :width], grad_block[:, :width])
                    place(layer.bias, block[:, width], grad_block[:, width])
                    self.blocks[layer] = (block, grad_block)
        for p in params:
            if id(p) not in placed:
                values, grads = region(p.numel(), 1)
                place(p, values.view_as(p), grads.view_as(p))


class FlatAdam:
    """Adam (``torch.optim.adam.adam``, fused where the build has the kernel) on one flat
    parameter and its gradient: the update of :class:`torch.optim.Adam` with ``weight_decay``
    as the gradient of ``reg/2 ‖θ‖²``, without the per-step bookkeeping of an optimiser
    object (``torch.optim.Adam`` over the same flat tensor measured 334–357k against
    345–366k training examples/s in alternating fits)."""

    def __init__(self, flat: nn.Parameter, learning_rate: float, weight_decay: float) -> None:
        self.flat = flat
        self.exp_avg = torch.zeros_like(flat.data)
        self.exp_avg_sq = torch.zeros_like(flat.data)
        self.steps = torch.zeros((), dtype=torch.float32, device=flat.device)
        self.options: dict[str, Any] = {
            "amsgrad": False, "beta1": 0.9, "beta2": 0.999, "lr": learning_rate,
            "weight_decay": weight_decay, "eps": 1e-8, "maximize": False,
        }
        self.fused = True  # until the fused kernel turns out to be missing

    def step(self) -> None:
        """One Adam update of the flat parameter from its ``.grad``."""
        from torch.optim.adam import adam

        assert self.flat.grad is not None
        for fused in ((True, False) if self.fused else (False,)):
            try:
                adam([self.flat.data], [self.flat.grad], [self.exp_avg], [self.exp_avg_sq], [],
                     [self.steps], fused=fused, foreach=not fused, **self.options)
                return
            except (RuntimeError, TypeError):  # no fused kernel for this device / build
                if not fused:
                    raise
                self.fused = False


class ManualTower:
    """Forward and backward passes of the dense layers of one :class:`Tower`, by hand.

    :meth:`forward` returns the tower's outputs before the normalisation and keeps what
    :meth:`backward` needs; :meth:`backward` takes ``∂L/∂o`` and writes the gradient of every
    parameter of the tower into its ``.grad``. The tower's parameters must have been
    flattened by ``flat`` (its weight blocks are what the products read and write). Call
    both with gradient recording off (:func:`torch.no_grad`), forward then backward, once per
    step.
    """

    def __init__(self, tower: Tower, flat: FlatParameters) -> None:
        self.tower = tower
        self.linears: list[nn.Linear] = [m for m in tower.layers if isinstance(m, nn.Linear)]
        missing = [layer for layer in self.linears if layer not in flat.blocks]
        if missing:
            raise ValueError("the tower's parameters are not flattened by this FlatParameters")
        self.blocks = [flat.blocks[layer] for layer in self.linears]
        self._buffers: dict[str, torch.Tensor] = {}
        self._views: dict[tuple[str, int, int, bool], torch.Tensor] = {}
        self._activations: list[torch.Tensor] = []  # each with its column of ones
        self._rows: torch.Tensor | None = None

    def buffer(self, name: str, rows: int, width: int, ones: bool = False) -> torch.Tensor:
        """A (rows, width) float buffer of this tower's, kept from step to step (grown when
        a batch is larger); with ``ones``, (rows, width + 1) whose last column is 1 (written
        once: only the first ``width`` columns are for writing)."""
        key = (name, rows, width, ones)
        view = self._views.get(key)
        if view is not None:
            return view
        columns = width + 1 if ones else width
        # rows start on 64-byte boundaries: the products run a few percent faster
        stride = -(-columns // ROW_ALIGN) * ROW_ALIGN
        buf = self._buffers.get(name)
        if buf is None or buf.shape[0] < rows or buf.shape[1] != stride:
            weight = self.linears[0].weight
            buf = torch.empty((rows, stride), dtype=weight.dtype, device=weight.device)
            if ones:
                buf[:, width] = 1.0
            self._buffers[name] = buf
            self._views = {k: v for k, v in self._views.items() if k[0] != name}
        view = self._views[key] = buf[:rows, :columns]
        return view

    def forward(
        self,
        table: torch.Tensor,
        rows: torch.Tensor,
        ids: torch.Tensor | None,
        drop: torch.Tensor | None = None,
        cold: ColdColumns | None = None,
    ) -> torch.Tensor:
        """The outputs ``o`` (n, output_size; not yet normalised) of the encoded rows
        ``rows`` of ``table``, with their id embedding rows ``ids`` (n,; −1: no id) and,
        where ``drop`` is set, the derived columns ``cold`` marks replaced by their cold
        values: ``Tower.forward(cold.apply(table[rows], drop), ids) = o / ‖o‖``. The outputs
        live in a buffer the next forward pass overwrites."""
        n, d = len(rows), table.shape[1]
        embedding = self.tower.id_embedding
        width = d if embedding is None else d + embedding.embedding_dim
        x = self.buffer("input", n, width, ones=True)
        torch.index_select(table, 0, rows, out=x[:, :d])
        if drop is not None and cold is not None:
            cold.apply_(x[:, :d], drop)
        self._rows = None
        if embedding is not None:
            self._rows = self.tower.id_rows(x, ids)
            torch.index_select(embedding.weight, 0, self._rows, out=x[:, d:width])
        self._activations = [x]
        h = x
        last = len(self.linears) - 1
        for index, (block, _) in enumerate(self.blocks):
            size = block.shape[0]
            if index < last:
                out = self.buffer(f"layer{index}", n, size, ones=True)
                torch.mm(h, block.t(), out=out[:, :size]).relu_()  # [h | 1] [W | b]ᵀ
                self._activations.append(out)
            else:
                out = torch.mm(h, block.t(), out=self.buffer("output", n, size))
            h = out
        return h

    def backward(self, grad_output: torch.Tensor) -> None:
        """Write ``∂L/∂θ`` of every parameter θ of the tower into ``θ.grad``, given
        ``∂L/∂o`` (n, output_size) of the outputs the last :meth:`forward` returned."""
        g = grad_output
        n = g.shape[0]
        for index in range(len(self.blocks) - 1, -1, -1):
            block, grad_block = self.blocks[index]
            h = self._activations[index]  # [h | 1]
            width = block.shape[1] - 1
            torch.mm(g.t(), h, out=grad_block)  # [∂W | ∂b] = gᵀ [h | 1]
            if index > 0:
                below = self.buffer(f"grad{index - 1}", n, width)
                torch.mm(g, block[:, :width], out=below)
                # ReLU: no gradient where its output was 0
                torch.ops.aten.threshold_backward.grad_input(below, h[:, :width], 0,
                                                             grad_input=below)
                g = below
        embedding = self.tower.id_embedding
        if embedding is not None:
            assert self._rows is not None and embedding.weight.grad is not None
            block = self.blocks[0][0]
            e = embedding.embedding_dim
            width = block.shape[1] - 1
            from_ids = torch.mm(g, block[:, width - e : width])
            embedding.weight.grad.zero_().index_add_(0, self._rows, from_ids)


#: ``pair_head``'s objectives.
PAIR_OBJECTIVES = ("ratings", "binary")


@njit(cache=True, nogil=True, fastmath=True)
def _pair_head(
    o_u: np.ndarray,
    o_m: np.ndarray,
    targets: np.ndarray,
    binary: bool,
    temperature: float,
    eps: float,
    grad_u: np.ndarray,
    grad_m: np.ndarray,
) -> float:  # pragma: no cover - compiled (checked against autograd by the tests)
    # float32 throughout the rows (as the towers compute), the loss summed in float64
    n, d = o_u.shape
    total = 0.0
    inv_n = np.float32(1.0 / n)
    for r in range(n):
        aa = np.float32(0.0)
        bb = np.float32(0.0)
        ab = np.float32(0.0)
        for c in range(d):
            x = o_u[r, c]
            y = o_m[r, c]
            aa += x * x
            bb += y * y
            ab += x * y
        nu = np.float32(max(math.sqrt(aa), eps))
        nm = np.float32(max(math.sqrt(bb), eps))
        s = ab / (nu * nm)
        t = targets[r]
        if binary:
            z = s / np.float32(temperature)
            # softplus(z) − y z, stably
            total += (z if z > 0.0 else 0.0) + math.log1p(math.exp(-abs(z))) - t * z
            d_s = np.float32((1.0 / (1.0 + math.exp(-z)) - t) / (temperature * n))
        else:
            total += 0.5 * (s - t) * (s - t)
            d_s = (s - t) * inv_n
        # ∂L/∂o_u = d_s (v_m − s v_u) / ‖o_u‖ with v = o / ‖o‖, and the mirror
        cu_m = d_s / (nu * nm)
        cu_u = d_s * s / (nu * nu)
        cm_m = d_s * s / (nm * nm)
        for c in range(d):
            x = o_u[r, c]
            y = o_m[r, c]
            grad_u[r, c] = cu_m * y - cu_u * x
            grad_m[r, c] = cu_m * x - cm_m * y
    return total / n


def pair_head(
    objective: str,
    o_u: torch.Tensor,
    o_m: torch.Tensor,
    targets: torch.Tensor,
    temperature: float,
    grad_u: torch.Tensor,
    grad_m: torch.Tensor,
) -> float:
    """The ratings or binary objective of tower outputs ``o_u``, ``o_m`` (n, d; CPU,
    float32, not yet normalised) and targets (n,), and its gradient written into ``grad_u``
    and ``grad_m``: with ``v = o / max(‖o‖, ε)`` and ``s = v_u · v_m``, the loss
    ``1/2 mean (s − t)²`` (ratings) or ``mean [softplus(s/τ) − y s/τ]`` (binary), and
    ``∂L/∂o_u = ∂L/∂s (v_m − s v_u) / ‖o_u‖``, ``∂L/∂o_m = ∂L/∂s (v_u − s v_m) / ‖o_m‖``."""
    if objective not in PAIR_OBJECTIVES:
        raise ValueError(f"pair_head computes {PAIR_OBJECTIVES}, not {objective!r}")
    return float(_pair_head(
        o_u.numpy(), o_m.numpy(), targets.numpy(), objective == "binary", float(temperature),
        NORM_EPS, grad_u.numpy(), grad_m.numpy(),
    ))


__all__ = ["PAIR_OBJECTIVES", "FlatAdam", "FlatParameters", "ManualTower", "pair_head"]
