"""Retrieve, then rank: recommendations from a large catalogue — cheap candidate sources
gather a few hundred items, then the model ranks only those."""

from __future__ import annotations

import copy
import dataclasses
import logging
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from palate.data.features import FeatureTable
from palate.data.interactions import Interactions
from palate.data.vocabulary import as_id_array
from palate.errors import ConfigError, DataError, NotFittedError
from palate.models.base import (
    FeedbackKind,
    Model,
    ModelState,
    RankKind,
    ScoreKind,
    fit_input,
    seen_from_arrays,
    seen_matrix,
)
from palate.models.explain import Explanation, Reason
from palate.models.scoring import Recommendations, check_k, ids_from_indices, user_rows
from palate.ranking.filters import ItemPolicy, allowed_items
from palate.ranking.scorer import VectorScorer
from palate.retrieval.index import not_in
from palate.retrieval.sources import (
    Candidates,
    CandidateSource,
    SourceData,
    TopInFavoriteGenres,
    TopInSegment,
    UserContext,
    default_sources,
    make_source,
)
from palate.types import Id, IdArray, IdLike

logger = logging.getLogger(__name__)

RANKER_PREFIX = "ranker."
SOURCE_PREFIX = "source{}."


@dataclass(frozen=True)
class RankedItem:
    """One recommendation with where it came from."""

    item_id: Id
    score: float
    sources: tuple[str, ...]
    because: tuple[str, ...]


def _as_table(table: pd.DataFrame | FeatureTable | None) -> pd.DataFrame | None:
    if table is None or isinstance(table, pd.DataFrame):
        return table
    if isinstance(table, FeatureTable):
        return table.frame.reset_index().rename(columns={table.id_column: table.id_column})
    raise DataError(f"expected a DataFrame or a feature table, got {type(table).__name__}")


class RetrieveThenRank(Model):
    """Gather candidates from several cheap sources, then rank them with a learned model.

    For a user ``u`` with seen items ``S(u)``:

    1. retrieve: ``C = ∪_s source_s(u)`` (deduplicated, provenance kept);
    2. filter: ``C ← {i ∈ C : i ∉ S(u), i not blocked, policy(i)}``;
    3. rank: ``score(u, i) = link(p(u) · q(i))`` with the ranker's user vector ``p(u)``
       (computed once) and its precomputed item vectors ``q(i)``;
    4. optionally diversify by maximal marginal relevance: pick one at a time
       ``argmax_{i ∈ C∖R} λ r(i) − (1 − λ) max_{j ∈ R} cos(x(i), x(j))`` with ``r`` the
       scores scaled to [0, 1] and ``x`` the ranker's item features (λ = 1: no re-ranking);
    5. show the top k, each with its provenance ("because you watched X").

    Parameters
    ----------
    ranker : Model
        A CollaborativeFiltering, ImplicitALS or TwoTower model (fitted, or fitted by
        :meth:`fit` on the same events).
    sources : list of CandidateSource or dicts, optional
        Default: :func:`palate.retrieval.sources.default_sources` (sources that need an item
        or user table are left out when :meth:`fit` gets none).
    block_items : list of ids
        Items never shown.
    policies : list of ItemPolicy or dicts
        Item attribute predicates every shown item must pass (e.g. ``{"column": "unsafe",
        "op": "!=", "value": true}``).
    mmr_lambda : float in [0, 1]
        1: rank by score only; lower values trade score for diversity.

    Examples
    --------
    >>> cf = palate.CollaborativeFiltering().fit(train)  # doctest: +SKIP
    >>> pipeline = palate.RetrieveThenRank(cf).fit(
    ...     train, item_table=ml.items, user_table=ml.users)  # doctest: +SKIP
    >>> pipeline.recommend([1], k=10).item_ids.shape  # doctest: +SKIP
    (1, 10)
    >>> pipeline.explain(1, k=3)  # doctest: +SKIP
    """

    model_kind = "retrieve_then_rank"

    def __init__(
        self,
        ranker: Model,
        sources: Sequence[CandidateSource | Mapping[str, Any]] | None = None,
        *,
        block_items: Sequence[Id] = (),
        policies: Sequence[ItemPolicy | Mapping[str, Any]] = (),
        mmr_lambda: float = 1.0,
    ) -> None:
        if not isinstance(ranker, Model):
            raise ConfigError(
                f"ranker must be a palate model (CollaborativeFiltering, ImplicitALS, TwoTower), "
                f"got {type(ranker).__name__}"
            )
        self.ranker = ranker
        self._default_sources = sources is None
        self.sources = [
            s if isinstance(s, CandidateSource) else make_source(s)
            for s in (default_sources() if sources is None else sources)
        ]
        if not self.sources:
            raise ConfigError("give at least one candidate source")
        if isinstance(block_items, (str, bytes)) or not isinstance(
            block_items, (Sequence, np.ndarray, pd.Index, set, frozenset)
        ):
            raise ConfigError(
                f"block_items must be a list of item ids, e.g. [260, 1196] or ['abc'], got "
                f"{block_items!r}"
            )
        self.block_items = list(block_items)
        self.policies = [ItemPolicy.from_config(p) for p in policies]
        if (
            not isinstance(mmr_lambda, (int, float))
            or isinstance(mmr_lambda, bool)
            or not 0.0 <= mmr_lambda <= 1.0
        ):
            raise ConfigError(f"mmr_lambda must be in [0, 1] (1: no diversity), got {mmr_lambda!r}")
        self.mmr_lambda = float(mmr_lambda)
        self._fitted_ranker = False
        self._reset()

    def _reset(self) -> None:
        self._forget_fit()
        self.sources_: list[CandidateSource] = []
        self.scorer_: VectorScorer | None = None
        self.allowed_: np.ndarray | None = None
        self._recent: sp.csr_matrix | None = None
        self._popularity: np.ndarray | None = None
        self._unit_features: np.ndarray | None = None

    # ------------------------------------------------------------------ configuration
    def get_params(self) -> dict[str, Any]:
        return {
            "sources": [s.config() for s in self.sources],
            "block_items": [_plain(i) for i in self.block_items],
            "policies": [p.to_config() for p in self.policies],
            "mmr_lambda": self.mmr_lambda,
        }

    def with_params(self, **changes: Any) -> RetrieveThenRank:
        """An unfitted copy (with an unfitted copy of the ranker) with some parameters
        changed."""
        return type(self)(self.ranker.with_params(), **{**self.get_params(), **changes})

    def __repr__(self) -> str:
        return (
            f"RetrieveThenRank(ranker={type(self.ranker).__name__}, sources={self.sources!r}, "
            f"mmr_lambda={self.mmr_lambda})"
        )

    @classmethod
    def from_config(cls, ranker: Model, config: Mapping[str, Any]) -> RetrieveThenRank:
        """A pipeline from a parsed TOML configuration (see :func:`read_pipeline_config`)."""
        known = {"sources", "block_items", "policies", "mmr_lambda", "data"}
        unknown = set(config) - known
        if unknown:
            raise ConfigError(
                f"unknown pipeline setting(s) {sorted(unknown)}; use {', '.join(sorted(known))}"
            )
        return cls(
            ranker,
            config.get("sources"),
            block_items=config.get("block_items", ()),
            policies=config.get("policies", ()),
            mmr_lambda=config.get("mmr_lambda", 1.0),
        )

    def with_sources(self, sources: Sequence[CandidateSource]) -> RetrieveThenRank:
        """An unfitted pipeline with the same ranker and filters and other sources."""
        return type(self)(
            self.ranker,
            sources,
            block_items=self.block_items,
            policies=self.policies,
            mmr_lambda=self.mmr_lambda,
        )

    def scaled(self, factor: float) -> RetrieveThenRank:
        """An unfitted pipeline whose sources each return about ``factor`` times as many
        candidates (the retrieval-size knob)."""
        return self.with_sources([s.scaled(factor) for s in self.sources])

    def resized(self, factor: float) -> RetrieveThenRank:
        """A fitted copy (sharing the fitted state) whose sources each return about
        ``factor`` times as many candidates."""
        self._check_fitted()
        clone = copy.copy(self)
        clone.sources_ = [s.resized(factor) for s in self.sources_]
        clone.sources = list(clone.sources_)
        return clone

    def only(self, position: int) -> RetrieveThenRank:
        """A fitted copy that retrieves from one of the fitted sources only."""
        self._check_fitted()
        clone = copy.copy(self)
        clone.sources_ = [self.sources_[position]]
        clone.sources = list(clone.sources_)
        return clone

    @property
    def nominal_candidates(self) -> int:
        """The most candidates the sources can return together (before deduplication)."""
        return sum(s.size for s in (self.sources_ or self.sources))

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        interactions: Interactions,
        *,
        item_table: pd.DataFrame | FeatureTable | None = None,
        user_table: pd.DataFrame | FeatureTable | None = None,
        sample_queries: bool = True,
    ) -> RetrieveThenRank:
        """Fit the sources (and the ranker, when it is not fitted yet) on training events.

        A ranker that was fitted before it was given to the pipeline is kept as it is; one
        the pipeline fitted itself is fitted again, so that ``fit`` starts over.

        Parameters
        ----------
        interactions : Interactions
            The training events; their users and items must be known to the ranker.
        item_table : DataFrame or ItemFeatures, optional
            Item attributes with an ``item_id`` column (genres for TopInFavoriteGenres,
            attributes for policies).
        user_table : DataFrame or UserFeatures, optional
            User attributes with a ``user_id`` column (for TopInSegment).

        Returns
        -------
        self
        """
        data = fit_input(interactions)
        # the pipeline refits a ranker it fitted itself (fit starts over); a ranker that came
        # fitted is the caller's and is kept
        if not self.ranker.is_fitted or self._fitted_ranker:
            self.ranker.fit(data)
            self._fitted_ranker = True
        self._reset()
        scorer = VectorScorer.from_model(self.ranker)
        data = data.with_vocabularies(scorer.users, scorer.items)
        items_frame, users_frame = _as_table(item_table), _as_table(user_table)
        self.scorer_ = scorer
        self.users_, self.items_ = scorer.users, scorer.items
        self.seen_ = seen_matrix(data)
        self._recent = _recent_matrix(data)
        self._popularity = _popularity(data)
        self.allowed_ = allowed_items(self.items_, items_frame, self.block_items, self.policies)
        self._prepare_features()
        source_data = self._source_data(data, items_frame, users_frame)
        fitted = []
        for source in self.sources:
            if self._default_sources and (
                (isinstance(source, TopInFavoriteGenres) and items_frame is None)
                or (isinstance(source, TopInSegment) and users_frame is None)
            ):
                logger.info("leaving out %s: no attribute table was given", source.name)
                continue
            if sample_queries and hasattr(source, "index_") and source.kind == "nearest_to_user":
                source.fit(source_data, sample_queries=scorer.user_matrix)  # type: ignore[call-arg]
            else:
                source.fit(source_data)
            fitted.append(source)
        self.sources_ = fitted
        self.data_fingerprint_ = data.fingerprint()
        return self

    def _source_data(
        self,
        data: Interactions | None,
        items_frame: pd.DataFrame | None,
        users_frame: pd.DataFrame | None,
    ) -> SourceData:
        scorer = self.scorer_
        assert scorer is not None
        return SourceData(
            interactions=data,  # type: ignore[arg-type]
            seen=self.seen_,
            item_table=items_frame,
            user_table=users_frame,
            item_vectors=scorer.item_matrix,
            similarity_vectors=scorer.similarity_vectors,
            popularity=self._popularity,  # type: ignore[arg-type]
        )

    def _prepare_features(self) -> None:
        features = self.scorer_.similarity_vectors  # type: ignore[union-attr]
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        self._unit_features = (features / np.maximum(norms, 1e-12)).astype(np.float32)

    @property
    def is_fitted(self) -> bool:
        return getattr(self, "scorer_", None) is not None

    # ------------------------------------------------------------------ serving
    def _context(self, row: int, exclude_seen: bool) -> UserContext:
        empty = np.empty(0, np.int64)
        if row < 0:
            return UserContext(row, empty, empty, np.empty(0, np.float32), None)
        seen, recent = self.seen_, self._recent
        assert recent is not None
        start, end = recent.indptr[row], recent.indptr[row + 1]
        seen_items = (
            np.sort(seen.indices[seen.indptr[row] : seen.indptr[row + 1]]).astype(np.int64)
            if exclude_seen
            else empty
        )
        return UserContext(
            row,
            seen_items,
            recent.indices[start:end].astype(np.int64),
            recent.data[start:end],
            self.scorer_.user_matrix[row],  # type: ignore[union-attr]
        )

    def retrieve(self, row: int, exclude_seen: bool = True) -> list[Candidates]:
        """What each fitted source finds for the user at ``row`` (internal index)."""
        context = self._context(row, exclude_seen)
        return [source.retrieve(context) for source in self.sources_]

    def _rank(
        self, row: int, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray, list[Candidates], np.ndarray]:
        """Top-k item indices and scores for one user, what the sources found, and the
        merged candidates."""
        scorer = self.scorer_
        assert scorer is not None and self.allowed_ is not None
        context = self._context(row, exclude_seen)
        found = [source.retrieve(context) for source in self.sources_]
        merged = np.unique(np.concatenate([c.items for c in found])) if found else np.empty(0)
        merged = merged.astype(np.int64)
        keep = self.allowed_[merged]
        if len(context.seen):
            keep &= not_in(merged, context.seen)
        candidates = merged[keep]
        if row < 0:
            if not len(candidates):  # no source serves unknown users: the model's fallback
                candidates = np.flatnonzero(self.allowed_)
            raw = scorer.fallback_scores[candidates].astype(np.float64)
        else:
            raw = (scorer.item_matrix[candidates] @ context.vector).astype(np.float64)
        order = self._order(raw, candidates, k)
        shown = candidates[order]
        scores = raw[order] if row < 0 else np.asarray(scorer.link(raw[order]), dtype=np.float64)
        return shown, scores.astype(np.float32), found, candidates

    def _order(self, raw: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
        n = len(raw)
        if n == 0:
            return np.empty(0, np.int64)
        if self.mmr_lambda >= 1.0 or n <= 1:
            kk = min(k, n)
            top = np.argpartition(-raw, kk - 1)[:kk] if kk < n else np.arange(n)
            return top[np.lexsort((candidates[top], -raw[top]))]
        return _mmr(raw, self._unit_features[candidates], k, self.mmr_lambda)  # type: ignore[index]

    def recommend(
        self, user_ids: IdLike, k: int = 10, exclude_seen: bool = True, *, batch_size: int = 1024
    ) -> Recommendations:
        """Top-k items per user from the retrieved candidates.

        Users the ranker does not know get the candidates of the sources that serve anyone
        (Popular) ranked by the ranker's fallback scores, and ``fallback=True``.

        Returns
        -------
        Recommendations
            Shape (n_users, k); rows with fewer than k candidates are padded (NaN scores).
        """
        self._check_fitted()
        k = check_k(k)
        ids, rows = user_rows(self.users_, user_ids)
        out_idx = np.full((len(ids), k), -1, dtype=np.int64)
        out_val = np.full((len(ids), k), np.nan, dtype=np.float32)
        for r, row in enumerate(rows):
            shown, scores, _, _ = self._rank(int(row), k, exclude_seen)
            out_idx[r, : len(shown)] = shown
            out_val[r, : len(shown)] = scores
        result = Recommendations(ids, ids_from_indices(self.items_, out_idx), out_val, rows < 0)
        if self.ranks_by == "prediction":
            return result
        return dataclasses.replace(result, predictions=self.listed_predictions(result))

    def explain(
        self,
        user_id: Id,
        k: int = 10,
        exclude_seen: bool = True,
        item_label: Callable[[Id], str] | None = None,
    ) -> list[RankedItem]:
        """The top-k for one user with the sources that found each item and why.

        Parameters
        ----------
        item_label : callable(item_id) -> str, optional
            Names items in the reasons (e.g. titles); default: the id.

        Returns
        -------
        list of RankedItem
            ``sources`` names every source that found the item, ``because`` its reasons
            ("because you watched X", "popular with users whose occupation is writer").
        """
        self._check_fitted()
        k = check_k(k)
        items = self.items_
        assert items is not None
        _, rows = user_rows(self.users_, [user_id])
        shown, scores, found, _ = self._rank(int(rows[0]), k, exclude_seen)
        label = item_label or str

        def by_index(index: int) -> str:
            return label(_plain(items.ids[index]))

        out = []
        for item, score in zip(shown, scores, strict=True):
            names, reasons = [], []
            for source, candidates in zip(self.sources_, found, strict=True):
                hit = np.flatnonzero(candidates.items == item)
                if len(hit):
                    names.append(source.name)
                    reasons.append(source.explain(int(candidates.anchors[hit[0]]), by_index))
            if not names:
                names, reasons = ["fallback"], ["popular with everyone"]
            out.append(
                RankedItem(_plain(items.ids[item]), float(score), tuple(names), tuple(reasons))
            )
        return out

    @property
    def can_explain(self) -> bool:  # type: ignore[override]
        """The sources always say what found an item; the ranker's terms where it can."""
        return True

    def explain_items(
        self,
        user_id: Id | None,
        item_ids: IdLike,
        *,
        ratings: Any = None,
        top: int = 3,
    ) -> list[Explanation]:
        """The ranker's terms of each item's score (where ``ranker.can_explain``) and, for a
        known user, the sources that found it (a ``source`` reason each)."""
        self._check_fitted()
        items = as_id_array(item_ids)
        if self.ranker.can_explain:
            out = self.ranker.explain_items(user_id, items, ratings=ratings, top=top)
        else:
            nan = float("nan")
            out = [Explanation(_plain(i), nan, nan, nan, 0.0, nan, ()) for i in items]
        if ratings is not None or user_id is None:
            return out
        _, rows = user_rows(self.users_, [user_id])
        if rows[0] < 0:
            return out
        context = self._context(int(rows[0]), True)
        found = [source.retrieve(context) for source in self.sources_]
        index = self.items_.index(items, missing="ignore")
        explained = []
        for explanation, item in zip(out, index, strict=True):
            sourced = []
            for source, candidates in zip(self.sources_, found, strict=True):
                hit = np.flatnonzero(candidates.items == item)
                if item >= 0 and len(hit):
                    anchor = int(candidates.anchors[hit[0]])
                    start = _plain(self.items_.ids[anchor]) if anchor >= 0 else None
                    sourced.append(Reason("source", 0.0, start, source=source.name))
            explained.append(
                dataclasses.replace(explanation, reasons=(*sourced, *explanation.reasons))
            )
        return explained

    def candidates(self, user_id: Id, exclude_seen: bool = True) -> IdArray:
        """The merged candidates the sources found for one user after the filters (what the
        ranker scores), as item ids."""
        self._check_fitted()
        _, rows = user_rows(self.users_, [user_id])
        found = self._rank(int(rows[0]), 1, exclude_seen)[3]
        return self.items_.ids[found]

    # ------------------------------------------------------------------ the ranker's contract
    def predict_rows(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The ranker's predictions for pairs of rows (the pipeline shares its vocabularies)."""
        return self.ranker.predict_rows(u, i)

    def link(self, raw: np.ndarray) -> np.ndarray:
        return self.ranker.link(raw)

    @property
    def feedback_kind(self) -> FeedbackKind:
        return self.ranker.feedback_kind

    @property
    def score_kind(self) -> ScoreKind:
        return self.ranker.score_kind

    @property
    def rating_scale(self) -> tuple[float, float] | None:
        return self.ranker.rating_scale

    @property
    def ranks_by(self) -> RankKind:
        return self.ranker.ranks_by

    # ------------------------------------------------------------------ model files
    def to_state(self) -> ModelState:
        self._check_fitted()
        ranker_state = self.ranker.to_state()
        arrays = {RANKER_PREFIX + name: a for name, a in ranker_state.arrays.items()}
        seen, recent = self.seen_, self._recent
        assert recent is not None and self.allowed_ is not None
        arrays.update(
            allowed=self.allowed_,
            popularity=self._popularity,  # type: ignore[arg-type]
            seen_indptr=seen.indptr.astype(np.int64),
            seen_indices=seen.indices.astype(np.int32),
            recent_indptr=recent.indptr.astype(np.int64),
            recent_indices=recent.indices.astype(np.int32),
            recent_values=recent.data.astype(np.float32),
        )
        source_extra = []
        for j, source in enumerate(self.sources_):
            source_arrays, extra = source.state()
            arrays.update({SOURCE_PREFIX.format(j) + n: a for n, a in source_arrays.items()})
            source_extra.append(extra)
        vocabularies = {"ranker_" + n: v for n, v in ranker_state.vocabularies.items()}
        vocabularies.update(users=self.users_, items=self.items_)
        return ModelState(
            config={
                **self.get_params(),
                "fitted_sources": [s.config() for s in self.sources_],
                "ranker_kind": self.ranker.model_kind,
                "ranker_config": ranker_state.config,
            },
            arrays=arrays,
            vocabularies=vocabularies,
            extra={"ranker": ranker_state.extra, "sources": source_extra},
        )

    @classmethod
    def from_state(cls, state: ModelState) -> RetrieveThenRank:
        from palate.models.registry import kind_class

        config = dict(state.config)
        ranker_class = kind_class(config.pop("ranker_kind"))
        ranker_state = ModelState(
            config=config.pop("ranker_config"),
            arrays={
                n[len(RANKER_PREFIX) :]: a
                for n, a in state.arrays.items()
                if n.startswith(RANKER_PREFIX)
            },
            vocabularies={
                n[len("ranker_") :]: v
                for n, v in state.vocabularies.items()
                if n.startswith("ranker_")
            },
            extra=state.extra["ranker"],
        )
        ranker = ranker_class.from_state(ranker_state)
        fitted = config.pop("fitted_sources")
        model = cls(ranker, **config)
        a = state.arrays
        model.scorer_ = VectorScorer.from_model(ranker)
        model.users_, model.items_ = state.vocabularies["users"], state.vocabularies["items"]
        n_users, n_items = len(model.users_), len(model.items_)
        model.allowed_ = np.asarray(a["allowed"], dtype=bool)
        model._popularity = np.asarray(a["popularity"], dtype=np.float32)
        model.seen_ = seen_from_arrays(a, n_users, n_items)
        model._recent = sp.csr_matrix(
            (a["recent_values"], a["recent_indices"], a["recent_indptr"]),
            shape=(n_users, n_items),
        )
        model._prepare_features()
        source_data = model._source_data(None, None, None)
        model.sources_ = []
        for j, source_config in enumerate(fitted):
            source = make_source(source_config)
            prefix = SOURCE_PREFIX.format(j)
            arrays = {n[len(prefix) :]: v for n, v in a.items() if n.startswith(prefix)}
            source.restore(arrays, state.extra["sources"][j], source_data)
            model.sources_.append(source)
        return model

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                "this RetrieveThenRank is not fitted yet; call .fit(interactions, "
                "item_table=..., user_table=...) first"
            )


def _mmr(raw: np.ndarray, features: np.ndarray, k: int, lam: float) -> np.ndarray:
    """Maximal marginal relevance: greedy ``argmax λ r(i) − (1 − λ) max_{j ∈ R} cos(i, j)``
    with ``r`` the scores min-max scaled to [0, 1]; the first pick is the most relevant item.
    Returns positions, best first."""
    n = len(raw)
    spread = raw.max() - raw.min()
    relevance = (raw - raw.min()) / spread if spread > 0 else np.ones(n)
    closest = np.full(n, -np.inf)
    chosen: list[int] = []
    available = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        if chosen:
            value = np.where(available, lam * relevance - (1 - lam) * closest, -np.inf)
            pick = int(np.argmax(value))
        else:  # the most relevant item always comes first
            pick = int(np.argmax(relevance))
        chosen.append(pick)
        available[pick] = False
        closest = np.maximum(closest, features @ features[pick])
    return np.asarray(chosen, dtype=np.int64)


def _recent_matrix(data: Interactions) -> sp.csr_matrix:
    """Users x items, each row's entries ordered most recent first (by timestamp, else by
    event order), holding the event values."""
    n = len(data)
    when = data.timestamps if data.timestamps is not None else np.arange(n)
    order = np.lexsort((-np.arange(n), -when.astype(np.float64), data.user_idx))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(data.user_idx, minlength=data.n_users))])
    return sp.csr_matrix(
        (data.values[order], data.item_idx[order], indptr), shape=data.shape
    )


def _popularity(data: Interactions) -> np.ndarray:
    """Events per item (positive events for binary data)."""
    weights = (data.values > 0).astype(np.float64) if data.kind == "binary" else None
    return np.bincount(data.item_idx, weights=weights, minlength=data.n_items).astype(np.float32)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def read_pipeline_config(path: str | Path) -> dict[str, Any]:
    """Parse a pipeline configuration file (TOML).

    Example::

        mmr_lambda = 1.0
        block_items = [2571]

        [[sources]]
        kind = "similar_to_recent"
        n_recent = 10
        n_similar = 10

        [[sources]]
        kind = "nearest_to_user"
        top = 100
        index = { kind = "hnsw", ef_search = 64 }

        [[policies]]
        column = "year"
        op = ">="
        value = 1970
    """
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"no pipeline configuration at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


__all__ = ["RankedItem", "RetrieveThenRank", "read_pipeline_config"]
