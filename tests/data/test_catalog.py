"""palate.data.catalog: describing items, title search, and the genre parser."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from palate.data.catalog import (
    AmbiguousTitleError,
    Catalog,
    genre_list,
    genre_lists,
    genres_or_none,
    plain,
    title_forms,
    typed_id,
)
from palate.data.vocabulary import Vocabulary
from palate.errors import UnknownIdError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Action|Comedy", ["Action", "Comedy"]),
        ("Drama", ["Drama"]),
        ("Action||Comedy|", ["Action", "Comedy"]),
        ("", []),
        (["Action", "Comedy"], ["Action", "Comedy"]),
        (("Drama",), ["Drama"]),
        (np.array(["Horror", "Sci-Fi"], dtype=object), ["Horror", "Sci-Fi"]),
        ([], []),
        (None, []),
        (float("nan"), []),
        (np.float32("nan"), []),
        (pd.NA, []),
        (7, ["7"]),
    ],
)
def test_genre_list(value: object, expected: list[str]) -> None:
    assert genre_list(value) == expected


def test_genre_lists_reads_a_column_in_order() -> None:
    column = pd.Series(["Action|Comedy", None, ["Drama"], math.nan], index=[5, 3, 9, 1])
    assert genre_lists(column) == [["Action", "Comedy"], [], ["Drama"], []]
    assert genre_lists(column.to_numpy()) == genre_lists(column.tolist())


def test_genres_or_none_keeps_unknown_apart_from_empty() -> None:
    assert genres_or_none(None) is None
    assert genres_or_none(math.nan) is None
    assert genres_or_none("") == []
    assert genres_or_none([]) == []
    assert genres_or_none("A|B") == ["A", "B"]


def test_plain_and_typed_id() -> None:
    assert type(plain(np.int64(3))) is int and plain(np.int64(3)) == 3
    assert plain("x") == "x"
    integers = Vocabulary(np.array([1, 2, 3]))
    assert typed_id(" 2 ", integers) == 2
    assert typed_id("two", integers) == "two"
    assert typed_id("2", Vocabulary(np.array(["2", "b"], dtype=object))) == "2"


def test_title_forms_move_the_trailing_article() -> None:
    assert title_forms("Matrix, The (1999)") == (
        "matrix, the (1999)", "matrix, the", "the matrix (1999)", "the matrix",
    )
    assert title_forms("Heat  (1995)") == ("heat (1995)", "heat")


@pytest.fixture
def catalog() -> Catalog:
    table = pd.DataFrame({
        "item_id": [1, 2, 3, 4, 5],
        "title": ["Matrix, The (1999)", "Matrix Reloaded, The (2003)", "Heat (1995)",
                  "Heat Wave (1990)", None],
        "genres": [["Action", "Sci-Fi"], "Action|Sci-Fi", "Crime", math.nan, None],
    })
    return Catalog(table, Vocabulary(np.array([1, 2, 3, 5])))  # item 4 is not in the model


def test_describe_and_label(catalog: Catalog) -> None:
    assert catalog.describe(1) == {"item_id": 1, "title": "Matrix, The (1999)",
                                   "genres": ["Action", "Sci-Fi"]}
    assert catalog.describe(2)["genres"] == ["Action", "Sci-Fi"]
    assert catalog.genres(4) is None and catalog.genres(5) is None
    assert catalog.describe(99) == {"item_id": 99, "title": None, "genres": None}
    assert catalog.label(3) == "Heat (1995)" and catalog.label(5) == "item 5"


def test_rows_rank_from_one_and_drop_padding(catalog: Catalog) -> None:
    rows = catalog.rows(np.array([3, -1, 1]), [2.5, math.nan, 1.0], value_name="distance")
    assert [(r["rank"], r["item_id"], r["distance"]) for r in rows] == [(1, 3, 2.5), (2, 1, 1.0)]
    assert type(rows[0]["item_id"]) is int


def test_search_puts_exact_then_prefix_matches_first(catalog: Catalog) -> None:
    assert [m["item_id"] for m in catalog.search("the matrix")] == [1, 2]
    assert [m["item_id"] for m in catalog.search("MATRIX RELOADED")] == [2]
    assert [m["item_id"] for m in catalog.search("heat")] == [3]  # 4 is unknown to the model
    assert catalog.search("  ") == []
    assert Catalog(None).search("heat") == []


def test_resolve(catalog: Catalog) -> None:
    assert catalog.resolve("3") == 3
    assert catalog.resolve("the matrix") == 1  # one title equals it
    assert catalog.resolve("reloaded") == 2
    with pytest.raises(AmbiguousTitleError) as info:
        catalog.resolve("matri")
    assert [c["item_id"] for c in info.value.candidates] == [1, 2]
    with pytest.raises(UnknownIdError, match="never saw in training"):
        catalog.resolve("heat wave")
    with pytest.raises(UnknownIdError, match="no item has the id"):
        catalog.resolve("casablanca")
    with pytest.raises(UnknownIdError, match="no item titles"):
        Catalog(None, Vocabulary(np.array([1]))).resolve("heat")
