"""Item ids, titles and genres for display, and finding an item by id or title."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

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
        row = self._row(item_id)
        if row is None or "genres" not in row.index:
            return None
        return _genre_list(row["genres"])

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


def items_table(
    rows: Sequence[dict[str, Any]],
    *,
    title: str | None = None,
    value_name: str | None = "score",
    value_format: str = "{:.3f}",
    with_titles: bool = True,
    value_key: str | None = None,
    reason_key: str | None = None,
) -> Table:
    """A Rich table of ranked items: rank, item id, title, genres, value (and why).

    The value is ``row[value_key]`` (default: ``value_name``), headed ``value_name``; no
    value column when ``value_name`` is None. With ``reason_key``, a last column "why" lists
    ``row[reason_key]`` (a list of reasons).
    """
    value_key = value_name if value_key is None else value_key
    table = Table(title=title, title_justify="left", title_style="bold")
    table.add_column("#", justify="right", style="dim")
    table.add_column("item id", justify="right")
    if with_titles:
        table.add_column("title", overflow="fold")
        table.add_column("genres", style="dim", overflow="fold")
    if value_name is not None:
        table.add_column(value_name, justify="right")
    if reason_key is not None:
        table.add_column("why", overflow="fold")
    for row in rows:
        cells = [str(row.get("rank", "")), str(row["item_id"])]
        if with_titles:
            cells += [row.get("title") or "", ", ".join(row.get("genres") or [])]
        if value_name is not None:
            value = row.get(value_key) if value_key is not None else None
            cells.append("" if value is None else value_format.format(value))
        if reason_key is not None:
            cells.append("; ".join(row.get(reason_key) or []))
        table.add_row(*cells)
    return table


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _genre_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [g for g in value.split("|") if g]
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(g) for g in value]
    return None if _missing(value) else [str(value)]


def plain(value: Any) -> Any:
    """NumPy scalars as Python ones, so ids print and serialise cleanly."""
    return value.item() if isinstance(value, np.generic) else value


__all__ = ["AmbiguousTitleError", "Catalog", "items_table", "plain", "typed_id"]
