"""Gradient descent on J with automatic differentiation and the Adam optimiser.

The curriculum's custom training loop: every epoch computes J on the training entries
(:func:`~palate.models.collaborative.cost.sparse_cost`), lets autograd find the gradient
g = ∂J/∂θ of every trained parameter θ (X, W and, with ``bias_fit="joint"``, b and c), and
takes one Adam step per batch::

    m ← β₁ m + (1 − β₁) g          v ← β₂ v + (1 − β₂) g²
    θ ← θ − α m̂ / (√v̂ + ε)          (m̂, v̂ the bias-corrected moments, α = learning_rate)

Full batch by default; with ``batch_size`` B the entries are shuffled every epoch and each
batch's data term is scaled by N/B, an unbiased estimate of the full one. Explicit ratings
train on y − μ(i); binary labels keep y and put μ(i) inside the sigmoid, as prediction does.
For positive-only binary data the negatives are redrawn every epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from palate.data.interactions import Interactions
from palate.models.collaborative.config import CollaborativeFilteringConfig
from palate.models.collaborative.cost import Regularisation, sparse_cost
from palate.models.collaborative.entries import entry_weights, training_entries
from palate.models.collaborative.parameters import Parameters

if TYPE_CHECKING:  # torch is imported when the solver runs
    import torch


def adam_epochs(
    params: Parameters,
    data: Interactions,
    config: CollaborativeFilteringConfig,
    regularisation: Regularisation,
    rng: np.random.Generator,
) -> Callable[[], float]:
    """A function that runs one Adam epoch per call and returns J after it.

    The parameters live in torch tensors (copies of ``params``'s arrays made now) for as long
    as the function does; after every epoch the trained ones are copied back into ``params``.
    The shuffling generator is seeded from ``rng`` now, the entries are drawn from ``rng`` at
    the first call.
    """
    import torch

    dtype = torch.float64 if config.dtype == "float64" else torch.float32
    leaves = {
        name: torch.tensor(getattr(params, name), dtype=dtype, requires_grad=True)
        for name in ("X", "W", "b", "c")
    }
    trained = ["X", "W"]
    if config.bias_fit == "joint":
        trained += ["b"] + (["c"] if config.item_bias else [])
    optimizer = torch.optim.Adam([leaves[name] for name in trained], lr=config.learning_rate)
    scales: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)
    if regularisation.count_scaled:
        user_floor, item_floor = regularisation.count_floors
        scales = (
            torch.as_tensor(np.maximum(data.user_counts(), user_floor), dtype=dtype),
            torch.as_tensor(np.maximum(data.item_counts(), item_floor), dtype=dtype),
        )
    mu = torch.as_tensor(params.mu, dtype=dtype)
    explicit = config.kind == "explicit"
    sampled = not explicit and data.is_positive_only
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    fixed: dict[str, torch.Tensor] = {}
    ratio, exponent, positive_weight = config.sampling

    def epoch_entries() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if sampled or not fixed:
            u, i, y = training_entries(
                data, config.kind, ratio, rng, exponent
            )
            it = torch.as_tensor(i)
            target = torch.as_tensor(y, dtype=dtype)
            fixed.update(u=torch.as_tensor(u), i=it, t=target - mu[it] if explicit else target)
            weights = entry_weights(y, positive_weight) if sampled else None
            if weights is not None:
                fixed["w"] = torch.as_tensor(weights, dtype=dtype)
        return fixed["u"], fixed["i"], fixed["t"], fixed.get("w")

    def loss_on(
        u: torch.Tensor,
        i: torch.Tensor,
        t: torch.Tensor,
        w: torch.Tensor | None,
        scale: float,
    ) -> torch.Tensor:
        return sparse_cost(
            leaves["X"],
            leaves["W"],
            leaves["b"],
            u,
            i,
            t,
            regularisation.reg,
            config.kind,
            item_bias=leaves["c"] if config.item_bias else None,
            user_reg_scale=scales[0],
            item_reg_scale=scales[1],
            bias_reg=regularisation.bias_reg,
            data_scale=scale,
            item_offset=None if explicit else mu,
            weights=w,
        )

    def epoch() -> float:
        u, i, t, w = epoch_entries()
        n = len(t)
        batch = config.batch_size
        if batch is None or batch >= n:
            optimizer.zero_grad()
            loss_on(u, i, t, w, 1.0).backward()
            optimizer.step()
        else:
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, batch):
                sel = order[start : start + batch]
                optimizer.zero_grad()
                w_sel = None if w is None else w[sel]
                loss_on(u[sel], i[sel], t[sel], w_sel, n / len(sel)).backward()
                optimizer.step()
        with torch.no_grad():
            for name in trained:
                setattr(params, name, leaves[name].detach().numpy().copy())
            return float(loss_on(u, i, t, w, 1.0))

    return epoch


__all__ = ["adam_epochs"]
