"""TopInSegment on a MovieLens-style users table: ``zip_region`` is derived from ``zip``, and
the errors say what the table holds instead of asking for what was passed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import palate
from palate.data import Interactions
from palate.errors import ConfigError, DataError
from palate.models.base import seen_matrix
from palate.retrieval.sources import Popular, SourceData, TopInSegment, UserContext

Catalogue = tuple[Interactions, pd.DataFrame, pd.DataFrame]

#: writers (u1-u3) live in zip region 9, artists (u4-u6) in region 1
ZIP = {"u1": "94043", "u2": "98101", "u3": "90210", "u4": "10001", "u5": "11215", "u6": "15213"}


def movielens_users(users: pd.DataFrame) -> pd.DataFrame:
    """The catalogue's users as MovieLens ml-100k / ml-1m has them: a zip, no zip_region."""
    table = users.copy()
    table["gender"] = "F"
    table["zip"] = table["user_id"].map(ZIP)
    return table


def source_data(catalogue: Catalogue, user_table: pd.DataFrame | None) -> SourceData:
    data, item_table, _ = catalogue
    return SourceData(
        interactions=data,
        seen=seen_matrix(data),
        item_table=item_table,
        user_table=user_table,
        popularity=data.item_counts().astype(np.float32),
    )


def context(data: Interactions, user: str) -> UserContext:
    row = int(data.users.index([user])[0])
    seen = np.sort(data.item_idx[data.user_idx == row]).astype(np.int64)
    return UserContext(row, seen, seen, np.ones(len(seen), np.float32))


def test_zip_region_is_derived_from_zip(catalogue: Catalogue) -> None:
    data = catalogue[0]
    users = movielens_users(catalogue[2])
    assert "zip_region" not in users.columns
    source = TopInSegment("zip_region", top=1).fit(source_data(catalogue, users))
    assert source.segments_ == ["1", "9"]
    found = source.retrieve(context(data, "u1"))  # as by occupation: writers' top unseen is b
    assert {str(data.items.ids[i]) for i in found.items} == {"b"}
    assert source.explain(int(found.anchors[0]), str) == (
        "popular with users whose zip_region is 9"
    )


def test_the_pipeline_segments_by_zip_region_with_the_users_table(catalogue: Catalogue) -> None:
    data, items, users = catalogue
    ranker = palate.CollaborativeFiltering(embedding_size=2, epochs=3, seed=0).fit(data)
    pipeline = palate.RetrieveThenRank(ranker, [TopInSegment("zip_region"), Popular(top=3)])
    pipeline.fit(data, item_table=items, user_table=movielens_users(users))
    reasons = [r for item in pipeline.explain("u1", k=5) for r in item.because]
    assert "popular with users whose zip_region is 9" in reasons


def test_no_users_table_says_so(catalogue: Catalogue) -> None:
    with pytest.raises(DataError, match="no user table was given") as error:
        TopInSegment("zip_region").fit(source_data(catalogue, None))
    assert "ml-latest-small" in str(error.value)  # the MovieLens release without one


def test_a_missing_attribute_names_the_columns_there_are(catalogue: Catalogue) -> None:
    users = movielens_users(catalogue[2])
    with pytest.raises(DataError, match="no column 'country'") as error:
        TopInSegment("country").fit(source_data(catalogue, users))
    assert "occupation, age, gender, zip, zip_region" in str(error.value)
    with pytest.raises(DataError, match="no user_id column"):
        TopInSegment("zip").fit(source_data(catalogue, users.rename(columns={"user_id": "u"})))


def test_bins_must_be_a_list_of_numbers() -> None:
    for bins in (5, "18,30", [18, "30"], [True, 2]):
        with pytest.raises(ConfigError, match="bins"):
            TopInSegment("age", bins=bins)  # type: ignore[arg-type]
