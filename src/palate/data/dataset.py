"""Dataset objects: ratings plus the item and user tables that came with them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from palate.data.features import ItemFeatures, UserFeatures
from palate.data.interactions import Interactions

#: Item table columns that :attr:`Dataset.item_features` uses, with their feature types.
ITEM_FEATURE_COLUMNS = {"genres": "multi", "year": "year"}
#: User table columns that :attr:`Dataset.user_features` uses, with their feature types.
USER_FEATURE_COLUMNS = {
    "age": "numeric",
    "gender": "categorical",
    "occupation": "categorical",
    "zip_region": "categorical",
}


def with_derived_user_columns(users: pd.DataFrame) -> pd.DataFrame:
    """The user table with the columns palate derives from it added (those it lacks).

    ``zip_region`` is the first character of ``zip``: the US postal region (whole zip codes
    are almost one per user, so they make poor segments or features).

    Examples
    --------
    >>> users = pd.DataFrame({"user_id": [1, 2], "zip": ["85711", "94043"]})
    >>> with_derived_user_columns(users)["zip_region"].tolist()
    ['8', '9']
    """
    if "zip" not in users.columns or "zip_region" in users.columns:
        return users
    frame = users.copy()
    frame["zip_region"] = frame["zip"].astype("string").str[:1]
    return frame


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Ratings with the item and user tables that came with them.

    Attributes
    ----------
    name : str
        e.g. ``"ml-100k"``, or the file name for a plain ratings file.
    ratings : Interactions
        The events, users x items.
    items : DataFrame or None
        One row per item (``item_id`` first), or ``None`` when the source has no item table.
    users : DataFrame or None
        One row per user (``user_id`` first), or ``None``.
    path : Path or None
        Where the data was read from.

    Notes
    -----
    ``density = n_ratings / (n_users · n_items)``, counting the users and items that have at
    least one rating (the vocabularies of ``ratings``).

    Examples
    --------
    >>> frame = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [10, 20, 10],
    ...                       "rating": [4.0, 3.0, 5.0]})
    >>> data = Dataset("tiny", Interactions.from_pandas(frame))
    >>> data
    Dataset(name='tiny', ratings=3, users=2, items=2, density=75.00%, scale=None)
    """

    name: str
    ratings: Interactions
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    path: Path | None = None

    @property
    def item_features(self) -> ItemFeatures | None:
        """Ready-made item features from the item table: ``genres`` (multi-hot) and ``year``
        (bucketised), whichever the table has; ``None`` without them."""
        if self.items is None:
            return None
        columns = {name: kind for name, kind in ITEM_FEATURE_COLUMNS.items()
                   if name in self.items.columns}
        if not columns or "item_id" not in self.items.columns:
            return None
        return ItemFeatures(self.items[["item_id", *columns]], columns)

    @property
    def user_features(self) -> UserFeatures | None:
        """Ready-made user features from the user table: ``age`` (numeric), ``gender``,
        ``occupation`` (one-hot) and ``zip_region``, the first digit of the zip code (the US
        postal region; whole zip codes are almost one per user); ``None`` without a table."""
        if self.users is None or "user_id" not in self.users.columns:
            return None
        frame = with_derived_user_columns(self.users)
        columns = {name: kind for name, kind in USER_FEATURE_COLUMNS.items()
                   if name in frame.columns}
        if not columns:
            return None
        return UserFeatures(frame[["user_id", *columns]], columns)

    @property
    def density(self) -> float:
        """Share of the users x items matrix that is observed, in [0, 1]."""
        n_users, n_items = self.ratings.shape
        return len(self.ratings) / (n_users * n_items) if n_users and n_items else 0.0

    def __repr__(self) -> str:
        n_users, n_items = self.ratings.shape
        return (
            f"{type(self).__name__}(name={self.name!r}, ratings={len(self.ratings)}, "
            f"users={n_users}, items={n_items}, density={self.density:.2%}, "
            f"scale={self.ratings.rating_scale})"
        )

    def summary(self) -> dict[str, Any]:
        """The facts :meth:`describe` shows, as a JSON-ready dict."""
        ratings = self.ratings
        facts: dict[str, Any] = {
            "name": self.name,
            "path": None if self.path is None else str(self.path),
            "kind": ratings.kind,
            "n_ratings": len(ratings),
            "n_users": ratings.n_users,
            "n_items": ratings.n_items,
            "density": self.density,
            "rating_scale": None if ratings.rating_scale is None else list(ratings.rating_scale),
            "mean_rating": ratings.global_mean(),
            "first_timestamp": None,
            "last_timestamp": None,
            "items_table_rows": None if self.items is None else len(self.items),
            "users_table_rows": None if self.users is None else len(self.users),
        }
        if ratings.timestamps is not None and len(ratings):
            facts["first_timestamp"] = int(ratings.timestamps.min())
            facts["last_timestamp"] = int(ratings.timestamps.max())
        return facts

    def describe(self) -> str:
        """A few lines for people: counts, density, rating scale, time span, tables.

        Examples
        --------
        >>> print(data.describe())  # doctest: +SKIP
        ml-latest-small  (/data/ml-latest-small)
          ratings  100,836 explicit, scale 0.5 to 5.0, mean 3.502
          users    610
          items    9,724 rated, 9,742 in the items table
          density  1.70% of 610 x 9,724
          time     1996-03-29 to 2018-09-24 (UTC)
          users table: none
        """
        facts = self.summary()
        where = f"  ({facts['path']})" if facts["path"] else ""
        scale = facts["rating_scale"]
        if facts["kind"] == "explicit":
            scale_text = "no declared scale" if scale is None else f"scale {scale[0]} to {scale[1]}"
            kind_text = f"explicit, {scale_text}, mean {facts['mean_rating']:.3f}"
        else:
            kind_text = f"binary, {facts['mean_rating']:.1%} positive"
        items_text = f"{facts['n_items']:,}" + (
            " rated" if facts["items_table_rows"] is None
            else f" rated, {facts['items_table_rows']:,} in the items table"
        )
        lines = [
            f"{self.name}{where}",
            f"  ratings  {facts['n_ratings']:,} {kind_text}",
            f"  users    {facts['n_users']:,}",
            f"  items    {items_text}",
            f"  density  {facts['density']:.2%} of {facts['n_users']:,} x {facts['n_items']:,}",
        ]
        if facts["first_timestamp"] is not None:
            first = _day(facts["first_timestamp"])
            last = _day(facts["last_timestamp"])
            lines.append(f"  time     {first} to {last} (UTC)")
        for label in ("items", "users"):
            table = getattr(self, label)
            columns = "none" if table is None else ", ".join(map(str, table.columns))
            lines.append(f"  {label} table: {columns}")
        return "\n".join(lines)


@dataclass(frozen=True, eq=False, repr=False)
class MovieLensDataset(Dataset):
    """A MovieLens release: explicit ratings, the movies table and (ml-100k, ml-1m) users.

    ``items`` has ``item_id, title, genres, year`` (and ml-100k's ``release_date,
    imdb_url``, the csv releases' ``imdb_id, tmdb_id``); ``users`` has ``user_id, age,
    gender, occupation, zip``. See :func:`palate.data.movielens.read_movielens`.

    Examples
    --------
    >>> from palate.datasets import movielens
    >>> data = movielens("ml-latest-small")  # doctest: +SKIP
    >>> data  # doctest: +SKIP
    MovieLensDataset(name='ml-latest-small', ratings=100836, users=610, items=9724, \
density=1.70%, scale=(0.5, 5.0))
    """


def _day(timestamp: int) -> str:
    try:
        return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d")
    except (OverflowError, OSError, ValueError):  # not seconds since the epoch
        return str(timestamp)


__all__ = ["Dataset", "MovieLensDataset", "with_derived_user_columns"]
