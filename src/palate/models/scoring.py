"""The one top-k path every model ranks with, and the result types it returns.

A model's scores for a batch of users are either a function of user rows (``score_rows``) or
:class:`LinearScores` ``U[u] · V[i] + user_offset[u] + item_offset[i]``; :func:`recommend_by_scores`
ranks either with seen-item exclusion and the fallback list for unknown users, and
:func:`nearest_items` finds related items by ``‖x(k) − x(i)‖²`` or cosine distance.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from palate.data.vocabulary import Vocabulary, as_id_array
from palate.errors import ConfigError
from palate.models import _topk
from palate.types import IdArray, IdLike


@dataclass(frozen=True)
class Recommendations:
    """Top-k recommendations for a batch of users.

    Attributes
    ----------
    user_ids : ndarray, shape (n_users,)
    item_ids : ndarray, shape (n_users, k)
        External item ids, best first. Where fewer than ``k`` items could be recommended
        (tiny catalogue, everything seen) the row is padded and ``scores`` is NaN there.
    scores : ndarray of float32, shape (n_users, k)
        What the list is ranked by, best first.
    fallback : ndarray of bool, shape (n_users,)
        True where the user was unknown to the model and a fallback (popularity / item
        means) produced the row.
    predictions : ndarray of float32, shape (n_users, k), optional
        The model's prediction (``predict``) of each listed item, where the model ranks by
        something else (``model.ranks_by`` is ``"confidence"`` or ``"blend"``): e.g. the
        predicted rating of each item of a list ranked by confidence. None when the scores
        are the predictions.
    """

    user_ids: IdArray
    item_ids: IdArray
    scores: np.ndarray
    fallback: np.ndarray
    predictions: np.ndarray | None = None

    @property
    def shown(self) -> np.ndarray:
        """What to show beside each item: the predictions when the model gives them, else the
        scores."""
        return self.scores if self.predictions is None else self.predictions

    def __len__(self) -> int:
        return len(self.user_ids)

    def to_pandas(self) -> pd.DataFrame:
        """Long format: one row per (user, rank), NaN-score padding dropped."""
        n, k = self.scores.shape
        frame = pd.DataFrame(
            {
                "user_id": np.repeat(self.user_ids, k),
                "rank": np.tile(np.arange(1, k + 1), n),
                "item_id": self.item_ids.reshape(-1),
                "score": self.scores.reshape(-1),
                "fallback": np.repeat(self.fallback, k),
            }
        )
        if self.predictions is not None:
            frame.insert(4, "prediction", self.predictions.reshape(-1))
        return frame[np.isfinite(frame["score"].to_numpy())].reset_index(drop=True)


@dataclass(frozen=True)
class SimilarItems:
    """Nearest items for a batch of query items.

    Attributes
    ----------
    item_ids : ndarray, shape (n,)
        The query items.
    similar_ids : ndarray, shape (n, k)
        Nearest other items, closest first.
    distances : ndarray of float32, shape (n, k)
        ``‖x(k) − x(i)‖²`` (metric "euclidean") or ``1 − cos`` (metric "cosine").
    """

    item_ids: IdArray
    similar_ids: IdArray
    distances: np.ndarray


def nearest_items(
    items: Vocabulary,
    factors: np.ndarray,
    item_ids: IdLike,
    k: int,
    metric: str,
    candidates: np.ndarray,
    scale: np.ndarray | None = None,
) -> SimilarItems:
    """The k items nearest to each query by ``‖x(k) − x(i)‖²`` (or cosine distance).

    Parameters
    ----------
    items : Vocabulary
    factors : ndarray, shape (n_items, n)
    item_ids : ids of the query items, shape (q,)
    k : int
    metric : {"euclidean", "cosine"}
    candidates : ndarray of bool, shape (n_items,)
        Items that may be returned (e.g. those with training events); never the query itself.
    scale : ndarray, shape (n_items,), optional
        Multiplies each candidate's distance (support-aware similar items).
    """
    k = check_k(k)
    if metric not in ("euclidean", "cosine"):
        raise ConfigError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
    ids = as_id_array(item_ids)
    idx = items.index(ids, kind="item")
    X = factors.astype(np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        X = X / np.maximum(norms, 1e-12)
    sq = np.einsum("ij,ij->i", X, X)
    dist = sq[idx][:, None] + sq[None, :] - 2 * X[idx] @ X.T
    np.maximum(dist, 0, out=dist)
    if metric == "cosine":
        dist = dist / 2  # ‖a − b‖² = 2 (1 − cos) for unit vectors
    if scale is not None:
        dist = dist * scale[None, :].astype(dist.dtype)
    dist[:, ~candidates] = np.inf
    dist[np.arange(len(idx)), idx] = np.inf
    top, neg = top_k(-dist, k)
    return SimilarItems(ids, ids_from_indices(items, top), -neg)


#: Rows at least this long use the compiled single-pass selection (:mod:`palate.models._topk`).
_COMPILED_TOP_K_FROM = 4096
#: Larger (users × items) products are ranked block by block (:func:`_topk.top_k_of_products`):
#: measured at 100k items × 32 factors, one thread, whole products are faster up to ~32 users
#: (12.8 MB) and 2x slower from 48 users (19 MB), once the matrix no longer stays in cache.
_WHOLE_PRODUCT_BYTES = 16 << 20


def check_k(k: int) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return int(k)


def top_k(
    scores: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None = None,
    rows: np.ndarray | None = None,
    row_offset: np.ndarray | None = None,
    col_offset: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest scores per row, best first.

    Parameters
    ----------
    scores : ndarray, shape (n, n_items)
        Modified in place when ``exclude`` is given.
    k : int
    exclude : csr_matrix (n_users, n_items), optional
        Entries present in row ``rows[r]`` of this matrix are removed from row ``r``.
    rows : ndarray of int, shape (n,), optional
        Which row of ``exclude`` applies to each score row (-1: none).
    row_offset : ndarray, shape (n,), optional ; col_offset : ndarray, shape (n_items,), optional
        Ranked are ``scores + row_offset[:, None] + col_offset[None, :]`` (added on the fly by
        the compiled selection, so the matrix is read once).

    Returns
    -------
    indices : ndarray of int64, shape (n, k) ; -1 where fewer than k remain
    values : ndarray of float32, shape (n, k) ; NaN where fewer than k remain
    """
    n, n_items = scores.shape
    if exclude is not None and rows is not None:
        for r, row in enumerate(rows):
            if row >= 0:
                start, end = exclude.indptr[row], exclude.indptr[row + 1]
                scores[r, exclude.indices[start:end]] = -np.inf
    k_eff = min(k, n_items)
    if k_eff <= _topk.MAX_K and n_items >= _COMPILED_TOP_K_FROM and scores.dtype.kind == "f":
        idx, vals = _topk.top_k_sorted(scores, k_eff, row_offset, col_offset)
    else:
        if row_offset is not None:
            scores += row_offset[:, None]
        if col_offset is not None:
            scores += col_offset[None, :]
        if k_eff < n_items:
            part = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
        else:
            part = np.broadcast_to(np.arange(n_items), (n, n_items)).copy()
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        idx = np.take_along_axis(part, order, axis=1).astype(np.int64)
        vals = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    return _padded(idx, vals, k)


def _padded(idx: np.ndarray, vals: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, k)`` results from ``(n, k_eff)`` ones: -1 / NaN where no finite score is left."""
    n, k_eff = idx.shape
    out_idx = np.full((n, k), -1, dtype=np.int64)
    out_val = np.full((n, k), np.nan, dtype=np.float32)
    out_idx[:, :k_eff] = idx
    out_val[:, :k_eff] = vals
    invalid = ~np.isfinite(out_val)
    out_idx[invalid] = -1
    out_val[invalid] = np.nan
    return out_idx, out_val


def _excluded_columns(
    exclude: sp.csr_matrix | None, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(starts, ends, indices)`` of ``exclude``'s rows ``rows`` (columns sorted per row)."""
    if exclude is None:
        return None
    if not exclude.has_sorted_indices:
        exclude = exclude.sorted_indices()
    rows = np.asarray(rows)
    valid = rows >= 0
    starts = np.where(valid, exclude.indptr[np.where(valid, rows, 0)], 0)
    ends = np.where(valid, exclude.indptr[np.where(valid, rows, 0) + 1], 0)
    return starts.astype(np.int64), ends.astype(np.int64), exclude.indices


@dataclass(frozen=True, eq=False)
class LinearScores:
    """Raw scores of the form ``U[u] · V[i] + user_offset[u] + item_offset[i]`` (CF with its
    biases, implicit ALS, two-tower).

    :func:`recommend_by_scores` ranks them with the offsets added inside the top-k pass, so
    the (users × items) matrix is written once and read once. Calling it gives full rows.
    """

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_offset: np.ndarray | None = None
    item_offset: np.ndarray | None = None

    @functools.cached_property
    def item_factors_t(self) -> np.ndarray:
        """Vᵀ kept contiguous (made at the first product): measured 1.5–2x faster products
        for batches of users."""
        return np.ascontiguousarray(self.item_factors.T)

    def products(self, rows: np.ndarray) -> np.ndarray:
        """``U[rows] Vᵀ``, without the offsets."""
        return self.user_factors[rows] @ self.item_factors_t

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        z = self.products(rows)
        if self.user_offset is not None:
            z += self.user_offset[rows][:, None]
        if self.item_offset is not None:
            z += self.item_offset[None, :]
        return z

    def top_k(
        self, rows: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``top_k(self(rows), k, exclude, rows)``, the offsets added during the selection."""
        user_offset = None if self.user_offset is None else self.user_offset[rows]
        n_items = self.item_factors.shape[0]
        k_eff = min(k, n_items)
        whole = len(rows) * n_items * self.item_factors.dtype.itemsize
        if k_eff <= _topk.MAX_K and whole > _WHOLE_PRODUCT_BYTES and (
            self.item_factors.dtype.kind == "f"
        ):
            # blocked: the product's blocks are ranked while in cache (never the whole matrix;
            # values may differ from the whole product's in the last bit, BLAS's own rounding)
            idx, vals = _topk.top_k_of_products(
                self.user_factors[rows], self.item_factors_t, k_eff, user_offset,
                self.item_offset, _excluded_columns(exclude, rows),
            )
            return _padded(idx, vals, k)
        return top_k(self.products(rows), k, exclude, rows, user_offset, self.item_offset)


def recommend_by_scores(
    users: Vocabulary,
    items: Vocabulary,
    user_ids: IdLike,
    k: int,
    score_rows: Callable[[np.ndarray], np.ndarray] | LinearScores,
    seen: sp.csr_matrix | None,
    fallback_scores: np.ndarray,
    link: Callable[[np.ndarray], np.ndarray] | None = None,
    batch_size: int = 1024,
) -> tuple[Recommendations, np.ndarray, np.ndarray]:
    """Top-k per user from a scoring function, with the popularity fallback for unknown users.

    Parameters
    ----------
    score_rows : callable(user_rows) -> ndarray (n, n_items), or LinearScores
        Raw scores of known users (ranked before ``link``, so clipping cannot create ties).
    seen : csr_matrix, optional
        Items to exclude per user (None keeps everything).
    fallback_scores : ndarray, shape (n_items,)
        Scores of the list shown to users the model does not know (``fallback=True``).
    link : callable, optional
        Applied to the returned scores (clip to the rating scale, sigmoid).

    Returns
    -------
    (Recommendations, user rows, item rows)
        The lists, the users' rows (n,; −1: unknown) and the listed items' rows (n, k; −1:
        padding), for callers that go on to read the model at those rows (no second id
        lookup).
    """
    k = check_k(k)
    ids, rows = user_rows(users, user_ids)
    out_idx = np.full((len(ids), k), -1, dtype=np.int64)
    out_val = np.full((len(ids), k), np.nan, dtype=np.float32)
    known = np.flatnonzero(rows >= 0)
    for start in range(0, len(known), batch_size):
        sel = known[start : start + batch_size]
        if isinstance(score_rows, LinearScores):
            idx, val = score_rows.top_k(rows[sel], k, seen)
        else:
            idx, val = top_k(score_rows(rows[sel]), k, seen, rows[sel])
        out_idx[sel] = idx
        out_val[sel] = val if link is None else link(val.astype(np.float64))
    unknown = np.flatnonzero(rows < 0)
    if len(unknown):
        scores = np.broadcast_to(fallback_scores, (len(unknown), len(items))).copy()
        out_idx[unknown], out_val[unknown] = top_k(scores, k)
    result = Recommendations(ids, ids_from_indices(items, out_idx), out_val, rows < 0)
    return result, rows, out_idx


def top_k_for_new_user(
    items: Vocabulary, scores: np.ndarray, rated: IdArray, k: int, exclude_seen: bool
) -> tuple[IdArray, np.ndarray]:
    """Top-k (item ids, raw scores) of one folded-in user's ``scores`` (shape (n_items,)),
    leaving out the ``rated`` items when ``exclude_seen``."""
    k = check_k(k)
    row = np.array(scores, dtype=np.float64)[None, :]
    if exclude_seen and len(rated):
        row[0, items.index(rated, kind="item")] = -np.inf
    idx, val = top_k(row, k)
    return ids_from_indices(items, idx[0]), val[0]


def ids_from_indices(vocabulary: Vocabulary, indices: np.ndarray) -> IdArray:
    """External ids for an index array; -1 becomes -1 (integer ids) or None (string ids)."""
    ids = vocabulary.ids
    safe = np.where(indices >= 0, indices, 0)
    out = ids[safe] if len(ids) else np.empty(indices.shape, dtype=ids.dtype)
    if np.any(indices < 0):
        out = out.copy()
        out[indices < 0] = -1 if ids.dtype.kind in "iu" else None
    return out


def user_rows(users: Vocabulary, user_ids: IdLike) -> tuple[IdArray, np.ndarray]:
    """External ids as an array and their indices (-1 for unknown users)."""
    ids = as_id_array(user_ids)
    return ids, users.index(ids, missing="ignore")




__all__ = [
    "LinearScores",
    "Recommendations",
    "SimilarItems",
    "check_k",
    "ids_from_indices",
    "nearest_items",
    "recommend_by_scores",
    "top_k",
    "top_k_for_new_user",
    "user_rows",
]
