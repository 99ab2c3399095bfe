"""External id <-> contiguous internal index."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from palate.errors import DataError, UnknownIdError
from palate.types import IdArray, IdLike


def as_id_array(ids: IdLike | Iterable[Any]) -> IdArray:
    """Return ``ids`` as a 1-d array of external ids (int64 for integers, object for strings).

    A scalar becomes an array of length one, so batch-first methods accept single ids too.
    """
    if isinstance(ids, (str, bytes, int, np.integer)):
        ids = [ids]
    array = np.asarray(list(ids) if not isinstance(ids, (np.ndarray, pd.Index, pd.Series)) else ids)
    if array.ndim != 1:
        array = array.reshape(-1)
    if array.dtype.kind == "u" and len(array) and array.max() > np.iinfo(np.int64).max:
        return array.astype(object)  # beyond int64: kept as Python ints (unknown ids)
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise DataError("ids must be integers or strings; got non-integral floats")
        return array.astype(np.int64)
    if array.dtype.kind in "USO":
        return array.astype(object)
    if array.dtype.kind == "b":
        raise DataError("ids must be integers or strings; got booleans")
    return array.astype(object)


#: Up to this many ids are looked up one by one (cheaper than building a pandas indexer).
_FEW = 32


class Vocabulary:
    """A bijection between external ids (int or str) and indices ``0 .. n-1``.

    Parameters
    ----------
    ids : array-like
        Unique external ids, in index order.

    Notes
    -----
    An integer vocabulary looked up with strings matches a string only when it is the
    canonical decimal form of an integer (``str(int(s)) == s``): ``"7"`` is id 7, but
    ``"007"``, ``"+7"``, ``" 7"`` and ``"-0"`` are ids of their own, unknown here. An integer
    outside int64 is unknown too.

    Examples
    --------
    >>> vocab = Vocabulary.from_ids(["b", "a", "b"])
    >>> vocab.index(["a", "b"]).tolist()
    [1, 0]
    >>> vocab.ids.tolist()
    ['b', 'a']
    """

    __slots__ = ("_ids", "_index")

    def __init__(self, ids: IdLike) -> None:
        array = as_id_array(ids)
        index = pd.Index(array)
        if not index.is_unique:
            dupes = index[index.duplicated()].unique()[:5].tolist()
            raise DataError(f"vocabulary ids must be unique; duplicated: {dupes}")
        array.setflags(write=False)
        self._ids = array
        self._index = index

    @classmethod
    def from_ids(cls, ids: IdLike) -> Vocabulary:
        """Build a vocabulary from ids that may repeat, in order of first appearance."""
        array = as_id_array(ids)
        return cls(pd.unique(array) if len(array) else array)

    @property
    def ids(self) -> IdArray:
        """External ids in index order (read-only array)."""
        return self._ids

    @property
    def is_integer(self) -> bool:
        return self._ids.dtype.kind in "iu"

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item: object) -> bool:
        try:
            return item in self._index
        except TypeError:
            return False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return len(self) == len(other) and bool(np.all(self._ids == other._ids))

    def __hash__(self) -> int:  # pragma: no cover - vocabularies are not dict keys
        return id(self)

    def __repr__(self) -> str:
        head = ", ".join(repr(x) for x in self._ids[:3].tolist())
        more = ", ..." if len(self) > 3 else ""
        return f"Vocabulary([{head}{more}], n={len(self)})"

    def index(self, ids: IdLike, *, missing: str = "raise", kind: str = "id") -> np.ndarray:
        """Map external ids to indices.

        Parameters
        ----------
        ids : id or array-like of ids
        missing : {"raise", "ignore"}
            With ``"raise"`` an unknown id raises :class:`UnknownIdError`; with ``"ignore"`` it
            maps to ``-1``.
        kind : str
            Word used in error messages ("user", "item").

        Returns
        -------
        ndarray of int64, shape (n,)
        """
        array = as_id_array(ids)
        if len(array) == 0:
            return np.empty(0, dtype=np.int64)
        if self.is_integer and array.dtype == object:
            # str ids match an integer vocabulary only as canonical decimals ("7", not "007")
            return self._index_mixed(array, missing, kind)
        elif not self.is_integer and array.dtype.kind in "iu" and len(self):
            array = array.astype(str).astype(object)
        if len(array) <= _FEW:
            # a handful of ids (one request): hash lookups, not a pandas indexer
            positions = np.array([self._position(x) for x in array.tolist()], dtype=np.int64)
        else:
            positions = self._index.get_indexer(array).astype(np.int64)
        if missing == "raise" and np.any(positions < 0):
            unknown = array[positions < 0][:5].tolist()
            raise UnknownIdError(
                f"unknown {kind} id(s) {unknown}; they are not in the training data "
                f"(check the id type: this vocabulary holds "
                f"{'integers' if self.is_integer else 'strings'})"
            )
        return positions

    def _position(self, x: object) -> int:
        try:
            position = self._index.get_loc(x)
        except (KeyError, TypeError):
            return -1
        return int(position) if isinstance(position, (int, np.integer)) else -1

    def _index_mixed(self, array: np.ndarray, missing: str, kind: str) -> np.ndarray:
        """``index`` of an object array mixing integers and other ids (integer vocabulary)."""
        parsed = [canonical_int(x) for x in array]
        known = np.array([x is not None for x in parsed], dtype=bool)
        positions = np.full(len(array), -1, dtype=np.int64)
        if known.any():
            as_int = np.array([x for x in parsed if x is not None], dtype=np.int64)
            positions[known] = self._index.get_indexer(as_int).astype(np.int64)
        if missing == "raise" and np.any(positions < 0):
            unknown = array[positions < 0][:5].tolist()
            raise UnknownIdError(
                f"unknown {kind} id(s) {unknown}; they are not in the training data "
                "(check the id type: this vocabulary holds integers)"
            )
        return positions

    def contains(self, ids: IdLike) -> np.ndarray:
        """Boolean mask: which of ``ids`` are known."""
        return self.index(ids, missing="ignore") >= 0

    def union(self, ids: IdLike) -> Vocabulary:
        """A vocabulary with these ids followed by new ones (existing indices unchanged)."""
        extra = as_id_array(ids)
        new = extra[~self.contains(extra)] if len(extra) else extra
        if len(new) == 0:
            return self
        new = pd.unique(new)
        if self.is_integer and new.dtype == object:
            raise DataError("cannot add string ids to an integer vocabulary")
        return Vocabulary(np.concatenate([self._ids, new.astype(self._ids.dtype)]))

    def to_frame(self, name: str = "id") -> pd.DataFrame:
        """The ids as a one-column DataFrame (index order), for Parquet files."""
        return pd.DataFrame({name: self._ids})

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, name: str = "id") -> Vocabulary:
        if name not in frame.columns:
            raise DataError(f"vocabulary table has no column {name!r}")
        return cls(frame[name].to_numpy())


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: Longest canonical decimal of an int64 (``-9223372036854775808``).
_INT64_DIGITS = 20


def canonical_int(value: Any) -> int | None:
    """``value`` as an int64 when it is one, or the canonical decimal of one; else None.

    Only ``str(n)`` names the integer ``n``: ``"007"``, ``"+7"``, ``" 7"`` and ``"-0"`` are
    other ids, and integers outside int64 are ids no integer vocabulary can hold.
    """
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        number = int(value)
    elif isinstance(value, str):
        if not 0 < len(value) <= _INT64_DIGITS:
            return None
        try:
            number = int(value)
        except ValueError:
            return None
        if str(number) != value:
            return None
    else:
        return None
    return number if _INT64_MIN <= number <= _INT64_MAX else None
