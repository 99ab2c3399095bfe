"""The inputs of the two towers: feature tables and ratings encoded as dense rows (attributes,
and counts and mean ratings derived from the training ratings).

Each tower reads one encoded row per user or item: the declared columns of its feature table
(:class:`~palate.data.features.UserFeatures` / :class:`~palate.data.features.ItemFeatures`)
and, with ``derived_features``, columns derived from the training ratings (counts, shrunk
mean ratings, the user's mean rating per genre; :mod:`palate.data.features`). A
:class:`FeatureSide` is how one tower's rows are built; :func:`build_features` fits both
sides on the training data and encodes every catalogue row; :func:`derived_for_ratings` gives
the derived columns of a new user from a few ratings.

The catalogue (:func:`catalogue`) is the ids of the training data followed by those that only
a feature table has a row for: those rows have no history, so their derived columns hold the
values of a row with no ratings (count 0, the global mean), and they have no events
(:func:`catalogue_events`).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import scipy.sparse as sp

from palate.data.catalog import genre_lists
from palate.data.features import (
    FeatureEncoder,
    FeatureTable,
    ItemFeatures,
    UserFeatures,
    derived_item_features,
    derived_user_features,
)
from palate.data.interactions import Interactions
from palate.data.vocabulary import Vocabulary, as_id_array
from palate.errors import DataError
from palate.models.base import seen_matrix
from palate.models.popularity import popularity_scores
from palate.types import IdArray

FeaturesLike: TypeAlias = (
    pd.DataFrame | FeatureTable | Mapping[str, Any] | Sequence[Mapping[str, Any]]
)


@dataclass
class FeatureSide:
    """How one tower's input rows are built: the declared feature columns and the columns
    derived from ratings (with their values for a row with no history), through one fitted
    encoder.

    Attributes
    ----------
    encoder : FeatureEncoder
        Fitted on the rows of the training data's ids; encodes the declared and the derived
        columns.
    derived_cold : dict of str -> float
        The derived columns and their value for a user / item with no ratings.
    """

    encoder: FeatureEncoder
    derived_cold: dict[str, float]

    @classmethod
    def fit(
        cls,
        table: FeatureTable | None,
        ids: IdArray,
        derived: pd.DataFrame | None,
        global_mean: float,
        max_categories: int,
    ) -> tuple[FeatureSide, np.ndarray]:
        """The side of ``table`` (and of the ``derived`` columns), its encoder fitted on the
        rows of ``ids``, and those rows encoded."""
        columns = dict(table.columns) if table is not None else {}
        cold: dict[str, float] = {}
        if derived is not None:
            for name in derived.columns:
                columns[name] = "numeric"
                cold[name] = 0.0 if name == "log_count" else global_mean
        side = cls(FeatureEncoder(columns, max_categories=max_categories), cold)
        frame = side.frame(table, ids, derived)
        side.encoder.fit(frame)
        return side, side.encoder.transform(frame)

    @property
    def feature_columns(self) -> list[str]:
        """The declared columns of the feature table (those a new row may give)."""
        return [c for c in self.encoder.columns if c not in self.derived_cold]

    def frame(
        self, table: FeatureTable | None, ids: IdArray, derived: pd.DataFrame | None
    ) -> pd.DataFrame:
        """The rows of ``ids``: their attributes in ``table`` (missing where it has no row)
        and their derived columns (the no-history values where ``derived`` has no row)."""
        raw = self.feature_columns
        if table is not None:
            frame = table.rows(ids)[[c for c in raw if c in table.columns]]
        else:
            frame = pd.DataFrame(index=pd.Index(ids))
        frame = frame.reset_index(drop=True)
        for name, cold in self.derived_cold.items():
            if derived is not None and name in derived.columns:
                values = derived[name].reindex(pd.Index(ids)).to_numpy(dtype=np.float64)
                frame[name] = np.where(np.isnan(values), cold, values)
            else:
                frame[name] = cold
        return frame

    def encode(
        self, table: FeatureTable | None, ids: IdArray, derived: pd.DataFrame | None = None
    ) -> np.ndarray:
        """The encoded rows of ``ids``, float32 (len(ids), width)."""
        return self.encoder.transform(self.frame(table, ids, derived))

    def new_rows(self, features: FeaturesLike, entity: str) -> pd.DataFrame:
        """Raw attribute rows of new users / items (``entity``: ``"user"`` or ``"item"``),
        checked: every column must be one of :attr:`feature_columns` (the id column
        ``<entity>_id`` is ignored), and numeric and year values must be numbers (or
        missing).

        Raises
        ------
        DataError
            An unknown column (naming the expected ones) or a value that is not a number
            (naming the column and the value).
        """
        frame = feature_frame(features)
        frame = frame.drop(columns=[c for c in frame.columns if c == f"{entity}_id"])
        expected = self.feature_columns
        unknown = [str(c) for c in frame.columns if c not in expected]
        if unknown:
            derived = [c for c in unknown if c in self.derived_cold]
            if derived:
                how = ("pass the new user's ratings with ratings=" if entity == "user"
                       else "a new item has none")
                raise DataError(
                    f"{derived[0]!r} is derived from the training ratings, not a feature of "
                    f"a new {entity}; {how}"
                )
            close = [m for c in unknown for m in difflib.get_close_matches(c, expected, 1)]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = (
                f"the model's {entity} features are {expected}" if expected
                else f"the model was trained without {entity} features"
            )
            raise DataError(f"unknown {entity} feature column(s) {unknown}{hint}; {known}")
        for name in frame.columns:
            kind = self.encoder.columns[name]
            if kind in ("numeric", "year"):
                bad = _not_a_number(frame[name])
                if bad is not None:
                    raise DataError(
                        f"{entity} feature {name!r} ({kind}) must be a number, got {bad[0]!r}"
                    )
        return frame

    def encode_new(self, frame: pd.DataFrame, derived: pd.DataFrame | None = None) -> np.ndarray:
        """Encoded rows of new users / items given as raw attribute rows (``frame``) and,
        optionally, their derived columns (positionally); other derived columns hold their
        no-history values."""
        frame = frame.reset_index(drop=True)
        for name, cold in self.derived_cold.items():
            if derived is not None and name in derived.columns:
                frame[name] = derived[name].to_numpy(dtype=np.float64)
            else:
                frame[name] = cold
        return self.encoder.transform(frame)

    def cold_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """The encoded columns derived from ratings (bool mask) and the encoded row of a user
        / item with no history (float32), both of the encoded width."""
        names = self.encoder.output_names
        mask = np.isin(np.asarray(names, dtype=object), list(self.derived_cold))
        frame = pd.DataFrame(index=[0])
        for name, cold in self.derived_cold.items():
            frame[name] = cold
        values = self.encoder.transform(frame)[0].astype(np.float32)
        return mask, values

    def served(self, inputs: np.ndarray, derived_dropout: float) -> np.ndarray:
        """The encoded rows a tower reads when serving: as encoded, except that with
        ``derived_dropout=1`` (the tower never saw derived values) the derived columns hold
        their no-history values, as in training."""
        if derived_dropout < 1:
            return inputs
        mask, values = self.cold_columns()
        return np.where(mask[None, :], values[None, :], inputs).astype(np.float32)

    def to_state(self) -> dict[str, Any]:
        return {"encoder": self.encoder.to_state(), "derived_cold": self.derived_cold}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FeatureSide:
        return cls(
            FeatureEncoder.from_state(state["encoder"]),
            {k: float(v) for k, v in state["derived_cold"].items()},
        )


@dataclass(frozen=True)
class TowerFeatures:
    """Both towers' inputs, as :func:`build_features` makes them.

    Attributes
    ----------
    user_side, item_side : FeatureSide
    user_inputs, item_inputs : ndarray of float32, shape (n, width)
        The encoded rows of every catalogue user / item, in catalogue order.
    genres : list of str
        The genres of the users' derived mean rating per genre (from the training items).
    item_genres : ndarray of bool, shape (n_items, len(genres))
        Each catalogue item's genres.
    """

    user_side: FeatureSide
    item_side: FeatureSide
    user_inputs: np.ndarray
    item_inputs: np.ndarray
    genres: list[str]
    item_genres: np.ndarray

    def side(self, name: str) -> FeatureSide:
        """The ``"user"`` or ``"item"`` side."""
        return self.user_side if name == "user" else self.item_side

    def to_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The arrays and the JSON metadata a model file stores."""
        arrays = {
            "user_inputs": self.user_inputs,
            "item_inputs": self.item_inputs,
            "item_genres": self.item_genres.astype(np.uint8),
        }
        extra = {
            "user_side": self.user_side.to_state(),
            "item_side": self.item_side.to_state(),
            "genres": self.genres,
        }
        return arrays, extra

    @classmethod
    def from_state(
        cls,
        arrays: Mapping[str, np.ndarray],
        extra: Mapping[str, Any],
        n_users: int,
        n_items: int,
    ) -> TowerFeatures:
        """Rebuild what :meth:`to_state` stored, checked against the catalogue's size."""
        try:
            features = cls(
                FeatureSide.from_state(extra["user_side"]),
                FeatureSide.from_state(extra["item_side"]),
                np.asarray(arrays["user_inputs"], dtype=np.float32),
                np.asarray(arrays["item_inputs"], dtype=np.float32),
                [str(g) for g in extra.get("genres", [])],
                np.asarray(arrays["item_genres"]).astype(bool),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"the two-tower model state is incomplete ({exc})") from exc
        if len(features.user_inputs) != n_users or len(features.item_inputs) != n_items:
            raise DataError("feature matrices do not match the vocabularies")
        if features.user_inputs.shape[1] != features.user_side.encoder.width or (
            features.item_inputs.shape[1] != features.item_side.encoder.width
        ):
            raise DataError("feature matrices do not match their encoders")
        return features


def build_features(
    data: Interactions,
    users: Vocabulary,
    items: Vocabulary,
    user_features: UserFeatures | None,
    item_features: ItemFeatures | None,
    *,
    derived: bool,
    shrinkage: float,
    global_mean: float,
    max_categories: int,
) -> TowerFeatures:
    """Fit both sides on the training data and encode every catalogue row.

    Parameters
    ----------
    data : Interactions
        The events the weights are fitted on: the derived columns come from these only, and
        the encoders are fitted on the rows of their ids (the first rows of the catalogue).
    users, items : Vocabulary
        The catalogue (:func:`catalogue`): ``data``'s ids, then those known only from the
        feature tables, encoded with the no-history values of the derived columns.
    derived : bool
        Add the columns derived from ratings (counts, shrunk means, mean rating per genre of
        the first multi-valued item column, ``genres`` if there is one).
    shrinkage, global_mean : float
        m and C of the shrunk means ``(Σ y + m C) / (n + m)``; C is also the no-history
        value of the mean columns.
    max_categories : int
    """
    genres: list[str] = []
    genre_column = None
    if item_features is not None:
        multi = [c for c, kind in item_features.columns.items() if kind == "multi"]
        genre_column = "genres" if "genres" in multi else (multi[0] if multi else None)
    user_derived = item_derived = None
    if derived:
        item_genres = None
        if genre_column is not None and item_features is not None:
            item_genres = item_features.rows(data.items.ids)[genre_column]
            item_genres = pd.Series(item_genres.to_numpy(), index=data.items.ids)
            genres = sorted({g for row in genre_lists(item_genres.tolist()) for g in row})
        user_derived = derived_user_features(data, item_genres, genres, shrinkage)
        item_derived = derived_item_features(data, shrinkage)
    item_genre_sets = multi_hot(
        None if genre_column is None or item_features is None
        else item_features.rows(items.ids)[genre_column].tolist(),
        genres,
        len(items),
    )
    sides = []
    for table, vocabulary, trained, derived_frame in (
        (user_features, users, data.users.ids, user_derived),
        (item_features, items, data.items.ids, item_derived),
    ):
        side, inputs = FeatureSide.fit(
            table, trained, derived_frame, global_mean, max_categories
        )
        cold_ids = vocabulary.ids[len(trained) :]
        if len(cold_ids):  # known from the table only: no history
            inputs = np.vstack([inputs, side.encode(table, cold_ids)])
        sides.append((side, inputs))
    (user_side, user_inputs), (item_side, item_inputs) = sides
    return TowerFeatures(user_side, item_side, user_inputs, item_inputs, genres, item_genre_sets)


def catalogue(trained: Vocabulary, table: FeatureTable | None) -> Vocabulary:
    """The ids of the training data followed by those only ``table`` has a row for."""
    if table is None:
        return trained
    try:
        return trained.union(table.ids.ids)
    except DataError as exc:
        raise DataError(
            f"the {table.entity} features have ids of another type than the interactions "
            f"({exc}); key both by the same ids"
        ) from exc


def catalogue_events(
    data: Interactions, n_users: int, n_items: int
) -> tuple[sp.csr_matrix, np.ndarray]:
    """The seen items (n_users, n_items) and the popularity fallback (n_items,) of a
    catalogue whose first rows are ``data``'s users and items: the rows known only from the
    feature tables have no events, and such items rank after every item of the data in the
    fallback (popularity 0 by count; below the lowest shrunk mean by mean)."""
    seen = seen_matrix(data)
    if seen.shape != (n_users, n_items):
        seen.resize((n_users, n_items))
    by = "mean" if data.kind == "explicit" else "count"
    fallback, _ = popularity_scores(data, by)
    fallback = fallback.astype(np.float32)
    if n_items > len(fallback):
        if by == "count" or len(fallback) == 0:
            lowest = np.float32(0.0)
        else:
            lowest = np.nextafter(fallback.min(), np.float32(-np.inf))
        fallback = np.concatenate(
            [fallback, np.full(n_items - len(fallback), lowest, dtype=np.float32)]
        )
    return seen, fallback


def derived_for_ratings(
    ratings: Mapping[Any, float],
    items: Vocabulary,
    genres: list[str],
    item_genres: np.ndarray,
    shrinkage: float,
    global_mean: float,
) -> pd.DataFrame:
    """The derived columns of one new user from their first ``ratings`` (item id -> rating)
    of catalogue ``items``, with the training global mean and shrinkage (one row)."""
    ids = as_id_array(list(ratings.keys()))
    values = np.asarray(list(ratings.values()), dtype=np.float64)
    if len(ids) == 0:
        return pd.DataFrame({"log_count": [0.0]})
    known = items.index(ids, missing="ignore") >= 0
    if not np.all(known):
        raise DataError("ratings name items the model does not know; rate known items")
    tiny = Interactions.from_arrays(np.zeros(len(ids), dtype=np.int64), ids, values, items=items)
    lists = pd.Series(
        [[g for g, on in zip(genres, row, strict=True) if on] for row in item_genres.tolist()],
        index=items.ids,
    )
    return derived_user_features(
        tiny, lists if genres else None, genres, shrinkage, global_mean=global_mean
    )


def _not_a_number(column: pd.Series) -> tuple[Any] | None:
    """The first value of ``column`` that is given (not missing) but is no finite number, as
    a 1-tuple; None if there is none (what the encoder reads: ``pd.to_numeric``)."""
    given = np.array([not (np.ndim(v) == 0 and pd.isna(v)) for v in column], dtype=bool)
    try:
        parsed = pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    except (TypeError, ValueError):  # lists, dicts: no number
        parsed = np.array([_number(v) for v in column], dtype=np.float64)
    bad = np.flatnonzero(given & ~np.isfinite(parsed))
    if not len(bad):
        return None
    value = column.iloc[bad[0]]
    return (value.item() if isinstance(value, np.generic) else value,)


def _number(value: Any) -> float:
    if np.ndim(value) != 0:
        return math.nan
    try:
        return float(pd.to_numeric(value, errors="coerce"))
    except (TypeError, ValueError):
        return math.nan


def multi_hot(values: list[Any] | None, names: list[str], n: int) -> np.ndarray:
    """Bool (n, len(names)): which of ``names`` each of the ``n`` multi-valued cells holds."""
    out = np.zeros((n, len(names)), dtype=bool)
    if values is None or not names:
        return out
    column = {g: j for j, g in enumerate(names)}
    for r, row in enumerate(genre_lists(values)):
        for g in row:
            if g in column:
                out[r, column[g]] = True
    return out


def feature_frame(features: FeaturesLike) -> pd.DataFrame:
    """Raw attribute rows given as a DataFrame, a feature table, a dict (one row) or a list of
    dicts, as a DataFrame with a fresh index."""
    if isinstance(features, FeatureTable):
        return features.frame.reset_index(drop=True)
    if isinstance(features, pd.DataFrame):
        return features.reset_index(drop=True)
    if isinstance(features, Mapping):
        return pd.DataFrame([dict(features)])
    if isinstance(features, Sequence) and all(isinstance(r, Mapping) for r in features):
        return pd.DataFrame([dict(r) for r in features])
    raise DataError(
        "features must be a DataFrame, a feature table, a dict (one row) or a list of dicts"
    )


__all__ = [
    "FeatureSide",
    "FeaturesLike",
    "TowerFeatures",
    "build_features",
    "catalogue",
    "catalogue_events",
    "derived_for_ratings",
    "feature_frame",
    "multi_hot",
]
