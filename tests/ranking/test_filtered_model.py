"""Filters people set themselves (a support floor, policies on item attributes) on any model:
never an item that fails them, and the model's own top-k among the items that pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from palate import CollaborativeFiltering, FilteredModel, Popularity
from palate.data.synthetic import synthetic_ratings
from palate.errors import ConfigError
from palate.ranking import ItemFilter, ItemPolicy, parse_policy
from palate.ranking.filters import training_events


@pytest.fixture(scope="module")
def model() -> CollaborativeFiltering:
    data = synthetic_ratings(60, 40, 900, seed=1).ratings
    return CollaborativeFiltering(embedding_size=3, epochs=10, seed=0).fit(data)


@pytest.fixture(scope="module")
def items(model: CollaborativeFiltering) -> pd.DataFrame:
    ids = model.items_.ids
    return pd.DataFrame(
        {
            "item_id": ids,
            "year": pd.array([1950 + 3 * (n % 20) for n in range(len(ids))], dtype="Int64"),
            "genres": ["Horror|Drama" if n % 3 == 0 else "Comedy" for n in range(len(ids))],
        }
    )


def test_recommend_is_the_top_k_among_the_allowed_items(
    model: CollaborativeFiltering, items: pd.DataFrame
) -> None:
    filtered = FilteredModel(
        model, items, min_ratings=12, policies=["year>=1970", "genres!=Horror"]
    )
    counts = training_events(model)
    table = items.set_index("item_id")
    users = model.users_.ids[:8]
    plain = model.recommend(users, k=len(model.items_))
    got = filtered.recommend(users, k=5)
    assert got.item_ids.shape == got.scores.shape == (8, 5)
    for row in range(len(users)):
        listed = got.item_ids[row][np.isfinite(got.scores[row])]
        whole = [i for i in plain.item_ids[row] if filtered.passes(np.array([i]))[0]]
        assert len(listed) == min(5, len(whole))
        rows = model.items_.index(listed)
        assert (counts[rows] >= 12).all()
        assert (table.loc[listed, "year"] >= 1970).all()
        assert not table.loc[listed, "genres"].str.contains("Horror").any()
        assert list(listed) == whole[:5]
    assert (np.isfinite(got.scores).sum(axis=1) == 5).any()


def test_rows_are_padded_when_the_catalogue_runs_out(model: CollaborativeFiltering) -> None:
    counts = training_events(model)
    floor = int(np.sort(counts)[-3])  # three items (or a few more, on ties) pass
    filtered = FilteredModel(model, min_ratings=floor)
    n_allowed = int(filtered.allowed_.sum())
    got = filtered.recommend(model.users_.ids[:3], k=n_allowed + 5, exclude_seen=False)
    assert got.item_ids.shape == (3, n_allowed + 5)
    assert np.isfinite(got.scores).sum(axis=1).tolist() == [n_allowed] * 3
    assert np.isnan(got.scores[:, n_allowed:]).all()
    assert filtered.passes(got.item_ids[:, :n_allowed].ravel()).all()


def test_similar_items_and_fold_in_are_filtered(
    model: CollaborativeFiltering, items: pd.DataFrame
) -> None:
    filtered = FilteredModel(model, items, policies=[ItemPolicy("genres", "contains", "Comedy")])
    similar = filtered.similar_items(model.items_.ids[:4], k=6)
    assert similar.similar_ids.shape == (4, 6)
    assert filtered.passes(similar.similar_ids.ravel()).all()
    everything = model.similar_items(model.items_.ids[:4], k=len(model.items_) - 1)
    for row in range(4):
        allowed = [i for i in everything.similar_ids[row] if filtered.passes(np.array([i]))[0]]
        assert list(similar.similar_ids[row]) == allowed[:6]
    ratings = {model.items_.ids[0]: 5.0, model.items_.ids[1]: 1.0}
    ids, scores = filtered.recommend_for_ratings(ratings, k=7)
    assert ids.shape == scores.shape == (7,)
    assert filtered.passes(ids).all()
    all_ids, _ = model.recommend_for_ratings(ratings, k=len(model.items_))
    assert list(ids) == [i for i in all_ids if filtered.passes(np.array([i]))[0]][:7]


def test_unknown_users_fallback_is_filtered_too(model: CollaborativeFiltering) -> None:
    filtered = FilteredModel(model, min_ratings=int(np.median(training_events(model))) + 1)
    got = filtered.recommend(["nobody"], k=4)
    assert bool(got.fallback[0])
    assert filtered.passes(got.item_ids[0]).all()


def test_a_popularity_model_is_filtered_as_any_other(items: pd.DataFrame) -> None:
    data = synthetic_ratings(60, 40, 900, seed=1).ratings
    popular = Popularity().fit(data)
    got = FilteredModel(popular, items, policies=["genres=Horror"]).recommend([0], k=3)
    table = items.set_index("item_id")
    assert table.loc[got.item_ids[0], "genres"].str.contains("Horror").all()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("year>=1970", ItemPolicy("year", ">=", 1970)),
        ("year = 1999", ItemPolicy("year", "==", 1999)),
        ("genres!=Horror", ItemPolicy("genres", "not contains", "Horror")),
        ("genres == 'Film-Noir'", ItemPolicy("genres", "contains", "Film-Noir")),
        ("genres not contains Horror", ItemPolicy("genres", "not contains", "Horror")),
        ("item_id in 1, 2,3", ItemPolicy("item_id", "in", [1, 2, 3])),
        ("year < 2000.5", ItemPolicy("year", "<", 2000.5)),
    ],
)
def test_policies_from_text(text: str, expected: ItemPolicy, items: pd.DataFrame) -> None:
    assert parse_policy(text, items) == expected


@pytest.mark.parametrize("text", ["year", "year>=", ">= 3", "year ~ 3", "title contains"])
def test_unreadable_policies_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ConfigError, match="COLUMN OP VALUE"):
        parse_policy(text)


def test_a_policy_on_a_missing_column_names_the_columns(items: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="no column 'rating'.*item_id, year, genres"):
        parse_policy("rating>3", items)


def test_filters_tighten_and_never_loosen() -> None:
    operator = ItemFilter(21, (ItemPolicy("year", ">=", 1970),))
    request = ItemFilter(5, (ItemPolicy("genres", "not contains", "Horror"),))
    both = operator.tightened(request)
    assert both.min_ratings == 21
    assert set(both.policies) == {*operator.policies, *request.policies}
    assert ItemFilter.from_config(both.to_config()) == both
    with pytest.raises(ConfigError, match="min_ratings"):
        ItemFilter(-1)
    with pytest.raises(ConfigError, match="only min_ratings"):
        ItemFilter.from_config({"min_rating": 3})
