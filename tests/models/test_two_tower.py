"""The two-tower model: losses (gradient checks, known answers), training, cold start,
model files and determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import palate
from palate import ConfigError, DataError, Interactions, ItemFeatures, TwoTower, UserFeatures
from palate.models.two_tower.config import COLD_ITEMS as COLD_ITEMS_PRESET
from palate.models.two_tower.losses import (
    binary_loss,
    ratings_loss,
    retrieval_loss,
    scores,
)
from palate.models.two_tower.towers import Tower, flops_per_example, l2_normalise

SMALL = {"hidden_sizes": (16,), "embedding_size": 8, "batch_size": 64, "seed": 0}
COLD_ITEMS_SMALL = {**COLD_ITEMS_PRESET, **SMALL, "id_embedding_size": 8}


# ------------------------------------------------------------------------------ losses
def _unit(rows: int, width: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(rows, width, generator=g, dtype=torch.float64)
    return v.requires_grad_(True)


def test_ratings_loss_gradient() -> None:
    u, m = _unit(5, 4, 0), _unit(5, 4, 1)
    t = torch.linspace(-1, 1, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda a, b: ratings_loss(l2_normalise(a), l2_normalise(b), t), (u, m)
    )


def test_binary_loss_gradient() -> None:
    u, m = _unit(6, 3, 2), _unit(6, 3, 3)
    y = torch.tensor([1, 0, 1, 1, 0, 0], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda a, b: binary_loss(l2_normalise(a), l2_normalise(b), y, 0.3), (u, m)
    )


def test_retrieval_loss_gradient() -> None:
    u, m = _unit(5, 4, 4), _unit(5, 4, 5)
    items = torch.tensor([0, 1, 2, 1, 3])  # item 1 twice: masked as a negative of itself
    log_q = torch.log(torch.tensor([0.1, 0.4, 0.2, 0.4, 0.3], dtype=torch.float64))
    assert torch.autograd.gradcheck(
        lambda a, b: retrieval_loss(l2_normalise(a), l2_normalise(b), items, log_q, 0.5), (u, m)
    )


def test_normalised_dot_product_known_answer() -> None:
    v_u = l2_normalise(torch.tensor([[3.0, 4.0], [0.0, 2.0]]))
    v_m = l2_normalise(torch.tensor([[0.0, 5.0], [1.0, 0.0]]))
    np.testing.assert_allclose(v_u.numpy(), [[0.6, 0.8], [0.0, 1.0]])
    np.testing.assert_allclose(scores(v_u, v_m).numpy(), [0.8, 0.0])
    # 1/2 mean((0.8 − 0.5)², (0 − (−1))²) = 1/2 · (0.09 + 1) / 2
    t = torch.tensor([0.5, -1.0])
    assert float(ratings_loss(v_u, v_m, t)) == pytest.approx(0.2725)
    # logistic: softplus(z) − y z with z = s / τ
    y = torch.tensor([1.0, 0.0])
    expected = (np.log1p(np.exp(-1.6)) + np.log(2.0)) / 2
    assert float(binary_loss(v_u, v_m, y, 0.5)) == pytest.approx(expected)


def test_retrieval_loss_known_answer() -> None:
    v = torch.eye(2)
    log_q = torch.log(torch.tensor([0.5, 0.5]))
    # logits [[1, 0], [0, 1]] / τ − log q (a constant shift): −log softmax(1, 0) = log(1 + e^−1)
    loss = retrieval_loss(v, v, torch.tensor([0, 1]), log_q, 1.0)
    assert float(loss) == pytest.approx(np.log1p(np.exp(-1.0)))
    # the same item twice: the other column is masked, so nothing is left to contrast
    same = retrieval_loss(v, v, torch.tensor([0, 0]), log_q, 1.0)
    assert float(same) == pytest.approx(0.0, abs=1e-7)


def test_retrieval_correction_subtracts_log_q() -> None:
    v_u = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    v_m = torch.eye(2)
    q = torch.tensor([0.8, 0.2])
    # logits z_bc = v_u(b) · v_m(c) / τ − log q(c), the same for both rows:
    # [1 − log .8, −log .2]; the loss is the mean of −log softmax(z_b)_b
    z = np.array([1 - np.log(0.8), -np.log(0.2)])
    expected = np.mean([np.logaddexp(*z) - z[b] for b in range(2)])
    loss = retrieval_loss(v_u, v_m, torch.tensor([0, 1]), torch.log(q), 1.0)
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_retrieval_scores_keep_popularity() -> None:
    """Users with identical inputs rate items 0..5 with decreasing counts (30, 20, 12, 6, 3,
    1). With the log-frequency correction the in-batch softmax estimates the full softmax
    p(item | user), so the one user vector must rank the items by their count (without the
    correction popularity cancels out; with its sign flipped the order is reversed)."""
    counts = [30, 20, 12, 6, 3, 1]
    users = [f"u{j}" for i, c in enumerate(counts) for j in range(c)]
    items = [i for i, c in enumerate(counts) for _ in range(c)]
    data = Interactions.from_arrays(users, items)
    user_features = UserFeatures(
        pd.DataFrame({"user_id": sorted(set(users)), "country": "x"}),
        columns={"country": "categorical"},
    )
    item_features = ItemFeatures(
        pd.DataFrame({"item_id": range(6), "name": [f"i{i}" for i in range(6)]}),
        columns={"name": "categorical"},
    )
    model = TwoTower(objective="retrieval", hidden_sizes=(16,), embedding_size=8,
                     batch_size=16, epochs=150, learning_rate=0.01, derived_features=False,
                     early_stopping=None, temperature=0.1, seed=0)
    model.fit(data, user_features=user_features, item_features=item_features)
    v_u = model.user_vectors(features={"country": "x"})[0]
    scores = model.item_vectors(list(range(6))) @ v_u
    assert list(np.argsort(-scores)) == [0, 1, 2, 3, 4, 5]


def test_tower_outputs_unit_vectors_and_flops() -> None:
    tower = Tower(5, (8, 4), 3, n_ids=2, id_embedding_size=2)
    out = tower(torch.randn(4, 5), torch.tensor([0, 1, -1, 2]))
    np.testing.assert_allclose(out.norm(dim=1).detach().numpy(), 1.0, rtol=1e-6)
    forward, training = flops_per_example(5, (8, 4), 3, id_embedding_size=2)
    assert forward == 2 * (7 * 8 + 8 * 4 + 4 * 3)
    assert training == 2 * forward + 2 * (8 * 4 + 4 * 3)


# ------------------------------------------------------------------------------ data
def planted(n_users: int = 80, n_items: int = 40, seed: int = 0) -> tuple[
    Interactions, UserFeatures, ItemFeatures, pd.DataFrame, pd.DataFrame
]:
    """Users like either "action" or "drama"; a rating is 5 on their genre, 1 otherwise.
    Only the features can explain the ratings (no per-user or per-item effects)."""
    rng = np.random.default_rng(seed)
    taste = np.where(np.arange(n_users) % 2 == 0, "action", "drama")
    genre = np.where(np.arange(n_items) % 2 == 0, "action", "drama")
    pairs = [(u, i) for u in range(n_users) for i in range(n_items) if rng.random() < 0.3]
    u, i = np.array(pairs).T
    values = np.where(taste[u] == genre[i], 5.0, 1.0)
    data = Interactions.from_arrays(u, i, values, rating_scale=(1.0, 5.0))
    users = pd.DataFrame({"user_id": np.arange(n_users), "taste": taste,
                          "age": rng.integers(18, 60, n_users)})
    items = pd.DataFrame({"item_id": np.arange(n_items), "genres": [[g] for g in genre],
                          "year": rng.integers(1980, 2020, n_items)})
    return (
        data,
        UserFeatures(users, {"taste": "categorical", "age": "numeric"}),
        ItemFeatures(items, {"genres": "multi", "year": "year"}),
        users,
        items,
    )


@pytest.fixture(scope="module")
def planted_model() -> tuple[TwoTower, Interactions, UserFeatures, ItemFeatures]:
    data, users, items, _, _ = planted()
    model = TwoTower(**SMALL, epochs=40, learning_rate=0.01, derived_features=False,
                     early_stopping=None)
    model.fit(data, user_features=users, item_features=items)
    return model, data, users, items


def test_learns_feature_driven_preferences(planted_model: tuple) -> None:
    model, data, _, _ = planted_model
    pred = model.predict(data.user_ids, data.item_ids)
    rmse = float(np.sqrt(np.mean((pred - data.values) ** 2)))
    assert rmse < 0.5  # the global mean would give 2.0
    assert model.history_[-1]["loss"] < model.history_[0]["loss"]


def test_cold_item_is_recommended_to_the_users_who_like_its_genre(planted_model: tuple) -> None:
    model, _, _, _ = planted_model
    vectors = model.item_vectors(features=[{"genres": ["action"], "year": 2001},
                                           {"genres": ["drama"], "year": 1999}])
    assert vectors.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    user_ids, predicted = model.top_users(vectors, k=10)
    assert user_ids.shape == (2, 10) and predicted.shape == (2, 10)
    assert np.all(user_ids[0] % 2 == 0)  # even users like action
    assert np.all(user_ids[1] % 2 == 1)
    assert np.all(predicted > 4.0)


def test_cold_user_from_attributes(planted_model: tuple) -> None:
    model, data, _, _ = planted_model
    v_u = model.user_vectors(features={"taste": "drama", "age": 30})
    scores_ = model.score_vectors(v_u, model.item_vectors(data.items.ids))[0]
    is_drama = data.items.ids % 2 == 1
    assert scores_[is_drama].min() > scores_[~is_drama].max()


def test_unknown_user_gets_the_fallback_and_predictions_stay_finite(planted_model: tuple) -> None:
    model, data, _, _ = planted_model
    recs = model.recommend([data.users.ids[0], 10**6], k=5)
    assert recs.item_ids.shape == (2, 5)
    assert recs.fallback.tolist() == [False, True]
    pred = model.predict([10**6, data.users.ids[0]], [data.items.ids[0], 10**6])
    assert np.all(np.isfinite(pred)) and np.all((pred >= 1) & (pred <= 5))


def test_recommend_excludes_seen_and_ranks_by_score(planted_model: tuple) -> None:
    model, data, _, _ = planted_model
    user = data.users.ids[3]
    recs = model.recommend([user], k=8)
    seen = set(data.item_ids[data.user_ids == user].tolist())
    assert not seen & set(recs.item_ids[0].tolist())
    assert np.all(np.diff(recs.scores[0]) <= 1e-6)
    again = model.predict(np.repeat(user, 8), recs.item_ids[0])
    np.testing.assert_allclose(again, recs.scores[0], rtol=1e-5)
    assert len(set(recs.item_ids[0].tolist())) == 8


def test_similar_items_share_the_genre(planted_model: tuple) -> None:
    model, data, _, _ = planted_model
    result = model.similar_items([0], k=5)
    assert 0 not in result.similar_ids[0].tolist()
    assert np.all(result.similar_ids[0] % 2 == 0)
    assert np.all(np.diff(result.distances[0]) >= -1e-6)
    v = model.item_vectors([0] + result.similar_ids[0].tolist())
    np.testing.assert_allclose(
        result.distances[0], ((v[1:] - v[0]) ** 2).sum(1), rtol=1e-4, atol=1e-6
    )


def test_save_load_round_trip(planted_model: tuple, tmp_path: Path) -> None:
    model, data, _, _ = planted_model
    palate.save(model, tmp_path / "tt")
    loaded = palate.load(tmp_path / "tt")
    assert isinstance(loaded, TwoTower)
    users, items = np.repeat(data.users.ids[:5], 4), np.tile(data.items.ids[:4], 5)
    np.testing.assert_allclose(loaded.predict(users, items), model.predict(users, items),
                               rtol=1e-6)
    a, b = model.recommend(data.users.ids[:3], k=4), loaded.recommend(data.users.ids[:3], k=4)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)
    new = {"genres": ["drama"], "year": 2010}
    np.testing.assert_allclose(loaded.item_vectors(features=new), model.item_vectors(features=new),
                               rtol=1e-6)
    assert loaded.get_params() == model.get_params()
    assert not any(p.suffix == ".pkl" for p in (tmp_path / "tt").iterdir())


# ------------------------------------------------------------------------------ catalogue
#: Items and users of the planted data whose events are dropped: known only from features.
COLD_ITEMS, COLD_USERS = [36, 37, 38, 39], [76, 77, 78, 79]


@pytest.fixture(scope="module")
def cold_model() -> tuple[TwoTower, Interactions, UserFeatures, ItemFeatures]:
    """The planted model trained without the events of COLD_ITEMS and COLD_USERS, whose rows
    stay in the feature tables."""
    data, users, items, _, _ = planted()
    keep = ~np.isin(data.item_ids, COLD_ITEMS) & ~np.isin(data.user_ids, COLD_USERS)
    train = data.subset(keep).compact()
    model = TwoTower(**SMALL, epochs=40, learning_rate=0.01, derived_features=False,
                     early_stopping=None)
    model.fit(train, user_features=users, item_features=items)
    return model, train, users, items


def test_catalogue_is_training_ids_then_feature_only_ids(cold_model: tuple) -> None:
    model, train, _, _ = cold_model
    assert model.items_.ids.tolist() == train.items.ids.tolist() + COLD_ITEMS
    assert model.users_.ids.tolist() == train.users.ids.tolist() + COLD_USERS
    assert (model.n_trained_users_, model.n_trained_items_) == (train.n_users, train.n_items)
    assert model.item_vectors().shape == (40, 8)  # every catalogue item, items_ order
    assert model.user_vectors().shape == (80, 8)
    np.testing.assert_array_equal(model.item_vectors(), model.item_vectors(model.items_.ids))
    np.testing.assert_array_equal(model.user_vectors()[-4:], model.user_vectors(COLD_USERS))
    # cold rows have no events: nothing seen, last in the fallback list
    assert model.seen_.shape == (80, 40) and model.seen_[-4:].nnz == 0
    assert model.seen_[:, -4:].nnz == 0
    fallback = model.fallback_scores_
    assert len(fallback) == 40 and fallback[-4:].max() < fallback[:-4].min()


def test_cold_item_vector_by_id_is_its_vector_from_features(cold_model: tuple) -> None:
    model, _, _, items = cold_model
    rows = items.rows(COLD_ITEMS)
    from_features = model.item_vectors(features=rows.to_dict("records"))
    np.testing.assert_allclose(model.item_vectors(COLD_ITEMS), from_features, rtol=1e-5,
                               atol=1e-6)
    one = rows.iloc[0]
    np.testing.assert_allclose(
        model.item_vectors([COLD_ITEMS[0]])[0],
        model.item_vectors(features={"genres": one["genres"], "year": one["year"]})[0],
        rtol=1e-5, atol=1e-6,
    )


def test_cold_item_is_recommended_and_predicted(cold_model: tuple) -> None:
    model, train, _, _ = cold_model
    for user in (0, 2, 1, 3):  # even users like action (even items), odd users drama
        seen = set(train.item_ids[train.user_ids == user].tolist())
        liked = [i for i in range(40) if i % 2 == user % 2 and i not in seen]
        recs = model.recommend([user], k=len(liked))
        assert not recs.fallback[0]
        # every unseen item of the user's genre first: the cold ones among them
        assert set(recs.item_ids[0].tolist()) == set(liked)
        cold = [i for i in COLD_ITEMS if i % 2 == user % 2]
        assert set(cold) <= set(recs.item_ids[0].tolist())
        predicted = model.predict([user] * len(cold), cold)
        assert np.all(predicted > 4.0)


def test_cold_user_with_features_gets_a_personal_list(cold_model: tuple) -> None:
    model, _, users, _ = cold_model
    recs = model.recommend(COLD_USERS, k=10)
    assert not recs.fallback.any()  # scored from their features, not the popularity list
    for row, user in enumerate(COLD_USERS):
        assert np.all(recs.item_ids[row] % 2 == user % 2), user
    np.testing.assert_allclose(
        model.user_vectors(COLD_USERS),
        model.user_vectors(features=users.rows(COLD_USERS)), rtol=1e-5, atol=1e-6,
    )
    assert model.seen_items(COLD_USERS[0]).tolist() == []
    assert model.recommend([10**6], k=3).fallback.tolist() == [True]  # no id, no features


def test_similar_items_with_cold_queries_and_results(cold_model: tuple) -> None:
    model, _, _, _ = cold_model
    query = model.similar_items([COLD_ITEMS[0]], k=19)  # 36 is action: the other 19 action
    assert set(query.similar_ids[0].tolist()) == set(range(0, 40, 2)) - {COLD_ITEMS[0]}
    found = model.similar_items([0], k=19)
    assert set(found.similar_ids[0].tolist()) == set(range(2, 40, 2))
    assert {36, 38} <= set(found.similar_ids[0].tolist())


def test_cold_rows_survive_save_and_load(cold_model: tuple, tmp_path: Path) -> None:
    model, _, _, _ = cold_model
    palate.save(model, tmp_path / "tt")
    loaded = palate.load(tmp_path / "tt")
    assert loaded.items_ == model.items_ and loaded.users_ == model.users_
    assert (loaded.n_trained_users_, loaded.n_trained_items_) == (
        model.n_trained_users_, model.n_trained_items_)
    np.testing.assert_allclose(loaded.item_vectors(), model.item_vectors(), rtol=1e-6)
    np.testing.assert_allclose(loaded.user_vectors(COLD_USERS), model.user_vectors(COLD_USERS),
                               rtol=1e-6)
    a, b = model.recommend(COLD_USERS + [0], k=6), loaded.recommend(COLD_USERS + [0], k=6)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)
    np.testing.assert_array_equal(a.fallback, b.fallback)
    np.testing.assert_array_equal(
        model.similar_items(COLD_ITEMS, k=3).similar_ids,
        loaded.similar_items(COLD_ITEMS, k=3).similar_ids,
    )


def test_feature_only_rows_leave_training_unchanged() -> None:
    """The catalogue's extra rows change nothing the towers learn: the same losses and the
    same vectors for the users and items of the data, hybrid towers and derived features
    included (cold rows use the shared "no id" row)."""
    data, users, items, _, _ = planted(40, 20)
    keep = ~np.isin(data.item_ids, [18, 19]) & ~np.isin(data.user_ids, [39])
    train = data.subset(keep).compact()
    options = {**SMALL, "epochs": 3, "id_embedding_size": 4}
    only = (UserFeatures(users.frame.loc[train.users.ids].reset_index(), users.columns),
            ItemFeatures(items.frame.loc[train.items.ids].reset_index(), items.columns))
    narrow = TwoTower(**options).fit(train, user_features=only[0], item_features=only[1])
    wide = TwoTower(**options).fit(train, user_features=users, item_features=items)
    assert len(wide.items_) == train.n_items + 2 and len(narrow.items_) == train.n_items
    assert wide.history_ == narrow.history_
    np.testing.assert_array_equal(wide.user_vectors(train.users.ids),
                                  narrow.user_vectors(train.users.ids))
    np.testing.assert_array_equal(wide.item_vectors(train.items.ids),
                                  narrow.item_vectors(train.items.ids))
    assert wide.item_tower_.id_embedding.num_embeddings == train.n_items + 1
    np.testing.assert_allclose(wide.item_vectors([18, 19]),
                               wide.item_vectors(features=items.rows([18, 19])),
                               rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------ training plan
def test_training_plan_reproduces_fit(tmp_path: Path) -> None:
    """prepare_fit, the training loop over the plan and finish_fit are fit, step by step; the
    weights of one model loaded into another prepared on the same data give the same model."""
    from palate.models.two_tower.training import train_towers

    data, users, items, _, _ = planted(40, 20)
    train = data.subset(~np.isin(data.item_ids, [18, 19])).compact()
    options = {**SMALL, "epochs": 3, "id_embedding_size": 4}
    fitted = TwoTower(**options).fit(train, user_features=users, item_features=items)

    model = TwoTower(**options)
    with pytest.raises(palate.NotFittedError, match="prepare_fit"):
        model.finish_fit([])
    plan = model.prepare_fit(train, user_features=users, item_features=items)
    # the towers train on the rows of the training ids; the catalogue has the cold items too
    assert plan.inputs.items.shape[0] == train.n_items and len(model.items_) == 20
    assert plan.held is not None and len(plan.fitting) == int((~plan.held).sum())
    assert len(plan.events) == len(plan.fitting) and plan.user_tower is model.user_tower_
    history = train_towers(model.user_tower_, model.item_tower_, plan.inputs, plan.events,
                           plan.settings, torch.Generator().manual_seed(plan.seed),
                           evaluate=plan.evaluate)
    assert model.finish_fit(history) is model
    assert model.history_ == fitted.history_
    np.testing.assert_array_equal(model.item_vectors(), fitted.item_vectors())
    np.testing.assert_array_equal(model.user_vectors(), fitted.user_vectors())

    other = TwoTower(**options)
    other.prepare_fit(train, user_features=users, item_features=items)
    other.load_tower_weights(fitted.tower_weights())
    other.finish_fit(fitted.history_)
    np.testing.assert_array_equal(other.item_vectors(), fitted.item_vectors())
    # a serving model follows the weights it is given
    fresh = TwoTower(**{**options, "learning_rate": 0.05}).fit(train, user_features=users,
                                                              item_features=items)
    assert not np.allclose(fresh.item_vectors(), fitted.item_vectors())
    fresh.load_tower_weights(fitted.tower_weights())
    np.testing.assert_array_equal(fresh.item_vectors(), fitted.item_vectors())
    with pytest.raises(DataError, match="do not fit"):
        TwoTower(**{**options, "embedding_size": 4}).fit(train).load_tower_weights(
            fitted.tower_weights()
        )


def _write_prepared(root: Path, data: Interactions) -> Path:
    """``data`` as a prepared-data directory (the layout palate.spark.write_prepared writes)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    for name, vocabulary in (("users", data.users), ("items", data.items)):
        (root / name).mkdir(parents=True)
        table = pa.table({"idx": np.arange(len(vocabulary), dtype=np.int32),
                          "id": vocabulary.ids.astype(np.int64)})
        pq.write_table(table, root / name / "part-0.parquet")
    split = root / "interactions" / "split=train"
    split.mkdir(parents=True)
    events = pa.table({"user_idx": data.user_idx.astype(np.int32),
                       "item_idx": data.item_idx.astype(np.int32),
                       "value": data.values.astype(np.float32)})
    pq.write_table(events, split / "part-0.parquet", row_group_size=100)
    manifest = {"format": "palate-prepared", "format_version": 1, "kind": data.kind,
                "rating_scale": list(data.rating_scale or (1.0, 5.0)), "n_users": data.n_users,
                "n_items": data.n_items, "splits": {"train": len(data)}}
    (root / "prepared.json").write_text(json.dumps(manifest))
    return root


def test_distributed_path_in_one_process_trains_exactly_as_fit(tmp_path: Path) -> None:
    """The data-parallel path (plan on the driver, the loop in a process, the weights back)
    with feature-only items in the catalogue and hybrid towers: the model fit trains."""
    from palate.data.prepared import read_prepared
    from palate.models.two_tower import distributed
    from palate.models.two_tower.training import held_out

    data, users, items, _, _ = planted(40, 20)
    train = data.subset(~np.isin(data.item_ids, [18, 19])).compact()
    root = _write_prepared(tmp_path / "prepared", train)
    prepared = read_prepared(root).train
    options = {**SMALL, "epochs": 3, "id_embedding_size": 4}
    local = TwoTower(**options).fit(prepared, user_features=users, item_features=items)

    model = TwoTower(**options)
    job = distributed.plan_shards(model, root, user_features=users, item_features=items,
                                  prepared_features=False)
    assert job.held_fraction == 0.1
    assert len(job.item_inputs) == train.n_items  # the rows the events and ids index
    result = distributed.train_process(job)
    fitting = int(np.sum(~held_out(job.seed, 0.1, 0, len(train))))
    assert result["world_size"] == 1 and result["shard_sizes"] == [fitting]
    assert distributed.finish(model, result) is model
    assert model.history_ == local.history_
    assert model.items_ == local.items_ and {18, 19} <= set(model.items_.ids.tolist())
    np.testing.assert_array_equal(model.item_vectors(), local.item_vectors())
    np.testing.assert_array_equal(model.predict([0, 1], [18, 19]),
                                  local.predict([0, 1], [18, 19]))


def test_same_seed_same_model_other_seed_other_model() -> None:
    data, users, items, _, _ = planted(40, 20)
    options = {**SMALL, "epochs": 3, "early_stopping": None}
    a = TwoTower(**options).fit(data, user_features=users, item_features=items)
    b = TwoTower(**options).fit(data, user_features=users, item_features=items)
    c = TwoTower(**{**options, "seed": 1}).fit(data, user_features=users, item_features=items)
    np.testing.assert_array_equal(a.user_vectors(data.users.ids), b.user_vectors(data.users.ids))
    assert not np.allclose(a.user_vectors(data.users.ids), c.user_vectors(data.users.ids))


def test_early_stopping_keeps_the_best_epoch() -> None:
    data, users, items, _, _ = planted(40, 20)
    model = TwoTower(**SMALL, epochs=30, early_stopping=2, learning_rate=0.05)
    model.fit(data, user_features=users, item_features=items)
    history = model.history_
    assert all("val_rmse" in h for h in history)
    best = min(h["val_rmse"] for h in history)
    assert len(history) < 30 or history[-1]["val_rmse"] == best


def test_derived_features_and_new_user_ratings() -> None:
    data, users, items, _, _ = planted(40, 20)
    model = TwoTower(**SMALL, epochs=10, early_stopping=None, learning_rate=0.01)
    model.fit(data, user_features=users, item_features=items)
    assert model.features_.genres == ["action", "drama"]
    none = model.user_vectors(features={"age": 30})
    rated = model.user_vectors(features={"age": 30}, ratings={0: 5.0, 2: 5.0, 1: 1.0})
    assert none.shape == rated.shape == (1, 8)
    assert not np.allclose(none, rated)
    with pytest.raises(DataError, match="does not know"):
        model.user_vectors(ratings={"nope": 3.0})


def test_new_rows_with_unknown_columns_or_bad_values_are_refused(planted_model: tuple) -> None:
    model, _, _, items = planted_model
    with pytest.raises(DataError, match=r"unknown user feature column\(s\) \['tatse'\] "
                                        r"\(did you mean 'taste'\?\); the model's user "
                                        r"features are \['taste', 'age'\]"):
        model.user_vectors(features={"tatse": "drama", "age": 30})
    with pytest.raises(DataError, match="user feature 'age' \\(numeric\\) must be a number, "
                                        "got 'twenty'"):
        model.user_vectors(features={"taste": "drama", "age": "twenty"})
    with pytest.raises(DataError, match="item feature 'year' \\(year\\) must be a number, "
                                        "got 'MCMXCIX'"):
        model.item_vectors(features=[{"year": 1999}, {"genres": ["drama"], "year": "MCMXCIX"}])
    with pytest.raises(DataError, match="'year' .* got inf"):
        model.item_vectors(features={"year": float("inf")})
    with pytest.raises(DataError, match="unknown item feature .*'title'"):
        model.item_vectors(features=pd.DataFrame({"genres": [["drama"]], "title": ["Heat"]}))
    # numbers written as text, missing values, the id column and a whole table are fine
    np.testing.assert_allclose(model.user_vectors(features={"taste": "drama", "age": "30"}),
                               model.user_vectors(features={"taste": "drama", "age": 30}))
    assert model.user_vectors(features={"taste": None, "age": np.nan}).shape == (1, 8)
    assert model.item_vectors(features={"item_id": 99, "genres": "drama"}).shape == (1, 8)
    assert model.item_vectors(features=items).shape == (40, 8)


def test_derived_columns_are_not_features_of_new_rows(tiny_explicit: Interactions) -> None:
    model = TwoTower(**SMALL, epochs=1).fit(tiny_explicit)  # derived features only
    with pytest.raises(DataError, match="'mean_rating' is derived .* pass the new user's "
                                        "ratings with ratings="):
        model.user_vectors(features={"mean_rating": 4.5})
    with pytest.raises(DataError, match="'log_count' is derived .* a new item has none"):
        model.item_vectors(features={"log_count": 2.0})
    with pytest.raises(DataError, match="trained without user features"):
        model.user_vectors(features={"age": 30})
    assert model.user_vectors(features={}, ratings={"alien": 5.0}).shape == (1, 8)


def test_hybrid_id_embeddings_serve_cold_items_too() -> None:
    data, users, items, _, _ = planted(40, 20)
    model = TwoTower(**SMALL, id_embedding_size=4, epochs=5, early_stopping=None)
    model.fit(data, user_features=users, item_features=items)
    assert model.user_tower_.id_embedding is not None
    v = model.item_vectors(features={"genres": ["action"], "year": 2000})
    assert v.shape == (1, 8) and np.isfinite(v).all()


def test_binary_and_retrieval_objectives(tiny_binary: Interactions,
                                         tiny_positive_only: Interactions) -> None:
    binary = TwoTower(objective="binary", **SMALL, epochs=3).fit(tiny_binary)
    p = binary.predict(tiny_binary.user_ids, tiny_binary.item_ids)
    assert np.all((p > 0) & (p < 1))
    retrieval = TwoTower(objective="retrieval", **SMALL, epochs=3).fit(tiny_positive_only)
    recs = retrieval.recommend(tiny_positive_only.users.ids, k=2)
    assert recs.item_ids.shape == (tiny_positive_only.n_users, 2)
    with pytest.raises(DataError, match="retrieval"):
        TwoTower(objective="binary").fit(tiny_positive_only)
    with pytest.raises(DataError, match="explicit"):
        TwoTower().fit(tiny_binary)


def test_contract_basics(tiny_explicit: Interactions) -> None:
    model = TwoTower(**SMALL, epochs=2)
    with pytest.raises(palate.NotFittedError):
        model.predict(["ann"], ["alien"])
    assert model.fit(tiny_explicit) is model
    assert model.users_ == tiny_explicit.users and model.items_ == tiny_explicit.items
    assert model.recommend("ann", k=3).item_ids.shape == (1, 3)


def test_learned_attributes_exist_only_after_fit(
    tiny_explicit: Interactions, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = TwoTower(**SMALL, epochs=1)
    learned = ("history_", "rating_scale_", "user_tower_", "item_tower_", "features_",
               "vectors_", "n_trained_items_")
    for name in learned:
        with pytest.raises(palate.NotFittedError, match="fit"):
            getattr(model, name)
    assert not model.is_fitted
    model.fit(tiny_explicit)
    assert model.is_fitted and model.rating_scale_ == (1.0, 5.0)
    assert model.vectors_.items.shape == (tiny_explicit.n_items, 8)

    # a fit that raises leaves no half-fitted model behind
    import palate.models.two_tower.training as training

    def interrupted(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train_towers", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.fit(tiny_explicit)
    assert not model.is_fitted
    for name in ("users_", *learned):
        with pytest.raises(palate.NotFittedError):
            getattr(model, name)


@pytest.mark.parametrize(
    "bad",
    [{"objective": "mse"}, {"hidden_sizes": (0,)}, {"embedding_size": 0}, {"id_dropout": 1.0},
     {"learning_rate": 0}, {"temperature": -1.0}, {"device": "tpu"}, {"validation_fraction": 1}],
)
def test_bad_configuration_is_refused(bad: dict) -> None:
    with pytest.raises(ConfigError):
        TwoTower(**bad)


def test_towers_need_some_input(tiny_explicit: Interactions) -> None:
    with pytest.raises(ConfigError, match="no inputs"):
        TwoTower(derived_features=False).fit(tiny_explicit)


def test_held_out_of_a_range_is_that_slice_of_the_whole() -> None:
    from palate.models.two_tower.training import held_out

    whole = np.random.default_rng(11).random(500) < 0.1  # the draws fit makes
    np.testing.assert_array_equal(held_out(11, 0.1, 0, 500), whole)
    np.testing.assert_array_equal(held_out(11, 0.1, 123, 323), whole[123:323])


# ------------------------------------------------------------------------------ cold-start dropout
def test_cold_columns_replace_only_the_dropped_rows_derived_columns() -> None:
    from palate.models.two_tower.training import ColdColumns

    cold = ColdColumns(torch.tensor([False, True, True]), torch.tensor([9.0, -1.0, -2.0]))
    x = torch.arange(9, dtype=torch.float32).reshape(3, 3)
    out = cold.apply(x, torch.tensor([True, False, True]))
    expected = torch.tensor([[0.0, -1.0, -2.0], [3.0, 4.0, 5.0], [6.0, -1.0, -2.0]])
    torch.testing.assert_close(out, expected)


def _perturbed_derived_predictions(model: TwoTower, data: Interactions) -> tuple[np.ndarray, ...]:
    before = model.predict(data.user_ids, data.item_ids)
    for side in ("user", "item"):
        mask, _ = model.features_.side(side).cold_columns()
        assert mask.sum() >= 2  # log_count and mean_rating at least
        features = model.features_
        inputs = features.user_inputs if side == "user" else features.item_inputs
        inputs[:, mask] += np.random.default_rng(0).normal(size=(len(inputs), int(mask.sum())))
    model.refresh_vectors()
    return before, model.predict(data.user_ids, data.item_ids)


def test_full_derived_dropout_makes_predictions_independent_of_derived_features() -> None:
    data, users, items, _, _ = planted(40, 20)
    options = {**SMALL, "epochs": 3, "early_stopping": None, "learning_rate": 0.01}
    full = TwoTower(**options, derived_dropout=1.0).fit(
        data, user_features=users, item_features=items
    )
    before, after = _perturbed_derived_predictions(full, data)
    np.testing.assert_array_equal(before, after)
    none = TwoTower(**options, derived_dropout=0.0).fit(
        data, user_features=users, item_features=items
    )
    before, after = _perturbed_derived_predictions(none, data)
    assert not np.allclose(before, after)


def test_derived_dropout_changes_training_and_is_saved(tmp_path: Path) -> None:
    data, users, items, _, _ = planted(40, 20)
    options = {**SMALL, "epochs": 3, "early_stopping": None}
    fits = {
        p: TwoTower(**options, derived_dropout=p).fit(
            data, user_features=users, item_features=items
        )
        for p in (0.0, 0.5, 1.0)
    }
    assert not np.allclose(fits[0.0].user_vectors(data.users.ids),
                           fits[0.5].user_vectors(data.users.ids))
    for p, model in fits.items():
        palate.save(model, tmp_path / str(p))
        loaded = palate.load(tmp_path / str(p))
        assert loaded.get_params()["derived_dropout"] == p
        np.testing.assert_allclose(loaded.predict(data.user_ids, data.item_ids),
                                   model.predict(data.user_ids, data.item_ids), rtol=1e-6)
        new = {"genres": ["drama"], "year": 1999}
        np.testing.assert_allclose(loaded.item_vectors(features=new),
                                   model.item_vectors(features=new), rtol=1e-6)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "half"])
def test_bad_derived_dropout_is_refused(bad: object) -> None:
    with pytest.raises(ConfigError, match="derived_dropout"):
        TwoTower(derived_dropout=bad)  # type: ignore[arg-type]


def test_compiled_training_step_trains_the_same_model() -> None:
    """compile=True gives the eager loop's losses up to float rounding (fused kernels sum in
    another order), and the setting is kept in the model's parameters."""
    data, users, items, _, _ = planted(40, 20)
    options = {**SMALL, "epochs": 2, "early_stopping": None}
    eager = TwoTower(**options).fit(data, user_features=users, item_features=items)
    compiled = TwoTower(**options, compile=True).fit(
        data, user_features=users, item_features=items
    )
    for a, b in zip(eager.history_, compiled.history_, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)
    assert compiled.get_params()["compile"] is True


def test_a_failing_compiler_leaves_training_uncompiled(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(function: object, **kwargs: object) -> object:
        def fails(*args: object) -> object:
            raise RuntimeError("no C++ compiler")

        return fails

    monkeypatch.setattr(torch, "compile", broken)
    data, users, items, _, _ = planted(40, 20)
    options = {**SMALL, "epochs": 2, "early_stopping": None}
    with caplog.at_level("WARNING"):
        model = TwoTower(**options, compile=True).fit(
            data, user_features=users, item_features=items
        )
    eager = TwoTower(**options).fit(data, user_features=users, item_features=items)
    assert "torch.compile failed" in caplog.text and "no C++ compiler" in caplog.text
    # the autograd step, as the default hand-written step computes it up to rounding
    for a, b in zip(eager.history_, model.history_, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)


# ------------------------------------------------------------------------------ cold items
def test_retrieval_loss_with_extra_negatives_known_answer() -> None:
    v_u = torch.tensor([[1.0, 0.0]])
    v_m = torch.tensor([[1.0, 0.0]])
    negatives = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    # the second extra negative is the row's own item (5 == 5): masked
    idx = torch.tensor([7, 5])
    # logits [1 − 0, 0 − log 2, masked]: −log softmax = log(e + 1/2) − 1 = log(1 + e^−1/2)
    loss = retrieval_loss(v_u, v_m, torch.tensor([5]), torch.zeros(1), 1.0, negatives, idx,
                          torch.log(torch.tensor([2.0, 1.0])))
    assert float(loss) == pytest.approx(np.log1p(np.exp(-1.0) / 2))
    with pytest.raises(ValueError, match="corrections"):
        retrieval_loss(v_u, v_m, torch.tensor([5]), torch.zeros(1), 1.0, negatives)


def test_retrieval_loss_with_extra_negatives_gradient() -> None:
    u, m, n = _unit(4, 3, 6), _unit(4, 3, 7), _unit(3, 3, 8)
    items = torch.tensor([0, 1, 2, 1])
    log_q = torch.log(torch.tensor([0.1, 0.4, 0.2, 0.4], dtype=torch.float64))
    extra = torch.tensor([2, 5, 6])  # item 2 is row 2's positive: masked there
    extra_q = torch.log(torch.tensor([0.3, 0.05, 0.05], dtype=torch.float64))
    assert torch.autograd.gradcheck(
        lambda a, b, c: retrieval_loss(l2_normalise(a), l2_normalise(b), items, log_q, 0.5,
                                       l2_normalise(c), extra, extra_q),
        (u, m, n),
    )


def test_mixed_log_q_is_the_log_of_the_expected_draws() -> None:
    from palate.models.two_tower.training import mixed_log_q

    log_q = torch.log(torch.tensor([0.5, 0.1], dtype=torch.float64))
    # B = 4 in-batch draws with q, B' = 2 uniform draws of N = 10 items: 4 q + 2/10
    out = mixed_log_q(log_q, 4, 2, 10)
    np.testing.assert_allclose(out.numpy(), np.log([2.2, 0.6]))


def test_batch_loss_wires_uniform_negatives_and_the_correction() -> None:
    from palate.models.two_tower.training import Batch, LoopSettings, batch_loss, tower_inputs

    torch.manual_seed(0)
    users, items = Tower(3, (), 2), Tower(3, (), 2)
    x = np.eye(3, dtype=np.float32)
    q = np.array([0.6, 0.3, 0.1])
    inputs = tower_inputs(x, x, torch.device("cpu"), np.log(q).astype(np.float32))
    u, i, t = torch.tensor([0, 1]), torch.tensor([0, 2]), torch.ones(2)
    negatives = torch.tensor([1, 2, 2])
    v_u = users(inputs.users[u]).detach().numpy().astype(np.float64)
    v_m = items(inputs.items).detach().numpy().astype(np.float64)

    def by_hand(correction: np.ndarray) -> float:
        columns = [*i.tolist(), *negatives.tolist()]
        z = v_u @ v_m[columns].T / 0.5 - correction[columns][None, :]
        z[1, 3] = z[1, 4] = -np.inf  # row 1's positive, item 2, drawn twice: masked
        return float(np.mean([np.logaddexp.reduce(z[b]) - z[b, b] for b in range(2)]))

    for corrected in (True, False):
        settings = LoopSettings("retrieval", 1, 2, 1e-3, 0.0, 0.5, 0.0, None,
                                uniform_negatives=3, log_q_correction=corrected)
        batch = Batch(u, i, t, negatives=negatives)
        loss = batch_loss(users, items, inputs, batch, settings).detach()
        expected = by_hand(np.log(2 * q + 3 / 3) if corrected else np.zeros(3))
        assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_linear_item_tower_is_a_sum_of_feature_vectors() -> None:
    tower = Tower(4, (), 3)
    (layer,) = list(tower.layers)
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0]])  # two features on
    weight, bias = layer.weight.detach(), layer.bias.detach()
    expected = l2_normalise((bias + weight[:, 0] + weight[:, 2])[None, :])
    torch.testing.assert_close(tower(x).detach(), expected)


def test_id_embeddings_on_one_side_and_per_side_derived_dropout() -> None:
    data, users, items, _, item_frame = planted(40, 20)
    model = TwoTower(**{**SMALL, "epochs": 3, "early_stopping": None, "id_embedding_size": 4,
                        "id_embedding_sides": "users", "derived_dropout": (0.0, 1.0)})
    model.fit(data, user_features=users, item_features=items)
    assert model.user_tower_.id_embedding is not None
    assert model.item_tower_.id_embedding is None
    # items go through one function of their attributes: a trained item's vector is that of
    # a new item with the same attributes
    ids = data.items.ids[:5]
    rows = item_frame.set_index("item_id").loc[ids].reset_index(drop=True)
    np.testing.assert_allclose(model.item_vectors(ids), model.item_vectors(features=rows),
                               atol=1e-6)
    # the users' derived features are seen in training (rate 0): they change the vectors
    before, after = _perturbed_derived_user_vectors(model)
    assert not np.allclose(before, after)
    items_model = TwoTower(**{**SMALL, "epochs": 3, "early_stopping": None,
                              "id_embedding_size": 4, "id_embedding_sides": "items"})
    items_model.fit(data, user_features=users, item_features=items)
    assert items_model.user_tower_.id_embedding is None
    assert items_model.item_tower_.id_embedding is not None


def _perturbed_derived_user_vectors(model: TwoTower) -> tuple[np.ndarray, np.ndarray]:
    before = model.user_vectors().copy()
    mask, _ = model.features_.user_side.cold_columns()
    inputs = model.features_.user_inputs
    inputs[:, mask] += np.random.default_rng(0).normal(size=(len(inputs), int(mask.sum())))
    model.refresh_vectors()
    return before, model.user_vectors()


def test_cold_items_preset_saves_and_loads_identically(tmp_path: Path) -> None:
    from palate.models.registry import model_spec

    preset = model_spec("two-tower").preset("cold_items")
    assert preset == COLD_ITEMS_PRESET
    data, users, items, _, _ = planted(40, 20)
    positives = data.subset(np.flatnonzero(data.values >= 4))
    model = TwoTower(**{**preset, "hidden_sizes": (16,), "embedding_size": 8,
                        "id_embedding_size": 4, "batch_size": 32, "epochs": 3,
                        "uniform_negatives": 8})
    model.fit(positives, user_features=users, item_features=items)
    palate.save(model, tmp_path / "cold")
    loaded = palate.load(tmp_path / "cold")
    assert loaded.get_params() == model.get_params()
    assert loaded.config == model.config
    np.testing.assert_array_equal(loaded.user_vectors(), model.user_vectors())
    new = {"genres": ["drama"], "year": 1999}
    np.testing.assert_array_equal(loaded.item_vectors(features=new),
                                  model.item_vectors(features=new))
    a, b = model.recommend(data.users.ids[:3], k=4), loaded.recommend(data.users.ids[:3], k=4)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)


def test_cold_item_set_up_ranks_new_items_by_genre_taste() -> None:
    """Planted: half the users like "action", half "drama" (only their ratings say so — no
    taste attribute); new items of each genre must rank first for the users of that genre."""
    data, _, items, user_frame, item_frame = planted(80, 40)
    positives = data.subset(np.flatnonzero(data.values >= 4))
    users = UserFeatures(user_frame[["user_id", "age"]], {"age": "numeric"})
    model = TwoTower(**{**COLD_ITEMS_SMALL, "epochs": 30, "learning_rate": 0.01})
    model.fit(positives, user_features=users, item_features=items)
    new = pd.DataFrame({"genres": [["action"], ["drama"]], "year": [2000, 2000]})
    scores = model.user_vectors(data.users.ids) @ model.item_vectors(features=new).T
    taste = user_frame.set_index("user_id").loc[data.users.ids, "taste"].to_numpy()
    prefers_action = scores[:, 0] > scores[:, 1]
    assert np.mean(prefers_action == (taste == "action")) > 0.9


def test_warm_preset_is_registered_and_turns_the_dropout_off() -> None:
    from palate.models.registry import model_spec
    from palate.models.two_tower.config import WARM

    preset = model_spec("two-tower").preset("warm")
    assert preset == WARM
    assert TwoTower(**preset).config.derived_dropouts == (0.0, 0.0)


@pytest.mark.parametrize(
    ("bad", "match"),
    [({"id_embedding_sides": "all"}, "id_embedding_sides"),
     ({"item_hidden_sizes": (0,)}, "item_hidden_sizes"),
     ({"derived_dropout": (0.1, 1.5)}, "derived_dropout"),
     ({"derived_dropout": (0.1, 0.2, 0.3)}, "derived_dropout"),
     ({"uniform_negatives": -1}, "uniform_negatives"),
     ({"log_q_correction": "yes"}, "log_q_correction")],
)
def test_bad_cold_item_options_are_refused(bad: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        TwoTower(**bad)
