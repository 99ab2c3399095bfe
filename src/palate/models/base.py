"""The model contract, written once: every palate model is a :class:`Model`.

The base class owns everything that is the same for every model — mapping external ids to rows,
the checks on pairs and ``k``, the fallback for unknown users and items, the one top-k path
with seen-item exclusion (:func:`palate.models.scoring.recommend_by_scores`), related items,
fold-in of a new user, parameters, and the state that model files store. A model supplies its
configuration, ``fit`` and one scoring hook:

- :meth:`Model.linear_scores` where its raw scores are ``U[u] · V[i] + b[u] + c[i]``
  (collaborative filtering, implicit ALS, two towers): ranking, serving indexes and the
  retrieve-then-rank pipeline then use the factors directly; or
- :meth:`Model.score_rows` (raw scores of whole user rows) otherwise (EASE, popularity),

plus :meth:`Model.link` (what turns a raw score into what the model predicts: clipping to the
rating scale, the sigmoid), and, where it has them, the item vectors of related items
(:meth:`Model.similarity_vectors`) and fold-in (:meth:`Model.fold_in_scores`).

What a model can do is declared, never guessed: :meth:`Model.capabilities` (what the service,
the pipeline and model files read) reports the kind of feedback it learns from, what its scores
are, its rating scale, whether it folds in new users, the metric of its related items and
whether its scores are linear.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeAlias, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from palate.data.interactions import Interactions
from palate.data.vocabulary import Vocabulary, as_id_array
from palate.errors import CapabilityError, DataError, NotFittedError
from palate.models.explain import Attribution, Explanation, Reason, explanations
from palate.models.scoring import (
    LinearScores,
    Recommendations,
    SimilarItems,
    nearest_items,
    recommend_by_scores,
    top_k_for_new_user,
    user_rows,
)
from palate.types import FloatArray, Id, IdArray, IdLike

FeedbackKind = Literal["explicit", "binary", "implicit", "any"]
ScoreKind = Literal["rating", "probability", "preference", "popularity"]
RankKind = Literal["prediction", "confidence", "blend"]
RatingsLike: TypeAlias = Mapping[Any, float] | pd.DataFrame | pd.Series

M = TypeVar("M", bound="Model")
T = TypeVar("T")


@dataclass
class ModelState:
    """Everything needed to rebuild a fitted model, with no Python objects to unpickle.

    ``config`` is JSON; ``arrays`` are numeric NumPy arrays (saved as safetensors);
    ``vocabularies`` are saved as Parquet; ``extra`` is small JSON-able learned metadata.
    """

    config: dict[str, Any]
    arrays: dict[str, np.ndarray]
    vocabularies: dict[str, Vocabulary]
    extra: dict[str, Any] = field(default_factory=dict)


class Model:
    """Base class of every palate model: the contract, written once (template method).

    Subclasses set ``model_kind`` and the capability class attributes, keep their
    hyperparameters in a frozen dataclass ``self.config``, implement ``fit`` (which sets
    ``users_``, ``items_``, ``seen_`` and ``fallback_scores_`` and starts over every time) and
    one scoring hook; :meth:`recommend`, :meth:`predict`, :meth:`similar_items`,
    :meth:`fold_in`, :meth:`recommend_for_ratings`, :meth:`to_state` / :meth:`from_state` and
    :meth:`with_params` come from here.

    Attributes
    ----------
    users_, items_ : Vocabulary
        External id <-> row of the users and items the model knows.
    seen_ : scipy.sparse.csr_matrix, shape (n_users, n_items)
        1 for every (user, item) pair the model was given an event for — whatever its value
        (a low rating, an explicit 0): what ``exclude_seen`` leaves out.
    fallback_scores_ : ndarray of float32, shape (n_items,)
        The list shown to users the model does not know (popularity or shrunk item means).
    """

    #: name recorded in manifest.json and looked up in the allow-list when loading
    model_kind: ClassVar[str] = "model"
    #: whether the raw scores are ``U[u] · V[i] + offsets`` (:meth:`linear_scores`)
    has_linear_scores: ClassVar[bool] = False
    #: the distance :meth:`similar_items` uses by default; None: no related items
    similarity_metric: ClassVar[Literal["euclidean", "cosine"] | None] = None
    #: whether :meth:`fold_in` scores a new user from their ratings without retraining
    can_fold_in: ClassVar[bool] = False
    #: whether :meth:`explain_items` splits scores into named terms (:meth:`attribute`)
    can_explain: ClassVar[bool] = False

    config: Any
    users_: Vocabulary
    items_: Vocabulary
    seen_: sp.csr_matrix
    fallback_scores_: np.ndarray
    data_fingerprint_: str

    # ------------------------------------------------------------------ fitted state
    def __getattr__(self, name: str) -> Any:
        # learned attributes (trailing underscore) exist only once fitted
        if name.endswith("_") and not name.startswith("__"):
            raise NotFittedError(
                f"{type(self).__name__}.{name} is not set: the model is not fitted yet; call "
                ".fit(interactions) first"
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def is_fitted(self) -> bool:
        return "users_" in vars(self)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call .fit(interactions) first"
            )

    def _forget_fit(self) -> None:
        """Drop every learned attribute (``fit`` starts over)."""
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("__")]:
            del self.__dict__[name]

    def _set_events(self, data: Interactions, fallback_scores: np.ndarray) -> None:
        """The vocabularies, every (user, item) pair of ``data`` as seen, the fallback list and
        the data's fingerprint."""
        self.users_, self.items_ = data.users, data.items
        self.data_fingerprint_ = data.fingerprint()
        self.seen_ = seen_matrix(data)
        self.fallback_scores_ = np.asarray(fallback_scores, dtype=np.float32)

    # ------------------------------------------------------------------ capabilities
    @property
    def feedback_kind(self) -> FeedbackKind:
        """What the values of the training events mean: ``"explicit"`` ratings, ``"binary"``
        0/1 labels, ``"implicit"`` engagement strengths (> 0 engaged), or ``"any"``."""
        return "any"

    @property
    def score_kind(self) -> ScoreKind:
        """What ``predict`` returns: a predicted ``"rating"``, a ``"probability"`` that
        y = 1, a ``"preference"`` score (comparable within one user only) or ``"popularity"``."""
        return "preference"

    @property
    def rating_scale(self) -> tuple[float, float] | None:
        """The (low, high) scale of explicit ratings, None for other feedback."""
        return None

    @property
    def ranks_by(self) -> RankKind:
        """What ``recommend`` orders by and returns as ``scores``: the ``"prediction"``
        itself (most models), a ``"confidence"``-aware version of it, or a ``"blend"`` of
        several models; in the last two cases ``predict`` gives the prediction of a listed
        item."""
        return "prediction"

    def capabilities(self) -> dict[str, Any]:
        """What this model can do, as the service, the pipeline and tools read it."""
        scale = self.rating_scale
        return {
            "model_kind": self.model_kind,
            "feedback_kind": self.feedback_kind,
            "score_kind": self.score_kind,
            "ranks_by": self.ranks_by,
            "rating_scale": None if scale is None else [float(scale[0]), float(scale[1])],
            "can_fold_in": self.can_fold_in,
            "similarity_metric": self.similarity_metric,
            "has_linear_scores": self.has_linear_scores,
            "can_explain": self.can_explain,
        }

    # ------------------------------------------------------------------ scoring hooks
    def linear_scores(self) -> LinearScores:
        """The raw scores as factors ``U[u] · V[i] + user_offset[u] + item_offset[i]``
        (before :meth:`link`); what vector indexes and rankers need. Only for models with
        ``has_linear_scores``."""
        raise CapabilityError(
            f"{type(self).__name__} scores are not a dot product of user and item vectors; "
            "use a model with has_linear_scores (CollaborativeFiltering, ImplicitALS, TwoTower)"
        )

    def _kept(self, name: str, key: tuple[Any, ...], build: Callable[[], T]) -> T:
        """``build()``, kept under ``name`` while the model holds the very objects in ``key``
        (its parameter arrays): derived state such as :class:`LinearScores` (with the
        contiguous Vᵀ it prepares at its first product) is then made once per fit, not once
        per call — at 1M × 64 items that copy costs more than the product. A model whose
        parameters change in place calls :meth:`_forget_kept`. The entry holds the key's
        objects, so ``is`` cannot match a new array that reuses a freed one's address."""
        kept = self.__dict__.setdefault("_kept_state", {})
        entry = kept.get(name)
        if entry is None or not all(x is y for x, y in zip(entry[0], key, strict=True)):
            entry = kept[name] = (key, build())
        return entry[1]

    def _forget_kept(self) -> None:
        self.__dict__.pop("_kept_state", None)

    def _kept_linear_scores(
        self, user_factors: np.ndarray, item_factors: np.ndarray
    ) -> LinearScores:
        """``LinearScores(user_factors, item_factors)``, kept (see :meth:`_kept`)."""
        return self._kept(
            "linear", (user_factors, item_factors),
            lambda: LinearScores(user_factors, item_factors),
        )

    def ranking_scores(self) -> LinearScores:
        """What :meth:`recommend` ranks by for models with ``has_linear_scores``: by default
        the raw scores themselves; a model that ranks by something else (``ranks_by``) returns
        that, still as factors, so vector indexes serve the same lists."""
        return self.linear_scores()

    def score_rows(self, rows: np.ndarray) -> np.ndarray:
        """Raw ranking scores of every item for the users at ``rows``, shape
        (len(rows), n_items)."""
        return self.ranking_scores()(rows)

    def link(self, raw: np.ndarray) -> np.ndarray:
        """Maps raw scores to predictions (identity unless the model clips or squashes)."""
        return raw

    def similarity_vectors(self) -> np.ndarray:
        """The item vectors of related items, shape (n_items, n)."""
        raise CapabilityError(
            f"{type(self).__name__} has no item vectors, so it cannot find similar items"
        )

    def similarity_scale(self) -> np.ndarray | None:
        """Per-item factors (n_items,) that multiply the distances of :meth:`similar_items`
        (None: plain distances)."""
        return None

    def similarity_candidates(self) -> np.ndarray:
        """Bool mask (n_items,) of the items :meth:`similar_items` may return: by default
        those with training events (their vectors were learned)."""
        return items_with_events(self.seen_)

    def fold_in_ranking_scores(self, item_ids: IdArray, values: np.ndarray) -> np.ndarray:
        """What :meth:`recommend_for_ratings` ranks a new user's items by, shape (n_items,):
        the raw scores of :meth:`fold_in_scores` unless the model ranks by something else."""
        return self.fold_in_scores(item_ids, values)

    def fold_in_scores(self, item_ids: IdArray, values: np.ndarray) -> np.ndarray:
        """Raw scores (n_items,) of a new user who gave ``values`` to ``item_ids``."""
        raise CapabilityError(
            f"{type(self).__name__} cannot fold in a new user's ratings; retrain it, or use "
            "CollaborativeFiltering or EASE"
        )

    def unknown_item_score(self) -> float:
        """What :meth:`predict` gives an item the model does not know (NaN: nothing)."""
        return math.nan

    def explain_history(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(item rows, values) of the events of the known user at ``row`` that its scores
        are built from; by default every seen item with value 1."""
        seen = self.seen_
        items = seen.indices[seen.indptr[row] : seen.indptr[row + 1]].astype(np.int64)
        return items, np.ones(len(items))

    def attribute(
        self, history: np.ndarray, values: np.ndarray, items: np.ndarray, user_row: int
    ) -> Attribution:
        """The scores of the items at rows ``items`` for one user split into terms (see
        :mod:`palate.models.explain`): the user at ``user_row`` (-1: a new user folded in
        from ``values`` on the item rows ``history``). Only for ``can_explain`` models."""
        raise CapabilityError(
            f"{type(self).__name__} cannot split its scores into the contributions of the "
            "user's history (can_explain is false); use EASE, CollaborativeFiltering or "
            "HybridRecommender for explanations"
        )

    # ------------------------------------------------------------------ the contract
    def predict(self, user_ids: IdLike, item_ids: IdLike) -> FloatArray:
        """Score (user, item) pairs.

        Parameters
        ----------
        user_ids, item_ids : array-like, shape (n,)

        Returns
        -------
        ndarray of float32, shape (n,)
            What :attr:`score_kind` says. A user the model does not know is scored as a user
            with no history (zero vector and offset: for mean-normalised models the item's
            mean); an unknown item gets :meth:`unknown_item_score`.
        """
        self._check_fitted()
        users, items = as_id_array(user_ids), as_id_array(item_ids)
        if users.ndim != 1 or items.ndim != 1 or len(users) != len(items):
            raise DataError(
                f"predict scores pairs: got {len(users)} users and {len(items)} items; pass "
                "two sequences of the same length (use recommend for every item of a user)"
            )
        u = self.users_.index(users, missing="ignore")
        i = self.items_.index(items, missing="ignore")
        return np.asarray(self.predict_rows(u, i), dtype=np.float32)

    def predict_rows(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Predictions of pairs of rows (-1: unknown), shape (n,). The default reads
        :meth:`linear_scores`; models with other scores override it."""
        linear = self.linear_scores()
        out = np.full(len(u), self.unknown_item_score(), dtype=np.float64)
        known_i = i >= 0
        both = known_i & (u >= 0)
        raw = np.zeros(int(known_i.sum()), dtype=np.float64)
        it = i[known_i]
        if linear.item_offset is not None:
            raw += linear.item_offset[it]
        ub, ib = u[both], i[both]
        personal = np.empty(len(ub), dtype=np.float64)
        # in blocks: wide factors (posterior draws side by side) would otherwise need two
        # float64 copies of (pairs × width)
        step = max(1, 2**22 // max(linear.user_factors.shape[1], 1))
        for start in range(0, len(ub), step):
            part = slice(start, start + step)
            personal[part] = np.einsum(
                "ij,ij->i",
                np.asarray(linear.user_factors[ub[part]], dtype=np.float64),
                np.asarray(linear.item_factors[ib[part]], dtype=np.float64),
            )
        if linear.user_offset is not None:
            personal += linear.user_offset[ub]
        raw[both[known_i]] += personal
        out[known_i] = self.link(raw)
        return out

    def recommend(
        self, user_ids: IdLike, k: int = 10, exclude_seen: bool = True, *, batch_size: int = 1024
    ) -> Recommendations:
        """Top-k items per user.

        Parameters
        ----------
        user_ids : id or array-like, shape (n,)
        k : int
        exclude_seen : bool
            Leave out every item the user has an event for in the data the model was given.

        Returns
        -------
        Recommendations
            ``item_ids`` and ``scores`` of shape (n, k), scores as :meth:`predict` gives them.
            Users the model does not know get the fallback list and ``fallback[r] = True``.
        """
        self._check_fitted()
        scores = self.ranking_scores() if self.has_linear_scores else self.score_rows
        result, rows, listed = recommend_by_scores(
            self.users_,
            self.items_,
            user_ids,
            k,
            scores,
            self.seen_ if exclude_seen else None,
            self.fallback_scores_,
            link=self.link,
            batch_size=batch_size,
        )
        if self.ranks_by == "prediction":
            return result
        predictions = self._listed_predictions(rows, listed, result.scores)
        return dataclasses.replace(result, predictions=predictions)

    def listed_predictions(self, result: Recommendations) -> np.ndarray:
        """``predict`` of every listed (user, item) pair of ``result``, shape (n_users, k),
        NaN on the padding: what to show beside a list ranked by something else."""
        rows = self.users_.index(result.user_ids, missing="ignore")
        listed = np.full(result.item_ids.shape, -1, dtype=np.int64)
        shown = np.isfinite(result.scores)
        listed[shown] = self.items_.index(result.item_ids[shown], missing="ignore")
        return self._listed_predictions(rows, listed, result.scores)

    def _listed_predictions(
        self, rows: np.ndarray, listed: np.ndarray, scores: np.ndarray
    ) -> np.ndarray:
        """``predict_rows`` of each user row (n,) with each of its listed item rows (n, k),
        NaN where ``scores`` is (the padding)."""
        n, k = listed.shape
        u = np.repeat(rows, k)
        shown = np.isfinite(scores.reshape(-1))
        out = np.full(n * k, np.nan, dtype=np.float32)
        out[shown] = self.predict_rows(u[shown], listed.reshape(-1)[shown])
        return out.reshape(n, k)

    def similar_items(
        self,
        item_ids: IdLike,
        k: int = 10,
        metric: Literal["euclidean", "cosine"] | None = None,
    ) -> SimilarItems:
        """The k items nearest to each query item, never the query itself.

        Distances are ``‖x(k) − x(i)‖²`` over the model's item vectors (``metric=
        "euclidean"``) or ``1 − cos`` (``"cosine"``); the default is the model's
        :attr:`similarity_metric`.

        Returns
        -------
        SimilarItems
            ``similar_ids`` and ``distances`` of shape (n, k).
        """
        self._check_fitted()
        if self.similarity_metric is None:
            self.similarity_vectors()  # raises CapabilityError naming the model
        chosen = self.similarity_metric if metric is None else metric
        assert chosen is not None
        return nearest_items(
            self.items_, self.similarity_vectors(), item_ids, k, chosen,
            self.similarity_candidates(), scale=self.similarity_scale(),
        )

    def seen_items(self, user_id: Id) -> IdArray:
        """External ids of the items ``user_id`` has an event for, shape (n,); empty for a
        user the model does not know."""
        self._check_fitted()
        _, rows = user_rows(self.users_, [user_id])
        if rows[0] < 0:
            return self.items_.ids[:0]
        seen = self.seen_
        start, end = seen.indptr[rows[0]], seen.indptr[rows[0] + 1]
        return self.items_.ids[np.sort(seen.indices[start:end])]

    # ------------------------------------------------------------------ explanations
    def explain_items(
        self,
        user_id: Id | None,
        item_ids: IdLike,
        *,
        ratings: RatingsLike | None = None,
        top: int = 3,
    ) -> list[Explanation]:
        """Why each of ``item_ids`` scores as it does for one user, as named terms.

        Parameters
        ----------
        user_id : id or None
            A known user (their training events are the history); ignored when ``ratings``
            is given.
        item_ids : array-like, shape (n,)
            The items to explain (e.g. a recommended list); cost grows with
            n × the size of the user's history only.
        ratings : mapping item_id -> value, Series or DataFrame, optional
            A new user's ratings (fold-in): the history is these.
        top : int
            Most history items named per item.

        Returns
        -------
        list of Explanation, length n
            ``score = baseline + personal + unexplained``, the personal part the sum of one
            contribution per history item; a user the model does not know, and an unknown
            item, get an explanation with no personal part.
        """
        self._check_fitted()
        if not self.can_explain:
            Model.attribute(self, np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), -1)
        items = as_id_array(item_ids)
        rows = self.items_.index(items, missing="ignore")
        if ratings is not None:
            rated, values = ratings_arrays(ratings)
            history = self.items_.index(rated, kind="item")
            user_row = -1
        else:
            user_row = int(self.users_.index(as_id_array([user_id]), missing="ignore")[0])
            if user_row < 0:  # the fallback list: no personal part
                fallback = self.fallback_scores_
                return [
                    Explanation(_plain(item), float(fallback[r]), float(fallback[r]), 0.0, 0.0,
                                0.0, (Reason("popular", float(fallback[r])),))
                    if r >= 0 else Explanation(_plain(item), math.nan, math.nan, math.nan, 0.0,
                                               math.nan, ())
                    for item, r in zip(items, rows, strict=True)
                ]
            history, values = self.explain_history(user_row)
        known = rows >= 0
        attribution = self.attribute(
            np.asarray(history, np.int64), np.asarray(values, np.float64), rows[known], user_row
        )
        found = explanations(
            attribution,
            [_plain(i) for i in items[known]],
            [_plain(i) for i in self.items_.ids[history]],
            top,
        )
        out: list[Explanation] = []
        next_found = iter(found)
        for item, ok in zip(items, known, strict=True):
            if ok:
                out.append(next(next_found))
            else:
                nan = math.nan
                out.append(Explanation(_plain(item), nan, nan, nan, 0.0, nan, ()))
        return out

    # ------------------------------------------------------------------ new users
    def fold_in(self, ratings: RatingsLike) -> np.ndarray:
        """Predictions for every item for a brand-new user given a few ratings, without
        retraining (``can_fold_in`` models).

        Parameters
        ----------
        ratings : mapping item_id -> value, Series indexed by item id, or DataFrame with
            columns item_id and rating (or value)

        Returns
        -------
        ndarray of float32, shape (n_items,)
            In the order of ``model.items_.ids``.
        """
        self._check_fitted()
        items, values = ratings_arrays(ratings)
        return np.asarray(self.link(self.fold_in_scores(items, values)), dtype=np.float32)

    def listed_fold_in_predictions(
        self, ratings: RatingsLike, item_ids: IdArray, scores: np.ndarray
    ) -> np.ndarray:
        """What to show beside a new user's list (``recommend_for_ratings``'s ids and scores):
        the scores when the model ranks by its prediction, else :meth:`fold_in`'s prediction
        of each listed item (NaN stays on the padding)."""
        if self.ranks_by == "prediction":
            return scores
        listed = np.isfinite(scores)
        shown = np.array(scores, dtype=np.float32)
        shown[listed] = self.fold_in(ratings)[self.items_.index(item_ids[listed])]
        return shown

    def recommend_for_ratings(
        self, ratings: RatingsLike, k: int = 10, exclude_seen: bool = True
    ) -> tuple[IdArray, np.ndarray]:
        """Top-k (item ids, scores) for a new user described only by ``ratings`` (fold-in),
        ranked as :meth:`recommend` ranks (``ranks_by``); the rated items are left out when
        ``exclude_seen``. :meth:`fold_in` gives the predictions of every item."""
        self._check_fitted()
        items, values = ratings_arrays(ratings)
        ids, raw = top_k_for_new_user(
            self.items_, self.fold_in_ranking_scores(items, values), items, k, exclude_seen
        )
        return ids, np.asarray(self.link(raw.astype(np.float64)), dtype=np.float32)

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict[str, Any]:
        """The constructor keyword arguments (JSON-serialisable)."""
        config = vars(self).get("config")
        if config is None:
            return {}
        return dataclasses.asdict(config)

    def with_params(self: M, **changes: Any) -> M:
        """An unfitted copy with some hyperparameters changed (``with_params()``: a clone)."""
        return type(self)(**{**self.get_params(), **changes})

    # ------------------------------------------------------------------ model files
    def to_state(self) -> ModelState:
        """The fitted model as numeric arrays, vocabularies and JSON (what model files hold)."""
        self._check_fitted()
        state = ModelState(
            config=self.get_params(),
            arrays={"fallback_scores": self.fallback_scores_, **seen_arrays(self.seen_)},
            vocabularies={"users": self.users_, "items": self.items_},
        )
        self._save_state(state)
        return state

    @classmethod
    def from_state(cls: type[M], state: ModelState) -> M:
        """Rebuild a fitted model from :meth:`to_state`'s output (checked, never unpickled)."""
        model = cls(**state.config)
        users, items = state.vocabularies["users"], state.vocabularies["items"]
        arrays = state.arrays
        model.users_, model.items_ = users, items
        model.seen_ = seen_from_arrays(arrays, len(users), len(items))
        if "fallback_scores" in arrays:
            check_array_shapes(arrays, {"fallback_scores": (len(items),)})
            model.fallback_scores_ = np.array(arrays["fallback_scores"], dtype=np.float32)
        model._load_state(state)
        return model

    def _save_state(self, state: ModelState) -> None:
        """Add the model's own arrays and metadata to ``state`` (hook of :meth:`to_state`)."""

    def _load_state(self, state: ModelState) -> None:
        """Restore the model's own arrays and metadata (hook of :meth:`from_state`)."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


# ----------------------------------------------------------------------------- helpers
def _plain(value: Any) -> Any:
    """A NumPy scalar id as the Python value (what JSON and dict keys want)."""
    return value.item() if isinstance(value, np.generic) else value


def is_int(value: Any) -> bool:
    """An integer that is not a bool (hyperparameter validation)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float that is not a bool (hyperparameter validation)."""
    return (
        isinstance(value, (int, float, np.number))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def fit_input(interactions: Interactions) -> Interactions:
    """``interactions`` if it is an :class:`Interactions`, else a DataError naming the fix."""
    if not isinstance(interactions, Interactions):
        raise DataError(
            f"fit expects palate.Interactions, got {type(interactions).__name__}; build one with "
            "Interactions.from_pandas(frame)"
        )
    return interactions


def engagement_input(interactions: Interactions) -> Interactions:
    """:func:`fit_input` for models of engagement events: values must be >= 0."""
    data = fit_input(interactions)
    if np.any(data.values < 0):
        raise DataError(
            "implicit feedback values must be >= 0 (a count, a rating or 1 per event); "
            "shift or drop negative values"
        )
    return data


def check_array_shapes(
    arrays: Mapping[str, np.ndarray], expected: Mapping[str, tuple[int, ...]]
) -> None:
    """Raise DataError unless every named array of a model file has its expected shape."""
    for name, shape in expected.items():
        if name not in arrays or tuple(arrays[name].shape) != shape:
            got = None if name not in arrays else tuple(arrays[name].shape)
            raise DataError(f"array {name!r} has shape {got}, expected {shape}")


def ratings_arrays(ratings: RatingsLike) -> tuple[IdArray, np.ndarray]:
    """(item ids, values) of a new user's ratings given as a mapping, Series or DataFrame."""
    if isinstance(ratings, pd.DataFrame):
        value_col = next((c for c in ("rating", "value") if c in ratings.columns), None)
        if "item_id" not in ratings.columns or value_col is None:
            raise DataError("ratings table needs columns item_id and rating (or value)")
        return as_id_array(ratings["item_id"].to_numpy()), ratings[value_col].to_numpy(float)
    if isinstance(ratings, pd.Series):
        return as_id_array(ratings.index.to_numpy()), ratings.to_numpy(float)
    if isinstance(ratings, Mapping):
        return as_id_array(list(ratings.keys())), np.asarray(list(ratings.values()), dtype=float)
    raise DataError("ratings must be a mapping item_id -> value, a Series or a DataFrame")


# ----------------------------------------------------------------------------- seen items
def save_parts(state: ModelState, parts: Mapping[str, Model]) -> None:
    """Write the fitted sub-models of a composite model into its ``state``, each under its
    name prefix (``{prefix: model}``); the shared user and item vocabularies once."""
    for prefix, part in parts.items():
        sub = part.to_state()
        state.arrays.update({prefix + name: a for name, a in sub.arrays.items()})
        state.extra[prefix + "extra"] = sub.extra
        for name, vocabulary in sub.vocabularies.items():
            if name not in ("users", "items"):
                state.vocabularies[prefix + name] = vocabulary


def load_parts(
    state: ModelState, parts: Mapping[str, Model], users: Vocabulary, items: Vocabulary
) -> dict[str, Model]:
    """The sub-models :func:`save_parts` wrote, rebuilt with the configs of ``parts``."""
    loaded: dict[str, Model] = {}
    for prefix, part in parts.items():
        sub = ModelState(
            config=part.get_params(),
            arrays={n[len(prefix):]: a for n, a in state.arrays.items() if n.startswith(prefix)},
            vocabularies={"users": users, "items": items, **{
                n[len(prefix):]: v for n, v in state.vocabularies.items()
                if n.startswith(prefix)}},
            extra=dict(state.extra.get(prefix + "extra", {})),
        )
        loaded[prefix] = type(part).from_state(sub)
    return loaded


def seen_matrix(data: Interactions) -> sp.csr_matrix:
    """Users x items 0/1 matrix of every event (a 0 rating or a 0 label counts as seen),
    indices sorted."""
    seen = sp.csr_matrix(
        (np.ones(len(data), dtype=np.float32), (data.user_idx, data.item_idx)), shape=data.shape
    )
    seen.sort_indices()
    return seen


def seen_arrays(seen: sp.csr_matrix) -> dict[str, np.ndarray]:
    """The seen-items matrix as the arrays a model file stores (see :func:`seen_from_arrays`)."""
    return {
        "seen_indptr": seen.indptr.astype(np.int64),
        "seen_indices": seen.indices.astype(np.int32),
    }


def seen_from_arrays(arrays: Mapping[str, np.ndarray], n_users: int, n_items: int) -> sp.csr_matrix:
    """Rebuild the seen-items matrix saved as ``seen_indptr`` / ``seen_indices``."""
    check_array_shapes(arrays, {"seen_indptr": (n_users + 1,)})
    indptr = arrays["seen_indptr"]
    indices = arrays["seen_indices"]
    if len(indices) != int(indptr[-1]) or (len(indices) and int(indices.max()) >= n_items):
        raise DataError("the seen-items arrays do not match the vocabularies")
    data = np.ones(len(indices), dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(n_users, n_items))


def items_with_events(seen: sp.csr_matrix) -> np.ndarray:
    """Bool mask (n_items,) of the items some user has in the seen-items matrix."""
    return np.asarray(seen.sum(axis=0)).ravel() > 0


__all__ = [
    "FeedbackKind",
    "Model",
    "ModelState",
    "Recommendations",
    "RankKind",
    "ScoreKind",
    "SimilarItems",
    "check_array_shapes",
    "fit_input",
    "is_int",
    "is_number",
    "items_with_events",
    "ratings_arrays",
    "seen_arrays",
    "seen_from_arrays",
    "seen_matrix",
]
