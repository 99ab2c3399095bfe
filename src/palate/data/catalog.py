"""What people see of items: titles and genres, finding an item by id or title, and the one
parser of genre values.

- :class:`Catalog` wraps an item table (``item_id`` and optionally ``title``, ``genres``,
  ``year``): it describes items (title, genres), labels them and searches titles
  (:meth:`Catalog.search`, :meth:`Catalog.resolve`). Rendering (tables for a terminal) is the
  command line's job; nothing here prints.
- :func:`genre_list` reads one genres cell (``"Action|Comedy"``, a list or array, or a missing
  value) as a list of str, and :func:`genre_lists` a whole column; every part of palate that
  reads genres (or any other multi-valued column) goes through them.
- :func:`plain` turns NumPy scalars into Python ones, :func:`typed_id` text into an id of a
  vocabulary's type.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from palate.data.vocabulary import Vocabulary
from palate.errors import UnknownIdError

#: Most candidates listed when a title matches several items.
MAX_CANDIDATES = 10
_YEAR = re.compile(r"\s*\(\d{4}(?:[-–]\d{0,4})?\)$")
_TRAILING_ARTICLE = re.compile(r"^(?P<body>.+), (?P<article>the|a|an)$")


class AmbiguousTitleError(UnknownIdError):
    """A title search matched several items; ``candidates`` lists them."""

    def __init__(self, message: str, candidates: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.candidates = candidates


class Catalog:
    """What people see of items: titles and genres from an item table, if there is one.

    Parameters
    ----------
    item_table : DataFrame or None
        One row per item with ``item_id`` and optionally ``title``, ``genres`` (lists or
        ``|``-separated strings), ``year``.
    items : Vocabulary or None
        The items a model knows; searches only return these.
    """

    def __init__(self, item_table: pd.DataFrame | None, items: Vocabulary | None = None) -> None:
        self.items = items
        table = None
        if item_table is not None and "item_id" in item_table.columns:
            table = item_table.drop_duplicates("item_id").set_index("item_id", drop=False)
        self.table = table
        self.has_titles = table is not None and "title" in table.columns
        self._title_forms: pd.Series | None = None

    # ------------------------------------------------------------------ ids
    def typed_id(self, text: str) -> Any:
        """``text`` as an id of the model's item id type."""
        return typed_id(text, self.items)

    def knows(self, item_id: Any) -> bool:
        return self.items is None or item_id in self.items

    # ------------------------------------------------------------------ descriptions
    def _row(self, item_id: Any) -> pd.Series | None:
        if self.table is None:
            return None
        try:
            row = self.table.loc[item_id]
        except (KeyError, TypeError):
            return None
        return row if isinstance(row, pd.Series) else None

    def title(self, item_id: Any) -> str | None:
        row = self._row(item_id)
        if row is None or "title" not in row.index or _missing(row["title"]):
            return None
        return str(row["title"])

    def genres(self, item_id: Any) -> list[str] | None:
        """The item's genres; ``None`` when unknown (no such row, column or value)."""
        row = self._row(item_id)
        if row is None or "genres" not in row.index:
            return None
        return genres_or_none(row["genres"])

    def describe(self, item_id: Any) -> dict[str, Any]:
        """``{"item_id", "title", "genres"}`` (title and genres None when unknown)."""
        return {"item_id": item_id, "title": self.title(item_id), "genres": self.genres(item_id)}

    def label(self, item_id: Any) -> str:
        """``Toy Story (1995)`` or, without titles, ``item 1``."""
        return self.title(item_id) or f"item {item_id}"

    def rows(
        self, item_ids: Iterable[Any], values: Iterable[float], value_name: str = "score"
    ) -> list[dict[str, Any]]:
        """One dict per ranked item (rank from 1), padding (non-finite values) dropped."""
        out: list[dict[str, Any]] = []
        for item_id, value in zip(item_ids, values, strict=True):
            value = float(value)
            if not math.isfinite(value):
                continue
            out.append({"rank": len(out) + 1, **self.describe(plain(item_id)), value_name: value})
        return out

    # ------------------------------------------------------------------ search
    def _forms(self) -> pd.Series:
        """Per item, its title forms (see :func:`title_forms`) joined by NUL, for searching."""
        if self._title_forms is None:
            assert self.table is not None
            self._title_forms = self.table["title"].map(
                lambda title: "\0".join(title_forms(title)) if isinstance(title, str) else ""
            )
        return self._title_forms

    def search(self, query: str, limit: int | None = MAX_CANDIDATES) -> list[dict[str, Any]]:
        """Known items whose title contains ``query``, best matches first.

        Matching ignores case, and a title also matches in the forms of :func:`title_forms`
        ("the matrix" finds "Matrix, The (1999)"). Items whose title equals the query in one
        of those forms come first, then titles that start with it, then the rest.
        """
        needle = query.strip().casefold()
        if not self.has_titles or not needle:
            return []
        assert self.table is not None
        forms = self._forms()
        mask = forms.str.contains(needle, regex=False).to_numpy()
        if self.items is not None and mask.any():
            mask = mask & self.items.contains(self.table["item_id"].to_numpy())
        hits = forms[mask]
        if not len(hits):
            return []
        split = [row.split("\0") for row in hits.tolist()]
        exact = np.array([needle in row for row in split])
        prefix = np.array([any(form.startswith(needle) for form in row) for row in split])
        order = np.lexsort((np.arange(len(hits)), ~prefix, ~exact))
        chosen = self.table[mask].iloc[order if limit is None else order[:limit]]
        return [self.describe(plain(i)) for i in chosen["item_id"].to_numpy()]

    def resolve(self, query: str) -> Any:
        """The item meant by ``query``: a known id, else the one title that contains it.

        Raises
        ------
        UnknownIdError
            Nothing matches, or only items the model has never seen.
        AmbiguousTitleError
            Several titles match and not exactly one equals ``query`` in one of the forms
            of :func:`title_forms`.
        """
        item_id = self.typed_id(query.strip())
        if self.knows(item_id):
            return item_id
        if not self.has_titles:
            raise UnknownIdError(
                f"item {query!r} is not in the model and the model has no item titles to "
                "search; pass an item id from its training data"
            )
        matches = self.search(query, limit=None)
        needle = query.strip().casefold()
        exact = [m for m in matches if needle in title_forms(m["title"] or "")]
        if len(exact) == 1:
            return exact[0]["item_id"]
        if len(matches) == 1:
            return matches[0]["item_id"]
        if not matches:
            unknown = Catalog(self.table, None).search(query, limit=3) if self.items else []
            if unknown:
                names = "; ".join(f"{m['item_id']} {m['title']!r}" for m in unknown)
                raise UnknownIdError(
                    f"{query!r} matches only items the model never saw in training ({names}); "
                    "pick another item"
                )
            raise UnknownIdError(
                f"no item has the id or a title containing {query!r}; try a shorter part of "
                "the title"
            )
        shown = matches[:MAX_CANDIDATES]
        listed = "; ".join(f"{m['item_id']} {m['title']!r}" for m in shown)
        more = f" and {len(matches) - len(shown)} more" if len(matches) > len(shown) else ""
        raise AmbiguousTitleError(
            f"{query!r} matches {len(matches)} items: {listed}{more}; pass the item id or more "
            "of the title",
            shown,
        )


def title_forms(title: str) -> tuple[str, ...]:
    """The lower-cased ways people write a title.

    As stored, without a trailing year, and with MovieLens' trailing article moved to the
    front: ``"Matrix, The (1999)"`` gives ``"matrix, the (1999)"``, ``"matrix, the"``,
    ``"the matrix (1999)"`` and ``"the matrix"``.
    """
    folded = " ".join(title.casefold().split())
    bare = _YEAR.sub("", folded)
    year = folded[len(bare) :]
    forms = [folded, bare]
    article = _TRAILING_ARTICLE.match(bare)
    if article:
        fronted = f"{article['article']} {article['body']}"
        forms += [fronted + year, fronted]
    return tuple(dict.fromkeys(forms))


def typed_id(text: str, vocabulary: Vocabulary | None) -> Any:
    """``text`` as an id of the vocabulary's type: int for integer ids, else the string."""
    text = text.strip()
    if vocabulary is not None and vocabulary.is_integer:
        try:
            return int(text)
        except ValueError:
            return text
    return text


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------------------ genres
def genre_list(value: Any) -> list[str]:
    """The genres in one cell of a genres column (or of any multi-valued column), as str.

    ``"Action|Comedy"`` gives ``["Action", "Comedy"]`` (empty parts dropped); a list, tuple,
    array or other collection gives its values as str; a missing value (``None``, NaN,
    ``pd.NA``) gives ``[]``; any other single value ``[str(value)]``.

    Examples
    --------
    >>> genre_list("Action|Comedy")
    ['Action', 'Comedy']
    >>> genre_list(["Drama"]), genre_list(float("nan")), genre_list(None), genre_list("")
    (['Drama'], [], [], [])
    """
    if isinstance(value, str):
        return [g for g in value.split("|") if g]
    if isinstance(value, Iterable):
        return [str(g) for g in value]
    if _missing(value):
        return []
    return [str(value)]


def genre_lists(values: Iterable[Any]) -> list[list[str]]:
    """:func:`genre_list` of every value of a column (a Series, array or list), in order.

    Examples
    --------
    >>> genre_lists(pd.Series(["Action|Comedy", None, ["Drama"]]))
    [['Action', 'Comedy'], [], ['Drama']]
    """
    return [genre_list(value) for value in values]


def genres_or_none(value: Any) -> list[str] | None:
    """:func:`genre_list`, but ``None`` for a missing value: for showing items, where "genres
    unknown" (``None``) differs from "no genres" (``[]``).

    Examples
    --------
    >>> genres_or_none("Action|Comedy"), genres_or_none(float("nan"))
    (['Action', 'Comedy'], None)
    """
    if not isinstance(value, (str, Iterable)) and _missing(value):
        return None
    return genre_list(value)


def plain(value: Any) -> Any:
    """NumPy scalars as Python ones, so ids print and serialise cleanly."""
    return value.item() if isinstance(value, np.generic) else value


__all__ = [
    "MAX_CANDIDATES",
    "AmbiguousTitleError",
    "Catalog",
    "genre_list",
    "genre_lists",
    "genres_or_none",
    "plain",
    "title_forms",
    "typed_id",
]
