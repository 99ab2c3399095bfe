"""The hyperparameters of :class:`~palate.models.two_tower.model.TwoTower`, validated, and
what they require of the training data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from palate.data.features import ItemFeatures, UserFeatures
from palate.data.interactions import Interactions
from palate.errors import ConfigError, DataError
from palate.models.base import is_int, is_number

if TYPE_CHECKING:
    from palate.models.two_tower.training import LoopSettings

Objective = Literal["ratings", "binary", "retrieval"]
OBJECTIVES = ("ratings", "binary", "retrieval")
IdSides = Literal["both", "users", "items"]
ID_SIDES = ("both", "users", "items")
DEFAULT_TEMPERATURE = {"ratings": 1.0, "binary": 0.25, "retrieval": 0.05}
#: Share of training examples whose derived features are set to their cold values. Chosen on
#: validation items (``bench/two_tower_dropout.py``, ML-100K): 0.5 ranks cold items well above
#: 0 and keeps the warm RMSE within 3% of CF, which 0.8 (better on cold items) does not.
DEFAULT_DERIVED_DROPOUT = 0.5

#: The set-up for ranking new items (item cold start), the two-tower registry preset
#: ``cold_items``: the retrieval objective on positive events; users keep a learned id
#: embedding (trained users are known) while items are built from their attributes alone
#: (no item id embedding; their derived count and mean are never seen, so a new item and a
#: trained one go through the same function), and the item tower is one linear layer — a sum
#: of one learned vector per feature value, as LightFM builds items from features. Chosen on
#: validation items carved from the training items of ML-100K (``bench/two_tower_cold_items.py``;
#: BENCHMARKS.md), 12 epochs included (the model's own early stopping watches the loss on known
#: items, not the ranking of new ones). ``id_dropout=0``: a user with no id is scored through
#: an untrained row, so serve new users with another configuration.
COLD_ITEMS: dict[str, object] = {
    "objective": "retrieval",
    "id_embedding_size": 32,
    "id_embedding_sides": "users",
    "id_dropout": 0.0,
    "item_hidden_sizes": (),
    "derived_dropout": (0.0, 1.0),
    "temperature": 0.05,
    "learning_rate": 1e-3,
    "epochs": 12,
    "early_stopping": None,
}

#: The set-up for warm users and items only (registry preset ``warm``): no cold-start dropout,
#: so the towers always read the derived counts and mean ratings. Chosen on the model's own
#: validation split of the ML-1M training ratings (BENCHMARKS.md): validation RMSE 0.8704,
#: +2.3% over CF's 0.8512 on the same split (at learning rate 3e-3: 0.8718 without dropout,
#: 0.8853 with the default 0.5). New users and items are then scored less well.
WARM: dict[str, object] = {"derived_dropout": 0.0}


@dataclass(frozen=True)
class TwoTowerConfig:
    """Hyperparameters of :class:`TwoTower` (validated on construction)."""

    objective: Objective = "ratings"
    hidden_sizes: tuple[int, ...] = (256, 128)
    embedding_size: int = 32
    id_embedding_size: int = 0
    id_dropout: float = 0.2
    id_embedding_sides: IdSides = "both"
    item_hidden_sizes: tuple[int, ...] | None = None
    derived_features: bool = True
    derived_dropout: float | tuple[float, float] = DEFAULT_DERIVED_DROPOUT
    epochs: int = 30
    batch_size: int = 1024
    learning_rate: float = 1e-3
    reg: float = 0.0
    temperature: float | None = None
    uniform_negatives: int = 0
    log_q_correction: bool = True
    early_stopping: int | None = 3
    validation_fraction: float = 0.1
    mean_shrinkage: float = 5.0
    max_categories: int = 64
    device: str = "cpu"
    seed: int | None = 0
    compile: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        if self.item_hidden_sizes is not None:
            object.__setattr__(self, "item_hidden_sizes", tuple(self.item_hidden_sizes))
        if isinstance(self.derived_dropout, (list, tuple)):
            object.__setattr__(self, "derived_dropout", tuple(self.derived_dropout))

        def need(condition: bool, message: str) -> None:
            if not condition:
                raise ConfigError(message)

        need(
            self.objective in OBJECTIVES,
            f"objective must be 'ratings', 'binary' or 'retrieval', not {self.objective!r}",
        )
        need(
            all(is_int(h) and h >= 1 for h in self.hidden_sizes),
            f"hidden_sizes must be positive integers, e.g. (256, 128); got {self.hidden_sizes!r}",
        )
        need(
            self.item_hidden_sizes is None
            or all(is_int(h) and h >= 1 for h in self.item_hidden_sizes),
            "item_hidden_sizes must be None (as hidden_sizes), () (one linear layer: a sum "
            f"of feature embeddings) or positive integers; got {self.item_hidden_sizes!r}",
        )
        need(
            self.id_embedding_sides in ID_SIDES,
            "id_embedding_sides must be 'both', 'users' or 'items', not "
            f"{self.id_embedding_sides!r}",
        )
        for name in ("embedding_size", "epochs", "batch_size", "max_categories"):
            value = getattr(self, name)
            need(is_int(value) and value >= 1, f"{name} must be a positive integer, got {value!r}")
        need(
            is_int(self.id_embedding_size) and self.id_embedding_size >= 0,
            f"id_embedding_size must be >= 0 (0: features only), got {self.id_embedding_size!r}",
        )
        need(
            is_number(self.id_dropout) and 0 <= self.id_dropout < 1,
            f"id_dropout must be in [0, 1), got {self.id_dropout!r}",
        )
        need(
            is_int(self.uniform_negatives) and self.uniform_negatives >= 0,
            f"uniform_negatives must be an integer >= 0, got {self.uniform_negatives!r}",
        )
        need(isinstance(self.log_q_correction, bool), "log_q_correction must be True or False")
        need(isinstance(self.derived_features, bool), "derived_features must be True or False")
        need(isinstance(self.compile, bool), "compile must be True or False")
        rates = (
            self.derived_dropout if isinstance(self.derived_dropout, tuple)
            else (self.derived_dropout,)
        )
        need(
            len(rates) in (1, 2) and all(is_number(r) and 0 <= r <= 1 for r in rates),
            "derived_dropout must be in [0, 1], or a (users, items) pair of such rates; got "
            f"{self.derived_dropout!r}",
        )
        need(
            is_number(self.learning_rate) and self.learning_rate > 0,
            f"learning_rate must be > 0, got {self.learning_rate!r}",
        )
        need(is_number(self.reg) and self.reg >= 0, f"reg must be >= 0, got {self.reg!r}")
        need(
            self.temperature is None or (is_number(self.temperature) and self.temperature > 0),
            f"temperature must be > 0 or None (objective default), got {self.temperature!r}",
        )
        need(
            self.early_stopping is None
            or (is_int(self.early_stopping) and self.early_stopping >= 1),
            "early_stopping must be a positive integer (patience in epochs) or None",
        )
        need(
            is_number(self.validation_fraction) and 0 <= self.validation_fraction < 1,
            f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}",
        )
        need(
            is_number(self.mean_shrinkage) and self.mean_shrinkage >= 0,
            f"mean_shrinkage must be >= 0, got {self.mean_shrinkage!r}",
        )
        need(
            isinstance(self.device, str) and self.device.split(":")[0] in ("cpu", "cuda", "mps"),
            f"device must be 'cpu' or 'cuda' (or 'cuda:N'), got {self.device!r}",
        )
        need(
            self.seed is None or is_int(self.seed),
            f"seed must be an int or None, got {self.seed!r}",
        )

    @property
    def derived_dropouts(self) -> tuple[float, float]:
        """The cold-start dropout of the (user, item) derived features."""
        if isinstance(self.derived_dropout, tuple):
            return float(self.derived_dropout[0]), float(self.derived_dropout[1])
        return float(self.derived_dropout), float(self.derived_dropout)

    @property
    def tower_hidden_sizes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The hidden layers of the (user, item) towers."""
        item = self.hidden_sizes if self.item_hidden_sizes is None else self.item_hidden_sizes
        return self.hidden_sizes, item

    @property
    def id_embedding_sizes(self) -> tuple[int, int]:
        """The id embedding length of the (user, item) towers (0: none)."""
        size = self.id_embedding_size
        return (
            size if self.id_embedding_sides in ("both", "users") else 0,
            size if self.id_embedding_sides in ("both", "items") else 0,
        )

    @property
    def effective_temperature(self) -> float:
        """τ: ``temperature``, or 0.25 for binary labels and 0.05 for retrieval."""
        if self.temperature is not None:
            return float(self.temperature)
        return DEFAULT_TEMPERATURE[self.objective]

    def loop_settings(self) -> LoopSettings:
        """What the training loop reads of these hyperparameters."""
        from palate.models.two_tower.training import LoopSettings

        return LoopSettings(
            objective=self.objective,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            reg=self.reg,
            temperature=self.effective_temperature,
            id_dropout=self.id_dropout,
            early_stopping=self.early_stopping,
            derived_dropout=self.derived_dropouts,
            compile=self.compile,
            uniform_negatives=self.uniform_negatives,
            log_q_correction=self.log_q_correction,
        )


def check_fit_data(
    config: TwoTowerConfig,
    data: Interactions,
    user_features: UserFeatures | None,
    item_features: ItemFeatures | None,
) -> Interactions:
    """``data`` if the objective can learn from it and the towers get some input; else a
    DataError (or ConfigError) naming the fix."""
    objective = config.objective
    if objective == "ratings" and data.kind != "explicit":
        raise DataError(
            "objective='ratings' needs explicit ratings; use objective='binary' for 0/1 "
            "labels or objective='retrieval' for positive-only events"
        )
    if objective == "binary":
        if data.kind != "binary":
            raise DataError(
                "objective='binary' needs 0/1 labels; convert ratings with "
                "interactions.binarize(threshold=4) or use objective='ratings'"
            )
        if data.is_positive_only:
            raise DataError(
                "the data holds only positive events, so the logistic loss has no negatives; "
                "use objective='retrieval' (in-batch negatives)"
            )
    for table, cls, what in ((user_features, UserFeatures, "user_features"),
                             (item_features, ItemFeatures, "item_features")):
        if table is not None and not isinstance(table, cls):
            raise DataError(
                f"{what} must be a palate.data.features.{cls.__name__}, got "
                f"{type(table).__name__}; build one with {cls.__name__}(frame, columns=...)"
            )
    if (
        user_features is None
        and item_features is None
        and not config.derived_features
        and config.id_embedding_size == 0
    ):
        raise ConfigError(
            "the towers have no inputs: pass user_features / item_features, keep "
            "derived_features=True, or set id_embedding_size > 0"
        )
    return data


def rating_scale_of(data: Interactions) -> tuple[float, float]:
    """The (low, high) scale of explicit ratings: declared, or their range (one wide at
    least)."""
    scale = data.rating_scale
    if scale is None:
        scale = (float(data.values.min()), float(data.values.max()))
    if scale[1] <= scale[0]:
        scale = (scale[0], scale[0] + 1.0)
    return float(scale[0]), float(scale[1])


__all__ = [
    "COLD_ITEMS",
    "DEFAULT_DERIVED_DROPOUT",
    "DEFAULT_TEMPERATURE",
    "ID_SIDES",
    "IdSides",
    "OBJECTIVES",
    "Objective",
    "TwoTowerConfig",
    "WARM",
    "check_fit_data",
    "rating_scale_of",
]
