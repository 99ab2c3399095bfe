"""The towers: a multilayer perceptron per side whose output is L2-normalised.

``v = N(f_L(… f_1([x, e(id)])))`` with ``f_l(h) = ReLU(W_l h + b_l)`` for the hidden layers, a
linear last layer, ``e(id)`` an optional learned id embedding concatenated to the features
(the hybrid model; one extra row serves users or items the model has no id for) and
``N(v) = v / ‖v‖``. The curriculum's towers are 256 (ReLU) → 128 (ReLU) → 32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: Norms below this are treated as this when normalising, so a zero vector stays finite.
NORM_EPS = 1e-12


def l2_normalise(v: torch.Tensor) -> torch.Tensor:
    """Rows of ``v`` divided by their Euclidean norm: ``v / max(‖v‖, ε)``."""
    return v / v.norm(dim=-1, keepdim=True).clamp_min(NORM_EPS)


class Tower(nn.Module):
    """One tower: features (and an optional id embedding) -> a unit vector.

    Parameters
    ----------
    input_size : int
        Width of the encoded feature rows.
    hidden_sizes : sequence of int
        Widths of the ReLU layers (default towers: ``(256, 128)``).
    output_size : int
        Length of the output vector (32).
    n_ids : int
        Number of ids with a learned embedding; index ``n_ids`` is the shared "no id" row.
    id_embedding_size : int
        Length of the id embedding (0: features only).
    """

    def __init__(
        self,
        input_size: int,
        hidden_sizes: Sequence[int],
        output_size: int,
        n_ids: int = 0,
        id_embedding_size: int = 0,
    ) -> None:
        super().__init__()
        self.id_embedding: nn.Embedding | None = None
        width = input_size
        if id_embedding_size > 0:
            self.id_embedding = nn.Embedding(n_ids + 1, id_embedding_size)
            nn.init.normal_(self.id_embedding.weight, std=0.1)
            width += id_embedding_size
        layers: list[nn.Module] = []
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, output_size))
        self.layers = nn.Sequential(*layers)
        self.n_ids = n_ids

    def forward(self, features: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Unit vectors, shape (n, output_size), for feature rows (n, input_size) and ids (n,)
        (-1 or ``n_ids``: no id)."""
        if self.id_embedding is not None:
            if ids is None:
                ids = torch.full((features.shape[0],), self.n_ids, dtype=torch.long,
                                 device=features.device)
            else:
                ids = torch.where(ids < 0, self.n_ids, ids)
            features = torch.cat([features, self.id_embedding(ids)], dim=1)
        return l2_normalise(self.layers(features))


def flops_per_example(input_size: int, hidden_sizes: Sequence[int], output_size: int,
                      id_embedding_size: int = 0) -> tuple[int, int]:
    """Multiply-add FLOPs (2 per multiply-add) of one tower for one example.

    Returns
    -------
    forward : int
        ``Σ_l 2 · in_l · out_l`` over the dense layers.
    training : int
        Forward, plus the weight gradients (the same again) and the gradients with respect
        to the inputs of every layer but the first (the features need none).
    """
    sizes = [input_size + id_embedding_size, *hidden_sizes, output_size]
    layer = [2 * a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    forward = sum(layer)
    return forward, 2 * forward + sum(layer[1:])


__all__ = ["NORM_EPS", "Tower", "flops_per_example", "l2_normalise"]
