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

  With ``uniform_negatives`` B' > 0 (mixed negative sampling, Yang et al., 2020), B' items
  drawn uniformly from the N training items join the in-batch items as negatives of every
  pair (those equal to a row's positive are masked for that row). Each column's correction is
  then the log of its expected number of draws under the mixed proposal,
  ``log(B q(c) + B'/N)`` (for B' = 0 this is ``log q(c)`` shifted by the constant ``log B``,
  which leaves the softmax unchanged). Uniform negatives show every item, however rarely
  rated, as a negative as often as any other, as WARP's (LightFM's) sampling does.
  ``log_q_correction=False`` drops the correction (logits ``v_u · v_m / τ``).

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
    negative_vectors: torch.Tensor | None = None,
    negative_idx: torch.Tensor | None = None,
    negative_log_q: torch.Tensor | None = None,
) -> torch.Tensor:
    """In-batch softmax cross-entropy with the log-frequency correction, optionally with
    extra negatives shared by every pair.

    Parameters
    ----------
    user_vectors, item_vectors : tensor (B, d)
        Row b of each is a positive pair.
    item_idx : tensor of int (B,)
        Item of each pair (repeated items are masked as negatives).
    log_q : tensor (B,)
        The correction subtracted from each in-batch column's logit (``log q(item)``).
    temperature : float
    negative_vectors : tensor (B', d), optional
        Item vectors of extra negatives (uniformly drawn items).
    negative_idx : tensor of int (B',), optional
        Their items: one equal to row b's positive is masked for that row.
    negative_log_q : tensor (B',), optional
        Their corrections.
    """
    logits = user_vectors @ item_vectors.T / temperature - log_q[None, :]
    same = item_idx[:, None] == item_idx[None, :]
    same.fill_diagonal_(False)
    logits = logits.masked_fill(same, float("-inf"))
    if negative_vectors is not None:
        if negative_idx is None or negative_log_q is None:
            raise ValueError("extra negatives need their items and their corrections")
        extra = user_vectors @ negative_vectors.T / temperature - negative_log_q[None, :]
        extra = extra.masked_fill(item_idx[:, None] == negative_idx[None, :], float("-inf"))
        logits = torch.cat([logits, extra], dim=1)
    target = torch.arange(len(item_idx), device=logits.device)
    return F.cross_entropy(logits, target)


__all__ = ["binary_loss", "ratings_loss", "retrieval_loss", "scores"]
