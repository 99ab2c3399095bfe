"""The content-based two-tower model: a user network and an item network map features to
L2-normalised vectors whose dot product is the prediction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.special

from palate.data.features import ItemFeatures, UserFeatures
from palate.data.interactions import Interactions
from palate.errors import ConfigError, DataError, NotFittedError
from palate.models.base import (
    FeedbackKind,
    Model,
    ModelState,
    ScoreKind,
    fit_input,
)
from palate.models.scoring import LinearScores, check_k, ids_from_indices, top_k
from palate.models.two_tower.config import (
    DEFAULT_DERIVED_DROPOUT,
    IdSides,
    Objective,
    TwoTowerConfig,
    check_fit_data,
    rating_scale_of,
)
from palate.models.two_tower.features import (
    FeaturesLike,
    TowerFeatures,
    build_features,
    catalogue,
    catalogue_events,
    derived_for_ratings,
)
from palate.types import IdArray, IdLike

if TYPE_CHECKING:
    from palate.models.two_tower.towers import Tower, TowerVectors
    from palate.models.two_tower.training import Targets, TrainingPlan

#: what each objective learns from and what its predictions are
_KINDS: dict[str, tuple[FeedbackKind, ScoreKind]] = {
    "ratings": ("explicit", "rating"),
    "binary": ("binary", "probability"),
    "retrieval": ("implicit", "preference"),
}


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
    id_embedding_sides : {"both", "users", "items"}
        Which towers get the id embedding of ``id_embedding_size``. ``"users"`` suits a
        catalogue whose new items must be scored from their attributes: the item tower then
        never learns from item ids, so a new item is built exactly like a trained one.
    item_hidden_sizes : tuple of int, optional
        ReLU layers of the item tower (None: ``hidden_sizes``). ``()``: one linear layer,
        ``v_m = N(W x_m + b)`` — a sum of one learned vector per feature value, as LightFM
        builds items from their features.
    derived_features : bool
        Add the features derived from the training ratings (counts, shrunk mean ratings, mean
        rating per genre of the first multi-valued item column).
    derived_dropout : float
        Cold-start dropout (DropoutNet, Volkovs et al. 2017): for this share of the training
        examples the item's derived features are replaced by those of an item without
        ratings, and independently the user's by those of a user without ratings, so the
        towers learn to score from attributes alone as well. 0: off; 1: the derived features
        are never seen with their values (the predictions do not depend on them). A
        ``(users, items)`` pair sets the two sides apart.
    epochs, batch_size, learning_rate : int, int, float
        Adam on shuffled mini-batches.
    reg : float
        L2 penalty on the weights (Adam's weight decay).
    temperature : float, optional
        τ of the binary and retrieval objectives (default 0.25 and 0.05).
    uniform_negatives : int
        Retrieval objective: this many items drawn uniformly from the training items join
        each batch's in-batch negatives (mixed negative sampling), so that rarely rated items
        are seen as negatives as often as popular ones; the log-frequency correction then
        uses the mixed sampling frequencies (:mod:`~palate.models.two_tower.losses`).
    log_q_correction : bool
        Retrieval objective: subtract the log sampling frequency from each logit (default),
        so the scores estimate p(item | user) with popularity in it.
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
        Train through autograd with the step (both towers, the loss and their gradients)
        compiled by ``torch.compile``, instead of the default hand-written step
        (:mod:`palate.models.two_tower.manual`: both towers' passes into buffers kept between
        steps, the loss and its gradient in one compiled pass, one fused Adam update), which
        measured faster on 2 CPU cores (BENCHMARKS.md). Compiling costs seconds to a minute
        (a C++ compiler on CPU) and once more when the last, shorter batch arrives; if it
        fails, training goes on uncompiled through autograd, with a warning.

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
    #: the fitted encoders of both towers' inputs and the encoded rows of every catalogue
    #: user and item
    features_: TowerFeatures
    #: the served tower outputs (computed from the weights by :meth:`refresh_vectors`)
    vectors_: TowerVectors

    def __init__(
        self,
        objective: Objective = "ratings",
        hidden_sizes: Sequence[int] = (256, 128),
        embedding_size: int = 32,
        id_embedding_size: int = 0,
        id_dropout: float = 0.2,
        id_embedding_sides: IdSides = "both",
        item_hidden_sizes: Sequence[int] | None = None,
        derived_features: bool = True,
        derived_dropout: float | tuple[float, float] = DEFAULT_DERIVED_DROPOUT,
        epochs: int = 30,
        batch_size: int = 1024,
        learning_rate: float = 1e-3,
        reg: float = 0.0,
        temperature: float | None = None,
        uniform_negatives: int = 0,
        log_q_correction: bool = True,
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
            id_embedding_sides=id_embedding_sides,
            item_hidden_sizes=None if item_hidden_sizes is None else tuple(item_hidden_sizes),
            derived_features=derived_features,
            derived_dropout=derived_dropout,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            reg=reg,
            temperature=temperature,
            uniform_negatives=uniform_negatives,
            log_q_correction=log_q_correction,
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
        if self.config.item_hidden_sizes is not None:
            params["item_hidden_sizes"] = list(self.config.item_hidden_sizes)
        if isinstance(self.config.derived_dropout, tuple):
            params["derived_dropout"] = list(self.config.derived_dropout)
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
            Events scored after every epoch for early stopping (only those of users and items
            of ``interactions`` are). Default: ``validation_fraction`` of ``interactions``.
        callback : callable(epoch, metrics), optional
            Called after every epoch (progress bars).

        Returns
        -------
        self

        Notes
        -----
        With the internal validation split, the derived features are computed from the other
        ``1 − validation_fraction`` of the events (those the weights are fitted on). A fit
        that raises leaves the model unfitted.
        """
        try:
            plan = self.prepare_fit(
                interactions, user_features=user_features, item_features=item_features,
                validation=validation,
            )
            if len(plan.events) == 0:
                raise DataError("no training events left; pass more data")
            self.finish_fit(plan.train(callback))
        except BaseException:
            self._forget_fit()  # a fit that does not finish leaves no half-fitted model
            raise
        return self

    # ------------------------------------------------------------------ the training plan
    def prepare_fit(
        self,
        interactions: Interactions,
        *,
        user_features: UserFeatures | None = None,
        item_features: ItemFeatures | None = None,
        validation: Interactions | None = None,
    ) -> TrainingPlan:
        """Everything :meth:`fit` does before its training loop, for training run elsewhere
        (:mod:`palate.models.two_tower.distributed` trains in several processes).

        Sets the catalogue, the rating scale, the feature encoders and encoded rows, the seen
        items and fallback, and builds the towers with their initial weights; then train them
        (``plan.train()``, or anywhere, loading the result with :meth:`load_tower_weights`)
        and end with :meth:`finish_fit`. The parameters are those of :meth:`fit`; a plan that
        raises leaves the model unfitted, and until :meth:`finish_fit` it serves nothing.

        Returns
        -------
        TrainingPlan
            The seed, the events the weights are fitted on and their training examples, the
            internal validation split, the towers' inputs, the loop settings and the
            towers and the validation examples (see
            :class:`~palate.models.two_tower.training.TrainingPlan`).
        """
        data = check_fit_data(self.config, fit_input(interactions), user_features, item_features)
        self._forget_fit()
        try:
            return self._plan(data, user_features, item_features, validation)
        except BaseException:
            self._forget_fit()
            raise

    def _plan(
        self,
        data: Interactions,
        user_features: UserFeatures | None,
        item_features: ItemFeatures | None,
        validation: Interactions | None,
    ) -> TrainingPlan:
        import torch

        from palate.models.two_tower.training import (
            Targets,
            TrainingPlan,
            log_frequencies,
            to_events,
            tower_inputs,
            validation_split,
        )

        config = self.config
        # the catalogue: the users and items of the data, then those known only from a
        # feature table (cold: no events, no id embedding; their towers read the features)
        self.users_ = catalogue(data.users, user_features)
        self.items_ = catalogue(data.items, item_features)
        self.n_trained_users_, self.n_trained_items_ = data.n_users, data.n_items
        self.data_fingerprint_ = data.fingerprint()
        self.rating_scale_ = rating_scale_of(data) if data.kind == "explicit" else None
        seed = config.seed
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31))
        targets = Targets(config.objective, self.rating_scale_)
        # the internal validation split is made first, so that the derived features (means,
        # counts) come from the fitting part only and early stopping sees no leaked ratings
        fitting, held = data, None
        val_events: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if validation is not None:
            val_events = self._validation_events(validation, targets)
        elif config.early_stopping and config.validation_fraction > 0 and len(data) > 10:
            fitting, held, val_data = validation_split(data, seed, config.validation_fraction)
            val_events = None if val_data is None else targets.of(val_data)
        self.global_mean_ = fitting.global_mean()
        self.features_ = features = build_features(
            fitting, self.users_, self.items_, user_features, item_features,
            derived=config.derived_features, shrinkage=config.mean_shrinkage,
            global_mean=self.global_mean_, max_categories=config.max_categories,
        )
        self.seen_, self.fallback_scores_ = catalogue_events(
            data, len(self.users_), len(self.items_)
        )
        self._build_towers(seed)

        device = torch.device(config.device)
        log_q = None
        if config.objective == "retrieval":
            log_q = log_frequencies(targets.of(fitting)[1], data.n_items)
        # the towers train on the rows of the training data's users and items
        inputs = tower_inputs(
            features.user_inputs[: data.n_users],
            features.item_inputs[: data.n_items],
            device,
            log_q,
            {side: features.side(side).cold_columns() for side in ("user", "item")},
        )
        return TrainingPlan(
            seed, fitting, held, inputs, config.loop_settings(), targets, self.user_tower_,
            self.item_tower_, None if val_events is None else to_events(val_events, device),
            device,
        )

    def tower_weights(self) -> dict[str, np.ndarray]:
        """The weights of both towers as float32 arrays named ``user_tower.<parameter>`` and
        ``item_tower.<parameter>`` (what model files store and training processes share)."""
        from palate.models.two_tower.towers import tower_arrays

        return tower_arrays(self.user_tower_, self.item_tower_)

    def load_tower_weights(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Load weights named as :meth:`tower_weights` names them into the towers (built by
        :meth:`prepare_fit` or a fit); a serving model recomputes its vectors.

        Raises
        ------
        DataError
            The arrays do not fit the towers (another configuration or catalogue).
        """
        import torch

        from palate.models.two_tower.towers import load_tower_arrays

        device = torch.device(self.config.device)
        load_tower_arrays(self.user_tower_, self.item_tower_, arrays, device)
        if "vectors_" in vars(self):
            self.refresh_vectors()

    def finish_fit(self, history: Sequence[Mapping[str, float]]) -> TwoTower:
        """End a fit begun by :meth:`prepare_fit` once the towers hold their trained weights:
        keep the per-epoch ``history`` and compute the served vectors. Returns self."""
        if "user_tower_" not in vars(self):
            raise NotFittedError("finish_fit ends a fit that prepare_fit began; call it first")
        self.history_ = [dict(h) for h in history]
        self.refresh_vectors()
        return self

    def refresh_vectors(self) -> None:
        """Recompute the served vectors from the towers' current weights: v_u of every
        catalogue user, v_m of every catalogue item (those known only from their features
        through the shared "no id" row of a hybrid tower), and those of a user / item with no
        features, no history and no id. A fit does it at its end; call it after changing
        the weights otherwise (e.g. from a fit callback)."""
        import torch

        from palate.models.two_tower.towers import served_vectors

        self.vectors_ = served_vectors(
            self.user_tower_, self.item_tower_, self.features_,
            (self.n_trained_users_, self.n_trained_items_), self.config.derived_dropouts,
            torch.device(self.config.device),
        )

    # ------------------------------------------------------------------ fitting steps
    def _build_towers(self, seed: int) -> None:
        """Both towers with their initial weights on the model's device (id embeddings for
        the training ids)."""
        import torch

        from palate.models.two_tower.towers import build_towers

        widths = self.features_.user_inputs.shape[1], self.features_.item_inputs.shape[1]
        self.user_tower_, self.item_tower_ = build_towers(
            self.config, widths, (self.n_trained_users_, self.n_trained_items_), seed,
            torch.device(self.config.device),
        )

    def _validation_events(
        self, validation: Interactions, targets: Targets
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The examples of the ``validation`` events of users and items of the training data
        (as before the catalogue held users and items known only from their features)."""
        if not isinstance(validation, Interactions):
            raise DataError("validation must be palate.Interactions")
        u = self.users_.index(validation.user_ids, missing="ignore")
        i = self.items_.index(validation.item_ids, missing="ignore")
        keep = (u >= 0) & (i >= 0) & (u < self.n_trained_users_) & (i < self.n_trained_items_)
        return targets(u[keep], i[keep], validation.values[keep], validation.kind)

    # ------------------------------------------------------------------ vectors
    def _new_vectors(
        self, side: str, frame: pd.DataFrame, derived: pd.DataFrame | None = None
    ) -> np.ndarray:
        """Vectors of new users / items (no id) from raw attribute rows."""
        import torch

        from palate.models.two_tower.towers import new_vectors

        rate = self.config.derived_dropouts[0 if side == "user" else 1]
        return new_vectors(
            self.user_tower_ if side == "user" else self.item_tower_, self.features_.side(side),
            frame, derived, rate, torch.device(self.config.device),
        )

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

        Raises
        ------
        DataError
            A feature column the training ``user_features`` did not have (the error names
            those it had), or a numeric / year value that is not a number.
        """
        self._check_fitted()
        if user_ids is not None:
            if features is not None or ratings is not None:
                raise ConfigError("pass user_ids, or features / ratings for new users, not both")
            rows = self.users_.index(user_ids, kind="user")
            return self.vectors_.users[rows]
        if features is None and ratings is None:
            return self.vectors_.users.copy()
        frame = (
            pd.DataFrame(index=[0]) if features is None
            else self.features_.user_side.new_rows(features, "user")
        )
        derived = None
        if ratings is not None:
            if len(frame) != 1:
                raise DataError("ratings describe one new user: pass at most one feature row")
            fitted = self.features_
            derived = derived_for_ratings(
                ratings, self.items_, fitted.genres, fitted.item_genres,
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

        Raises
        ------
        DataError
            A feature column the training ``item_features`` did not have (the error names
            those it had), or a numeric / year value that is not a number.
        """
        self._check_fitted()
        if item_ids is not None:
            if features is not None:
                raise ConfigError("pass item_ids or features, not both")
            rows = self.items_.index(item_ids, kind="item")
            return self.vectors_.items[rows]
        if features is None:
            return self.vectors_.items.copy()
        return self._new_vectors("item", self.features_.item_side.new_rows(features, "item"))

    # ------------------------------------------------------------------ scoring
    def link(self, s: np.ndarray) -> np.ndarray:
        """ratings: v_u · v_m in [−1, 1] mapped onto the rating scale; binary: the sigmoid of
        v_u · v_m / temperature; retrieval: v_u · v_m."""
        objective = self.config.objective
        if objective == "ratings":
            scale = self.rating_scale_
            assert scale is not None, "the ratings objective has a rating scale"
            low, high = scale
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
        return self._kept_linear_scores(self.vectors_.users, self.vectors_.items)

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
        return _KINDS[self.config.objective][0]

    @property
    def score_kind(self) -> ScoreKind:
        return _KINDS[self.config.objective][1]

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
        arrays, extra = self.features_.to_state()
        state.arrays.update(self.tower_weights(), **arrays)
        state.extra.update(
            extra,
            global_mean=self.global_mean_,
            rating_scale=list(self.rating_scale_) if self.rating_scale_ else None,
            history=self.history_,
            n_trained=[self.n_trained_users_, self.n_trained_items_],
        )

    def _load_state(self, state: ModelState) -> None:
        n_users, n_items = len(self.users_), len(self.items_)
        extra = state.extra
        self.features_ = TowerFeatures.from_state(state.arrays, extra, n_users, n_items)
        try:
            self.global_mean_ = float(extra.get("global_mean", 0.0))
            scale = extra.get("rating_scale")
            self.rating_scale_ = (float(scale[0]), float(scale[1])) if scale else None
            self.history_ = list(extra.get("history", []))
            # files written before the catalogue held feature-only rows: every row trained
            n_trained = extra.get("n_trained", [n_users, n_items])
            self.n_trained_users_, self.n_trained_items_ = int(n_trained[0]), int(n_trained[1])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DataError(f"the two-tower model state is incomplete ({exc})") from exc
        if not (0 <= self.n_trained_users_ <= n_users and 0 <= self.n_trained_items_ <= n_items):
            raise DataError("the numbers of trained users and items exceed the vocabularies")
        self._build_towers(0)
        self.load_tower_weights(state.arrays)
        self.refresh_vectors()


__all__ = ["TwoTower", "TwoTowerConfig"]
