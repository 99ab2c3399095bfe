"""The objectives of the two-tower model, as functions of the tower outputs.

With unit vectors ``v_u`` (user tower) and ``v_m`` (item tower) and ``s = v_u · v_m``:

- ``ratings`` (the curriculum): squared error on ratings scaled to [−1, 1],
  ``L = 1/2 mean (s − t)²`` with ``t = 2 (y − low) / (high − low) − 1``;
- ``binary``: logistic loss on 0/1 labels, ``f = g(s / τ)``,
  ``L = mean [−y log f − (1 − y) log(1 − f)]``;
- ``retrieval``: softmax over the in-batch items with the log-frequency sampling correction
  (Yi et al., 2019): for the b-th pair of a batch, logits ``z_bc = v_u(b) · v_m(c) / τ −
  log q(c)`` with q(c) the share of training events on item c, and
  ``L = mean_b [−log softmax(z_b)_b]``. Other columns holding the same item as the positive
  are masked (they are not negatives).

L2 regularisation of the tower weights is applied by the optimiser (``reg`` as Adam's weight
decay, the gradient of ``reg/2 ‖W‖²``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def scores(user_vectors: torch.Tensor, item_vectors: torch.Tensor) -> torch.Tensor:
    """``v_u · v_m`` per pair: rows of two (n, d) tensors -> (n,)."""
    return (user_vectors * item_vectors).sum(dim=1)


def ratings_loss(
    user_vectors: torch.Tensor, item_vectors: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """``1/2 mean (v_u · v_m − t)²`` with targets t in [−1, 1]."""
    return 0.5 * ((scores(user_vectors, item_vectors) - targets) ** 2).mean()


def binary_loss(
    user_vectors: torch.Tensor,
    item_vectors: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """``mean [softplus(z) − y z]`` with ``z = v_u · v_m / τ`` (the logistic loss, computed
    stably)."""
    z = scores(user_vectors, item_vectors) / temperature
    return (F.softplus(z) - labels * z).mean()


def retrieval_loss(
    user_vectors: torch.Tensor,
    item_vectors: torch.Tensor,
    item_idx: torch.Tensor,
    log_q: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """In-batch softmax cross-entropy with the log-frequency correction.

    Parameters
    ----------
    user_vectors, item_vectors : tensor (B, d)
        Row b of each is a positive pair.
    item_idx : tensor of int (B,)
        Item of each pair (repeated items are masked as negatives).
    log_q : tensor (B,)
        ``log q(item)`` of each pair's item.
    temperature : float
    """
    logits = user_vectors @ item_vectors.T / temperature - log_q[None, :]
    same = item_idx[:, None] == item_idx[None, :]
    same.fill_diagonal_(False)
    logits = logits.masked_fill(same, float("-inf"))
    target = torch.arange(len(item_idx), device=logits.device)
    return F.cross_entropy(logits, target)


__all__ = ["binary_loss", "ratings_loss", "retrieval_loss", "scores"]
