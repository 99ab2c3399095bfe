"""Rating and ranking metrics: pure functions on arrays.

Rating metrics (:func:`rmse`, :func:`mae`) compare predicted with observed values and return a
float.

Ranking metrics score a batch of top-k lists against the items each user found relevant:

- ``recommended`` is an array of shape ``(n_users, k_max)`` of item ids or indices, best first.
  A row shorter than ``k_max`` is padded with ``-1``, ``None`` or ``NaN``; padding never counts
  as a hit. A list of rows of different lengths is padded for you. An item repeated in a row
  counts only at its first position.
- ``relevant`` is a sequence of ``n_users`` collections (set, list, array) of relevant items,
  in the same id space as ``recommended``. Padding values in them are ignored.
- ``k`` is the cut-off; ``None`` means the width of ``recommended``. Columns beyond the width
  count as padding, so a list of 5 items scored at ``k=10`` has precision at most 0.5.

Every ranking metric returns the **per-user** values, an array of float64 of shape
``(n_users,)``, so that callers can average, bootstrap or compare users. A user with no
relevant items has no defined value: it gets ``NaN``, and :func:`mean_over_users` (a NaN-aware
mean) leaves it out. :func:`map_at_k` is, by definition, that mean of
:func:`average_precision_at_k`, and so returns a float.

Notation used in the formulas: ``rel(u, r) = 1`` when the item at rank ``r`` (1-based) of
user ``u`` is relevant, else 0; ``R(u)`` is the set of relevant items of user ``u``;
``hits@k(u) = Σ_{r=1..k} rel(u, r)``.

Beyond-accuracy metrics look at the lists alone, with facts about the items instead of
``relevant``: :func:`catalog_coverage` (one float), and per user :func:`novelty` (from the
training counts of the items), :func:`popularity_bias` (the share of :func:`most_popular_items`)
and :func:`intra_list_diversity` (from each item's genres or other feature set).

Besides the standard library and :mod:`palate.errors`, this module imports only NumPy.

Examples
--------
>>> import numpy as np
>>> recommended = np.array([[1, 2, 3], [4, 5, -1]])
>>> relevant = [{1, 3}, {6}]
>>> precision_at_k(recommended, relevant, k=3).round(3).tolist()
[0.667, 0.0]
>>> mean_over_users(recall_at_k(recommended, relevant, k=3))
0.5
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from palate.errors import ConfigError, DataError

ArrayLike = npt.ArrayLike
Relevant = Sequence[Collection[Any]] | Sequence[npt.NDArray[Any]] | npt.NDArray[Any]

#: the integer used for padding in numeric top-k arrays
PADDING = -1


# ---------------------------------------------------------------------------- rating metrics
def _paired_values(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    try:
        true = np.asarray(y_true, dtype=np.float64).reshape(-1)
        pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise DataError("y_true and y_pred must be numeric arrays") from exc
    if true.shape != pred.shape:
        raise DataError(
            f"y_true has {true.size} values but y_pred has {pred.size}; pass one prediction "
            "per observed rating"
        )
    if true.size == 0:
        raise DataError("no ratings to score: y_true is empty")
    return true, pred


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error.

    ``RMSE = sqrt( 1/n Σ_i (y_pred_i − y_true_i)² )``

    Parameters
    ----------
    y_true, y_pred : array-like of float, shape (n,)
        Observed and predicted values. A NaN prediction (e.g. an unknown item) makes the
        result NaN; drop or fill those first.

    Returns
    -------
    float

    Examples
    --------
    >>> rmse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0]).__round__(4)
    1.1547
    """
    true, pred = _paired_values(y_true, y_pred)
    return float(np.sqrt(np.mean((pred - true) ** 2)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error.

    ``MAE = 1/n Σ_i |y_pred_i − y_true_i|``

    Parameters
    ----------
    y_true, y_pred : array-like of float, shape (n,)

    Returns
    -------
    float

    Examples
    --------
    >>> mae([1.0, 2.0, 3.0], [2.0, 2.0, 5.0])
    1.0
    """
    true, pred = _paired_values(y_true, y_pred)
    return float(np.mean(np.abs(pred - true)))


# ---------------------------------------------------------------------------- input handling
def _check_k(k: int | None, width: int) -> int:
    if k is None:
        if width == 0:
            raise ConfigError("recommended has no columns; pass k= explicitly")
        return width
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer (or None for all columns), got {k!r}")
    return int(k)


def _is_padding(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value) == PADDING
    if isinstance(value, (float, np.floating)):
        return bool(np.isnan(value)) or float(value) == PADDING
    return False


def _as_matrix(recommended: ArrayLike | Sequence[Sequence[Any]]) -> np.ndarray:
    """``recommended`` as a 2-d array; ragged rows are padded with None."""
    if isinstance(recommended, np.ndarray):
        matrix = recommended
    elif isinstance(recommended, Iterable) and not isinstance(recommended, (str, bytes)):
        rows: list[Any] = list(recommended)
        lengths = {len(row) for row in rows} if all(_is_sized(r) for r in rows) else set()
        if len(lengths) > 1:
            matrix = np.empty((len(rows), max(lengths)), dtype=object)
            matrix[:] = None
            for i, row in enumerate(rows):
                matrix[i, : len(row)] = list(row)
        else:
            matrix = np.asarray(rows) if rows else np.empty((0, 0))
    else:
        raise DataError(
            "recommended must be an (n_users, k) array of item ids, got "
            f"{type(recommended).__name__}"
        )
    if matrix.ndim != 2:
        raise DataError(
            f"recommended must be 2-d, shape (n_users, k), got {matrix.ndim}-d; "
            "for a single user pass [row]"
        )
    return matrix


def _is_sized(value: Any) -> bool:
    return hasattr(value, "__len__") and not isinstance(value, (str, bytes))


def _numeric_codes(matrix: np.ndarray) -> np.ndarray | None:
    """Integer ids with -1 for padding, or None when the ids are not numbers."""
    if matrix.dtype.kind in "iu":
        return matrix.astype(np.int64, copy=False)
    if matrix.dtype.kind == "f":
        nan = np.isnan(matrix)
        filled = np.where(nan, PADDING, matrix)
        if not np.all(filled == np.round(filled)):
            raise DataError("recommended holds non-integral float ids; pass integer item ids")
        return filled.astype(np.int64)
    return None


def _relevant_arrays(relevant: Relevant, n_users: int) -> tuple[list[np.ndarray], bool]:
    """One 1-d array per user, and whether all of them hold integer ids."""
    if isinstance(relevant, (str, bytes)) or not isinstance(relevant, Iterable):
        raise DataError("relevant must be a sequence with one collection of items per user")
    arrays = []
    numeric = True
    for items in relevant:
        array = _collection_array(items)
        numeric = numeric and array.dtype.kind in "iu"
        arrays.append(array)
    if len(arrays) != n_users:
        raise DataError(
            f"recommended has {n_users} rows but relevant has {len(arrays)} entries; pass one "
            "collection of relevant items per user (an empty one where there is none)"
        )
    return arrays, numeric


def _collection_array(items: Any) -> np.ndarray:
    if isinstance(items, np.ndarray):
        array = items if items.ndim == 1 else items.ravel()
    elif isinstance(items, (set, frozenset, list, tuple)) or (
        isinstance(items, Iterable) and not isinstance(items, (str, bytes))
    ):
        values = list(items)
        if not values:
            return _EMPTY
        try:
            array = np.asarray(values)
        except ValueError:  # e.g. tuples of different lengths as ids
            array = np.empty(0)
        if array.ndim != 1:
            array = np.empty(len(values), dtype=object)
            array[:] = values
    else:
        raise DataError(
            f"each entry of relevant must be a collection of items, got {type(items).__name__}; "
            "wrap a single item as {item}"
        )
    kind = array.dtype.kind
    if kind in "iu":
        return array
    if kind == "f":
        return _numeric_codes(array)  # type: ignore[return-value]
    return array if kind == "O" else array.astype(object)


_EMPTY = np.empty(0, dtype=np.int64)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (by sorting: faster here than numpy's hash-based unique)."""
    ordered = np.sort(values)
    if ordered.size < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def _hits(
    recommended: ArrayLike | Sequence[Sequence[Any]], relevant: Relevant, k: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Which of the top-k recommendations are relevant, and how many items are relevant.

    Every (user, item) pair is encoded as one int64 key ``user · span + code(item)``; the
    relevant keys are sorted once and each recommended key is looked up by binary search.

    Returns
    -------
    hits : ndarray of bool, shape (n_users, k)
        ``rel(u, r)``; padding, items not in ``R(u)`` and repeats of an item are False.
    n_relevant : ndarray of int64, shape (n_users,)
        ``|R(u)|``, padding and repeats not counted.
    """
    matrix = _as_matrix(recommended)
    n_users, width = matrix.shape
    k = _check_k(k, width)
    arrays, relevant_numeric = _relevant_arrays(relevant, n_users)
    top = matrix[:, : min(k, width)]
    lengths = np.array([a.size for a in arrays], dtype=np.int64)

    rec_items = _numeric_codes(top)
    if rec_items is not None and relevant_numeric:
        rel_items = np.concatenate(arrays).astype(np.int64, copy=False) if arrays else _EMPTY
    else:
        # Ids that are not all numbers: give every relevant id a code; an id found in no
        # relevant set can never hit.
        code_of: dict[Any, int] = {}
        rel_objects = [v for a in arrays for v in a.tolist()]
        for value in rel_objects:
            if not _is_padding(value) and value not in code_of:
                code_of[value] = len(code_of)
        rel_items = np.fromiter(
            (PADDING if _is_padding(v) else code_of[v] for v in rel_objects),
            dtype=np.int64,
            count=len(rel_objects),
        )
        rec_items = np.fromiter(
            (PADDING if _is_padding(v) else code_of.get(v, PADDING) for v in top.ravel().tolist()),
            dtype=np.int64,
            count=top.size,
        ).reshape(top.shape)

    rel_users = np.repeat(np.arange(n_users, dtype=np.int64), lengths)
    keep = rel_items != PADDING
    rel_users, rel_items = rel_users[keep], rel_items[keep]
    hits = np.zeros((n_users, k), dtype=bool)
    if rel_items.size == 0:
        return hits, np.zeros(n_users, dtype=np.int64)

    rec_valid = rec_items != PADDING
    low, high = int(rel_items.min()), int(rel_items.max())
    span = high - low + 1
    if n_users * span < 2**62:  # codes are offsets into the id range
        rel_codes = rel_items - low
        rec_valid &= (rec_items >= low) & (rec_items <= high)
        rec_codes = np.where(rec_valid, rec_items - low, 0)
    else:  # ids too spread out: codes are positions among the distinct relevant ids
        vocabulary = _sorted_unique(rel_items)
        span = len(vocabulary)
        rel_codes = np.searchsorted(vocabulary, rel_items)
        position = np.minimum(np.searchsorted(vocabulary, rec_items), span - 1)
        rec_valid &= vocabulary[position] == rec_items
        rec_codes = np.where(rec_valid, position, 0)

    rel_keys = _sorted_unique(rel_users * span + rel_codes)
    n_relevant = np.bincount(rel_keys // span, minlength=n_users).astype(np.int64)
    if top.size:
        keys = np.arange(n_users, dtype=np.int64)[:, None] * span + rec_codes
        slot = np.minimum(np.searchsorted(rel_keys, keys), len(rel_keys) - 1)
        found = rec_valid & (rel_keys[slot] == keys)
        if found.any():
            found = _first_occurrence(found, keys)
        hits[:, : top.shape[1]] = found
    return hits, n_relevant


def _first_occurrence(found: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Clear hits on an item already hit earlier in the same row."""
    rows, cols = np.nonzero(found)  # row-major: earlier columns first within a row
    hit_keys = keys[rows, cols]
    order = np.argsort(hit_keys, kind="stable")
    sorted_keys = hit_keys[order]
    repeat = np.zeros(len(order), dtype=bool)
    repeat[1:] = sorted_keys[1:] == sorted_keys[:-1]
    if not repeat.any():
        return found
    out = found.copy()
    later = order[repeat]  # stable order: the first occurrence is never marked
    out[rows[later], cols[later]] = False
    return out


def _per_user(values: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    out = values.astype(np.float64, copy=True)
    out[n_relevant == 0] = np.nan
    return out


def _discounts(k: int) -> np.ndarray:
    """``1 / log2(r + 1)`` for ranks ``r = 1 .. k``."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


# ---------------------------------------------------------------------------- ranking metrics
def precision_at_k(
    recommended: ArrayLike | Sequence[Sequence[Any]], relevant: Relevant, k: int | None = None
) -> np.ndarray:
    """Share of the top-k slots that hold a relevant item, per user.

    ``precision@k(u) = hits@k(u) / k``

    The denominator is ``k`` even when a row holds fewer than ``k`` items.

    Parameters
    ----------
    recommended : array-like, shape (n_users, k_max)
        Item ids best first; ``-1`` / ``None`` / ``NaN`` pad short rows.
    relevant : sequence of n_users collections
        Relevant items per user.
    k : int, optional
        Cut-off; default: all columns.

    Returns
    -------
    ndarray of float64, shape (n_users,)
        In [0, 1]; NaN for users with no relevant items.

    Examples
    --------
    >>> precision_at_k([[7, 8, 9, 10]], [{7, 9}], k=4).tolist()
    [0.5]
    """
    hits, n_relevant = _hits(recommended, relevant, k)
    return _per_user(hits.sum(axis=1) / hits.shape[1], n_relevant)


def recall_at_k(
    recommended: ArrayLike | Sequence[Sequence[Any]], relevant: Relevant, k: int | None = None
) -> np.ndarray:
    """Share of each user's relevant items found in the top k.

    ``recall@k(u) = hits@k(u) / |R(u)|``

    Parameters
    ----------
    recommended : array-like, shape (n_users, k_max)
    relevant : sequence of n_users collections
    k : int, optional

    Returns
    -------
    ndarray of float64, shape (n_users,)
        In [0, 1]; NaN for users with no relevant items.

    Examples
    --------
    >>> recall_at_k([[7, 8, 9, 10]], [{7, 9, 11, 12}], k=4).tolist()
    [0.5]
    """
    hits, n_relevant = _hits(recommended, relevant, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _per_user(hits.sum(axis=1) / n_relevant, n_relevant)


def ndcg_at_k(
    recommended: ArrayLike | Sequence[Sequence[Any]], relevant: Relevant, k: int | None = None
) -> np.ndarray:
    """Normalised discounted cumulative gain with binary gains, per user.

    ``DCG@k(u)  = Σ_{r=1..k} rel(u, r) / log2(r + 1)``

    ``IDCG@k(u) = Σ_{r=1..min(k, |R(u)|)} 1 / log2(r + 1)``   (all relevant items on top)

    ``NDCG@k(u) = DCG@k(u) / IDCG@k(u)``

    Parameters
    ----------
    recommended : array-like, shape (n_users, k_max)
    relevant : sequence of n_users collections
    k : int, optional

    Returns
    -------
    ndarray of float64, shape (n_users,)
        In [0, 1]; 1 when the top ``min(k, |R(u)|)`` slots are all relevant; NaN for users
        with no relevant items.

    Examples
    --------
    Hits at ranks 1 and 3 with two relevant items: ``(1 + 1/log2 4) / (1 + 1/log2 3)``.

    >>> round(float(ndcg_at_k([[1, 0, 2]], [{1, 2}], k=3)[0]), 4)
    0.9197
    """
    hits, n_relevant = _hits(recommended, relevant, k)
    k_eff = hits.shape[1]
    discounts = _discounts(k_eff)
    dcg = hits @ discounts
    ideal_cumulative = np.concatenate([[1.0], np.cumsum(discounts)])  # [0] guards |R| = 0
    idcg = ideal_cumulative[np.minimum(n_relevant, k_eff)]
    return _per_user(dcg / idcg, n_relevant)


def average_precision_at_k(
    recommended: ArrayLike | Sequence[Sequence[Any]], relevant: Relevant, k: int | None = None
) -> np.ndarray:
    """Average precision at the ranks of the hits, per user.

    ``AP@k(u) = 1 / min(k, |R(u)|) · Σ_{r=1..k} precision@r(u) · rel(u, r)``

    Normalising by ``min(k, |R(u)|)`` (not ``|R(u)|``) makes a perfect top-k score 1 even when
    the user has more than ``k`` relevant items.

    Parameters
    ----------
    recommended : array-like, shape (n_users, k_max)
    relevant : sequence of n_users collections
    k : int, optional

    Returns
    -------
    ndarray of float64, shape (n_users,)
        In [0, 1]; NaN for users with no relevant items.

    Examples
    --------
    Hits at ranks 1 and 3 with two relevant items: ``(1/1 + 2/3) / 2``.

    >>> round(float(average_precision_at_k([[1, 0, 2]], [{1, 2}], k=3)[0]), 4)
    0.8333
    """
    hits, n_relevant = _hits(recommended, relevant, k)
    k_eff = hits.shape[1]
    precision_at_rank = np.cumsum(hits, axis=1) / np.arange(1, k_eff + 1)
    summed = np.where(hits, precision_at_rank, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _per_user(summed / np.minimum(n_relevant, k_eff), n_relevant)


def map_at_k(
    recommended: ArrayLike | Sequence[Sequence[Any]], relevant: Relevant, k: int | None = None
) -> float:
    """Mean average precision: :func:`average_precision_at_k` averaged over users.

    ``MAP@k = mean over users u with R(u) ≠ ∅ of AP@k(u)``

    Returns
    -------
    float
        NaN when no user has a relevant item.

    Examples
    --------
    >>> map_at_k([[1, 0, 2], [5, 6, 7]], [{1, 2}, {6}], k=3).__round__(4)
    0.6667
    """
    return mean_over_users(average_precision_at_k(recommended, relevant, k))


def hit_rate_at_k(
    recommended: ArrayLike | Sequence[Sequence[Any]], relevant: Relevant, k: int | None = None
) -> np.ndarray:
    """Whether any relevant item is in the top k, per user (1.0 or 0.0).

    ``hit_rate@k(u) = 1 if hits@k(u) > 0 else 0``

    Parameters
    ----------
    recommended : array-like, shape (n_users, k_max)
    relevant : sequence of n_users collections
    k : int, optional

    Returns
    -------
    ndarray of float64, shape (n_users,)
        0.0 or 1.0; NaN for users with no relevant items.

    Examples
    --------
    >>> hit_rate_at_k([[1, 2], [3, 4]], [{2}, {5}]).tolist()
    [1.0, 0.0]
    """
    hits, n_relevant = _hits(recommended, relevant, k)
    return _per_user(np.any(hits, axis=1), n_relevant)


def mean_over_users(values: ArrayLike) -> float:
    """Mean of per-user metric values, leaving out users without a value (NaN).

    Parameters
    ----------
    values : array-like of float, shape (n_users,)

    Returns
    -------
    float
        NaN (with no warning) when every value is NaN or there are none.

    Examples
    --------
    >>> mean_over_users([1.0, float("nan"), 0.0])
    0.5
    """
    array = np.asarray(values, dtype=np.float64)
    defined = array[~np.isnan(array)]
    return float(defined.mean()) if defined.size else float("nan")


def catalog_coverage(
    recommended: ArrayLike | Sequence[Sequence[Any]], n_items: int, k: int | None = None
) -> float:
    """Share of the catalogue that appears in at least one user's top k.

    ``coverage@k = |∪_u top-k(u)| / n_items``   (padding not counted)

    Parameters
    ----------
    recommended : array-like, shape (n_users, k_max)
    n_items : int
        Size of the catalogue the recommendations were drawn from.
    k : int, optional

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> catalog_coverage([[0, 1], [1, 2], [1, -1]], n_items=10)
    0.3
    """
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ConfigError(f"n_items must be a positive integer, got {n_items!r}")
    matrix = _as_matrix(recommended)
    k = _check_k(k, matrix.shape[1])
    top = matrix[:, :k]
    codes = _numeric_codes(top)
    if codes is not None:
        n_distinct = len(_sorted_unique(codes[codes != PADDING]))
    else:
        n_distinct = len({v for v in top.ravel().tolist() if not _is_padding(v)})
    if n_distinct > n_items:
        raise DataError(
            f"recommended holds {n_distinct} distinct items but n_items={n_items}; pass the "
            "size of the whole catalogue"
        )
    return n_distinct / int(n_items)


# ---------------------------------------------------------------------------- beyond accuracy
def _lists(recommended: ArrayLike | Sequence[Sequence[Any]], k: int | None) -> list[list[Any]]:
    """Each user's top ``k`` without padding, an item repeated kept at its first position."""
    matrix = _as_matrix(recommended)
    k = _check_k(k, matrix.shape[1])
    return [
        list(dict.fromkeys(item for item in row if not _is_padding(item)))
        for row in matrix[:, :k].tolist()
    ]


def novelty(
    recommended: ArrayLike | Sequence[Sequence[Any]],
    item_counts: Mapping[Any, float],
    n_users: int,
    k: int | None = None,
) -> np.ndarray:
    """Mean self-information of each user's list: how rarely its items were interacted with.

    ``novelty(u) = mean_{i ∈ L(u)} −log2 p(i)``, ``p(i) = max(count(i), 1) / n_users``

    where ``L(u)`` is the top ``k`` of user ``u`` (padding dropped) and ``count(i)`` the
    training events of item ``i``; an item absent from ``item_counts`` counts as seen once,
    so the value stays finite.

    Parameters
    ----------
    recommended : array-like, shape (n_users, k_max)
    item_counts : mapping item -> float
        Training events per item (the share of users is ``count / n_users``).
    n_users : int
        Users with at least one training event.
    k : int, optional

    Returns
    -------
    ndarray of float64, shape (n_users,)
        In bits; NaN for an empty list.

    Examples
    --------
    >>> novelty([[1, 2], [3, -1]], {1: 4, 2: 2, 3: 1}, n_users=4).tolist()
    [0.5, 2.0]
    """
    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)) or n_users < 1:
        raise ConfigError(f"n_users must be a positive integer, got {n_users!r}")
    return np.array(
        [
            np.mean([-math.log2(max(item_counts.get(i, 0.0), 1.0) / n_users) for i in kept])
            if kept
            else math.nan
            for kept in _lists(recommended, k)
        ],
        dtype=np.float64,
    )


def most_popular_items(item_ids: ArrayLike, counts: ArrayLike, share: float) -> np.ndarray:
    """The ``ceil(share · n_items)`` items (at least one) with the most events, most first;
    ties keep the order of ``item_ids``.

    Parameters
    ----------
    item_ids : array-like, shape (n_items,)
    counts : array-like of float, shape (n_items,)
    share : float
        In (0, 1].

    Returns
    -------
    ndarray, shape (n_top,)

    Examples
    --------
    >>> most_popular_items(["a", "b", "c", "d"], [1, 5, 5, 2], share=0.5).tolist()
    ['b', 'c']
    """
    ids = np.asarray(item_ids)
    values = np.asarray(counts, dtype=np.float64)
    if ids.shape != values.shape or ids.ndim != 1:
        raise DataError(
            f"item_ids has shape {ids.shape} but counts {values.shape}; pass one count per item"
        )
    if not 0.0 < share <= 1.0:
        raise ConfigError(f"share must be in (0, 1], got {share!r}")
    n_top = max(1, math.ceil(share * len(ids)))
    return ids[np.argsort(-values, kind="stable")[:n_top]]


def popularity_bias(
    recommended: ArrayLike | Sequence[Sequence[Any]],
    popular: Collection[Any],
    k: int | None = None,
) -> np.ndarray:
    """Share of each user's list that is among the ``popular`` items.

    ``popularity_bias(u) = |L(u) ∩ T| / |L(u)|`` with ``T`` = ``popular`` (e.g.
    :func:`most_popular_items`) and ``L(u)`` the top ``k`` of user ``u``, padding dropped.

    Returns
    -------
    ndarray of float64, shape (n_users,)
        In [0, 1]; NaN for an empty list.

    Examples
    --------
    >>> popularity_bias([[1, 2], [3, -1], [-1, -1]], {1, 3}).tolist()
    [0.5, 1.0, nan]
    """
    top = popular if isinstance(popular, (set, frozenset)) else set(np.asarray(popular).tolist())
    return np.array(
        [np.mean([i in top for i in kept]) if kept else math.nan
         for kept in _lists(recommended, k)],
        dtype=np.float64,
    )


def intra_list_diversity(
    recommended: ArrayLike | Sequence[Sequence[Any]],
    item_features: Mapping[Any, Collection[Any]],
    k: int | None = None,
) -> np.ndarray:
    """Mean pairwise Jaccard distance between the feature sets (e.g. genres) of each list.

    ``diversity(u) = mean over pairs {a, b} ⊂ L(u) of 1 − |G(a) ∩ G(b)| / |G(a) ∪ G(b)|``

    with ``G(i)`` the set ``item_features[i]`` (empty for an item absent from it); two empty
    sets are at distance 0.

    Parameters
    ----------
    recommended : array-like, shape (n_users, k_max)
    item_features : mapping item -> collection
    k : int, optional

    Returns
    -------
    ndarray of float64, shape (n_users,)
        In [0, 1]; NaN for a list of fewer than two items.

    Examples
    --------
    >>> genres = {1: {"Comedy"}, 2: {"Comedy", "Drama"}, 3: {"Horror"}}
    >>> intra_list_diversity([[1, 2, 3], [1, -1, -1]], genres).round(4).tolist()
    [0.8333, nan]
    """
    empty: frozenset[Any] = frozenset()
    values = []
    for kept in _lists(recommended, k):
        if len(kept) < 2:
            values.append(math.nan)
            continue
        sets = [frozenset(item_features.get(i, empty)) for i in kept]
        total, pairs = 0.0, 0
        for a in range(len(sets)):
            for b in range(a + 1, len(sets)):
                union = len(sets[a] | sets[b])
                total += 1.0 - len(sets[a] & sets[b]) / union if union else 0.0
                pairs += 1
        values.append(total / pairs)
    return np.array(values, dtype=np.float64)


__all__ = [
    "average_precision_at_k",
    "catalog_coverage",
    "hit_rate_at_k",
    "intra_list_diversity",
    "mae",
    "map_at_k",
    "mean_over_users",
    "most_popular_items",
    "ndcg_at_k",
    "novelty",
    "popularity_bias",
    "precision_at_k",
    "recall_at_k",
    "rmse",
]
