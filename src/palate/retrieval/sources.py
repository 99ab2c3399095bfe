"""Candidate sources: cheap ways to gather a few hundred plausible items for a user.

Each source is a small object, fitted once on the training events (and item / user
attributes), that returns for one user a handful of item indices, a score per item (higher is
better within the source) and the provenance of each: the item the user watched that it is
similar to, the genre, the user segment. The curriculum's sizes are the defaults:

- :class:`SimilarToRecent`: for each of the user's last 10 items, the 10 most similar items;
- :class:`TopInFavoriteGenres`: the top 10 items of each of the user's 3 most-watched genres;
- :class:`TopInSegment`: the top 20 items among users sharing an attribute (country,
  occupation, age bucket);
- :class:`Popular`: the top 20 items overall;
- :class:`NearestToUser`: the nearest neighbours of the user vector among the item vectors.

Sources never return items the user has seen; the pipeline removes them again after merging.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from palate.data.catalog import genre_lists
from palate.data.dataset import with_derived_user_columns
from palate.data.interactions import Interactions
from palate.errors import ConfigError, DataError
from palate.retrieval.factory import make_index
from palate.retrieval.faiss_index import FaissIndex
from palate.retrieval.index import VectorIndexBase, not_in

ItemLabel = Callable[[int], str]


@dataclass(frozen=True)
class Candidates:
    """What one source found for one user.

    Attributes
    ----------
    items : ndarray of int64, shape (n,)
        Item indices (positions in the pipeline's item vocabulary), no duplicates.
    scores : ndarray of float32, shape (n,)
        The source's own score, higher is better (not comparable across sources).
    anchors : ndarray of int64, shape (n,)
        The provenance: the watched item a similar item was found from, the genre or segment
        code, or -1.
    """

    items: np.ndarray
    scores: np.ndarray
    anchors: np.ndarray

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def empty(cls) -> Candidates:
        return cls(np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.int64))


@dataclass
class UserContext:
    """What the sources know about the user of one request.

    Attributes
    ----------
    row : int
        The user's index in the pipeline's user vocabulary, -1 for a user it does not know.
    seen : ndarray of int64
        Sorted item indices the user has engaged with (never returned).
    recent : ndarray of int64
        The user's items, most recent first.
    recent_values : ndarray of float32
        The ratings / labels of ``recent``.
    vector : ndarray of float32 or None
        The user's vector of the ranking model.
    """

    row: int
    seen: np.ndarray
    recent: np.ndarray
    recent_values: np.ndarray
    vector: np.ndarray | None = None


@dataclass
class SourceData:
    """What sources are fitted on.

    Attributes
    ----------
    interactions : Interactions
        Training events, indexed by the pipeline's vocabularies.
    seen : csr_matrix (n_users, n_items)
    item_table : DataFrame, optional
        Item attributes, one row per item (column ``item_id``), e.g. ``genres``.
    user_table : DataFrame, optional
        User attributes (column ``user_id``), e.g. ``occupation``, ``age``, ``country``.
    item_vectors : ndarray (n_items, d), optional
        The ranking model's item vectors (inner product with the user vector = its score).
    similarity_vectors : ndarray (n_items, n), optional
        Item features for "most similar": related items have the smallest ‖x(k) − x(i)‖².
    popularity : ndarray (n_items,)
        Events per item.
    """

    interactions: Interactions
    seen: sp.csr_matrix
    item_table: pd.DataFrame | None = None
    user_table: pd.DataFrame | None = None
    item_vectors: np.ndarray | None = None
    similarity_vectors: np.ndarray | None = None
    popularity: np.ndarray = field(default_factory=lambda: np.empty(0))


def _positive_int(value: Any, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _unseen_prefix(ranked: np.ndarray, seen: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` entries of ``ranked`` that are not in ``seen``."""
    head = ranked[: n + len(seen)]
    return head[not_in(head, seen)][:n]


def _ranked_lists(matrix: sp.csr_matrix, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a nonnegative count matrix, its columns by decreasing count (ties by
    column), at most ``depth`` per row; as (indptr, indices)."""
    matrix = sp.csr_matrix(matrix)
    matrix.sum_duplicates()
    indptr = [0]
    chunks = []
    for r in range(matrix.shape[0]):
        cols = matrix.indices[matrix.indptr[r] : matrix.indptr[r + 1]]
        vals = matrix.data[matrix.indptr[r] : matrix.indptr[r + 1]]
        keep = vals > 0
        cols, vals = cols[keep], vals[keep]
        order = np.lexsort((cols, -vals))[:depth]
        chunks.append(cols[order].astype(np.int64))
        indptr.append(indptr[-1] + len(order))
    indices = np.concatenate(chunks) if chunks else np.empty(0, np.int64)
    return np.asarray(indptr, dtype=np.int64), indices


class CandidateSource:
    """Base class of the sources: configuration, fitting, state for model files.

    Subclasses set ``kind`` and implement :meth:`fit`, :meth:`retrieve` and
    :meth:`explain`; their constructor keywords are their configuration.
    """

    kind: ClassVar[str] = "source"
    #: the constructor keyword that :meth:`scaled` multiplies
    size_parameter: ClassVar[str] = ""

    def params(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """``{"kind": ..., **params}``: what :func:`make_source` rebuilds it from."""
        return {"kind": self.kind, **self.params()}

    @property
    def name(self) -> str:
        return self.kind

    @property
    def size(self) -> int:
        """The most candidates this source returns for one user."""
        return int(self.params()[self.size_parameter])

    def scaled(self, factor: float) -> CandidateSource:
        """An unfitted copy returning about ``factor`` times as many candidates."""
        params = self.params()
        value = params[self.size_parameter]
        params[self.size_parameter] = max(1, int(round(value * factor)))
        return type(self)(**params)

    def resized(self, factor: float) -> CandidateSource:
        """A copy sharing the fitted state that returns about ``factor`` times as many
        candidates (ranked lists hold the top ``size + 1000`` of the fitted size)."""
        clone = copy.copy(self)
        value = getattr(self, self.size_parameter)
        setattr(clone, self.size_parameter, max(1, int(round(value * factor))))
        return clone

    def fit(self, data: SourceData) -> CandidateSource:  # pragma: no cover - overridden
        raise NotImplementedError

    def retrieve(self, user: UserContext) -> Candidates:  # pragma: no cover - overridden
        raise NotImplementedError

    def explain(self, anchor: int, item_label: ItemLabel) -> str:  # pragma: no cover
        raise NotImplementedError

    # state for model files: numeric arrays and small JSON
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {}

    def restore(
        self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any], data: SourceData
    ) -> None:
        self.fit(data)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


# ---------------------------------------------------------------------------------- sources
class _IndexedSource(CandidateSource):
    """A source searching a vector index: a FAISS index is saved as its own bytes and
    restored over the same vectors; an exact index is rebuilt by ``fit``."""

    _metric: str
    index: dict[str, Any]
    index_: VectorIndexBase | None

    def _indexed_vectors(self, data: SourceData) -> np.ndarray | None:  # pragma: no cover
        raise NotImplementedError

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if isinstance(self.index_, FaissIndex):
            return {"faiss": self.index_.to_bytes()}, {"index_metadata": self.index_.metadata_}
        return {}, {}

    def restore(
        self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any], data: SourceData
    ) -> None:
        if "faiss" in arrays:
            index = make_index({**self.index, "metric": self._metric})
            vectors = self._indexed_vectors(data)
            assert isinstance(index, FaissIndex) and vectors is not None
            index.restore(vectors, arrays["faiss"], extra.get("index_metadata", {}))
            self.index_ = index
        else:
            self.fit(data)


class SimilarToRecent(_IndexedSource):
    """For each of the user's last ``n_recent`` items, the ``n_similar`` most similar items.

    Similar means the smallest ``‖x(k) − x(i)‖²`` over the item features of the ranking model
    (CF's learned ``x(i)``, the two-tower ``v_m(i)``), searched in a vector index. An item
    found from several recent items keeps its best score, ``−‖x(k) − x(i)‖²``, and that
    anchor: "because you watched X".

    Parameters
    ----------
    n_recent, n_similar : int
    min_value : float, optional
        Only recent items the user rated at least this (e.g. 4: "liked").
    index : dict or index
        The vector index, e.g. ``{"kind": "exact"}`` or ``{"kind": "hnsw", "ef_search": 64}``,
        or an index already built over the item features with metric ``"l2"``.
    precomputed : int
        Related items computed ahead of time (the curriculum's "computed ahead of time"):
        ``fit`` stores every item's ``precomputed`` nearest items (one batched index search
        over the catalogue, ``n_items × precomputed`` int32 + float32), and a request reads
        its recent items' rows instead of searching the index; an anchor left with fewer
        than ``n_similar`` unseen items is searched as before. 0 (default): always search.
        Take it at least ``n_similar``, with room for seen items (e.g. ``3 × n_similar``).
    """

    kind = "similar_to_recent"
    size_parameter = "n_similar"
    _metric = "l2"

    def __init__(
        self,
        n_recent: int = 10,
        n_similar: int = 10,
        min_value: float | None = None,
        index: Mapping[str, Any] | VectorIndexBase | None = None,
        precomputed: int = 0,
    ) -> None:
        self.n_recent = _positive_int(n_recent, "n_recent")
        self.n_similar = _positive_int(n_similar, "n_similar")
        if min_value is not None and not isinstance(min_value, (int, float)):
            raise ConfigError(f"min_value must be a number or None, got {min_value!r}")
        self.min_value = None if min_value is None else float(min_value)
        if (
            not isinstance(precomputed, (int, np.integer))
            or isinstance(precomputed, bool)
            or precomputed < 0
        ):
            raise ConfigError(
                f"precomputed must be an integer >= 0 (0: search at request time), "
                f"got {precomputed!r}"
            )
        self.precomputed = int(precomputed)
        self.index, self.index_ = _index_setting(index, self._metric)
        self.related_: np.ndarray | None = None
        self.related_distances_: np.ndarray | None = None

    def params(self) -> dict[str, Any]:
        return {
            "n_recent": self.n_recent,
            "n_similar": self.n_similar,
            "min_value": self.min_value,
            "index": _index_params(self.index, self.index_),
            "precomputed": self.precomputed,
        }

    @property
    def size(self) -> int:
        return self.n_recent * self.n_similar

    def fit(self, data: SourceData) -> SimilarToRecent:
        if data.similarity_vectors is None:
            raise ConfigError("SimilarToRecent needs item features; rank with CF or a two-tower")
        index = _fitted_index(
            self.index, self.index_, self._metric, data.similarity_vectors, None
        )
        restored = self.__dict__.pop("_restored_related", None)
        if not self.precomputed:
            self.related_ = self.related_distances_ = None
        elif restored is not None and len(restored[0]) == len(index):
            self.related_, self.related_distances_ = restored
        elif index is not self.index_ or self.related_ is None:
            self.related_, self.related_distances_ = _related_items(index, self.precomputed)
        self.index_ = index
        return self

    def _found(self, anchors: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(items, distances), shape (len(anchors), n_similar), -1 / NaN where none."""
        k = self.n_similar

        def searched(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            found = self.index_.search(  # type: ignore[union-attr]
                self.index_.vectors_[rows], k, exclude=[seen] * len(rows)  # type: ignore[union-attr, index]
            )
            return found.indices, found.values

        if self.related_ is None or self.related_distances_ is None:
            return searched(anchors)
        rows = self.related_[anchors].astype(np.int64)
        keep = rows >= 0
        if len(seen):
            keep &= not_in(rows.reshape(-1), seen).reshape(rows.shape)
        order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
        items = np.take_along_axis(rows, order, axis=1)
        values = np.take_along_axis(self.related_distances_[anchors], order, axis=1)
        valid = np.take_along_axis(keep, order, axis=1)
        items, values = np.where(valid, items, -1), np.where(valid, values, np.nan)
        n_items = len(self.related_)
        short = np.flatnonzero(valid.sum(axis=1) < np.minimum(k, n_items - len(seen)))
        if len(short):  # seen items filled the stored rows: search these anchors
            items[short], values[short] = searched(anchors[short])
        return items, values

    def retrieve(self, user: UserContext) -> Candidates:
        recent = user.recent
        if self.min_value is not None:
            recent = recent[user.recent_values >= self.min_value]
        anchors = recent[: self.n_recent]
        if not len(anchors) or self.index_ is None:
            return Candidates.empty()
        found_items, found_values = self._found(anchors, user.seen)
        items = found_items.reshape(-1)
        scores = -found_values.reshape(-1)
        origin = np.repeat(anchors, found_items.shape[1])
        valid = items >= 0
        items, scores, origin = items[valid], scores[valid], origin[valid]
        # the best anchor of every item: sort by score, keep first occurrences
        order = np.argsort(-scores, kind="stable")
        items, scores, origin = items[order], scores[order], origin[order]
        _, first = np.unique(items, return_index=True)
        first.sort()
        return Candidates(items[first], scores[first].astype(np.float32), origin[first])

    def explain(self, anchor: int, item_label: ItemLabel) -> str:
        return f"because you watched {item_label(anchor)}"

    def _indexed_vectors(self, data: SourceData) -> np.ndarray | None:
        return data.similarity_vectors

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, extra = super().state()
        if self.related_ is not None and self.related_distances_ is not None:
            arrays = {**arrays, "related": self.related_,
                      "related_distances": self.related_distances_}
        return arrays, extra

    def restore(
        self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any], data: SourceData
    ) -> None:
        if "related" in arrays and "related_distances" in arrays:
            related = np.asarray(arrays["related"], dtype=np.int32)
            distances = np.asarray(arrays["related_distances"], dtype=np.float32)
            # an exact index is rebuilt by fit, which then keeps these
            self._restored_related = (related, distances)
            self.related_, self.related_distances_ = related, distances
        super().restore(arrays, extra, data)
        self.__dict__.pop("_restored_related", None)


def _related_items(index: VectorIndexBase, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every indexed item's ``n`` nearest other items (int32, -1 where fewer) and their
    squared distances (float32), by one index search per block of items."""
    vectors = index.vectors_
    assert vectors is not None
    n_items = len(vectors)
    related = np.full((n_items, n), -1, dtype=np.int32)
    distances = np.full((n_items, n), np.nan, dtype=np.float32)
    block = 65_536
    for start in range(0, n_items, block):
        rows = np.arange(start, min(start + block, n_items))
        found = index.search(vectors[rows], min(n + 1, n_items), exclude=rows[:, None])  # type: ignore[attr-defined]
        width = min(n, found.indices.shape[1])
        related[rows, :width] = found.indices[:, :width]
        distances[rows, :width] = found.values[:, :width]
    return related, distances


class NearestToUser(_IndexedSource):
    """The ``top`` items whose vectors have the largest inner product with the user vector.

    With the ranking model's own vectors this is the model's exact top list (exact index) or an
    approximation of it (ANN index) — the source that scales the "score everything" approach
    to a large catalogue.

    Parameters
    ----------
    top : int
    index : dict or index
        ``{"kind": "exact"}`` (default), ``{"kind": "hnsw", ...}`` or ``{"kind": "ivf", ...}``
        with :class:`~palate.retrieval.FaissIndex` parameters, or an index already built over
        the ranker's item vectors with metric ``"inner_product"``.
    """

    kind = "nearest_to_user"
    size_parameter = "top"
    _metric = "inner_product"

    def __init__(
        self, top: int = 100, index: Mapping[str, Any] | VectorIndexBase | None = None
    ) -> None:
        self.top = _positive_int(top, "top")
        self.index, self.index_ = _index_setting(index, self._metric)

    def params(self) -> dict[str, Any]:
        return {"top": self.top, "index": _index_params(self.index, self.index_)}

    def fit(self, data: SourceData, sample_queries: np.ndarray | None = None) -> NearestToUser:
        if data.item_vectors is None:
            raise ConfigError("NearestToUser needs the ranking model's item vectors")
        self.index_ = _fitted_index(
            self.index, self.index_, self._metric, data.item_vectors, sample_queries
        )
        return self

    def retrieve(self, user: UserContext) -> Candidates:
        if user.vector is None or self.index_ is None:
            return Candidates.empty()
        found = self.index_.search(user.vector[None, :], self.top, exclude=[user.seen])  # type: ignore[attr-defined]
        items, scores = found.indices[0], found.values[0]
        valid = items >= 0
        return Candidates(
            items[valid], scores[valid].astype(np.float32), np.full(int(valid.sum()), -1)
        )

    def explain(self, anchor: int, item_label: ItemLabel) -> str:
        return "close to your taste profile"

    def _indexed_vectors(self, data: SourceData) -> np.ndarray | None:
        return data.item_vectors


def _index_setting(
    index: Mapping[str, Any] | VectorIndexBase | None, metric: str
) -> tuple[dict[str, Any], VectorIndexBase | None]:
    """(index parameters, a given built index or None)."""
    if isinstance(index, VectorIndexBase):
        if not index.is_built:
            raise ConfigError("pass index parameters (a dict) or an index built with .build()")
        if index.metric != metric:
            raise ConfigError(f"this source searches by {metric}; the index uses {index.metric}")
        return _index_params(None, index), index
    if index is not None and not isinstance(index, Mapping):
        raise ConfigError(f"index must be a dict of parameters or a built index, got {index!r}")
    return dict(index or {"kind": "exact"}), None


def _index_params(
    params: Mapping[str, Any] | None, index: VectorIndexBase | None
) -> dict[str, Any]:
    if params is not None:
        return dict(params)
    assert index is not None
    out = {k: v for k, v in index.params().items() if k != "metric"}
    out["kind"] = out.pop("kind", "exact")
    return out


def _fitted_index(
    params: Mapping[str, Any],
    given: VectorIndexBase | None,
    metric: str,
    vectors: np.ndarray,
    sample_queries: np.ndarray | None,
) -> VectorIndexBase:
    """The given built index when it covers ``vectors``, else a new one built on them."""
    if given is not None and given.is_built and len(given) == len(vectors):
        if given.dim != vectors.shape[1]:
            raise ConfigError(f"the index holds {given.dim}-dim vectors, not {vectors.shape[1]}")
        return given
    index = make_index({**params, "metric": metric})
    if isinstance(index, FaissIndex):
        index.build(vectors, sample_queries)
    else:
        index.build(vectors)  # type: ignore[attr-defined]
    return index


class _RankedListSource(CandidateSource):
    """A source that walks precomputed ranked lists (per genre, per segment, overall),
    skipping what the user has seen."""

    def __init__(self) -> None:
        self.indptr_: np.ndarray | None = None
        self.indices_: np.ndarray | None = None
        self.popularity_: np.ndarray | None = None

    def _list(self, code: int, n: int, seen: np.ndarray) -> np.ndarray:
        assert self.indptr_ is not None and self.indices_ is not None
        ranked = self.indices_[self.indptr_[code] : self.indptr_[code + 1]]
        return _unseen_prefix(ranked, seen, n)

    def _depth(self, n: int) -> int:
        # room for the items a user has already seen at the top of a list
        return n + 1000

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        assert self.indptr_ is not None and self.indices_ is not None
        assert self.popularity_ is not None
        arrays = {"indptr": self.indptr_, "indices": self.indices_, "popularity": self.popularity_}
        return {**arrays, **self._more_arrays()}, self._extra()

    def _more_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _extra(self) -> dict[str, Any]:
        return {}

    def restore(
        self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any], data: SourceData
    ) -> None:
        self.indptr_ = np.asarray(arrays["indptr"], dtype=np.int64)
        self.indices_ = np.asarray(arrays["indices"], dtype=np.int64)
        self.popularity_ = np.asarray(arrays["popularity"], dtype=np.float32)
        self._restore_more(arrays, extra)

    def _restore_more(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        pass

    def _candidates(self, lists: list[tuple[int, np.ndarray]]) -> Candidates:
        if not lists:
            return Candidates.empty()
        items = np.concatenate([items for _, items in lists])
        anchors = np.concatenate([np.full(len(items), code) for code, items in lists])
        items, first = np.unique(items, return_index=True)
        anchors = anchors[first]
        assert self.popularity_ is not None
        return Candidates(items, self.popularity_[items].astype(np.float32), anchors)


class Popular(_RankedListSource):
    """The ``top`` items with the most events that the user has not seen.

    Parameters
    ----------
    top : int
    """

    kind = "popular"
    size_parameter = "top"

    def __init__(self, top: int = 20) -> None:
        super().__init__()
        self.top = _positive_int(top, "top")

    def params(self) -> dict[str, Any]:
        return {"top": self.top}

    def fit(self, data: SourceData) -> Popular:
        self.popularity_ = np.asarray(data.popularity, dtype=np.float32)
        ranked = np.lexsort((np.arange(len(self.popularity_)), -self.popularity_))
        ranked = ranked[self.popularity_[ranked] > 0][: self._depth(self.top)]
        self.indptr_ = np.array([0, len(ranked)], dtype=np.int64)
        self.indices_ = ranked.astype(np.int64)
        return self

    def retrieve(self, user: UserContext) -> Candidates:
        return self._candidates([(-1, self._list(0, self.top, user.seen))])

    def explain(self, anchor: int, item_label: ItemLabel) -> str:
        return "popular with everyone"


class TopInFavoriteGenres(_RankedListSource):
    """The ``per_genre`` most popular items of each of the user's ``n_genres`` most-watched
    genres.

    A user's genre counts are the number of their training events per genre (an item of
    several genres counts for each).

    Parameters
    ----------
    n_genres, per_genre : int
    column : str
        The multi-valued item attribute holding the genres (lists, or ``"A|B"`` strings).
    """

    kind = "top_in_favorite_genres"
    size_parameter = "per_genre"

    def __init__(self, n_genres: int = 3, per_genre: int = 10, column: str = "genres") -> None:
        super().__init__()
        self.n_genres = _positive_int(n_genres, "n_genres")
        self.per_genre = _positive_int(per_genre, "per_genre")
        if not isinstance(column, str) or not column:
            raise ConfigError(f"column must name an item attribute, got {column!r}")
        self.column = column
        self.genres_: list[str] = []
        self.user_genre_counts_: np.ndarray | None = None

    def params(self) -> dict[str, Any]:
        return {"n_genres": self.n_genres, "per_genre": self.per_genre, "column": self.column}

    @property
    def size(self) -> int:
        return self.n_genres * self.per_genre

    def fit(self, data: SourceData) -> TopInFavoriteGenres:
        table = data.item_table
        if table is None or self.column not in table.columns or "item_id" not in table.columns:
            raise DataError(
                f"TopInFavoriteGenres needs an item table with columns item_id and "
                f"{self.column!r}; pass item_table= (e.g. the dataset's items) or drop the source"
            )
        items = data.interactions.items
        rows = items.index(table["item_id"].to_numpy(), missing="ignore")
        known = rows >= 0
        lists = genre_lists(table[self.column].to_numpy()[known])
        genres = sorted({g for row in lists for g in row})
        column_of = {g: j for j, g in enumerate(genres)}
        r_idx = np.repeat(rows[known], [len(row) for row in lists])
        g_idx = np.array([column_of[g] for row in lists for g in row], dtype=np.int64)
        item_genre = sp.csr_matrix(
            (np.ones(len(r_idx), np.float32), (r_idx, g_idx)), shape=(len(items), len(genres))
        )
        item_genre.data[:] = 1.0
        self.genres_ = genres
        self.popularity_ = np.asarray(data.popularity, dtype=np.float32)
        self.user_genre_counts_ = np.asarray((data.seen @ item_genre).todense(), dtype=np.float32)
        genre_items = sp.csr_matrix(item_genre.T.multiply(self.popularity_[None, :]))
        self.indptr_, self.indices_ = _ranked_lists(genre_items, self._depth(self.per_genre))
        return self

    def retrieve(self, user: UserContext) -> Candidates:
        if user.row < 0 or self.user_genre_counts_ is None:
            return Candidates.empty()
        counts = self.user_genre_counts_[user.row]
        order = np.lexsort((np.arange(len(counts)), -counts))[: self.n_genres]
        order = order[counts[order] > 0]
        return self._candidates([(int(g), self._list(int(g), self.per_genre, user.seen))
                                 for g in order])

    def explain(self, anchor: int, item_label: ItemLabel) -> str:
        return f"popular in {self.genres_[anchor]}, one of your favourite genres"

    def _more_arrays(self) -> dict[str, np.ndarray]:
        assert self.user_genre_counts_ is not None
        return {"user_genre_counts": self.user_genre_counts_}

    def _extra(self) -> dict[str, Any]:
        return {"genres": self.genres_}

    def _restore_more(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        self.user_genre_counts_ = np.asarray(arrays["user_genre_counts"], dtype=np.float32)
        self.genres_ = [str(g) for g in extra["genres"]]


class TopInSegment(_RankedListSource):
    """The ``top`` most popular items among users who share the user's value of an attribute.

    Segments are the values of a user attribute (occupation, country, zip region); a numeric
    attribute is cut into buckets at ``bins`` (e.g. age at ``[18, 25, 35, 45, 55]``).

    Parameters
    ----------
    attribute : str
        A column of the user table, or ``"zip_region"`` (the first character of the
        ``zip`` column, derived when the table has ``zip`` only, as MovieLens' users do).
    top : int
    bins : list of float, optional
        Bucket edges of a numeric attribute (a value v falls in bucket ``#(edges <= v)``).
    """

    kind = "top_in_segment"
    size_parameter = "top"

    def __init__(
        self, attribute: str = "occupation", top: int = 20, bins: list[float] | None = None
    ) -> None:
        super().__init__()
        if not isinstance(attribute, str) or not attribute:
            raise ConfigError(f"attribute must name a user attribute, got {attribute!r}")
        self.attribute = attribute
        self.top = _positive_int(top, "top")
        if bins is not None and (
            not isinstance(bins, (list, tuple))
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bins)
            or list(bins) != sorted(bins)
        ):
            raise ConfigError(f"bins must be increasing numbers, got {bins!r}")
        self.bins = None if bins is None else [float(b) for b in bins]
        self.segments_: list[str] = []
        self.user_segment_: np.ndarray | None = None

    @property
    def name(self) -> str:
        return f"top_in_segment:{self.attribute}"

    def params(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "top": self.top, "bins": self.bins}

    def _labels(self, values: pd.Series) -> pd.Series:
        if self.bins is None:
            return values.astype("string")
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
        edges = np.asarray(self.bins)
        bucket = np.searchsorted(edges, numbers, side="right")
        bounds = [-math.inf, *self.bins, math.inf]
        labels = [f"{_number(bounds[b])}-{_number(bounds[b + 1])}" for b in bucket]
        out = pd.Series(labels, index=values.index, dtype="string")
        out[np.isnan(numbers)] = pd.NA
        return out

    def fit(self, data: SourceData) -> TopInSegment:
        table = _user_attributes(data.user_table, self.attribute)
        users = data.interactions.users
        rows = users.index(table["user_id"].to_numpy(), missing="ignore")
        known = rows >= 0
        labels = self._labels(table[self.attribute][known].reset_index(drop=True))
        present = labels.notna().to_numpy()
        segments = sorted(set(labels[present].tolist()))
        code_of = {s: j for j, s in enumerate(segments)}
        codes = np.full(len(users), -1, dtype=np.int64)
        codes[rows[known][present]] = [code_of[s] for s in labels[present].tolist()]
        self.segments_ = [str(s) for s in segments]
        self.user_segment_ = codes
        member = codes >= 0
        membership = sp.csr_matrix(
            (np.ones(int(member.sum()), np.float32), (codes[member], np.flatnonzero(member))),
            shape=(len(segments), len(users)),
        )
        counts = sp.csr_matrix(membership @ data.seen)
        self.popularity_ = np.asarray(data.popularity, dtype=np.float32)
        self.indptr_, self.indices_ = _ranked_lists(counts, self._depth(self.top))
        return self

    def retrieve(self, user: UserContext) -> Candidates:
        if user.row < 0 or self.user_segment_ is None:
            return Candidates.empty()
        code = int(self.user_segment_[user.row])
        if code < 0:
            return Candidates.empty()
        return self._candidates([(code, self._list(code, self.top, user.seen))])

    def explain(self, anchor: int, item_label: ItemLabel) -> str:
        return f"popular with users whose {self.attribute} is {self.segments_[anchor]}"

    def _more_arrays(self) -> dict[str, np.ndarray]:
        assert self.user_segment_ is not None
        return {"user_segment": self.user_segment_}

    def _extra(self) -> dict[str, Any]:
        return {"segments": self.segments_}

    def _restore_more(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        self.user_segment_ = np.asarray(arrays["user_segment"], dtype=np.int64)
        self.segments_ = [str(s) for s in extra["segments"]]


def _user_attributes(table: pd.DataFrame | None, attribute: str) -> pd.DataFrame:
    """The user table with ``attribute`` (derived from the table when palate derives it, as
    ``zip_region`` from ``zip``), or a DataError saying what the table holds instead."""
    source = f"TopInSegment({attribute!r})"
    if table is None:
        raise DataError(
            f"{source} reads user attributes, but no user table was given (user_table is "
            "None; MovieLens ml-latest-small and plain ratings files have none, ml-100k and "
            "ml-1m do): pass user_table= a DataFrame with user_id and "
            f"{attribute!r}, or drop the source"
        )
    table = with_derived_user_columns(table)
    if "user_id" not in table.columns:
        raise DataError(
            f"{source}: the user table has no user_id column (its columns: "
            f"{', '.join(map(str, table.columns))}); name the users' id column user_id"
        )
    if attribute not in table.columns:
        others = [str(c) for c in table.columns if c != "user_id"]
        raise DataError(
            f"{source}: the user table has no column {attribute!r}; its attributes are "
            f"{', '.join(others) or 'none'}; segment by one of those"
        )
    return table


def _number(value: float) -> str:
    if math.isinf(value):
        return "" if value < 0 else "+"
    return f"{value:g}"


SOURCE_KINDS: dict[str, type[CandidateSource]] = {
    cls.kind: cls
    for cls in (SimilarToRecent, TopInFavoriteGenres, TopInSegment, Popular, NearestToUser)
}


def make_source(config: Mapping[str, Any]) -> CandidateSource:
    """A source from ``{"kind": ..., **parameters}`` (as in a pipeline's TOML)."""
    if not isinstance(config, Mapping) or "kind" not in config:
        raise ConfigError(
            f"a source is a table with a kind (one of {', '.join(SOURCE_KINDS)}), got {config!r}"
        )
    params = dict(config)
    kind = params.pop("kind")
    cls = SOURCE_KINDS.get(kind)
    if cls is None:
        raise ConfigError(f"unknown source kind {kind!r}; use one of {', '.join(SOURCE_KINDS)}")
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"source {kind!r}: {exc}") from exc


def default_sources() -> list[CandidateSource]:
    """The curriculum's mix: 10 recent x 10 similar, 3 genres x 10, top 20 per occupation,
    20 popular, 100 nearest to the user vector."""
    return [
        SimilarToRecent(),
        TopInFavoriteGenres(),
        TopInSegment("occupation"),
        Popular(),
        NearestToUser(),
    ]


__all__ = [
    "SOURCE_KINDS",
    "CandidateSource",
    "Candidates",
    "NearestToUser",
    "Popular",
    "SimilarToRecent",
    "SourceData",
    "TopInFavoriteGenres",
    "TopInSegment",
    "UserContext",
    "default_sources",
    "make_source",
]
