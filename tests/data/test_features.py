"""Feature tables, their encoder (known answers), derived features and their leakage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from palate import ConfigError, DataError, Interactions, ItemFeatures, UserFeatures
from palate.data.features import (
    FeatureEncoder,
    derived_item_features,
    derived_user_features,
)
from palate.data.split import random_split
from palate.data.synthetic import synthetic_ratings
from palate.datasets import Dataset


def test_encoder_known_answer() -> None:
    frame = pd.DataFrame(
        {
            "age": [20.0, 40.0, np.nan],
            "gender": ["F", "M", "F"],
            "genres": [["Drama"], ["Comedy", "Drama"], []],
            "year": [1995, 2003, np.nan],
        }
    )
    encoder = FeatureEncoder(
        {"age": "numeric", "gender": "categorical", "genres": "multi", "year": "year"}
    ).fit(frame)
    assert encoder.output_names == [
        "age", "gender=F", "gender=M", "genres=Drama", "genres=Comedy",
        "year in 1990s", "year in 2000s", "year", "other",
    ]
    x = encoder.transform(frame)
    # age: mean 30, sd 10 over the known values; missing -> 0
    np.testing.assert_allclose(x[:, 0], [-1.0, 1.0, 0.0])
    np.testing.assert_array_equal(x[:, 1:3], [[1, 0], [0, 1], [1, 0]])
    np.testing.assert_array_equal(x[:, 3:5], [[1, 0], [1, 1], [0, 0]])
    np.testing.assert_array_equal(x[:, 5:7], [[1, 0], [0, 1], [0, 0]])
    # year standardised by mean 1999, sd 4; missing year -> 0 and counted in "other"
    np.testing.assert_allclose(x[:, 7], [-1.0, 1.0, 0.0])
    np.testing.assert_array_equal(x[:, 8], [0, 0, 1])


def test_unknown_categories_and_out_of_range_years() -> None:
    frame = pd.DataFrame({"job": ["a", "a", "b"], "year": [1990, 1995, 2001]})
    encoder = FeatureEncoder({"job": "categorical", "year": "year"}, max_categories=1).fit(frame)
    new = pd.DataFrame({"job": ["b", "zzz", "a"], "year": [1900, 2050, 1991]})
    x = encoder.transform(new)
    names = encoder.output_names
    assert names[:1] == ["job=a"]  # only the most frequent value is kept
    other = x[:, names.index("other")]
    np.testing.assert_array_equal(x[:, 0], [0, 0, 1])
    np.testing.assert_array_equal(other, [1, 1, 0])
    # 1900 falls into the first bucket, 2050 into the last
    assert x[0, names.index("year in 1990s")] == 1 and x[1, names.index("year in 2000s")] == 1


def test_hashed_text_is_unit_length_and_order_free() -> None:
    frame = pd.DataFrame({"title": ["The Big Sleep", "sleep big the", None]})
    encoder = FeatureEncoder({"title": "text"}, text_buckets=32).fit(frame)
    x = encoder.transform(frame)
    assert x.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(x[:2], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(x[0], x[1])
    assert not x[2].any()


def test_encoder_state_is_json_and_round_trips() -> None:
    frame = pd.DataFrame({"age": [1.0, 5.0], "genres": ["A|B", "B"], "year": [1980, 1999]})
    encoder = FeatureEncoder({"age": "numeric", "genres": "multi", "year": "year"}).fit(frame)
    state = json.loads(json.dumps(encoder.to_state()))
    again = FeatureEncoder.from_state(state)
    np.testing.assert_array_equal(again.transform(frame), encoder.transform(frame))
    with pytest.raises(DataError):
        FeatureEncoder.from_state({"columns": {}})


def test_tables_validate_their_input() -> None:
    frame = pd.DataFrame({"item_id": [1, 2], "genres": [["A"], ["B"]], "year": [2000, 2001]})
    table = ItemFeatures(frame, {"genres": "multi", "year": "year"})
    assert len(table) == 2 and table.columns == {"genres": "multi", "year": "year"}
    rows = table.rows([2, 99])
    assert rows["year"].iloc[0] == 2001 and pd.isna(rows["year"].iloc[1])
    with pytest.raises(ConfigError, match="use one of"):
        ItemFeatures(frame, {"genres": "tags"})
    with pytest.raises(DataError, match="id column"):
        UserFeatures(frame)
    with pytest.raises(DataError, match="unique"):
        ItemFeatures(pd.concat([frame, frame]), {"year": "year"})
    guessed = ItemFeatures(frame)
    assert guessed.columns == {"genres": "multi", "year": "numeric"}


def _ratings() -> Interactions:
    return Interactions.from_arrays(
        ["u", "u", "u", "v"], ["a", "b", "c", "a"], [5.0, 3.0, 1.0, 2.0], rating_scale=(1, 5)
    )


def test_derived_features_known_answer() -> None:
    data = _ratings()  # global mean C = 11 / 4 = 2.75
    genres = {"a": ["Drama"], "b": ["Comedy", "Drama"], "c": ["Comedy"]}
    users = derived_user_features(data, genres, shrinkage=0.0)
    assert list(users.columns) == [
        "log_count", "mean_rating", "mean_rating_Comedy", "mean_rating_Drama",
    ]
    np.testing.assert_allclose(users.loc["u"], [np.log(4), 3.0, 2.0, 4.0])
    np.testing.assert_allclose(users.loc["v"], [np.log(2), 2.0, 2.75, 2.0])
    shrunk = derived_user_features(data, genres, shrinkage=1.0)
    # (Σy + m C) / (n + m) for u: (9 + 2.75) / 4
    assert shrunk.loc["u", "mean_rating"] == pytest.approx(11.75 / 4)
    items = derived_item_features(data, shrinkage=0.0)
    np.testing.assert_allclose(items.loc["a"], [np.log(3), 3.5])
    np.testing.assert_allclose(items.loc["c"], [np.log(2), 1.0])


def test_derived_features_do_not_see_the_test_split() -> None:
    synthetic = synthetic_ratings(60, 40, 900, seed=3)
    data = synthetic.ratings
    genres = synthetic.items.set_index("item_id")["genres"]
    train, test = random_split(data, test_fraction=0.2, seed=0)
    before = derived_user_features(train, genres)
    # the same events with every test rating changed: the training split is the same
    changed_values = data.values.copy()
    test_keys = set(zip(test.user_ids.tolist(), test.item_ids.tolist(), strict=True))
    is_test = np.array(
        [(u, i) in test_keys for u, i in zip(data.user_ids, data.item_ids, strict=True)]
    )
    changed_values[is_test] = 6.0 - changed_values[is_test]
    changed = Interactions.from_arrays(
        data.user_ids, data.item_ids, changed_values, rating_scale=data.rating_scale,
        users=data.users, items=data.items,
    )
    train2, test2 = random_split(changed, test_fraction=0.2, seed=0)
    assert not np.array_equal(test2.values, test.values)
    pd.testing.assert_frame_equal(derived_user_features(train2, genres), before)
    pd.testing.assert_frame_equal(derived_item_features(train2), derived_item_features(train))
    # whereas features computed on everything would have changed
    assert not derived_user_features(changed, genres).equals(derived_user_features(data, genres))


def test_datasets_offer_ready_made_features() -> None:
    synthetic = synthetic_ratings(30, 20, 200, seed=1)
    dataset = Dataset("s", synthetic.ratings, synthetic.items, synthetic.users)
    users = dataset.user_features
    items = dataset.item_features
    assert users is not None and items is not None
    assert users.columns == {
        "age": "numeric", "gender": "categorical", "occupation": "categorical",
        "zip_region": "categorical",
    }
    assert items.columns == {"genres": "multi", "year": "year"}
    assert users.frame["zip_region"].str.len().max() == 1
    assert Dataset("t", synthetic.ratings).user_features is None
