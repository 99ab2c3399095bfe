"""Immutable (user, item, value) interaction tables that know their vocabularies."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from os import PathLike
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from palate.data.vocabulary import Vocabulary, as_id_array
from palate.errors import DataError
from palate.types import IdLike

Kind = Literal["explicit", "binary"]
DuplicatePolicy = Literal["error", "last", "mean", "first"]
KINDS = ("explicit", "binary")


class Interactions:
    """An immutable table of (user, item, value[, timestamp]) events.

    Users and items are stored as indices into two :class:`Vocabulary` objects, so the
    orientation of every matrix view is explicit: :meth:`to_csr` is users x items.

    Build one with :meth:`from_pandas`, :meth:`from_arrays`, :meth:`from_csv` or
    :meth:`from_parquet`. Bad input raises :class:`~palate.errors.DataError` whose message
    names the option that handles it.

    Parameters
    ----------
    users, items : Vocabulary
    user_idx, item_idx : ndarray of int, shape (n,)
    values : ndarray of float, shape (n,)
    timestamps : ndarray of int64, shape (n,), optional
    kind : {"explicit", "binary"}
    rating_scale : (low, high), optional
        For explicit ratings, the declared scale; ``None`` for binary data.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"user_id": [1, 1, 2], "item_id": ["a", "b", "a"],
    ...                    "rating": [5.0, 3.0, 4.0]})
    >>> data = Interactions.from_pandas(df)
    >>> data.n_users, data.n_items, len(data)
    (2, 2, 3)
    """

    __slots__ = (
        "users",
        "items",
        "user_idx",
        "item_idx",
        "values",
        "timestamps",
        "kind",
        "rating_scale",
        "_csr",
        "_csc",
    )
    users: Vocabulary
    items: Vocabulary
    user_idx: np.ndarray
    item_idx: np.ndarray
    values: np.ndarray
    timestamps: np.ndarray | None
    kind: Kind
    rating_scale: tuple[float, float] | None
    _csr: sp.csr_matrix | None
    _csc: sp.csc_matrix | None

    def __init__(
        self,
        users: Vocabulary,
        items: Vocabulary,
        user_idx: np.ndarray,
        item_idx: np.ndarray,
        values: np.ndarray,
        timestamps: np.ndarray | None = None,
        *,
        kind: Kind = "explicit",
        rating_scale: tuple[float, float] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise DataError(f"kind must be 'explicit' or 'binary', got {kind!r}")
        n = len(user_idx)
        if not (len(item_idx) == len(values) == n) or (
            timestamps is not None and len(timestamps) != n
        ):
            raise DataError("user, item, value and timestamp arrays must have the same length")
        user_idx = np.ascontiguousarray(user_idx, dtype=np.int32)
        item_idx = np.ascontiguousarray(item_idx, dtype=np.int32)
        values = np.ascontiguousarray(values, dtype=np.float32)
        if n and (user_idx.min() < 0 or user_idx.max() >= len(users)):
            raise DataError("user indices out of range of the user vocabulary")
        if n and (item_idx.min() < 0 or item_idx.max() >= len(items)):
            raise DataError("item indices out of range of the item vocabulary")
        if timestamps is not None:
            timestamps = np.ascontiguousarray(timestamps, dtype=np.int64)
        for array in (user_idx, item_idx, values, timestamps):
            if array is not None:
                array.setflags(write=False)
        object.__setattr__(self, "users", users)
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "user_idx", user_idx)
        object.__setattr__(self, "item_idx", item_idx)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "timestamps", timestamps)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "rating_scale", rating_scale)
        object.__setattr__(self, "_csr", None)
        object.__setattr__(self, "_csc", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Interactions is immutable; build a new one instead")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(
        cls,
        user_ids: IdLike,
        item_ids: IdLike,
        values: Sequence[float] | np.ndarray | None = None,
        timestamps: Sequence[int] | np.ndarray | None = None,
        *,
        kind: Kind = "explicit",
        rating_scale: tuple[float, float] | None = None,
        duplicates: DuplicatePolicy = "error",
        users: Vocabulary | None = None,
        items: Vocabulary | None = None,
    ) -> Interactions:
        """Build from parallel arrays of external ids and values.

        Parameters
        ----------
        user_ids, item_ids : array-like, shape (n,)
        values : array-like of float, shape (n,), optional
            Ratings (explicit) or 0/1 labels (binary). ``None`` means every event is a
            positive (value 1, ``kind="binary"`` implied).
        timestamps : array-like of int, optional
            Seconds since the epoch (or any increasing integer).
        kind : {"explicit", "binary"}
        rating_scale : (low, high), optional
            Declared scale of explicit ratings; values outside it are an error.
        duplicates : {"error", "last", "first", "mean"}
            What to do with repeated (user, item) pairs. ``"last"`` keeps the latest event
            (by timestamp when given, else by position).
        users, items : Vocabulary, optional
            Use these vocabularies (ids not in them are an error) instead of building new ones.
        """
        uid = as_id_array(user_ids)
        iid = as_id_array(item_ids)
        if len(uid) != len(iid):
            raise DataError(f"got {len(uid)} user ids but {len(iid)} item ids")
        if values is None:
            vals = np.ones(len(uid), dtype=np.float64)
            if kind == "explicit" and rating_scale is None:
                kind = "binary"
        else:
            try:
                vals = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise DataError(
                    "ratings must be numeric; convert the value column with "
                    "pandas.to_numeric(..., errors='coerce') and drop the NaNs"
                ) from exc
        if len(vals) != len(uid):
            raise DataError(f"got {len(uid)} ids but {len(vals)} values")
        ts = None
        if timestamps is not None:
            ts_series = pd.Series(timestamps)
            if ts_series.dtype.kind == "M":
                ts = ts_series.astype("datetime64[s]").astype(np.int64).to_numpy()
            else:
                try:
                    ts = ts_series.to_numpy(dtype=np.int64)
                except (TypeError, ValueError) as exc:
                    raise DataError("timestamps must be integers or datetimes") from exc
            if len(ts) != len(uid):
                raise DataError(f"got {len(uid)} ids but {len(ts)} timestamps")
        if len(uid) == 0:
            raise DataError("no interactions: the input is empty")
        _validate_values(vals, kind, rating_scale)

        users = users if users is not None else Vocabulary.from_ids(uid)
        items = items if items is not None else Vocabulary.from_ids(iid)
        uidx = users.index(uid, kind="user")
        iidx = items.index(iid, kind="item")
        uidx, iidx, vals, ts = _resolve_duplicates(uidx, iidx, vals, ts, duplicates, len(items))
        return cls(users, items, uidx, iidx, vals, ts, kind=kind, rating_scale=rating_scale)

    @classmethod
    def from_pandas(
        cls,
        frame: pd.DataFrame,
        *,
        user_col: str = "user_id",
        item_col: str = "item_id",
        value_col: str | None = "rating",
        timestamp_col: str | None = None,
        kind: Kind = "explicit",
        rating_scale: tuple[float, float] | None = None,
        duplicates: DuplicatePolicy = "error",
    ) -> Interactions:
        """Build from a DataFrame. ``value_col=None`` treats every row as a positive event."""
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"expected a pandas DataFrame, got {type(frame).__name__}")
        needed = [c for c in (user_col, item_col, value_col, timestamp_col) if c is not None]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DataError(
                f"missing column(s) {missing}; the frame has {list(frame.columns)}. "
                "Name the columns with user_col=, item_col=, value_col=, timestamp_col="
            )
        values = None
        if value_col is not None:
            column = frame[value_col]
            if column.dtype == object or column.dtype.kind not in "iufb":
                numeric = pd.to_numeric(column, errors="coerce")
                bad = column[numeric.isna() & column.notna()]
                if len(bad):
                    raise DataError(
                        f"column {value_col!r} has non-numeric values, e.g. "
                        f"{bad.head(3).tolist()}; clean it with pandas.to_numeric"
                    )
                column = numeric
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return cls.from_arrays(
            frame[user_col].to_numpy(),
            frame[item_col].to_numpy(),
            values,
            frame[timestamp_col].to_numpy() if timestamp_col else None,
            kind=kind,
            rating_scale=rating_scale,
            duplicates=duplicates,
        )

    @classmethod
    def from_csv(cls, path: str | PathLike[str], *, sep: str = ",", **kwargs: Any) -> Interactions:
        """Read a CSV file (header row required) and build with :meth:`from_pandas` options."""
        try:
            frame = pd.read_csv(path, sep=sep)
        except FileNotFoundError as exc:
            raise DataError(f"no such file: {path}") from exc
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise DataError(f"cannot parse {path} as CSV: {exc}") from exc
        return cls.from_pandas(frame, **kwargs)

    @classmethod
    def from_parquet(cls, path: str | PathLike[str], **kwargs: Any) -> Interactions:
        """Read a Parquet file or dataset directory and build with :meth:`from_pandas` options."""
        try:
            frame = pd.read_parquet(path)
        except FileNotFoundError as exc:
            raise DataError(f"no such file: {path}") from exc
        except Exception as exc:  # pyarrow raises several unrelated types
            raise DataError(f"cannot read {path} as Parquet: {exc}") from exc
        return cls.from_pandas(frame, **kwargs)

    # ------------------------------------------------------------------ basic facts
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def shape(self) -> tuple[int, int]:
        """(n_users, n_items)"""
        return (self.n_users, self.n_items)

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return (
            f"Interactions(kind={self.kind!r}, n={len(self)}, n_users={self.n_users}, "
            f"n_items={self.n_items}, scale={self.rating_scale})"
        )

    @property
    def user_ids(self) -> np.ndarray:
        """External user id of every event, shape (n,)."""
        return self.users.ids[self.user_idx]

    @property
    def item_ids(self) -> np.ndarray:
        """External item id of every event, shape (n,)."""
        return self.items.ids[self.item_idx]

    @property
    def is_positive_only(self) -> bool:
        """True for binary data whose events are all positives (implicit feedback)."""
        return self.kind == "binary" and bool(np.all(self.values == 1))

    # ------------------------------------------------------------------ views
    def to_csr(self) -> sp.csr_matrix:
        """Users x items CSR matrix of values (cached; do not modify)."""
        if self._csr is None:
            matrix = sp.csr_matrix(
                (self.values, (self.user_idx, self.item_idx)), shape=self.shape, dtype=np.float32
            )
            matrix.sort_indices()
            object.__setattr__(self, "_csr", matrix)
        return self._csr

    def to_csc(self) -> sp.csc_matrix:
        """Users x items CSC matrix (column access per item; cached; do not modify)."""
        if self._csc is None:
            object.__setattr__(self, "_csc", self.to_csr().tocsc())
        return self._csc

    def user_counts(self) -> np.ndarray:
        """Number of events per user, shape (n_users,)."""
        return np.bincount(self.user_idx, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        """Number of events per item, shape (n_items,)."""
        return np.bincount(self.item_idx, minlength=self.n_items)

    def item_means(self, fill: float | None = None) -> np.ndarray:
        """Mean observed value per item, ``μ(i)``, shape (n_items,).

        Items with no events get ``fill`` (default: the global mean).
        """
        counts = self.item_counts()
        sums = np.bincount(self.item_idx, weights=self.values, minlength=self.n_items)
        fill_value = self.global_mean() if fill is None else fill
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, sums / np.maximum(counts, 1), fill_value)
        return means

    def global_mean(self) -> float:
        return float(np.mean(self.values, dtype=np.float64)) if len(self) else 0.0

    def to_pandas(self) -> pd.DataFrame:
        """Events with external ids: columns user_id, item_id, value[, timestamp]."""
        frame = pd.DataFrame(
            {"user_id": self.user_ids, "item_id": self.item_ids, "value": self.values}
        )
        if self.timestamps is not None:
            frame["timestamp"] = self.timestamps
        return frame

    # ------------------------------------------------------------------ derived sets
    def subset(self, rows: np.ndarray) -> Interactions:
        """The events selected by a boolean mask or index array; vocabularies are kept."""
        rows = np.asarray(rows)
        return Interactions(
            self.users,
            self.items,
            self.user_idx[rows],
            self.item_idx[rows],
            self.values[rows],
            None if self.timestamps is None else self.timestamps[rows],
            kind=self.kind,
            rating_scale=self.rating_scale,
        )

    def with_vocabularies(self, users: Vocabulary, items: Vocabulary) -> Interactions:
        """The same events re-indexed into other vocabularies (ids missing there raise)."""
        return Interactions(
            users,
            items,
            users.index(self.user_ids, kind="user"),
            items.index(self.item_ids, kind="item"),
            self.values,
            self.timestamps,
            kind=self.kind,
            rating_scale=self.rating_scale,
        )

    def compact(self) -> Interactions:
        """Drop users and items with no events from the vocabularies."""
        user_keep = np.unique(self.user_idx)
        item_keep = np.unique(self.item_idx)
        users = Vocabulary(self.users.ids[user_keep])
        items = Vocabulary(self.items.ids[item_keep])
        return Interactions(
            users,
            items,
            np.searchsorted(user_keep, self.user_idx),
            np.searchsorted(item_keep, self.item_idx),
            self.values,
            self.timestamps,
            kind=self.kind,
            rating_scale=self.rating_scale,
        )

    def binarize(self, threshold: float, *, keep_negatives: bool = False) -> Interactions:
        """Binary labels from values: 1 where value >= threshold.

        Parameters
        ----------
        threshold : float
        keep_negatives : bool
            False (default): positives only — events below the threshold are dropped.
            True: every event is kept, those below the threshold as 0 labels, so a model
            fitted on the result still knows the user saw those items (they are never
            recommended back) while learning from the positives.
        """
        keep = self.values >= threshold
        if not np.any(keep):
            raise DataError(f"no event has a value >= {threshold}")
        subset = self if keep_negatives else self.subset(keep)
        labels = keep if keep_negatives else np.ones(len(subset), dtype=bool)
        return Interactions(
            subset.users,
            subset.items,
            subset.user_idx,
            subset.item_idx,
            labels.astype(np.float32),
            subset.timestamps,
            kind="binary",
        )

    def fingerprint(self) -> str:
        """A SHA-256 digest of the events and vocabularies (identifies training data)."""
        digest = hashlib.sha256()
        digest.update(self.kind.encode())
        for vocab in (self.users, self.items):
            ids = vocab.ids
            if ids.dtype == object:
                digest.update("\x1f".join(map(str, ids.tolist())).encode())
            else:
                digest.update(np.ascontiguousarray(ids).tobytes())
        for array in (self.user_idx, self.item_idx, self.values):
            digest.update(array.tobytes())
        return "sha256:" + digest.hexdigest()


def _validate_values(values: np.ndarray, kind: str, scale: tuple[float, float] | None) -> None:
    if kind not in KINDS:
        raise DataError(f"kind must be 'explicit' or 'binary', got {kind!r}")
    nan = ~np.isfinite(values)
    if np.any(nan):
        raise DataError(
            f"{int(nan.sum())} rating(s) are NaN or infinite; drop those rows "
            "(e.g. frame.dropna(subset=['rating'])) before building Interactions"
        )
    if kind == "binary":
        bad = ~np.isin(values, (0.0, 1.0))
        if np.any(bad):
            raise DataError(
                f"binary interactions must be 0 or 1; got {np.unique(values[bad])[:5].tolist()}. "
                "Use kind='explicit' for ratings, or Interactions.binarize(threshold)"
            )
        if scale is not None:
            raise DataError("rating_scale applies to kind='explicit' only")
    elif scale is not None:
        low, high = scale
        if not low < high:
            raise DataError(f"rating_scale must be (low, high) with low < high, got {scale}")
        out = (values < low) | (values > high)
        if np.any(out):
            raise DataError(
                f"{int(out.sum())} rating(s) fall outside the declared scale {scale}, e.g. "
                f"{np.unique(values[out])[:5].tolist()}; fix the data or pass rating_scale="
            )


def _resolve_duplicates(
    uidx: np.ndarray,
    iidx: np.ndarray,
    vals: np.ndarray,
    ts: np.ndarray | None,
    policy: str,
    n_items: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    if policy not in ("error", "last", "first", "mean"):
        raise DataError(f"duplicates must be 'error', 'last', 'first' or 'mean', got {policy!r}")
    key = uidx.astype(np.int64) * max(n_items, 1) + iidx
    # stable sort by key (then by time for 'last'/'first') so groups are contiguous
    order = np.lexsort((ts, key)) if ts is not None else np.argsort(key, kind="stable")
    sorted_key = key[order]
    is_new = np.ones(len(key), dtype=bool)
    is_new[1:] = sorted_key[1:] != sorted_key[:-1]
    if np.all(is_new):
        return uidx, iidx, vals, ts
    if policy == "error":
        n_dup = int(len(key) - is_new.sum())
        raise DataError(
            f"{n_dup} duplicate (user, item) pair(s); pass duplicates='last', 'first' or 'mean' "
            "to resolve them"
        )
    starts = np.flatnonzero(is_new)
    if policy == "first":
        pick = order[starts]
    elif policy == "last":
        ends = np.append(starts[1:], len(key)) - 1
        pick = order[ends]
    else:  # mean
        group = np.cumsum(is_new) - 1
        sums = np.bincount(group, weights=vals[order])
        counts = np.bincount(group)
        ends = np.append(starts[1:], len(key)) - 1
        pick = order[ends]
        new_vals = sums / counts
        pick_sorted = np.argsort(pick)
        pick = pick[pick_sorted]
        return uidx[pick], iidx[pick], new_vals[pick_sorted], None if ts is None else ts[pick]
    pick = np.sort(pick)
    return uidx[pick], iidx[pick], vals[pick], None if ts is None else ts[pick]
