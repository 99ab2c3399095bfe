"""The synthetic generator: shapes, determinism, distributions and planted structure."""

from __future__ import annotations

import numpy as np
import pytest

from palate.data.synthetic import GENRES, OCCUPATIONS, SyntheticData, synthetic_ratings
from palate.errors import ConfigError


@pytest.fixture(scope="module")
def small() -> SyntheticData:
    return synthetic_ratings(n_users=300, n_items=200, n_ratings=6000, seed=7)


def pair_keys(data: SyntheticData) -> np.ndarray:
    ratings = data.ratings
    return ratings.user_idx.astype(np.int64) * ratings.n_items + ratings.item_idx


def test_shapes_and_tables(small: SyntheticData) -> None:
    ratings = small.ratings
    assert len(ratings) == 6000 and ratings.shape == (300, 200)
    assert ratings.kind == "explicit" and ratings.rating_scale == (1.0, 5.0)
    np.testing.assert_array_equal(ratings.users.ids, np.arange(300))
    np.testing.assert_array_equal(ratings.items.ids, np.arange(200))
    assert small.true_user_factors.shape == (300, 8)
    assert small.true_item_factors.shape == (200, 8)
    assert small.true_user_bias.shape == (300,) and small.true_item_bias.shape == (200,)
    assert small.genre_directions.shape == (18, 8) and small.genre_names == GENRES

    assert small.items.columns.tolist() == ["item_id", "title", "genres", "year"]
    assert small.items["title"].iloc[17] == "Item 17"
    assert all(1 <= len(g) <= 3 and set(g) <= set(GENRES) for g in small.items["genres"])
    assert small.items["year"].between(1920, 2019).all()

    users = small.users
    assert users.columns.tolist() == ["user_id", "age", "gender", "occupation", "zip"]
    np.testing.assert_array_equal(users["user_id"], np.arange(300))
    assert users["age"].between(13, 80).all()
    assert set(users["gender"]) == {"F", "M"}
    assert set(users["occupation"]) <= set(OCCUPATIONS)
    assert users["zip"].str.fullmatch(r"\d{5}").all()

    assert ratings.timestamps is not None
    assert ratings.timestamps.min() >= 946_684_800 and ratings.timestamps.max() <= 1_577_836_800


def test_same_seed_same_data_other_seed_other_data(small: SyntheticData) -> None:
    again = synthetic_ratings(n_users=300, n_items=200, n_ratings=6000, seed=7)
    assert again.ratings.fingerprint() == small.ratings.fingerprint()
    np.testing.assert_array_equal(again.ratings.timestamps, small.ratings.timestamps)
    np.testing.assert_array_equal(again.true_item_factors, small.true_item_factors)
    assert again.items.equals(small.items) and again.users.equals(small.users)
    other = synthetic_ratings(n_users=300, n_items=200, n_ratings=6000, seed=8)
    assert other.ratings.fingerprint() != small.ratings.fingerprint()


def test_no_duplicate_pairs_on_both_sampling_paths() -> None:
    # 200 x 100 cells are sampled exactly; 5000 x 4000 cells (over 2^24) by keys and top-ups,
    # with a steep popularity so that many draws collide
    for n_users, n_items, n_ratings, exponent in [
        (200, 100, 20_000, 1.0),
        (200, 100, 7_000, 1.0),
        (5000, 4000, 120_000, 1.5),
    ]:
        data = synthetic_ratings(n_users, n_items, n_ratings, popularity_exponent=exponent, seed=1)
        keys = pair_keys(data)
        assert len(keys) == n_ratings
        assert len(np.unique(keys)) == n_ratings


def test_popularity_is_skewed_by_the_exponent() -> None:
    def top_decile_share(exponent: float, n_users: int, n_items: int) -> float:
        data = synthetic_ratings(n_users, n_items, 40_000, popularity_exponent=exponent, seed=2)
        counts = np.sort(data.ratings.item_counts())[::-1]
        return counts[: n_items // 10].sum() / counts.sum()

    for n_users, n_items in [(2000, 1000), (5000, 4000)]:  # both sampling paths
        assert top_decile_share(1.0, n_users, n_items) > 0.5
        assert top_decile_share(0.0, n_users, n_items) < 0.2


def test_values_lie_on_the_scale_and_the_step(small: SyntheticData) -> None:
    values = small.ratings.values
    assert values.min() >= 1.0 and values.max() <= 5.0
    np.testing.assert_array_equal(values * 2, np.round(values * 2))
    assert 3.0 < values.mean() < 4.0 and 0.7 < values.std() < 1.3
    whole = synthetic_ratings(100, 80, 2000, rating_step=1.0, seed=0).ratings.values
    assert set(np.unique(whole)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    continuous = synthetic_ratings(100, 80, 2000, rating_step=None, seed=0).ratings.values
    assert len(np.unique(continuous)) > 100


def test_binary_labels_follow_the_planted_score() -> None:
    data = synthetic_ratings(300, 200, 20_000, kind="binary", seed=1)
    ratings = data.ratings
    assert ratings.kind == "binary" and ratings.rating_scale is None
    assert set(np.unique(ratings.values)) == {0.0, 1.0}
    assert 0.35 < ratings.values.mean() < 0.65
    score = data.true_score(ratings.user_ids, ratings.item_ids)
    positive = ratings.values == 1
    assert score[positive].mean() > score[~positive].mean() + 1.0
    # calibration: the share of positives tracks g(score) by score decile
    deciles = np.quantile(score, np.linspace(0, 1, 11))
    which = np.clip(np.searchsorted(deciles, score, side="right") - 1, 0, 9)
    for d in range(10):
        chosen = which == d
        expected = np.mean(1 / (1 + np.exp(-score[chosen])))
        assert abs(ratings.values[chosen].mean() - expected) < 0.06


def test_noiseless_ratings_are_the_clipped_planted_score() -> None:
    data = synthetic_ratings(60, 40, 1500, noise=0.0, rating_step=None, seed=4)
    ratings = data.ratings
    expected = np.clip(data.true_score(ratings.user_ids, ratings.item_ids), 1.0, 5.0)
    np.testing.assert_allclose(ratings.values, expected, atol=1e-5)


def test_planted_structure_has_the_embedding_rank() -> None:
    k = 6
    data = synthetic_ratings(
        120, 80, 120 * 80, embedding_size=k, noise=0.0, rating_step=None, seed=3
    )
    dense = data.ratings.to_csr().toarray()
    residual = (
        dense - data.true_global - data.true_user_bias[:, None] - data.true_item_bias[None, :]
    )
    singular = np.linalg.svd(residual, compute_uv=False)
    energy = np.cumsum(singular**2) / np.sum(singular**2)
    assert energy[k - 1] > 0.95  # clipping at 1 and 5 is the only departure from rank k
    assert singular[k] < 0.4 * singular[k - 1]
    # least squares on the true item factors explains most of every user's residuals
    coefficients, *_ = np.linalg.lstsq(data.true_item_factors, residual.T, rcond=None)
    fitted = (data.true_item_factors @ coefficients).T
    explained = 1 - np.sum((residual - fitted) ** 2) / np.sum((residual - residual.mean()) ** 2)
    assert explained > 0.9


def test_noisy_ratings_are_still_explained_by_the_truth(small: SyntheticData) -> None:
    ratings = small.ratings
    score = small.true_score(ratings.user_ids, ratings.item_ids)
    assert np.corrcoef(score, ratings.values)[0, 1] > 0.7


def test_genres_point_along_their_directions(small: SyntheticData) -> None:
    projection = small.true_item_factors @ small.genre_directions.T  # (n_items, n_genres)
    for j, name in enumerate(small.genre_names):
        member = np.array([name in genres for genres in small.items["genres"]])
        if member.sum() >= 3:
            assert projection[member, j].mean() > projection[~member, j].mean()


def test_user_attributes_carry_part_of_the_taste() -> None:
    data = synthetic_ratings(3000, 50, 3000, seed=5)
    one_hot = np.eye(len(OCCUPATIONS))[data.users["occupation"].map(OCCUPATIONS.index).to_numpy()]
    features = np.column_stack(
        [one_hot, data.users["gender"].eq("F").to_numpy(float), data.users["age"].to_numpy(float)]
    )
    factors = data.true_user_factors
    coefficients, *_ = np.linalg.lstsq(features, factors, rcond=None)
    explained = 1 - np.var(factors - features @ coefficients) / np.var(factors)
    assert 0.25 < explained < 0.35  # 30 % by construction


def test_more_genres_than_movielens_get_generic_names() -> None:
    data = synthetic_ratings(20, 30, 100, n_genres=20, seed=0)
    assert data.genre_names[-2:] == ("Genre 19", "Genre 20")
    assert synthetic_ratings(20, 30, 100, n_genres=1, seed=0).items["genres"].map(len).eq(1).all()


def test_true_score_checks_its_input(small: SyntheticData) -> None:
    expected = (
        small.true_global
        + small.true_user_bias[3]
        + small.true_item_bias[5]
        + small.true_user_factors[3] @ small.true_item_factors[5]
    )
    assert small.true_score([3], [5])[0] == pytest.approx(expected)
    with pytest.raises(ConfigError, match="pairs"):
        small.true_score([1, 2], [3])


def test_a_full_matrix_can_be_drawn() -> None:
    data = synthetic_ratings(7, 5, 35, seed=0)
    assert np.all(data.ratings.to_csr().toarray() > 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_ratings": 101}, "exceeds"),
        ({"n_users": 0}, "n_users"),
        ({"n_ratings": 1.5}, "n_ratings"),
        ({"embedding_size": 0}, "embedding_size"),
        ({"kind": "implicit"}, "kind"),
        ({"noise": -1.0}, "noise"),
        ({"popularity_exponent": 9.0}, "popularity_exponent"),
        ({"n_genres": 0}, "n_genres"),
        ({"rating_step": 0.3}, "rating_step"),
        ({"seed": "x"}, "seed"),
    ],
)
def test_bad_arguments_name_the_fix(kwargs: dict, match: str) -> None:
    arguments = {"n_users": 10, "n_items": 10, "n_ratings": 50, **kwargs}
    with pytest.raises(ConfigError, match=match):
        synthetic_ratings(**arguments)


def test_too_dense_for_a_large_matrix_is_refused() -> None:
    with pytest.raises(ConfigError, match="fill more than"):
        synthetic_ratings(5000, 4000, 6_000_000)
