"""Policies on item attributes: a missing value fails the policy (the item is filtered out),
whatever the column's dtype and the operator; a value of the wrong type is a DataError."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import palate
from palate.data import Interactions, Vocabulary
from palate.errors import DataError
from palate.ranking import ItemPolicy
from palate.ranking.filters import allowed_items
from palate.retrieval.sources import Popular

Catalogue = tuple[Interactions, pd.DataFrame, pd.DataFrame]


@pytest.mark.parametrize(
    "values",
    [
        pd.Series([1999, None, 1950], dtype="Int64"),  # MovieLens' year column
        pd.Series([1999.0, np.nan, 1950.0]),
        pd.Series([1999, None, 1950], dtype=object),
    ],
    ids=["Int64", "float64", "object"],
)
def test_a_missing_value_fails_a_comparison(values: pd.Series) -> None:
    assert ItemPolicy("year", ">=", 1970).allows(values).tolist() == [True, False, False]
    assert ItemPolicy("year", "<", 1970).allows(values).tolist() == [False, False, True]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (ItemPolicy("unsafe", "!=", True), [False, False, True]),
        (ItemPolicy("unsafe", "==", False), [False, False, True]),
        (ItemPolicy("unsafe", "in", [False]), [False, False, True]),
        (ItemPolicy("unsafe", "not in", [True]), [False, False, True]),
    ],
)
def test_a_missing_value_fails_negations_too(policy: ItemPolicy, expected: list[bool]) -> None:
    flags = pd.Series([True, None, False], dtype="boolean")
    assert policy.allows(flags).tolist() == expected


def test_a_missing_value_fails_contains() -> None:
    genres = pd.Series(["Comedy|Drama", None, ["Horror"]])
    assert ItemPolicy("genres", "not contains", "Drama").allows(genres).tolist() == [
        False, False, True,
    ]
    assert ItemPolicy("genres", "contains", "Horror").allows(genres).tolist() == [
        False, False, True,
    ]


def test_a_value_of_another_type_is_a_data_error_naming_the_fix() -> None:
    years = pd.Series([1999, None], dtype="Int64")
    with pytest.raises(DataError, match="without quotes"):
        ItemPolicy("year", ">=", "1970").allows(years)


def test_items_with_a_missing_year_are_not_allowed() -> None:
    items = Vocabulary(["a", "b", "c", "d"])
    table = pd.DataFrame({
        "item_id": ["a", "b", "c", "d"],
        "year": pd.array([1999, pd.NA, 1950, 2001], dtype="Int64"),
    })
    allowed = allowed_items(items, table, policies=[ItemPolicy("year", ">=", 1970)])
    assert allowed.tolist() == [True, False, False, True]


def test_a_pipeline_with_a_policy_on_a_nullable_column_filters_missing_values(
    catalogue: Catalogue,
) -> None:
    data, item_table, users = catalogue
    items = item_table.copy()
    items["year"] = pd.array([1950, 1960, 1970, 1980, None, 2000, None, 2020], dtype="Int64")
    ranker = palate.CollaborativeFiltering(embedding_size=2, epochs=3, seed=0).fit(data)
    pipeline = palate.RetrieveThenRank(
        ranker, [Popular(top=8)], policies=[ItemPolicy("year", ">=", 1970)]
    ).fit(data, item_table=items, user_table=users)
    shown = set(pipeline.recommend(data.users.ids, k=8).item_ids.reshape(-1).tolist()) - {None}
    assert shown and shown <= {"c", "d", "f", "h"}  # e and g have no year
