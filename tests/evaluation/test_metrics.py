"""Known answers and properties of the rating and ranking metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from palate.errors import ConfigError, DataError
from palate.evaluation import (
    average_precision_at_k,
    catalog_coverage,
    hit_rate_at_k,
    intra_list_diversity,
    mae,
    map_at_k,
    mean_over_users,
    most_popular_items,
    ndcg_at_k,
    novelty,
    popularity_bias,
    precision_at_k,
    recall_at_k,
    rmse,
)

RANKING = [precision_at_k, recall_at_k, ndcg_at_k, average_precision_at_k, hit_rate_at_k]


# ---------------------------------------------------------------------------- rating metrics
def test_rmse_and_mae_known_answers() -> None:
    assert rmse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0]) == pytest.approx(math.sqrt(4 / 3))
    assert mae([1.0, 2.0, 3.0], [2.0, 2.0, 5.0]) == pytest.approx(1.0)
    assert rmse([4.0], [4.0]) == 0.0
    assert mae(np.array([[1.0, 5.0]]), np.array([[2.0, 3.0]])) == pytest.approx(1.5)


def test_rmse_is_at_least_mae() -> None:
    rng = np.random.default_rng(3)
    y, p = rng.normal(size=50), rng.normal(size=50)
    assert rmse(y, p) >= mae(y, p)


def test_rating_metrics_reject_bad_input() -> None:
    with pytest.raises(DataError, match="one prediction"):
        rmse([1.0, 2.0], [1.0])
    with pytest.raises(DataError, match="empty"):
        mae([], [])
    with pytest.raises(DataError, match="numeric"):
        rmse(["a"], [1.0])


def test_nan_prediction_propagates() -> None:
    assert math.isnan(rmse([1.0, 2.0], [1.0, float("nan")]))


# ---------------------------------------------------------------------------- known answers
def test_precision_recall_hit_rate_known_answers() -> None:
    recommended = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    relevant = [{1, 3, 9}, {8}]
    np.testing.assert_allclose(precision_at_k(recommended, relevant, k=4), [0.5, 0.25])
    np.testing.assert_allclose(precision_at_k(recommended, relevant, k=2), [0.5, 0.0])
    np.testing.assert_allclose(recall_at_k(recommended, relevant, k=4), [2 / 3, 1.0])
    np.testing.assert_allclose(recall_at_k(recommended, relevant, k=3), [2 / 3, 0.0])
    np.testing.assert_allclose(hit_rate_at_k(recommended, relevant, k=3), [1.0, 0.0])
    np.testing.assert_allclose(hit_rate_at_k(recommended, relevant), [1.0, 1.0])


def test_ndcg_known_answer_from_the_textbook_case() -> None:
    # gains [1, 0, 1] with two relevant items
    expected = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k([[10, 11, 12]], [{10, 12}], k=3)[0] == pytest.approx(expected)
    # one hit at rank 2 of one relevant item: (1/log2 3) / 1
    assert ndcg_at_k([[5, 7]], [{7}], k=2)[0] == pytest.approx(1 / math.log2(3))
    # ideal DCG uses min(k, |R|): three relevant, k = 2, hits at both ranks -> 1
    assert ndcg_at_k([[1, 2]], [{1, 2, 3}], k=2)[0] == pytest.approx(1.0)


def test_average_precision_known_answers() -> None:
    # hits at ranks 1 and 3, two relevant: (1/1 + 2/3) / 2
    assert average_precision_at_k([[1, 0, 2]], [{1, 2}], k=3)[0] == pytest.approx(5 / 6)
    # hits at ranks 2 and 3 of five relevant, k = 3: (1/2 + 2/3) / min(3, 5)
    assert average_precision_at_k([[0, 1, 2]], [{1, 2, 3, 4, 5}], k=3)[0] == pytest.approx(
        (1 / 2 + 2 / 3) / 3
    )
    assert map_at_k([[1, 0, 2], [5, 6, 7]], [{1, 2}, {6}], k=3) == pytest.approx(
        (5 / 6 + 1 / 2) / 2
    )


def test_catalog_coverage_known_answers() -> None:
    recommended = np.array([[0, 1, 2], [1, 3, -1], [1, 2, 4]])
    assert catalog_coverage(recommended, n_items=10) == pytest.approx(0.5)
    assert catalog_coverage(recommended, n_items=10, k=1) == pytest.approx(0.2)
    assert catalog_coverage([["a", "b"], ["b", None]], n_items=4) == pytest.approx(0.5)
    with pytest.raises(DataError, match="n_items"):
        catalog_coverage(recommended, n_items=3)
    with pytest.raises(ConfigError, match="n_items"):
        catalog_coverage(recommended, n_items=0)


def test_users_without_relevant_items_are_nan_and_left_out_of_the_mean() -> None:
    recommended = np.array([[1, 2], [3, 4], [5, 6]])
    relevant = [{1}, set(), np.array([], dtype=np.int64)]
    for metric in RANKING:
        values = metric(recommended, relevant, k=2)
        assert values.shape == (3,)
        assert not np.isnan(values[0]) and np.isnan(values[1:]).all()
    assert mean_over_users(precision_at_k(recommended, relevant, k=2)) == pytest.approx(0.5)
    assert math.isnan(mean_over_users([float("nan")]))
    assert math.isnan(map_at_k([[1]], [set()]))


def test_padding_short_rows_and_k_beyond_width() -> None:
    padded = np.array([[1, -1, -1], [2, 3, -1]])
    relevant = [{1, -1}, {3}]
    np.testing.assert_allclose(precision_at_k(padded, relevant, k=3), [1 / 3, 1 / 3])
    np.testing.assert_allclose(recall_at_k(padded, relevant, k=3), [1.0, 1.0])
    # the same with None padding, NaN padding and ragged lists
    as_objects = np.array([[1, None, None], [2, 3, None]], dtype=object)
    as_floats = np.array([[1.0, np.nan, np.nan], [2.0, 3.0, np.nan]])
    ragged = [[1], [2, 3]]
    for variant in (as_objects, as_floats):
        np.testing.assert_allclose(precision_at_k(variant, relevant, k=3), [1 / 3, 1 / 3])
    np.testing.assert_allclose(precision_at_k(ragged, [{1}, {3}], k=3), [1 / 3, 1 / 3])
    # k beyond the width: missing columns are padding
    np.testing.assert_allclose(precision_at_k([[1, 2]], [{1, 2}], k=4), [0.5])
    np.testing.assert_allclose(ndcg_at_k([[1, 2]], [{1, 2}], k=4), [1.0])


def test_repeated_item_counts_once() -> None:
    np.testing.assert_allclose(precision_at_k([[1, 1, 2]], [{1}], k=3), [1 / 3])
    np.testing.assert_allclose(ndcg_at_k([[1, 1]], [{1, 2}], k=2), [1 / (1 + 1 / math.log2(3))])


def test_string_ids() -> None:
    recommended = np.array([["a", "b", "c"], ["d", "e", None]], dtype=object)
    relevant = [["c", "a"], {"e", "z"}]
    np.testing.assert_allclose(precision_at_k(recommended, relevant, k=3), [2 / 3, 1 / 3])
    np.testing.assert_allclose(recall_at_k(recommended, relevant, k=3), [1.0, 0.5])
    expected = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(recommended, relevant, k=3)[0] == pytest.approx(expected)


def test_relevant_given_as_a_padded_two_d_array() -> None:
    relevant = np.array([[1, 2], [3, -1]])
    np.testing.assert_allclose(recall_at_k([[1, 9], [3, 9]], relevant, k=2), [0.5, 1.0])


def test_ids_spread_over_the_int64_range_and_float_ids() -> None:
    big = 2**62
    recommended = np.array([[big, 1, -5], [3, big, 7]])
    relevant = [{big, -5}, [7, 2]]
    np.testing.assert_allclose(precision_at_k(recommended, relevant, k=3), [2 / 3, 1 / 3])
    floats = [np.array([1.0, np.nan]), np.array([7.0])]
    np.testing.assert_allclose(recall_at_k(recommended, floats, k=3), [1.0, 1.0])
    with pytest.raises(DataError, match="integer"):
        recall_at_k(recommended, [[1.5], [2.0]], k=3)


def test_bad_ranking_input_names_the_fix() -> None:
    with pytest.raises(ConfigError, match="k must be"):
        precision_at_k([[1]], [{1}], k=0)
    with pytest.raises(DataError, match="one collection"):
        precision_at_k([[1], [2]], [{1}], k=1)
    with pytest.raises(DataError, match=r"\[row\]"):
        recall_at_k(np.array([1, 2]), [{1}], k=1)
    with pytest.raises(DataError, match="collection"):
        recall_at_k([[1]], [1], k=1)


# ---------------------------------------------------------------------------- properties
@st.composite
def ranking_batches(draw: st.DrawFn) -> tuple[np.ndarray, list[set[int]], int]:
    n_items = draw(st.integers(1, 15))
    n_users = draw(st.integers(1, 6))
    width = draw(st.integers(1, 8))
    rows, relevant = [], []
    for _ in range(n_users):
        length = draw(st.integers(0, min(width, n_items)))
        row = draw(st.permutations(range(n_items)))[:length]
        rows.append(list(row) + [-1] * (width - length))
        relevant.append(set(draw(st.lists(st.integers(0, n_items - 1), max_size=n_items))))
    k = draw(st.integers(1, width + 2))
    return np.array(rows, dtype=np.int64), relevant, k


def _brute_force(row: list[int], relevant: set[int], k: int) -> dict[str, float]:
    gains = [1.0 if item in relevant else 0.0 for item in row[:k]] + [0.0] * max(0, k - len(row))
    hits = sum(gains)
    dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
    idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(relevant))))
    precisions = [sum(gains[: r + 1]) / (r + 1) for r in range(k)]
    ap = sum(p * g for p, g in zip(precisions, gains, strict=True)) / min(k, len(relevant))
    return {
        "precision": hits / k,
        "recall": hits / len(relevant),
        "ndcg": dcg / idcg,
        "ap": ap,
        "hit_rate": float(hits > 0),
    }


@settings(max_examples=60, deadline=None)
@given(ranking_batches())
def test_metrics_match_a_brute_force_definition(batch: tuple) -> None:
    recommended, relevant, k = batch
    computed = {
        "precision": precision_at_k(recommended, relevant, k),
        "recall": recall_at_k(recommended, relevant, k),
        "ndcg": ndcg_at_k(recommended, relevant, k),
        "ap": average_precision_at_k(recommended, relevant, k),
        "hit_rate": hit_rate_at_k(recommended, relevant, k),
    }
    for u, row in enumerate(recommended.tolist()):
        if not relevant[u]:
            assert all(np.isnan(values[u]) for values in computed.values())
            continue
        expected = _brute_force([x for x in row if x != -1], relevant[u], k)
        for name, values in computed.items():
            assert 0.0 <= values[u] <= 1.0 + 1e-12
            assert values[u] == pytest.approx(expected[name]), name


@settings(max_examples=40, deadline=None)
@given(ranking_batches())
def test_precision_times_k_counts_hits_and_hit_rate_agrees(batch: tuple) -> None:
    recommended, relevant, k = batch
    precision = precision_at_k(recommended, relevant, k)
    hit_rate = hit_rate_at_k(recommended, relevant, k)
    for u, row in enumerate(recommended.tolist()):
        if relevant[u]:
            hits = len(set(row[:k]) & relevant[u])
            assert precision[u] * k == pytest.approx(hits)
            assert hit_rate[u] == float(hits > 0)


@settings(max_examples=40, deadline=None)
@given(ranking_batches())
def test_recall_and_coverage_grow_with_k(batch: tuple) -> None:
    recommended, relevant, _ = batch
    width = recommended.shape[1]
    recalls = np.array([recall_at_k(recommended, relevant, k) for k in range(1, width + 1)])
    coverages = [catalog_coverage(recommended, 15, k) for k in range(1, width + 1)]
    defined = ~np.isnan(recalls[0])
    assert np.all(np.diff(recalls[:, defined], axis=0) >= -1e-12)
    assert np.all(np.diff(coverages) >= 0)
    assert all(0.0 <= c <= 1.0 for c in coverages)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.randoms(use_true_random=False))
def test_perfect_ranking_scores_one(n_relevant: int, k: int, random: object) -> None:
    relevant = set(range(100, 100 + n_relevant))
    ranked = list(relevant)
    random.shuffle(ranked)  # type: ignore[attr-defined]
    row = np.array([ranked + list(range(20))])
    for metric in (ndcg_at_k, average_precision_at_k, hit_rate_at_k):
        assert metric(row, [relevant], k)[0] == pytest.approx(1.0)
    assert recall_at_k(row, [relevant], max(k, n_relevant))[0] == pytest.approx(1.0)
    assert precision_at_k(row, [relevant], k)[0] == pytest.approx(min(k, n_relevant) / k)


@settings(max_examples=40, deadline=None)
@given(ranking_batches())
def test_at_k_metrics_ignore_what_lies_beyond_k(batch: tuple) -> None:
    recommended, relevant, k = batch
    if k >= recommended.shape[1]:
        return
    changed = recommended.copy()
    changed[:, k:] = -1
    for metric in RANKING:
        np.testing.assert_array_equal(
            metric(recommended, relevant, k), metric(changed, relevant, k)
        )


@settings(max_examples=40, deadline=None)
@given(ranking_batches())
def test_ndcg_ignores_extra_relevant_items_once_k_are_relevant(batch: tuple) -> None:
    # with |R| >= k the ideal DCG is capped at k ranks: one more relevant item that is not
    # recommended changes nothing
    recommended, relevant, k = batch
    extended = [items | {1000} if len(items) >= k else items for items in relevant]
    np.testing.assert_allclose(
        ndcg_at_k(recommended, relevant, k), ndcg_at_k(recommended, extended, k)
    )
    np.testing.assert_allclose(
        average_precision_at_k(recommended, relevant, k),
        average_precision_at_k(recommended, extended, k),
    )


@settings(max_examples=30, deadline=None)
@given(ranking_batches())
def test_string_ids_give_the_same_answers_as_integers(batch: tuple) -> None:
    recommended, relevant, k = batch
    as_text = np.array(
        [[None if x == -1 else f"item{x}" for x in row] for row in recommended.tolist()],
        dtype=object,
    )
    text_relevant = [{f"item{x}" for x in items} for items in relevant]
    for metric in RANKING:
        np.testing.assert_array_equal(
            metric(recommended, relevant, k), metric(as_text, text_relevant, k)
        )


# ---------------------------------------------------------------------------- beyond accuracy
def test_novelty_known_answers() -> None:
    # 4 training users; p(1) = 4/4, p(2) = 2/4, p(3) = 1/4, item 9 unseen counts as once
    counts = {1: 4.0, 2: 2.0, 3: 1.0}
    recommended = np.array([[1, 2, -1], [3, 9, 1], [-1, -1, -1]])
    values = novelty(recommended, counts, n_users=4)
    assert values[0] == pytest.approx((0.0 + 1.0) / 2)
    assert values[1] == pytest.approx((2.0 + 2.0 + 0.0) / 3)
    assert math.isnan(values[2])
    # k cuts the lists; a repeated item counts once
    np.testing.assert_allclose(novelty(recommended, counts, 4, k=1)[:2], [0.0, 2.0])
    assert novelty([[3, 3, 1]], counts, n_users=4)[0] == pytest.approx(1.0)
    # string ids, ragged rows
    text = novelty([["a", "b"], ["b"]], {"a": 8, "b": 1}, n_users=8)
    np.testing.assert_allclose(text, [(0.0 + 3.0) / 2, 3.0])
    with pytest.raises(ConfigError, match="n_users"):
        novelty([[1]], counts, n_users=0)


def test_most_popular_items_known_answers() -> None:
    ids = np.array([10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20])
    counts = np.array([1, 9, 3, 9, 0, 0, 7, 0, 0, 0, 0])
    # ceil(0.1 * 11) = 2 items; the tie 11 / 13 keeps vocabulary order
    assert most_popular_items(ids, counts, share=0.1).tolist() == [11, 13]
    assert most_popular_items(ids, counts, share=0.3).tolist() == [11, 13, 16, 12]
    assert most_popular_items(ids[:3], counts[:3], share=0.01).tolist() == [11]  # at least one
    with pytest.raises(DataError, match="one count per item"):
        most_popular_items(ids, counts[:3], share=0.1)
    with pytest.raises(ConfigError, match="share"):
        most_popular_items(ids, counts, share=0.0)


def test_popularity_bias_known_answers() -> None:
    recommended = [[1, 2, 3, 4], [5, 6, -1, -1], [-1, -1, -1, -1]]
    values = popularity_bias(recommended, {1, 3, 6})
    np.testing.assert_allclose(values[:2], [2 / 4, 1 / 2])
    assert math.isnan(values[2])
    np.testing.assert_allclose(popularity_bias(recommended, np.array([1, 3, 6]), k=1)[:2],
                               [1.0, 0.0])


def test_intra_list_diversity_known_answers() -> None:
    genres = {1: {"Comedy"}, 2: {"Comedy", "Drama"}, 3: {"Horror"}, 4: set()}
    # pairs of [1, 2, 3]: 1 - 1/2, 1 - 0/2, 1 - 0/3 -> (0.5 + 1 + 1) / 3
    values = intra_list_diversity([[1, 2, 3], [1, -1, -1], [4, 5, -1], [1, 1, 1]], genres)
    assert values[0] == pytest.approx(2.5 / 3)
    assert math.isnan(values[1])  # fewer than two items
    assert values[2] == 0.0  # two empty sets (5 is unknown: empty too)
    assert math.isnan(values[3])  # one distinct item
    # identical sets are at distance 0, disjoint ones at 1
    np.testing.assert_allclose(
        intra_list_diversity([[1, 2], [1, 3]], genres, k=2), [0.5, 1.0]
    )
