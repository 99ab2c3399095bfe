"""User and item feature tables, their encoders, and features derived from ratings.

A :class:`UserFeatures` / :class:`ItemFeatures` table holds one row per external id (the same
ids as :class:`~palate.data.Interactions`) and declares the type of each column:

============  ==============================================================================
type          encoding (fitted on the training rows only)
============  ==============================================================================
numeric       standardised, ``(x − mean) / sd``; a missing value becomes 0 (the mean)
categorical   one-hot over the ``max_categories`` most frequent values, plus an "other" slot
              (a one-hot column fed to a dense layer *is* a learned embedding of the value:
              the layer's weight column for it)
multi         multi-hot over the ``max_categories`` most frequent values (genres: a list per
              row, or a ``"|"``-separated string)
year          one-hot decade bucket over the fitted range (earlier / later years fall into the
              first / last bucket), plus the standardised year
text          hashed bag of words: ``buckets`` columns, token counts (CRC-32 of the lower-case
              token modulo ``buckets``), L2-normalised per row
============  ==============================================================================

Features derived from ratings come from :func:`derived_user_features` and
:func:`derived_item_features`: per user the number of ratings, the mean rating and the mean
rating per genre; per item the number of ratings and the mean rating. They are computed from
the interactions they are given — pass the *training* split only, or offline numbers leak the
test set. Means are shrunk towards the global mean C by ``m`` pseudo-ratings,
``(Σ y + m C) / (n + m)``, so a user or item with no history gets exactly C.

A :class:`FeatureEncoder` is fitted once and is then a pure function of a row: new users and
items (cold start) are encoded with the same statistics. Its state is JSON, so it is saved
with the model without pickle (:meth:`FeatureEncoder.to_state`).

Examples
--------
>>> import pandas as pd
>>> table = ItemFeatures(
...     pd.DataFrame({"item_id": [1, 2], "genres": [["Drama"], ["Comedy", "Drama"]],
...                   "year": [1995, 2003]}),
...     columns={"genres": "multi", "year": "year"},
... )
>>> encoder = FeatureEncoder(table.columns).fit(table.frame)
>>> encoder.transform(table.frame).shape
(2, 6)
>>> encoder.output_names
['genres=Drama', 'genres=Comedy', 'year in 1990s', 'year in 2000s', 'year', 'other']
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from palate.data.catalog import genre_lists
from palate.data.interactions import Interactions
from palate.data.vocabulary import Vocabulary, as_id_array
from palate.errors import ConfigError, DataError
from palate.types import IdLike

FeatureType = Literal["numeric", "categorical", "multi", "year", "text"]
FEATURE_TYPES: tuple[str, ...] = ("numeric", "categorical", "multi", "year", "text")
_TOKEN = re.compile(r"[a-z0-9]+")


# ------------------------------------------------------------------------------ tables
class FeatureTable:
    """One row of attributes per external id, with a declared type per column.

    Parameters
    ----------
    frame : DataFrame
        Must hold the id column (``user_id`` / ``item_id``) and every declared column.
    columns : mapping column -> type, optional
        ``"numeric"``, ``"categorical"``, ``"multi"``, ``"year"`` or ``"text"``. Default:
        numbers are numeric, lists are multi, anything else categorical.
    id_column : str, optional
        Default ``"user_id"`` for :class:`UserFeatures`, ``"item_id"`` for
        :class:`ItemFeatures`.

    Attributes
    ----------
    ids : Vocabulary
        The ids, in row order.
    frame : DataFrame
        The declared columns, indexed by id.
    columns : dict
        Column -> type.
    """

    default_id_column: ClassVar[str] = "id"
    entity: ClassVar[str] = "row"

    def __init__(
        self,
        frame: pd.DataFrame,
        columns: Mapping[str, str] | None = None,
        *,
        id_column: str | None = None,
    ) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"expected a pandas DataFrame, got {type(frame).__name__}")
        id_column = id_column or self.default_id_column
        if id_column not in frame.columns:
            raise DataError(
                f"the {self.entity} features need an id column {id_column!r}; the frame has "
                f"{list(frame.columns)} (name it with id_column=)"
            )
        if columns is None:
            columns = {c: _guess_type(frame[c]) for c in frame.columns if c != id_column}
        declared = dict(columns)
        missing = [c for c in declared if c not in frame.columns]
        if missing:
            raise DataError(f"declared column(s) {missing} are not in the frame")
        for name, kind in declared.items():
            if kind not in FEATURE_TYPES:
                raise ConfigError(
                    f"column {name!r} has type {kind!r}; use one of {', '.join(FEATURE_TYPES)}"
                )
        self.ids = Vocabulary(as_id_array(frame[id_column].to_numpy()))
        self.frame = frame[list(declared)].set_axis(pd.Index(self.ids.ids, name=id_column))
        self.columns: dict[str, str] = declared
        self.id_column = id_column

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        cols = ", ".join(f"{c}: {t}" for c, t in self.columns.items())
        return f"{type(self).__name__}(n={len(self)}, columns={{{cols}}})"

    def rows(self, ids: IdLike) -> pd.DataFrame:
        """The rows of ``ids`` in that order; ids without a row get missing values."""
        index = self.ids.index(ids, missing="ignore")
        frame = self.frame.iloc[np.where(index >= 0, index, 0)].copy()
        if np.any(index < 0):
            frame.iloc[np.flatnonzero(index < 0)] = None
        return frame.set_axis(pd.Index(as_id_array(ids), name=self.id_column))


class UserFeatures(FeatureTable):
    """User attributes (age, gender, occupation, ...) keyed by ``user_id``; see
    :class:`FeatureTable`."""

    default_id_column = "user_id"
    entity = "user"


class ItemFeatures(FeatureTable):
    """Item attributes (genres, year, ...) keyed by ``item_id``; see :class:`FeatureTable`."""

    default_id_column = "item_id"
    entity = "item"


def _guess_type(column: pd.Series) -> str:
    if column.dtype.kind in "iuf":
        return "numeric"
    first = column.dropna().head(1).tolist()
    if first and isinstance(first[0], (list, tuple, np.ndarray)):
        return "multi"
    return "categorical"


# ------------------------------------------------------------------------------ encoder
#: Each value of a multi-valued column as a list of str: the one parser,
#: :func:`palate.data.catalog.genre_lists`, under its former name.
value_lists = genre_lists


def _as_strings(values: Iterable[Any]) -> list[str | None]:
    return [None if pd.isna(v) else str(v) for v in values]


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


class FeatureEncoder:
    """Turns the declared columns of a feature table into a dense float32 matrix.

    Parameters
    ----------
    columns : mapping column -> type
    max_categories : int
        Most frequent values kept per categorical / multi column.
    text_buckets : int
        Width of the hashed bag of words of each text column.
    year_bucket : int
        Width in years of the year buckets (10: decades).

    Notes
    -----
    The output has one "other" column at the end when any categorical column exists; see
    :attr:`output_names` for the meaning of every column.
    """

    def __init__(
        self,
        columns: Mapping[str, str],
        *,
        max_categories: int = 64,
        text_buckets: int = 256,
        year_bucket: int = 10,
    ) -> None:
        for name, kind in columns.items():
            if kind not in FEATURE_TYPES:
                raise ConfigError(
                    f"column {name!r} has type {kind!r}; use one of {', '.join(FEATURE_TYPES)}"
                )
        for value, what in ((max_categories, "max_categories"), (text_buckets, "text_buckets"),
                            (year_bucket, "year_bucket")):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{what} must be a positive integer, got {value!r}")
        self.columns = dict(columns)
        self.max_categories = max_categories
        self.text_buckets = text_buckets
        self.year_bucket = year_bucket
        self.stats: dict[str, dict[str, Any]] | None = None

    # ------------------------------------------------------------------ fit
    def fit(self, frame: pd.DataFrame) -> FeatureEncoder:
        """Learn means, sds, category lists and year ranges from ``frame`` (training rows)."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataError(f"the frame lacks the declared column(s) {missing}")
        stats: dict[str, dict[str, Any]] = {}
        for name, kind in self.columns.items():
            column = frame[name]
            if kind == "numeric":
                stats[name] = _moments(_numbers(column))
            elif kind == "categorical":
                counts = Counter(v for v in _as_strings(column) if v is not None)
                stats[name] = {"values": _most_common(counts, self.max_categories)}
            elif kind == "multi":
                counts = Counter(v for row in genre_lists(column) for v in row)
                stats[name] = {"values": _most_common(counts, self.max_categories)}
            elif kind == "year":
                years = _numbers(column)
                finite = years[np.isfinite(years)]
                width = self.year_bucket
                low = int(finite.min() // width * width) if len(finite) else 0
                high = int(finite.max() // width * width) if len(finite) else 0
                stats[name] = {**_moments(years), "first": low, "last": high}
            else:  # text
                stats[name] = {"buckets": self.text_buckets}
        self.stats = stats
        return self

    @property
    def is_fitted(self) -> bool:
        return self.stats is not None

    @property
    def output_names(self) -> list[str]:
        """Name of every output column, in order."""
        stats = self._fitted_stats()
        names: list[str] = []
        has_categorical = False
        for name, kind in self.columns.items():
            s = stats[name]
            if kind == "numeric":
                names.append(name)
            elif kind == "categorical":
                has_categorical = True
                names.extend(f"{name}={v}" for v in s["values"])
            elif kind == "multi":
                names.extend(f"{name}={v}" for v in s["values"])
            elif kind == "year":
                width = self.year_bucket
                names.extend(
                    f"{name} in {start}s"
                    if width == 10
                    else f"{name} in {start}-{start + width - 1}"
                    for start in range(s["first"], s["last"] + 1, width)
                )
                names.append(name)
            else:
                names.extend(f"{name}#{b}" for b in range(s["buckets"]))
        if has_categorical or any(k == "year" for k in self.columns.values()):
            names.append("other")
        return names

    @property
    def width(self) -> int:
        """Number of output columns."""
        return len(self.output_names)

    def _fitted_stats(self) -> dict[str, dict[str, Any]]:
        if self.stats is None:
            from palate.errors import NotFittedError

            raise NotFittedError("this FeatureEncoder is not fitted; call .fit(frame) first")
        return self.stats

    # ------------------------------------------------------------------ transform
    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode rows; columns absent from ``frame`` count as missing values.

        Returns
        -------
        ndarray of float32, shape (len(frame), width)
        """
        stats = self._fitted_stats()
        n = len(frame)
        blocks: list[np.ndarray] = []
        other = np.zeros(n, dtype=np.float32)
        needs_other = False
        for name, kind in self.columns.items():
            s = stats[name]
            column = frame[name] if name in frame.columns else pd.Series([None] * n, dtype=object)
            if kind == "numeric":
                x = (_numbers(column) - s["mean"]) / s["sd"]
                blocks.append(np.nan_to_num(x, nan=0.0)[:, None])
            elif kind == "categorical":
                needs_other = True
                lookup = {v: j for j, v in enumerate(s["values"])}
                block = np.zeros((n, len(lookup)), dtype=np.float32)
                for r, value in enumerate(_as_strings(column)):
                    j = lookup.get(value) if value is not None else None
                    if j is None:
                        other[r] += 1.0
                    else:
                        block[r, j] = 1.0
                blocks.append(block)
            elif kind == "multi":
                lookup = {v: j for j, v in enumerate(s["values"])}
                block = np.zeros((n, len(lookup)), dtype=np.float32)
                for r, row in enumerate(genre_lists(column)):
                    for value in row:
                        j = lookup.get(value)
                        if j is not None:
                            block[r, j] = 1.0
                blocks.append(block)
            elif kind == "year":
                needs_other = True
                years = _numbers(column)
                width = self.year_bucket
                n_buckets = (s["last"] - s["first"]) // width + 1
                block = np.zeros((n, n_buckets + 1), dtype=np.float32)
                finite = np.isfinite(years)
                bucket = np.clip(
                    (np.floor(np.where(finite, years, 0) / width) * width - s["first"]) // width,
                    0,
                    n_buckets - 1,
                ).astype(np.int64)
                rows = np.flatnonzero(finite)
                block[rows, bucket[rows]] = 1.0
                other[~finite] += 1.0
                block[:, -1] = np.nan_to_num((years - s["mean"]) / s["sd"], nan=0.0)
                blocks.append(block)
            else:
                blocks.append(_hashed_words(column, s["buckets"]))
        if needs_other:
            blocks.append(other[:, None])
        if not blocks:
            return np.zeros((n, 0), dtype=np.float32)
        return np.hstack(blocks).astype(np.float32)

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """The fitted encoder as JSON-serialisable data (saved in the model's manifest)."""
        return {
            "columns": self.columns,
            "max_categories": self.max_categories,
            "text_buckets": self.text_buckets,
            "year_bucket": self.year_bucket,
            "stats": self._fitted_stats(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FeatureEncoder:
        """Rebuild an encoder from :meth:`to_state`'s output."""
        try:
            encoder = cls(
                dict(state["columns"]),
                max_categories=int(state["max_categories"]),
                text_buckets=int(state["text_buckets"]),
                year_bucket=int(state["year_bucket"]),
            )
            encoder.stats = {name: dict(s) for name, s in state["stats"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(
                f"malformed feature encoder state ({exc}); save the model again"
            ) from exc
        if set(encoder.stats) != set(encoder.columns):
            raise DataError(
                "feature encoder state does not match its columns; save the model again"
            )
        return encoder


def _moments(values: np.ndarray) -> dict[str, float]:
    finite = values[np.isfinite(values)]
    mean = float(finite.mean()) if len(finite) else 0.0
    sd = float(finite.std()) if len(finite) else 1.0
    return {"mean": mean, "sd": sd if sd > 1e-12 else 1.0}


def _most_common(counts: Counter[str], limit: int) -> list[str]:
    # by count, ties by value, so the order does not depend on row order
    return [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def _hashed_words(column: pd.Series, buckets: int) -> np.ndarray:
    block = np.zeros((len(column), buckets), dtype=np.float32)
    for r, text in enumerate(_as_strings(column)):
        if not text:
            continue
        for token in _TOKEN.findall(text.lower()):
            block[r, zlib.crc32(token.encode("utf-8")) % buckets] += 1.0
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    return block / np.where(norms > 0, norms, 1.0)


# ------------------------------------------------------------------------------ derived
def _shrunk_means(
    index: np.ndarray, values: np.ndarray, n: int, global_mean: float, shrinkage: float
) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(index, minlength=n).astype(np.float64)
    sums = np.bincount(index, weights=values, minlength=n)
    means = (sums + shrinkage * global_mean) / np.maximum(counts + shrinkage, 1e-12)
    return counts, np.where(counts > 0, means, global_mean)


def derived_item_features(
    interactions: Interactions, shrinkage: float = 5.0, global_mean: float | None = None
) -> pd.DataFrame:
    """Per item: ``log1p`` of its number of ratings and its shrunk mean rating.

    ``mean(i) = (Σ_j y(i,j) + m C) / (n(i) + m)`` with C the global mean; an item without
    ratings gets count 0 and mean C. Compute it from the training split only.

    Returns
    -------
    DataFrame indexed by item id, columns ``log_count``, ``mean_rating``
    """
    data = interactions
    center = data.global_mean() if global_mean is None else float(global_mean)
    counts, means = _shrunk_means(
        data.item_idx, data.values.astype(np.float64), data.n_items, center, shrinkage
    )
    return pd.DataFrame(
        {"log_count": np.log1p(counts), "mean_rating": means},
        index=pd.Index(data.items.ids, name="item_id"),
    )


def derived_user_features(
    interactions: Interactions,
    item_genres: Mapping[Any, list[str]] | pd.Series | None = None,
    genres: list[str] | None = None,
    shrinkage: float = 5.0,
    global_mean: float | None = None,
) -> pd.DataFrame:
    """Per user: ``log1p`` of their number of ratings, shrunk mean rating, and shrunk mean
    rating per genre.

    ``mean_g(j) = (Σ_{i in g} y(i,j) + m C) / (n_g(j) + m)``, over the items of genre g that
    user j rated; C the global mean. A user without ratings (in g) gets C. Compute it from the
    training split only.

    Parameters
    ----------
    interactions : Interactions
    item_genres : mapping item id -> list of genres, optional
    genres : list of str, optional
        The genres to make columns for (default: every genre in ``item_genres``, sorted).
    shrinkage : float
        m, pseudo-ratings at the global mean.
    global_mean : float, optional
        C; default the mean of ``interactions`` (pass the training mean when deriving the
        features of a new user from a few ratings).

    Returns
    -------
    DataFrame indexed by user id, columns ``log_count``, ``mean_rating``,
    ``mean_rating_<genre>`` ...
    """
    data = interactions
    global_mean = data.global_mean() if global_mean is None else float(global_mean)
    values = data.values.astype(np.float64)
    counts, means = _shrunk_means(data.user_idx, values, data.n_users, global_mean, shrinkage)
    columns: dict[str, np.ndarray] = {"log_count": np.log1p(counts), "mean_rating": means}
    if item_genres is not None:
        lookup = item_genres if isinstance(item_genres, pd.Series) else pd.Series(item_genres)
        lists = genre_lists(lookup.reindex(data.items.ids).tolist())
        if genres is None:
            genres = sorted({g for row in lists for g in row})
        for genre in genres:
            of_genre = np.fromiter((genre in row for row in lists), bool, count=len(lists))
            keep = of_genre[data.item_idx]
            _, genre_means = _shrunk_means(
                data.user_idx[keep], values[keep], data.n_users, global_mean, shrinkage
            )
            columns[f"mean_rating_{genre}"] = genre_means
    return pd.DataFrame(columns, index=pd.Index(data.users.ids, name="user_id"))


__all__ = [
    "FEATURE_TYPES",
    "FeatureEncoder",
    "FeatureTable",
    "FeatureType",
    "ItemFeatures",
    "UserFeatures",
    "derived_item_features",
    "derived_user_features",
    "value_lists",
]
