"""The content-based two-tower model: towers, losses, training loop, model (a user network
and an item network whose outputs meet in a dot product).

Only :mod:`palate.models.two_tower.model` is imported here, so that ``import palate`` does not
import torch; the towers, losses and loop are imported when a model is fitted or loaded.
"""

from palate.models.two_tower.model import TwoTower, TwoTowerConfig

__all__ = ["TwoTower", "TwoTowerConfig"]
