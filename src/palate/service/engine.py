"""The model being served and the live feedback folded into it, over the public model API.

:class:`ServedModel` wraps one loaded model directory: it answers recommendations, similar
items and scores by calling the model's own ``recommend``, ``similar_items``, ``predict`` and
``recommend_for_ratings`` / ``fold_in``; it holds no ranking logic of its own. :class:`LiveFeedback`
mirrors the feedback store in memory (``{user: {item: value}}``) and catches up with writes
made by other processes through the store's change counter.

A user with live ratings is folded in (the curriculum's "per-item features known"
regression): with every item vector fixed, the user's (w, b) is the ridge solution on their ratings,

    [w, b] = argmin 1/2 Σ_i (w·x(i) + b + c(i) + μ(i) − y(i))² + λ/2 ‖w‖²,

so the next recommendation reflects the new ratings without retraining. The ratings used are
the live ones merged over the user's training history; a model file keeps which items a user
had in training but not their values, so those enter at the model's own prediction for them
(rounded to 0/1 for binary models) and a live rating of the same item replaces it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from palate.data.catalog import Catalog, genres_or_none, plain
from palate.data.vocabulary import canonical_int
from palate.errors import CapabilityError as ModelCapabilityError
from palate.errors import ConfigError, PalateError, UnknownIdError
from palate.models.base import Model
from palate.persist import Artifact, load_artifact
from palate.ranking.filters import FilteredModel, ItemFilter
from palate.service.feedback import FeedbackStore, Id, StoredRating

logger = logging.getLogger(__name__)

#: How many items at the top of each list get an explanation (the rest have none).
EXPLAIN_TOP = 20


#: How many filtered views of a model (one per distinct request filter) are kept.
FILTER_CACHE = 64

#: Approximate indexes that ``palate serve --index`` answers recommendations from ("auto":
#: the fastest setting measured to reach recall@10 0.99 on the model's own users).
SERVING_INDEXES = ("pq", "hnsw", "auto")
#: What ``--index auto`` asks of the index it chooses.
AUTO_TARGET_RECALL = 0.99

#: Below this recall@10 against the exact ranking, a serving index is not used.
INDEX_RECALL_FLOOR = 0.95


class ServingIndex:
    """Top-k of a model's linear scores ``U[u]·V[i] + b[u] + c[i]`` from a vector index.

    The index holds ``[V[i], c[i]]`` and is asked with ``[U[u], 1]`` (maximum inner product),
    so it ranks items as the model does; the candidates it returns are scored exactly, ``b[u]``
    and the model's link applied. Built when the model loads (seconds for ``"pq"``), its
    recall@10 against the exact ranking measured then on the model's own users.
    """

    def __init__(self, model: Any, kind: str) -> None:
        from palate.retrieval import FaissIndex

        if kind not in SERVING_INDEXES:
            raise ConfigError(f"index must be one of {SERVING_INDEXES}, got {kind!r}")
        if not model.has_linear_scores:
            raise ConfigError(
                f"a {type(model).__name__} model cannot be served from a vector index (its "
                "scores are not a dot product); serve it without --index"
            )
        self.linear = model.ranking_scores()
        columns = [np.asarray(self.linear.item_factors, dtype=np.float32)]
        if self.linear.item_offset is not None:
            columns.append(np.asarray(self.linear.item_offset, dtype=np.float32)[:, None])
        if kind in ("pq", "auto") and sum(c.shape[1] for c in columns) % 2:  # fast-scan: pairs
            columns.append(np.zeros((len(columns[0]), 1), dtype=np.float32))
        vectors = np.hstack(columns)
        self.dim = vectors.shape[1]
        self.seen = model.seen_
        self.link = model.link
        users = np.arange(len(self.linear.user_factors))
        sample = users if len(users) <= 1000 else np.random.default_rng(0).choice(
            users, 1000, replace=False)
        by_kind: dict[str, dict[str, Any]] = {
            "pq": {"refine_factor": 10},
            "hnsw": {"ef_search": 128},
            "auto": {"target_recall": AUTO_TARGET_RECALL},
        }
        params = by_kind[kind]
        self.index = FaissIndex(
            kind, "inner_product", recall_sample=min(len(sample), 500), **params  # type: ignore[arg-type]
        ).build(vectors, sample_queries=self.queries(sample))

    def queries(self, rows: np.ndarray) -> np.ndarray:
        """``[U[u], 1, 0…]`` per user row (the 1 meets the item offset column)."""
        u = np.asarray(self.linear.user_factors[rows], dtype=np.float32)
        q = np.zeros((len(rows), self.dim), dtype=np.float32)
        q[:, : u.shape[1]] = u
        if self.linear.item_offset is not None:
            q[:, u.shape[1]] = 1.0
        return q

    def top_k(self, rows: np.ndarray, k: int, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        """Item indices (-1 padding) and scores (NaN padding) of known users ``rows``."""
        seen = self.seen if exclude_seen else None
        exclude = None if seen is None else [
            seen.indices[seen.indptr[row] : seen.indptr[row + 1]] for row in rows
        ]
        found = self.index.search(self.queries(rows), k, exclude=exclude)
        values = found.values.astype(np.float64)
        if self.linear.user_offset is not None:
            values = values + np.asarray(self.linear.user_offset, dtype=np.float64)[rows][:, None]
        values = self.link(values)
        values = np.where(found.indices >= 0, values, np.nan)
        return found.indices, values.astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.index.index_kind,
                **{key: value for key, value in self.index.metadata_.items()
                   if key.startswith(("recall", "id_overlap"))}}


class CapabilityError(PalateError):
    """The served model cannot do what was asked (e.g. similar items from popularity)."""


@dataclass
class UserResult:
    """One user's recommendations as the API returns them."""

    user_id: Id
    items: list[dict[str, Any]]
    fallback: bool
    provenance: str
    note: str | None = None
    live_ratings: int = 0


@dataclass
class ServedModel:
    """A loaded model directory and what it can do.

    Attributes
    ----------
    artifact : Artifact
    catalog : Catalog
        Titles and genres (when the model was saved with an item table) and title search.
    can_fold_in : bool
        Whether live ratings change the user's recommendations at once.
    can_find_similar : bool
    item_filter : ItemFilter
        The operator's filter (``palate serve --policy-file``): applied to every list, and a
        request's own filter only adds to it (:meth:`ItemFilter.tightened`).
    """

    artifact: Artifact
    catalog: Catalog
    can_fold_in: bool
    can_find_similar: bool
    generation: int = 0
    serving_index: ServingIndex | None = None
    #: the index that was built and not used (recall below the floor), as /v1/model shows it
    index_refused: dict[str, Any] | None = None
    item_filter: ItemFilter = field(default_factory=ItemFilter)
    _filtered: dict[ItemFilter, FilteredModel] = field(default_factory=dict, repr=False)
    _descriptions: dict[Any, tuple[str | None, list[str] | None]] = field(
        default_factory=dict, repr=False
    )
    _merged: dict[Id, tuple[int, dict[Id, float]]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path, generation: int = 0, index: str | None = None,
             item_filter: ItemFilter | None = None,
             index_recall_floor: float = INDEX_RECALL_FLOOR) -> ServedModel:
        """Load and check a model directory; raises a PalateError when it cannot serve.

        ``index`` (``"pq"`` or ``"hnsw"``): answer known users' recommendations from an
        approximate vector index built now (see :class:`ServingIndex`) instead of scoring
        every item — unless its recall@10 against the exact ranking, measured when it is
        built, is below ``index_recall_floor``: then every item is scored exactly, a warning
        is logged and ``GET /v1/model`` says why. ``item_filter``: the operator's filter,
        checked against the model's item table now.
        """
        artifact = load_artifact(path)
        model = artifact.model
        capabilities = model.capabilities()
        served = cls(
            artifact=artifact,
            catalog=Catalog(artifact.item_table, model.items_),
            can_fold_in=bool(capabilities["can_fold_in"]),
            can_find_similar=capabilities["similarity_metric"] is not None,
            generation=generation,
            item_filter=item_filter or ItemFilter(),
        )
        if served.item_filter:
            served.filtered(None)  # a policy on a column the item table lacks fails here
        served._descriptions = _descriptions(served.catalog)
        if index is not None:
            built = ServingIndex(model, index)
            recall = built.index.metadata_.get("recall_at_10")
            if recall is not None and float(recall) < index_recall_floor:
                served.index_refused = {
                    **built.describe(), "used": False, "recall_floor": index_recall_floor,
                    "reason": f"recall@10 {float(recall):.3f} is below {index_recall_floor:g}: "
                    "every item is scored exactly",
                }
                logger.warning("the %s index of this model reaches recall@10 %.3f, below %g; "
                               "scoring every item exactly instead", index, recall,
                               index_recall_floor)
            else:
                served.serving_index = built
        served.self_check()
        return served

    def self_check(self) -> None:
        """Answer one request of each kind, so a broken model is refused before it serves."""
        model: Any = self.model
        if len(model.items_) == 0:
            raise ConfigError("the model knows no items; train it on some data first")
        result = model.recommend([self._any_user()], k=1)
        if result.item_ids.shape != (1, 1):
            raise ConfigError("the model's recommend() returned an unexpected shape")
        item = model.items_.ids[:1]
        model.predict(np.array([self._any_user()], dtype=object), item)
        if self.can_find_similar:
            model.similar_items(item, k=1)
        if self.can_fold_in:
            self.model.fold_in({plain(item[0]): self.rating_bounds[1]})

    def _any_user(self) -> Any:
        users = self.model.users_
        return plain(users.ids[0]) if len(users) else "palate-self-check"

    # ------------------------------------------------------------------ facts
    @property
    def model(self) -> Model:
        return self.artifact.model

    @property
    def model_kind(self) -> str:
        return str(self.artifact.manifest.get("model_kind"))

    @property
    def is_binary(self) -> bool:
        return self.model.feedback_kind == "binary"

    @property
    def is_positive_only(self) -> bool:
        """Models of engagement events (clicks, plays): a value is a positive strength."""
        return self.model.feedback_kind == "implicit"

    @property
    def rating_bounds(self) -> tuple[float, float]:
        """The values a rating may take: the training scale, 0/1 for binary models."""
        if self.is_binary:
            return (0.0, 1.0)
        scale = self.model.rating_scale
        if scale:
            return (float(scale[0]), float(scale[1]))
        if self.is_positive_only:
            return (0.0, float("inf"))
        return (-float("inf"), float("inf"))

    def value_problem(self, value: float) -> str | None:
        """Why ``value`` is not a valid rating for this model, or None."""
        low, high = self.rating_bounds
        if self.is_binary and value not in (0.0, 1.0):
            return f"this model takes binary events: value must be 0 or 1, got {value:g}"
        if self.is_positive_only and not value > 0:
            return f"this model takes positive events: value must be > 0, got {value:g}"
        if not low <= value <= high:
            return f"rating {value:g} is outside the model's scale {low:g} to {high:g}"
        return None

    def describe(self) -> dict[str, Any]:
        manifest = self.artifact.manifest
        low, high = self.rating_bounds
        filtered = self.filtered(None)
        allowed = len(self.model.items_) if filtered is None else int(filtered.allowed_.sum())
        return {
            "model_kind": self.model_kind,
            "kind": self.model.feedback_kind,
            "capabilities": self.model.capabilities(),
            "format_version": manifest.get("format_version"),
            "palate_version": manifest.get("palate_version"),
            "created_at": manifest.get("created_at"),
            "data_fingerprint": manifest.get("data_fingerprint"),
            "metrics": manifest.get("metrics", {}),
            "config": manifest.get("config", {}),
            "n_users": len(self.model.users_),
            "n_items": len(self.model.items_),
            "rating_scale": [v if np.isfinite(v) else None for v in (low, high)],
            "has_titles": self.catalog.has_titles,
            "can_fold_in": self.can_fold_in,
            "can_find_similar": self.can_find_similar,
            "generation": self.generation,
            "index": self.index_refused if self.serving_index is None else {
                **self.serving_index.describe(), "used": True},
            "filters": {
                **self.item_filter.to_config(),
                "allowed_items": allowed,
                "note": "the operator's filters, applied to every list; a request may add "
                "min_ratings and policies of its own, never remove these",
            },
        }

    def filtered(self, request: ItemFilter | None) -> FilteredModel | None:
        """The model restricted by the operator's filter tightened by ``request``'s, or None
        when neither filters anything."""
        wanted = self.item_filter if request is None else self.item_filter.tightened(request)
        if not wanted:
            return None
        with self._lock:
            found = self._filtered.get(wanted)
        if found is None:
            found = FilteredModel(self.model, self.artifact.item_table, item_filter=wanted)
            with self._lock:
                if len(self._filtered) >= FILTER_CACHE:
                    self._filtered.pop(next(iter(self._filtered)))
                self._filtered[wanted] = found
        return found

    # ------------------------------------------------------------------ ids
    def user_id(self, raw: Id) -> Id:
        """The id as the model's user vocabulary types it (``"7"`` is user 7 for int ids).

        Only the canonical decimal form names an integer: ``"007"`` and ``"-0"`` stay
        strings, users of their own (see :func:`_typed`).
        """
        return _typed(raw, self.model.users_.is_integer)

    def item_id(self, raw: Id) -> Id:
        """The item's id in the model's type; :class:`UnknownIdError` naming it if unknown."""
        typed = _typed(raw, self.model.items_.is_integer)
        if typed not in self.model.items_:
            raise UnknownIdError(f"unknown item id {raw!r}: the model has no such item")
        return typed

    # ------------------------------------------------------------------ recommendations
    def recommend(
        self,
        user_ids: list[Id],
        k: int,
        exclude_seen: bool,
        live: Mapping[Id, tuple[int, dict[Id, float]]],
        explain: bool = False,
        item_filter: ItemFilter | None = None,
    ) -> list[UserResult]:
        """Top-k per user: fold-in for users with live ratings, else the model's answer.

        ``live`` maps a user to (version, {item: value}) of their live ratings;
        ``item_filter`` the request's filter (added to the operator's).
        """
        model: Any = self.model
        filtered = self.filtered(item_filter)
        listing: Any = model if filtered is None else filtered
        results: dict[int, UserResult] = {}
        plain_rows: list[int] = []
        for position, user in enumerate(user_ids):
            entry = live.get(user)
            if entry and self.can_fold_in:
                ratings = self.merged_ratings(user, entry)
                ids, scores = listing.recommend_for_ratings(
                    ratings, k=k, exclude_seen=exclude_seen
                )
                scores = model.listed_fold_in_predictions(ratings, ids, scores)
                items = self._rows(ids, scores)
                if explain:
                    self._explain(items[:EXPLAIN_TOP], user, ratings, entry[1])
                results[position] = UserResult(
                    user,
                    items,
                    fallback=False,
                    provenance="fold_in",
                    note=f"{len(entry[1])} live rating(s) folded into this user's vector",
                    live_ratings=len(entry[1]),
                )
            else:
                plain_rows.append(position)
        if plain_rows:
            extra = max((len(live[user_ids[p]][1]) for p in plain_rows if user_ids[p] in live),
                        default=0) if exclude_seen else 0
            batch = [user_ids[p] for p in plain_rows]
            result = (
                self._recommend_plain(batch, k + extra, exclude_seen)
                if filtered is None
                else filtered.recommend_with(
                    lambda m: self._recommend_plain(batch, m, exclude_seen), k + extra
                )
            )
            for row, position in enumerate(plain_rows):
                user = user_ids[position]
                rated = live.get(user, (0, {}))[1]
                ids, scores = result.item_ids[row], result.shown[row]
                if extra:
                    keep = ~np.isin(ids, np.array(list(rated), dtype=object)) if rated else None
                    if keep is not None:
                        ids, scores = ids[keep], scores[keep]
                    ids, scores = ids[:k], scores[:k]
                items = self._rows(ids, scores)
                fallback = bool(result.fallback[row])
                note = None
                if fallback:
                    note = (
                        "unknown user: the fallback list for users with no history (most "
                        "popular items, or the best shrunk mean ratings)"
                    )
                elif self.model.score_kind == "popularity":
                    note = "this model recommends the same popular items to everyone"
                if rated:
                    note = (note + "; " if note else "") + (
                        f"{len(rated)} live rating(s) are stored but this {self.model_kind} model "
                        "cannot fold them in; they count after the next training run"
                    )
                if explain:
                    if fallback or self.model.score_kind == "popularity":
                        for item in items[:EXPLAIN_TOP]:
                            item["explanation"] = "popular with everyone"
                    else:
                        self._explain(items[:EXPLAIN_TOP], user)
                results[position] = UserResult(
                    user,
                    items,
                    fallback=fallback,
                    provenance="fallback" if fallback else "model",
                    note=note,
                    live_ratings=len(rated),
                )
        return [results[p] for p in range(len(user_ids))]

    def _recommend_plain(self, users: list[Id], k: int, exclude_seen: bool) -> Any:
        """The model's recommendations, or the serving index's for the users it knows."""
        model: Any = self.model
        if self.serving_index is None:
            return model.recommend(users, k=k, exclude_seen=exclude_seen)
        from palate.models.scoring import Recommendations, ids_from_indices, user_rows

        ids, rows = user_rows(model.users_, users)
        known = np.flatnonzero(rows >= 0)
        item_idx = np.full((len(users), k), -1, dtype=np.int64)
        scores = np.full((len(users), k), np.nan, dtype=np.float32)
        fallback = rows < 0
        if len(known):
            item_idx[known], scores[known] = self.serving_index.top_k(rows[known], k,
                                                                      exclude_seen)
        item_ids = ids_from_indices(model.items_, item_idx)
        if fallback.any():
            unknown = np.flatnonzero(fallback)
            result = model.recommend([users[i] for i in unknown], k=k, exclude_seen=exclude_seen)
            item_ids[unknown], scores[unknown] = result.item_ids, result.scores
        found = Recommendations(ids, item_ids, scores, fallback)
        if model.ranks_by == "prediction":
            return found
        # the model ranks by something else: each listed item's prediction beside it
        return dataclasses.replace(found, predictions=model.listed_predictions(found))

    def merged_ratings(self, user: Id, entry: tuple[int, dict[Id, float]]) -> dict[Id, float]:
        """Training history (as the model predicts it) overlaid with the live ratings."""
        version, live = entry
        with self._lock:
            cached = self._merged.get(user)
        if cached is not None and cached[0] == version:
            return cached[1]
        model: Any = self.model
        known = {i: v for i, v in live.items() if i in model.items_}
        merged: dict[Id, float] = {}
        seen = model.seen_items(user)
        if len(seen) and self.is_positive_only:
            merged = {plain(i): 1.0 for i in seen}  # every training event was an engagement
        elif len(seen):
            predicted = model.predict(np.array([user] * len(seen), dtype=object), seen)
            if self.is_binary:
                predicted = (predicted >= 0.5).astype(np.float64)
            low, high = self.rating_bounds
            predicted = np.clip(predicted.astype(np.float64), low, high)
            merged = {plain(i): float(v) for i, v in zip(seen, predicted, strict=True)}
        merged.update(known)
        with self._lock:
            if len(self._merged) > 100_000:
                self._merged.clear()
            self._merged[user] = (version, merged)
        return merged

    def _rows(
        self, item_ids: np.ndarray, scores: np.ndarray, value_name: str = "score"
    ) -> list[dict[str, Any]]:
        """Ranked items with titles and genres (looked up in a dict built at load)."""
        rows: list[dict[str, Any]] = []
        described = self._descriptions
        for item_id, score in zip(item_ids.tolist(), scores.tolist(), strict=True):
            if not math.isfinite(score):
                continue
            title, genres = described.get(item_id, (None, None))
            rows.append(
                {
                    "rank": len(rows) + 1,
                    "item_id": item_id,
                    "title": title,
                    "genres": genres,
                    value_name: score,
                }
            )
        return rows

    def describe_item(self, item_id: Id) -> dict[str, Any]:
        """``{"item_id", "title", "genres"}`` from the dict built at load (None when unknown)."""
        title, genres = self._descriptions.get(item_id, (None, None))
        return {"item_id": item_id, "title": title, "genres": genres}

    def _explain(
        self,
        items: list[dict[str, Any]],
        user: Id,
        ratings: Mapping[Id, float] | None = None,
        live: Mapping[Id, float] | None = None,
    ) -> None:
        """Each listed item's named terms of its score (the model's ``explain_items``).

        ``ratings``: a folded-in user's ratings (training history at predicted values merged
        with the live ones); None: the known user's training events. Only live ratings and
        stored training ratings are quoted as values. ``because_of`` is the history item with
        the largest named contribution.
        """
        if not items:
            return
        model = self.model
        live = live or {}
        if not model.can_explain:
            for item in items:
                item["explanation"] = (
                    f"this {self.model_kind} model's scores are not split into reasons"
                )
            return
        try:
            explained = model.explain_items(
                user, [item["item_id"] for item in items], ratings=ratings
            )
        except ModelCapabilityError as error:
            for item in items:
                item["explanation"] = f"no explanation: {error}"
            return
        with_ratings = model.feedback_kind != "implicit"
        for item, explanation in zip(items, explained, strict=True):
            reasons = tuple(
                dataclasses.replace(
                    r, value=r.value if ratings is None or r.item_id is None
                    else live.get(r.item_id)
                ) if r.kind == "history" else r
                for r in explanation.reasons
            )
            explanation = dataclasses.replace(explanation, reasons=reasons)
            item["explanation"] = explanation.describe(self.catalog.label, with_ratings)
            named = [r for r in reasons if r.kind == "history"]
            if named:
                top = named[0]
                item["because_of"] = {
                    **self.catalog.describe(top.item_id),
                    "rating": top.value,
                    "contribution": top.contribution,
                }

    # ------------------------------------------------------------------ other answers
    def similar(
        self, item_ids: list[Id], k: int, item_filter: ItemFilter | None = None
    ) -> list[dict[str, Any]]:
        if not self.can_find_similar:
            raise CapabilityError(
                f"this {self.model_kind} model has no item features, so it cannot find similar "
                "items; serve a collaborative or implicit_als model"
            )
        typed = [self.item_id(i) for i in item_ids]
        filtered = self.filtered(item_filter)
        result = (self.model if filtered is None else filtered).similar_items(typed, k=k)
        return [
            {
                "item": self.describe_item(item),
                "similar": self._rows(np.asarray(ids), np.asarray(dist), value_name="distance"),
            }
            for item, ids, dist in zip(typed, result.similar_ids, result.distances, strict=True)
        ]

    def scores(
        self, pairs: list[tuple[Id, Id]], live: Mapping[Id, tuple[int, dict[Id, float]]]
    ) -> list[dict[str, Any]]:
        users = [self.user_id(u) for u, _ in pairs]
        items = [self.item_id(i) for _, i in pairs]
        model: Any = self.model
        out = model.predict(np.array(users, dtype=object), np.array(items, dtype=object))
        out = out.astype(np.float64)
        provenance = ["model" if u in model.users_ else "fallback" for u in users]
        if self.can_fold_in:
            folded: dict[Id, np.ndarray] = {}
            for n, user in enumerate(users):
                if user in live:
                    if user not in folded:
                        folded[user] = model.fold_in(self.merged_ratings(user, live[user]))
                    out[n] = folded[user][model.items_.index([items[n]])[0]]
                    provenance[n] = "fold_in"
        return [
            {
                "user_id": u,
                "item_id": i,
                "score": float(s) if np.isfinite(s) else None,
                "provenance": p,
            }
            for u, i, s, p in zip(users, items, out, provenance, strict=True)
        ]


class LiveFeedback:
    """An in-memory mirror of the feedback store: ``{user: (version, {item: value})}``.

    ``sync()`` reads only what was written since the last call, and only when the store says
    something changed, so checking costs one cheap query per request.
    """

    def __init__(self, store: FeedbackStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._last_seq = 0
        self._ratings: dict[Id, tuple[int, dict[Id, float]]] = {}
        self.sync(force=True)

    def sync(self, force: bool = False) -> bool:
        """Catch up with the store; True when it had changed (anything, by anyone)."""
        if not (self.store.changed() or force):
            return False
        with self._lock:
            new = self.store.since(self._last_seq)
            self._apply(new)
        return True

    def _apply(self, rows: list[StoredRating]) -> None:
        """Add ``rows`` (in seq order): each user's dict is copied once, not once per row.

        Readers may hold a user's dict, so it is never changed in place: the copy is filled
        and then swapped in, with the user's version (their latest seq).
        """
        touched: dict[Id, dict[Id, float]] = {}
        versions: dict[Id, int] = {}
        for r in rows:
            items = touched.get(r.user_id)
            if items is None:
                items = touched[r.user_id] = dict(self._ratings.get(r.user_id, (0, {}))[1])
            items[r.item_id] = r.value
            versions[r.user_id] = r.seq
        for user, items in touched.items():
            self._ratings[user] = (versions[user], items)
        if rows:
            self._last_seq = max(self._last_seq, max(r.seq for r in rows))

    def for_users(self, users: list[Id]) -> dict[Id, tuple[int, dict[Id, float]]]:
        ratings = self._ratings
        return {u: ratings[u] for u in users if u in ratings}

    def user(self, user: Id) -> dict[Id, float]:
        return dict(self._ratings.get(user, (0, {}))[1])

    def count(self, user: Id) -> int:
        """How many items ``user`` has live ratings for."""
        return len(self._ratings.get(user, (0, {}))[1])

    @property
    def n_users(self) -> int:
        return len(self._ratings)


def _descriptions(catalog: Catalog) -> dict[Any, tuple[str | None, list[str] | None]]:
    """``{item_id: (title, genres)}`` for every item of the item table."""
    table = catalog.table
    if table is None:
        return {}
    ids = table["item_id"].tolist()
    n = len(ids)
    titles = table["title"].tolist() if "title" in table.columns else [None] * n
    genres = table["genres"].tolist() if "genres" in table.columns else [None] * n
    return {
        plain(i): (t if isinstance(t, str) else None, genres_or_none(g))
        for i, t, g in zip(ids, titles, genres, strict=True)
    }


def _typed(raw: Id, integer: bool) -> Id:
    """``raw`` in the vocabulary's id type, by one rule that never makes two ids one.

    For integer vocabularies a string is the integer it spells only in canonical decimal form
    (``str(int(s)) == s``, within int64): ``"7"`` is 7, while ``"007"``, ``"+7"``, ``" 7"``
    and ``"-0"`` stay strings, ids of their own. For string vocabularies an integer is its
    decimal string (7 is ``"7"``).
    """
    if integer:
        if isinstance(raw, str):
            number = canonical_int(raw)
            return raw if number is None else number
        return raw
    return str(raw)


__all__ = ["CapabilityError", "LiveFeedback", "ServedModel", "UserResult"]
