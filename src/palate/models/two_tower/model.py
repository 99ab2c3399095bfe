"""The content-based two-tower model (SPEC §6)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.special

from palate.data.features import ItemFeatures, UserFeatures
from palate.data.interactions import Interactions
from palate.errors import ConfigError, DataError
from palate.models.base import (
    FeedbackKind,
    Model,
    ModelState,
    ScoreKind,
    fit_input,
    is_int,
    is_number,
    seen_matrix,
)
from palate.models.popularity import popularity_scores
from palate.models.scoring import LinearScores, check_k, ids_from_indices, top_k
from palate.models.two_tower.features import (
    FeatureSide,
    FeaturesLike,
    TowerFeatures,
    build_features,
    catalogue,
    derived_for_ratings,
    feature_frame,
)
from palate.types import IdArray, IdLike

if TYPE_CHECKING:

    from palate.models.two_tower.towers import Tower
    from palate.models.two_tower.training import LoopSettings

logger = logging.getLogger(__name__)

Objective = Literal["ratings", "binary", "retrieval"]
OBJECTIVES = ("ratings", "binary", "retrieval")
DEFAULT_TEMPERATURE = {"ratings": 1.0, "binary": 0.25, "retrieval": 0.05}
#: Share of training examples whose derived features are set to their cold values. Chosen on
#: validation items (``bench/two_tower_dropout.py``, ML-100K): 0.5 ranks cold items well above
#: 0 and keeps the warm RMSE within 3% of CF, which 0.8 (better on cold items) does not.
DEFAULT_DERIVED_DROPOUT = 0.5
@dataclass(frozen=True)
class TwoTowerConfig:
    """Hyperparameters of :class:`TwoTower` (validated on construction)."""

    objective: Objective = "ratings"
    hidden_sizes: tuple[int, ...] = (256, 128)
    embedding_size: int = 32
    id_embedding_size: int = 0
    id_dropout: float = 0.2
    derived_features: bool = True
    derived_dropout: float = DEFAULT_DERIVED_DROPOUT
    epochs: int = 30
    batch_size: int = 1024
    learning_rate: float = 1e-3
    reg: float = 0.0
    temperature: float | None = None
    early_stopping: int | None = 3
    validation_fraction: float = 0.1
    mean_shrinkage: float = 5.0
    max_categories: int = 64
    device: str = "cpu"
    seed: int | None = 0
    compile: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))

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
        need(isinstance(self.derived_features, bool), "derived_features must be True or False")
        need(isinstance(self.compile, bool), "compile must be True or False")
        need(
            is_number(self.derived_dropout) and 0 <= self.derived_dropout <= 1,
            f"derived_dropout must be in [0, 1], got {self.derived_dropout!r}",
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
    def effective_temperature(self) -> float:
        """τ: ``temperature``, or 0.25 for binary labels and 0.05 for retrieval."""
        if self.temperature is not None:
            return float(self.temperature)
        return DEFAULT_TEMPERATURE[self.objective]


def make_tower(config: TwoTowerConfig, input_size: int, n_ids: int) -> Tower:
    """One tower of the configured shape over ``input_size`` encoded features."""
    from palate.models.two_tower.towers import Tower

    return Tower(
        input_size, config.hidden_sizes, config.embedding_size, n_ids, config.id_embedding_size
    )


def held_out(seed: int, fraction: float, start: int, stop: int) -> np.ndarray:
    """Which events ``start .. stop − 1`` the internal validation split holds out: those whose
    draw ``u < fraction``, the draws being the first ``stop`` numbers of
    ``numpy.random.default_rng(seed).random`` (computed for the range alone, so a process
    reading one shard of the events marks the same events as :meth:`TwoTower.fit`)."""
    bits = np.random.PCG64(seed)  # what default_rng(seed) draws from
    bits.advance(start)  # one 64-bit draw per number
    return np.random.Generator(bits).random(stop - start) < fraction


@dataclass(frozen=True)
class TowerVectors:
    """The tower outputs a fitted :class:`TwoTower` serves from (unit rows, float32)."""

    users: np.ndarray  # v_u of every catalogue user, in the order of ``users_``
    items: np.ndarray  # v_m of every catalogue item, in the order of ``items_``
    no_user: np.ndarray  # v_u of a user with no features, no history and no id
    no_item: np.ndarray  # v_m of an item with no features, no history and no id


@dataclass
class _FitPlan:
    """What :meth:`TwoTower._prepare_fit` hands to the training loop."""

    seed: int
    fitting: Interactions  # the events the weights are fitted on
    held: np.ndarray | None  # internal validation events (mask over the training events)
    inputs: Any  # TowerInputs
    settings: Any  # LoopSettings
    evaluate: Any  # () -> validation metrics, or None
    to_events: Any  # (u, i, t) arrays -> Events on the model's device


class TwoTower(Model):
    """Content-based deep model: a user tower and an item tower compared by a dot product.

    User features ``x_u(j)`` (attributes, and counts / mean ratings derived from the training
    ratings) go through the user network to ``v_u(j)``; item features ``x_m(i)`` (genres,
    year, derived counts and means) through the item network to ``v_m(i)``. Both networks are
    dense ``256 (ReLU) → 128 (ReLU) → 32`` by default, both outputs are L2-normalised, and

        ratings:    ŷ(i,j) = low + (v_u(j) · v_m(i) + 1) / 2 · (high − low)
        binary:     P(y = 1) = g(v_u(j) · v_m(i) / τ)
        retrieval:  score = v_u(j) · v_m(i)

    The cost for ratings is ``1/2 mean (v_u · v_m − t)²`` on targets scaled to [−1, 1]
    (see :mod:`palate.models.two_tower.losses` for the others); both towers are trained
    jointly with Adam on mini-batches, with early stopping on a validation split.

    Because the towers read features, the model scores users and items it never saw rated.
    Its catalogue is the users and items of the training data followed by those that only
    have a row in ``user_features`` / ``item_features``: these are addressed by id like the
    others (:meth:`predict`, :meth:`recommend`, :meth:`similar_items`, :meth:`item_vectors`,
    :meth:`user_vectors`, model files), a new item is recommended as soon as it has
    features, and a user with features but no events gets a personal list scored from their
    attributes (``fallback=False``: only users the model knows nothing of get the popularity
    list). Users and items with no id at all are scored from raw feature rows with
    ``item_vectors(features=...)`` / ``user_vectors(features=...)``.

    Parameters
    ----------
    objective : {"ratings", "binary", "retrieval"}
        Squared error on scaled ratings; logistic loss on 0/1 labels; or softmax over the
        in-batch items with the log-frequency correction (positive-only data: every event of
        binary positives, every rating of explicit data, is a positive).
    hidden_sizes : tuple of int
        ReLU layers of each tower.
    embedding_size : int
        Length of v_u and v_m.
    id_embedding_size : int
        0: features only (the curriculum). > 0: a learned id embedding of this length is
        concatenated to each tower's features (a hybrid); ``id_dropout`` of the training
        examples use the shared "no id" row instead, so cold users and items stay served.
    id_dropout : float
    derived_features : bool
        Add the features derived from the training ratings (counts, shrunk mean ratings, mean
        rating per genre of the first multi-valued item column).
    derived_dropout : float
        Cold-start dropout (DropoutNet, Volkovs et al. 2017): for this share of the training
        examples the item's derived features are replaced by those of an item without
        ratings, and independently the user's by those of a user without ratings, so the
        towers learn to score from attributes alone as well. 0: off; 1: the derived features
        are never seen with their values (the predictions do not depend on them).
    epochs, batch_size, learning_rate : int, int, float
        Adam on shuffled mini-batches.
    reg : float
        L2 penalty on the weights (Adam's weight decay).
    temperature : float, optional
        τ of the binary and retrieval objectives (default 0.25 and 0.05).
    early_stopping : int or None
        Patience in epochs on the validation metric (RMSE, log loss or retrieval loss); the
        best epoch's weights are kept.
    validation_fraction : float
        Share of the training events held out for early stopping when ``fit`` gets no
        ``validation`` (0: no early stopping).
    mean_shrinkage : float
        Pseudo-ratings m of the derived means ``(Σ y + m C) / (n + m)``.
    max_categories : int
        Most frequent values kept per categorical or multi-valued column.
    device : str
        ``"cpu"`` (default) or ``"cuda"``.
    seed : int or None
        Seeds the initial weights, the shuffling and the validation split (deterministic on
        CPU).
    compile : bool
        Compile the training step (both towers, the loss and their gradients) with
        ``torch.compile``, which fuses the towers' element-wise work: a bare step measured
        about 1.35x faster on 2 CPU cores (BENCHMARKS.md). It costs a one-off compilation of
        seconds to a minute (a C++ compiler on CPU) and one more when the last, shorter batch
        arrives; if compiling fails, training goes on uncompiled with a warning.

    Examples
    --------
    >>> ml = palate.datasets.movielens("ml-100k")  # doctest: +SKIP
    >>> model = TwoTower().fit(ml.ratings, user_features=ml.user_features,
    ...                        item_features=ml.item_features)  # doctest: +SKIP
    >>> new_movie = {"genres": ["Animation", "Comedy"], "year": 1998}
    >>> model.item_vectors(features=new_movie).shape  # doctest: +SKIP
    (1, 32)
    """

    model_kind = "two_tower"
    has_linear_scores = True
    similarity_metric = "euclidean"

    config: TwoTowerConfig
    #: per epoch: the training loss and the validation metric
    history_: list[dict[str, float]]
    #: (low, high) of the ratings objective's targets, None for the other objectives
    rating_scale_: tuple[float, float] | None
    #: C, the mean value of the events the weights were fitted on
    global_mean_: float
    user_tower_: Tower
    item_tower_: Tower
    #: the first rows of ``users_`` / ``items_`` are the training data's ids (with events and
    #: an id embedding row); the rest are known only from the feature tables
    n_trained_users_: int
    n_trained_items_: int
    #: how each tower's input rows are built from features (encoder, derived columns)
    user_side_: FeatureSide
    item_side_: FeatureSide
    #: the encoded input rows of every catalogue user / item, float32 (n, width)
    user_inputs_: np.ndarray
    item_inputs_: np.ndarray
    #: the genres of the derived per-genre means, and each catalogue item's genres (bool)
    genres_: list[str]
    item_genres_: np.ndarray
    #: the served tower outputs (computed from the weights by :meth:`_refresh_vectors`)
    vectors_: TowerVectors

    def __init__(
        self,
        objective: Objective = "ratings",
        hidden_sizes: Sequence[int] = (256, 128),
        embedding_size: int = 32,
        id_embedding_size: int = 0,
        id_dropout: float = 0.2,
        derived_features: bool = True,
        derived_dropout: float = DEFAULT_DERIVED_DROPOUT,
        epochs: int = 30,
        batch_size: int = 1024,
        learning_rate: float = 1e-3,
        reg: float = 0.0,
        temperature: float | None = None,
        early_stopping: int | None = 3,
        validation_fraction: float = 0.1,
        mean_shrinkage: float = 5.0,
        max_categories: int = 64,
        device: str = "cpu",
        seed: int | None = 0,
        compile: bool = False,  # torch's word for it (shadows the builtin here only)
    ) -> None:
        self.config = TwoTowerConfig(
            objective=objective,
            hidden_sizes=tuple(hidden_sizes),
            embedding_size=embedding_size,
            id_embedding_size=id_embedding_size,
            id_dropout=id_dropout,
            derived_features=derived_features,
            derived_dropout=derived_dropout,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            reg=reg,
            temperature=temperature,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            mean_shrinkage=mean_shrinkage,
            max_categories=max_categories,
            device=device,
            seed=seed,
            compile=compile,
        )

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params["hidden_sizes"] = list(self.config.hidden_sizes)
        return params

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        interactions: Interactions,
        *,
        user_features: UserFeatures | None = None,
        item_features: ItemFeatures | None = None,
        validation: Interactions | None = None,
        callback: Any = None,
    ) -> TwoTower:
        """Train both towers from scratch.

        Parameters
        ----------
        interactions : Interactions
            Training events (explicit ratings for ``objective="ratings"``, 0/1 labels for
            ``"binary"``, either for ``"retrieval"``). Derived features come from these only.
        user_features : UserFeatures, optional
        item_features : ItemFeatures, optional
            Attributes keyed by the same ids; ids without a row get missing values. Ids
            with a row but no events join the catalogue (after the ids of
            ``interactions``): they have no events, no id embedding and no derived
            features, and the towers score them from their attributes. The encoders are
            fitted on the rows of the training data's ids only.
        validation : Interactions, optional
            Events scored after every epoch for early stopping (events of unknown users or
            items are ignored). Default: ``validation_fraction`` of ``interactions``.
        callback : callable(epoch, metrics), optional
            Called after every epoch (progress bars).

        Returns
        -------
        self

        Notes
        -----
        With the internal validation split, the derived features are computed from the other
        ``1 − validation_fraction`` of the events (those the weights are fitted on).
        """
        import torch

        from palate.models.two_tower.training import train_towers

        try:
            plan = self._prepare_fit(interactions, user_features, item_features, validation)
            u, i, t = self._events(plan.fitting)
            if len(u) == 0:
                raise DataError("no training events left; pass more data")
            self.history_ = train_towers(
                self.user_tower_,
                self.item_tower_,
                plan.inputs,
                plan.to_events((u, i, t)),
                plan.settings,
                torch.Generator().manual_seed(plan.seed),
                evaluate=plan.evaluate,
                callback=callback,
            )
            self._refresh_vectors()
        except BaseException:
            self._forget_fit()  # a fit that does not finish leaves no half-fitted model
            raise
        return self

    def _prepare_fit(
        self,
        interactions: Interactions,
        user_features: UserFeatures | None,
        item_features: ItemFeatures | None,
        validation: Interactions | None,
    ) -> _FitPlan:
        """Everything :meth:`fit` does before the training loop: vocabularies, rating scale,
        the internal validation split, derived features and encoders, serving data, and the
        initial towers. Data-parallel training (:mod:`palate.models.two_tower.distributed`)
        runs this once and the loop in every process."""
        import torch

        from palate.models.two_tower.training import ColdColumns, Events, TowerInputs

        data = self._check_data(fit_input(interactions), user_features, item_features)
        self._forget_fit()
        config = self.config
        # the catalogue: the users and items of the data, then those known only from a
        # feature table (cold: no events, no id embedding; their towers read the features)
        self.users_ = catalogue(data.users, user_features)
        self.items_ = catalogue(data.items, item_features)
        self.n_trained_users_, self.n_trained_items_ = data.n_users, data.n_items
        self.data_fingerprint_ = data.fingerprint()
        self.global_mean_ = data.global_mean()
        self.rating_scale_ = None
        if data.kind == "explicit":
            scale = data.rating_scale
            if scale is None:
                scale = (float(data.values.min()), float(data.values.max()))
            if scale[1] <= scale[0]:
                scale = (scale[0], scale[0] + 1.0)
            self.rating_scale_ = (float(scale[0]), float(scale[1]))
        seed = config.seed
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31))
        # the internal validation split is made first, so that the derived features (means,
        # counts) come from the fitting part only and early stopping sees no leaked ratings
        fitting = data
        val_events: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        held: np.ndarray | None = None
        if validation is not None:
            val_events = self._validation_events(validation)
        elif config.early_stopping and config.validation_fraction > 0 and len(data) > 10:
            held = held_out(seed, config.validation_fraction, 0, len(data))
            if held.any() and not held.all():
                fitting = data.subset(np.flatnonzero(~held))
                val_events = self._events(data.subset(np.flatnonzero(held)))
            else:
                held = None
        self.global_mean_ = fitting.global_mean()
        self._set_features(
            build_features(
                fitting, self.users_, self.items_, user_features, item_features,
                derived=config.derived_features, shrinkage=config.mean_shrinkage,
                global_mean=self.global_mean_, max_categories=config.max_categories,
            )
        )
        self._set_serving_data(data)

        device = torch.device(config.device)
        self._build_towers(seed)
        self.user_tower_.to(device)
        self.item_tower_.to(device)

        log_q = None
        if config.objective == "retrieval":
            u_fit, i_fit, _ = self._events(fitting)
            counts = np.bincount(i_fit, minlength=data.n_items).astype(np.float64)
            log_q = torch.as_tensor(
                np.log(np.maximum(counts, 1.0) / max(len(i_fit), 1)), dtype=torch.float32
            )
        cold_columns = {}
        for side, spec in (("user", self.user_side_), ("item", self.item_side_)):
            mask, values = spec.cold_columns()
            cold_columns[side] = (
                ColdColumns(torch.as_tensor(mask).to(device), torch.as_tensor(values).to(device))
                if mask.any() else None
            )
        inputs = TowerInputs(
            torch.as_tensor(self.user_inputs_[: data.n_users]).to(device),
            torch.as_tensor(self.item_inputs_[: data.n_items]).to(device),
            None if log_q is None else log_q.to(device),
            cold_columns["user"],
            cold_columns["item"],
        )

        def to_events(parts: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Events:
            return Events(
                torch.as_tensor(parts[0], dtype=torch.long).to(device),
                torch.as_tensor(parts[1], dtype=torch.long).to(device),
                torch.as_tensor(parts[2], dtype=torch.float32).to(device),
            )

        settings = self._loop_settings()
        evaluate = None
        if val_events is not None and len(val_events[0]):
            val = to_events(val_events)

            def evaluate() -> dict[str, float]:
                return self._validation_metrics(inputs, val, settings)

        return _FitPlan(seed, fitting, held, inputs, settings, evaluate, to_events)

    def _loop_settings(self) -> LoopSettings:
        from palate.models.two_tower.training import LoopSettings

        config = self.config
        return LoopSettings(
            objective=config.objective,
            epochs=config.epochs,
            batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            reg=config.reg,
            temperature=config.effective_temperature,
            id_dropout=config.id_dropout,
            early_stopping=config.early_stopping,
            derived_dropout=config.derived_dropout,
            compile=config.compile,
        )

    def _check_data(
        self,
        data: Interactions,
        user_features: UserFeatures | None,
        item_features: ItemFeatures | None,
    ) -> Interactions:
        objective = self.config.objective
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
            and not self.config.derived_features
            and self.config.id_embedding_size == 0
        ):
            raise ConfigError(
                "the towers have no inputs: pass user_features / item_features, keep "
                "derived_features=True, or set id_embedding_size > 0"
            )
        return data

    def _set_features(self, features: TowerFeatures) -> None:
        self.user_side_, self.item_side_ = features.user_side, features.item_side
        self.user_inputs_, self.item_inputs_ = features.user_inputs, features.item_inputs
        self.genres_, self.item_genres_ = features.genres, features.item_genres

    def _build_towers(self, seed: int) -> None:
        import torch

        config = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # id embeddings for the users and items of the training data only
            self.user_tower_ = make_tower(
                config, self.user_inputs_.shape[1], self.n_trained_users_
            )
            self.item_tower_ = make_tower(
                config, self.item_inputs_.shape[1], self.n_trained_items_
            )

    def _events(self, data: Interactions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._targets(data.user_idx, data.item_idx, data.values, data.kind)

    def _targets(
        self, user_idx: np.ndarray, item_idx: np.ndarray, values: np.ndarray, kind: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(user row, item row, target) per training example of events in index form."""
        u = np.asarray(user_idx).astype(np.int64)
        i = np.asarray(item_idx).astype(np.int64)
        y = np.asarray(values).astype(np.float64)
        objective = self.config.objective
        if objective == "ratings":
            return u, i, self._scaled(y)
        if objective == "binary":
            return u, i, y
        keep = y > 0 if kind == "binary" else np.ones(len(y), dtype=bool)
        return u[keep], i[keep], np.ones(int(keep.sum()))

    def _scale(self) -> tuple[float, float]:
        """The rating scale of the ratings objective."""
        scale = self.rating_scale_
        assert scale is not None, "the ratings objective has a rating scale"
        return scale

    def _scaled(self, y: np.ndarray) -> np.ndarray:
        """Ratings scaled to [−1, 1]: ``t = 2 (y − low) / (high − low) − 1``."""
        low, high = self._scale()
        return 2.0 * (y - low) / (high - low) - 1.0

    def _validation_events(
        self, validation: Interactions
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not isinstance(validation, Interactions):
            raise DataError("validation must be palate.Interactions")
        u = self.users_.index(validation.user_ids, missing="ignore")
        i = self.items_.index(validation.item_ids, missing="ignore")
        y = validation.values.astype(np.float64)
        # events of the users and items of the training data (as before the catalogue held
        # users and items known only from their features)
        keep = (u >= 0) & (i >= 0) & (u < self.n_trained_users_) & (i < self.n_trained_items_)
        if self.config.objective == "retrieval":
            keep &= (y > 0) if validation.kind == "binary" else True
            y = np.ones(len(y))
        elif self.config.objective == "ratings":
            y = self._scaled(y)
        return u[keep], i[keep], y[keep]

    def _validation_metrics(self, inputs: Any, val: Any, settings: Any) -> dict[str, float]:
        import torch

        from palate.models.two_tower.training import batch_loss

        with torch.no_grad():
            if settings.objective == "retrieval":
                total, n = 0.0, 0
                for start in range(0, len(val), settings.batch_size):
                    sel = slice(start, start + settings.batch_size)
                    loss = batch_loss(
                        self.user_tower_, self.item_tower_, inputs,
                        val.user_idx[sel], val.item_idx[sel], val.targets[sel], settings,
                    )
                    total += float(loss) * len(val.user_idx[sel])
                    n += len(val.user_idx[sel])
                return {"val_loss": total / max(n, 1)}
            v_u = self.user_tower_(inputs.users.index_select(0, val.user_idx), val.user_idx)
            v_m = self.item_tower_(inputs.items.index_select(0, val.item_idx), val.item_idx)
            s = (v_u * v_m).sum(1).double().cpu().numpy()
        t = val.targets.double().cpu().numpy()
        if settings.objective == "ratings":
            low, high = self._scale()
            half = (high - low) / 2
            return {"val_rmse": float(np.sqrt(np.mean(((np.clip(s, -1, 1) - t) * half) ** 2)))}
        p = np.clip(scipy.special.expit(s / settings.temperature), 1e-7, 1 - 1e-7)
        return {"val_logloss": float(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)))}

    def _set_serving_data(self, data: Interactions) -> None:
        """Seen items and the popularity fallback over the whole catalogue: users and items
        known only from their features have no events, and such items rank after every
        item of the data in the fallback list (popularity 0 by count, below the lowest
        shrunk mean by mean)."""
        n_users, n_items = len(self.users_), len(self.items_)
        seen = seen_matrix(data)
        if seen.shape != (n_users, n_items):
            seen.resize((n_users, n_items))
        self.seen_ = seen
        by = "mean" if data.kind == "explicit" else "count"
        fallback, _ = popularity_scores(data, by)
        fallback = fallback.astype(np.float32)
        if n_items > len(fallback):
            if by == "count" or len(fallback) == 0:
                lowest = np.float32(0.0)
            else:
                lowest = np.nextafter(fallback.min(), np.float32(-np.inf))
            fallback = np.concatenate(
                [fallback, np.full(n_items - len(fallback), lowest, dtype=np.float32)]
            )
        self.fallback_scores_ = fallback

    def _tower_vectors(
        self, tower: Tower, inputs: np.ndarray, ids: np.ndarray | None, batch: int = 65536
    ) -> np.ndarray:
        import torch

        device = torch.device(self.config.device)
        out = []
        tower.eval()
        with torch.no_grad():
            for start in range(0, len(inputs), batch):
                x = torch.as_tensor(inputs[start : start + batch]).to(device)
                idx = None
                if ids is not None:
                    idx = torch.as_tensor(ids[start : start + batch], dtype=torch.long).to(device)
                out.append(tower(x, idx).float().cpu().numpy())
        width = self.config.embedding_size
        return np.vstack(out) if out else np.zeros((0, width), dtype=np.float32)

    def _refresh_vectors(self) -> None:
        """Precompute v_u for every catalogue user and v_m for every catalogue item (those
        known only from their features through the shared "no id" row of a hybrid tower), and
        those of a user / item with no features, no history and no id."""
        dropout = self.config.derived_dropout
        self.vectors_ = TowerVectors(
            users=self._tower_vectors(
                self.user_tower_, self.user_side_.served(self.user_inputs_, dropout),
                _id_rows(len(self.user_inputs_), self.n_trained_users_),
            ),
            items=self._tower_vectors(
                self.item_tower_, self.item_side_.served(self.item_inputs_, dropout),
                _id_rows(len(self.item_inputs_), self.n_trained_items_),
            ),
            no_user=self._new_vectors("user", pd.DataFrame(index=[0]))[0],
            no_item=self._new_vectors("item", pd.DataFrame(index=[0]))[0],
        )

    # ------------------------------------------------------------------ vectors
    def _new_vectors(
        self, side: str, frame: pd.DataFrame, derived: pd.DataFrame | None = None
    ) -> np.ndarray:
        """Vectors of new users / items (no id) from raw attribute rows."""
        spec = self.user_side_ if side == "user" else self.item_side_
        tower = self.user_tower_ if side == "user" else self.item_tower_
        inputs = spec.served(spec.encode_new(frame, derived), self.config.derived_dropout)
        return self._tower_vectors(tower, inputs, np.full(len(frame), -1))

    def user_vectors(
        self,
        user_ids: IdLike | None = None,
        *,
        features: FeaturesLike | None = None,
        ratings: Mapping[Any, float] | None = None,
    ) -> np.ndarray:
        """``v_u``: of catalogue users by id, or of new users from raw attributes.

        Parameters
        ----------
        user_ids : ids, optional
            Users of the catalogue: those of the training data and those with a row in the
            training ``user_features`` (scored from their attributes). With neither ids,
            features nor ratings: every catalogue user, in the order of ``users_``.
        features : DataFrame, UserFeatures, dict or list of dicts, optional
            Attribute rows of new users without an id (columns as in the training
            ``user_features``; missing columns count as missing values; ``{}``: a user with
            no attributes).
        ratings : mapping item id -> rating, optional
            A new user's first ratings: their derived features (count, mean, mean per
            genre) are computed from these, with the training global mean and shrinkage.
            Needs at most one feature row.

        Returns
        -------
        ndarray of float32, shape (n, embedding_size), unit rows
        """
        self._check_fitted()
        if user_ids is not None:
            if features is not None or ratings is not None:
                raise ConfigError("pass user_ids, or features / ratings for new users, not both")
            rows = self.users_.index(user_ids, kind="user")
            return self.vectors_.users[rows]
        if features is None and ratings is None:
            return self.vectors_.users.copy()
        frame = pd.DataFrame(index=[0]) if features is None else feature_frame(features)
        derived = None
        if ratings is not None:
            if len(frame) != 1:
                raise DataError("ratings describe one new user: pass at most one feature row")
            derived = derived_for_ratings(
                ratings, self.items_, self.genres_, self.item_genres_,
                self.config.mean_shrinkage, self.global_mean_,
            )
        return self._new_vectors("user", frame, derived)

    def item_vectors(
        self, item_ids: IdLike | None = None, *, features: FeaturesLike | None = None
    ) -> np.ndarray:
        """``v_m``: of catalogue items by id, or of new items from raw attributes (cold start).

        Parameters
        ----------
        item_ids : ids, optional
            Items of the catalogue: those of the training data and those with a row in the
            training ``item_features`` (never rated: scored from their attributes). With
            neither ids nor features: every catalogue item, in the order of ``items_``.
        features : DataFrame, ItemFeatures, dict or list of dicts, optional
            Attribute rows of new items without an id, e.g. ``{"genres": ["Comedy"],
            "year": 2024}`` (``{}``: an item with no attributes).

        Returns
        -------
        ndarray of float32, shape (n, embedding_size), unit rows
        """
        self._check_fitted()
        if item_ids is not None:
            if features is not None:
                raise ConfigError("pass item_ids or features, not both")
            rows = self.items_.index(item_ids, kind="item")
            return self.vectors_.items[rows]
        if features is None:
            return self.vectors_.items.copy()
        return self._new_vectors("item", feature_frame(features))

    # ------------------------------------------------------------------ scoring
    def link(self, s: np.ndarray) -> np.ndarray:
        """ratings: v_u · v_m in [−1, 1] mapped onto the rating scale; binary: the sigmoid of
        v_u · v_m / temperature; retrieval: v_u · v_m."""
        objective = self.config.objective
        if objective == "ratings":
            low, high = self._scale()
            return low + (np.clip(s, -1.0, 1.0) + 1.0) / 2.0 * (high - low)
        if objective == "binary":
            return scipy.special.expit(s / self.config.effective_temperature)
        return s

    def score_vectors(self, user_vectors: np.ndarray, item_vectors: np.ndarray) -> np.ndarray:
        """Predictions for every (user vector, item vector) pair: the link of
        ``v_u · v_m``, shape (n_users, n_items) — predicted ratings, probabilities, or raw
        scores for retrieval."""
        self._check_fitted()
        return self.link(np.asarray(user_vectors, np.float64) @ np.asarray(item_vectors).T)

    def linear_scores(self) -> LinearScores:
        """The raw scores ``v_u · v_m`` (before the link) as the precomputed user and item
        vectors (what a vector index needs to serve them)."""
        self._check_fitted()
        return LinearScores(self.vectors_.users, self.vectors_.items)

    def predict_rows(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Predicted ratings (ratings objective), probabilities (binary) or ``v_u · v_m``
        (retrieval). Unknown users and items are scored with the vectors of a user / item
        without features or history."""
        vectors = self.vectors_
        v_u = np.where((u >= 0)[:, None], vectors.users[np.maximum(u, 0)], vectors.no_user)
        v_m = np.where((i >= 0)[:, None], vectors.items[np.maximum(i, 0)], vectors.no_item)
        s = np.einsum("ij,ij->i", v_u.astype(np.float64), v_m.astype(np.float64))
        return self.link(s)

    @property
    def feedback_kind(self) -> FeedbackKind:
        kinds: dict[str, FeedbackKind] = {
            "ratings": "explicit", "binary": "binary", "retrieval": "implicit"
        }
        return kinds[self.config.objective]

    @property
    def score_kind(self) -> ScoreKind:
        kinds: dict[str, ScoreKind] = {
            "ratings": "rating", "binary": "probability", "retrieval": "preference"
        }
        return kinds[self.config.objective]

    @property
    def rating_scale(self) -> tuple[float, float] | None:
        return self.rating_scale_ if self.config.objective == "ratings" else None

    def top_users(self, item_vectors: np.ndarray, k: int = 10) -> tuple[IdArray, np.ndarray]:
        """The k catalogue users who score each item vector highest (who a new item would be
        recommended to).

        Parameters
        ----------
        item_vectors : ndarray, shape (n, embedding_size)
            E.g. ``model.item_vectors(features=new_items)``.

        Returns
        -------
        user_ids : ndarray, shape (n, k)
        scores : ndarray of float32, shape (n, k)
            The link of ``v_u · v_m`` (predicted ratings for the ratings objective).
        """
        self._check_fitted()
        k = check_k(k)
        raw = np.asarray(item_vectors, dtype=np.float32) @ self.vectors_.users.T
        idx, val = top_k(raw, k)
        return ids_from_indices(self.users_, idx), self.link(val.astype(np.float64)).astype(
            np.float32
        )

    def similarity_vectors(self) -> np.ndarray:
        """v_m: related items have the smallest ``‖v_m(k) − v_m(i)‖²`` (for unit vectors the
        cosine ranking is the same)."""
        return self.vectors_.items

    def similarity_candidates(self) -> np.ndarray:
        """Every item: the towers give a vector to items with no events too."""
        return np.ones(len(self.items_), dtype=np.bool_)

    # ------------------------------------------------------------------ model files
    def _save_state(self, state: ModelState) -> None:
        state.arrays.update(self._tower_arrays())
        state.arrays.update(
            user_inputs=self.user_inputs_,
            item_inputs=self.item_inputs_,
            item_genres=self.item_genres_.astype(np.uint8),
        )
        state.extra.update(
            user_side=self.user_side_.to_state(),
            item_side=self.item_side_.to_state(),
            genres=self.genres_,
            global_mean=self.global_mean_,
            rating_scale=list(self.rating_scale_) if self.rating_scale_ else None,
            history=self.history_,
            n_trained=[self.n_trained_users_, self.n_trained_items_],
        )

    def _load_state(self, state: ModelState) -> None:
        users, items = self.users_, self.items_
        a = state.arrays
        extra = state.extra
        try:
            self.user_side_ = FeatureSide.from_state(extra["user_side"])
            self.item_side_ = FeatureSide.from_state(extra["item_side"])
            self.genres_ = [str(g) for g in extra.get("genres", [])]
            self.global_mean_ = float(extra.get("global_mean", 0.0))
            scale = extra.get("rating_scale")
            self.rating_scale_ = (float(scale[0]), float(scale[1])) if scale else None
            self.history_ = list(extra.get("history", []))
            # files written before the catalogue held feature-only rows: every row trained
            n_trained = extra.get("n_trained", [len(users), len(items)])
            self.n_trained_users_, self.n_trained_items_ = int(n_trained[0]), int(n_trained[1])
            self.user_inputs_ = np.asarray(a["user_inputs"], dtype=np.float32)
            self.item_inputs_ = np.asarray(a["item_inputs"], dtype=np.float32)
            self.item_genres_ = np.asarray(a["item_genres"]).astype(bool)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"the two-tower model state is incomplete ({exc})") from exc
        if self.user_inputs_.shape[0] != len(users) or self.item_inputs_.shape[0] != len(items):
            raise DataError("feature matrices do not match the vocabularies")
        if not (
            0 <= self.n_trained_users_ <= len(users) and 0 <= self.n_trained_items_ <= len(items)
        ):
            raise DataError("the numbers of trained users and items exceed the vocabularies")
        if self.user_inputs_.shape[1] != self.user_side_.encoder.width or (
            self.item_inputs_.shape[1] != self.item_side_.encoder.width
        ):
            raise DataError("feature matrices do not match their encoders")
        self._build_towers(0)
        self._load_towers(a)
        self._refresh_vectors()

    def _tower_arrays(self) -> dict[str, np.ndarray]:
        """The weights of both towers as float32 arrays named ``user_tower.<parameter>`` and
        ``item_tower.<parameter>``."""
        arrays: dict[str, np.ndarray] = {}
        for prefix, tower in (("user_tower", self.user_tower_), ("item_tower", self.item_tower_)):
            for name, tensor in tower.state_dict().items():
                arrays[f"{prefix}.{name}"] = tensor.detach().float().cpu().numpy()
        return arrays

    def _load_towers(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Load weights named as :meth:`_tower_arrays` names them into the built towers."""
        import torch

        for prefix, tower in (("user_tower", self.user_tower_), ("item_tower", self.item_tower_)):
            weights = {
                name[len(prefix) + 1 :]: torch.as_tensor(value)
                for name, value in arrays.items()
                if name.startswith(prefix + ".")
            }
            try:
                tower.load_state_dict(weights)
            except RuntimeError as exc:
                raise DataError(f"{prefix} weights do not fit the configuration ({exc})") from exc
            tower.to(torch.device(self.config.device))


def _id_rows(n: int, n_trained: int) -> np.ndarray:
    """Row of each catalogue id in a tower's id embedding: its own for the ``n_trained``
    ids of the training data, -1 (the shared "no id" row) for the rest."""
    rows = np.arange(n)
    rows[n_trained:] = -1
    return rows


__all__ = ["TwoTower", "TwoTowerConfig"]
