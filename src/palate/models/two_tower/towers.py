"""The towers: a multilayer perceptron per side whose output is L2-normalised.

``v = N(f_L(… f_1([x, e(id)])))`` with ``f_l(h) = ReLU(W_l h + b_l)`` for the hidden layers, a
linear last layer, ``e(id)`` an optional learned id embedding concatenated to the features
(the hybrid model; one extra row serves users or items the model has no id for) and
``N(v) = v / ‖v‖``. The curriculum's towers are 256 (ReLU) → 128 (ReLU) → 32.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn

from palate.errors import DataError

if TYPE_CHECKING:
    from palate.models.two_tower.config import TwoTowerConfig
    from palate.models.two_tower.features import FeatureSide, TowerFeatures

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
        self.output_size = output_size

    def forward(self, features: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Unit vectors, shape (n, output_size), for feature rows (n, input_size) and ids (n,)
        (-1 or ``n_ids``: no id)."""
        if self.id_embedding is not None:
            features = torch.cat([features, self.id_embedding(self.id_rows(features, ids))],
                                 dim=1)
        return l2_normalise(self.layers(features))

    def id_rows(self, features: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
        """The id embedding rows of a batch: ``ids`` with −1 (and no ``ids`` at all) mapped
        to the shared "no id" row ``n_ids``."""
        if ids is None:
            return torch.full((features.shape[0],), self.n_ids, dtype=torch.long,
                              device=features.device)
        return torch.where(ids < 0, self.n_ids, ids)


@dataclass(frozen=True)
class TowerVectors:
    """The tower outputs a fitted :class:`TwoTower` serves from (unit rows, float32)."""

    users: np.ndarray  # v_u of every catalogue user, in the order of ``users_``
    items: np.ndarray  # v_m of every catalogue item, in the order of ``items_``
    no_user: np.ndarray  # v_u of a user with no features, no history and no id
    no_item: np.ndarray  # v_m of an item with no features, no history and no id


def make_tower(config: TwoTowerConfig, input_size: int, n_ids: int, side: str = "user"
               ) -> Tower:
    """The ``side`` (``"user"`` or ``"item"``) tower of the configured shape over
    ``input_size`` encoded features, with an id embedding of ``n_ids`` rows (plus the "no
    id" row) when ``config.id_embedding_size`` and ``config.id_embedding_sides`` give that
    side one."""
    which = 0 if side == "user" else 1
    return Tower(
        input_size, config.tower_hidden_sizes[which], config.embedding_size, n_ids,
        config.id_embedding_sizes[which],
    )


def build_towers(
    config: TwoTowerConfig,
    input_sizes: tuple[int, int],
    n_ids: tuple[int, int],
    seed: int,
    device: torch.device,
) -> tuple[Tower, Tower]:
    """The user and item towers with their initial weights, drawn from torch's generator
    seeded with ``seed`` (its global state is left as it was), on ``device``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        user_tower = make_tower(config, input_sizes[0], n_ids[0])
        item_tower = make_tower(config, input_sizes[1], n_ids[1], "item")
    return user_tower.to(device), item_tower.to(device)


def tower_outputs(
    tower: Tower,
    inputs: np.ndarray,
    ids: np.ndarray | None,
    device: torch.device,
    batch: int = 65536,
) -> np.ndarray:
    """The tower's unit vectors for encoded rows ``inputs`` (n, input_size) and their id rows
    ``ids`` (n,; -1: no id), float32 (n, output_size), computed in batches without gradients."""
    out = []
    tower.eval()
    with torch.no_grad():
        for start in range(0, len(inputs), batch):
            x = torch.as_tensor(inputs[start : start + batch]).to(device)
            idx = None
            if ids is not None:
                idx = torch.as_tensor(ids[start : start + batch], dtype=torch.long).to(device)
            out.append(tower(x, idx).float().cpu().numpy())
    return np.vstack(out) if out else np.zeros((0, tower.output_size), dtype=np.float32)


def served_vectors(
    user_tower: Tower,
    item_tower: Tower,
    features: TowerFeatures,
    n_trained: tuple[int, int],
    derived_dropout: tuple[float, float],
    device: torch.device,
) -> TowerVectors:
    """The vectors a model serves: of every catalogue row of ``features`` (the first
    ``n_trained`` users / items through their own id embedding rows, the rest — known only
    from the feature tables — through the shared "no id" row), and of a user / item with no
    features, no history and no id. ``derived_dropout``: the (user, item) rates the towers
    were trained with."""
    out = []
    for tower, side, inputs, n, rate in (
        (user_tower, features.user_side, features.user_inputs, n_trained[0], derived_dropout[0]),
        (item_tower, features.item_side, features.item_inputs, n_trained[1], derived_dropout[1]),
    ):
        ids = np.arange(len(inputs))
        ids[n:] = -1
        out.append(tower_outputs(tower, side.served(inputs, rate), ids, device))
        out.append(new_vectors(tower, side, pd.DataFrame(index=[0]), None, rate, device)[0])
    return TowerVectors(users=out[0], items=out[2], no_user=out[1], no_item=out[3])


def new_vectors(
    tower: Tower,
    side: FeatureSide,
    frame: pd.DataFrame,
    derived: pd.DataFrame | None,
    derived_dropout: float,
    device: torch.device,
) -> np.ndarray:
    """Vectors of new users / items (no id) from raw attribute rows ``frame`` and, optionally,
    their derived columns."""
    inputs = side.served(side.encode_new(frame, derived), derived_dropout)
    return tower_outputs(tower, inputs, np.full(len(frame), -1), device)


def tower_arrays(user_tower: Tower, item_tower: Tower) -> dict[str, np.ndarray]:
    """The weights of both towers as float32 arrays named ``user_tower.<parameter>`` and
    ``item_tower.<parameter>`` (what model files and training processes exchange)."""
    arrays: dict[str, np.ndarray] = {}
    for prefix, tower in (("user_tower", user_tower), ("item_tower", item_tower)):
        for name, tensor in tower.state_dict().items():
            # contiguous: training may leave the weights as views of one flat tensor
            arrays[f"{prefix}.{name}"] = tensor.detach().float().cpu().contiguous().numpy()
    return arrays


def load_tower_arrays(
    user_tower: Tower, item_tower: Tower, arrays: Mapping[str, np.ndarray], device: torch.device
) -> None:
    """Load weights named as :func:`tower_arrays` names them into both towers, on ``device``.

    Raises
    ------
    DataError
        The arrays do not fit the towers (another configuration or catalogue).
    """
    for prefix, tower in (("user_tower", user_tower), ("item_tower", item_tower)):
        weights = {
            name[len(prefix) + 1 :]: torch.as_tensor(value)
            for name, value in arrays.items()
            if name.startswith(prefix + ".")
        }
        try:
            tower.load_state_dict(weights)
        except RuntimeError as exc:
            raise DataError(f"{prefix} weights do not fit the configuration ({exc})") from exc
        tower.to(device)


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


__all__ = [
    "NORM_EPS",
    "Tower",
    "TowerVectors",
    "build_towers",
    "flops_per_example",
    "l2_normalise",
    "load_tower_arrays",
    "make_tower",
    "new_vectors",
    "served_vectors",
    "tower_arrays",
    "tower_outputs",
]
