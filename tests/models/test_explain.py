"""Explanations name real terms of the score: known answers on tiny data, and removing a
named item from the user's history lowers the score by about its stated contribution."""

from __future__ import annotations

import numpy as np
import pytest

from palate import EASE, CollaborativeFiltering, HybridRecommender, Popularity
from palate.data.interactions import Interactions
from palate.data.synthetic import synthetic_ratings
from palate.errors import CapabilityError
from palate.models.explain import Attribution, explanations


@pytest.fixture(scope="module")
def ratings() -> Interactions:
    return synthetic_ratings(40, 25, 500, embedding_size=3, seed=5).ratings


def history_of(model: CollaborativeFiltering, user: object) -> tuple[np.ndarray, np.ndarray]:
    rows, values = model.explain_history(int(model.users_.index([user])[0]))
    return model.items_.ids[rows], values


def given(items: np.ndarray, values: np.ndarray) -> dict:
    return dict(zip(items.tolist(), values.tolist(), strict=True))


# ------------------------------------------------------------------------------ EASE
def test_ease_contributions_are_the_weights_of_the_users_items() -> None:
    # 4 users x 3 items: a hand-checkable B
    data = Interactions.from_arrays([0, 0, 1, 1, 2, 3], [0, 1, 1, 2, 0, 2], np.ones(6),
                                    kind="binary")
    model = EASE(reg=1.0).fit(data)
    B = model.weights_
    (e,) = model.explain_items(0, [2])
    # user 0 engaged with items 0 and 1: score(0, 2) = B[0, 2] + B[1, 2], nothing else
    assert e.score == pytest.approx(B[0, 2] + B[1, 2])
    assert e.baseline == 0 and e.unexplained == pytest.approx(0, abs=1e-7)
    assert e.score == pytest.approx(float(model.predict([0], [2])[0]), rel=1e-6)
    by_item = {r.item_id: r.contribution for r in e.largest}
    for j in (0, 1):
        if B[j, 2] > 0:
            assert by_item[j] == pytest.approx(B[j, 2])


def test_removing_a_named_ease_item_drops_the_score_by_its_contribution() -> None:
    data = synthetic_ratings(40, 25, 500, seed=2).ratings.binarize(3.5)
    model = EASE(reg=5.0).fit(data)
    named = 0
    for user in data.users.ids[:10]:
        listed = model.recommend([user], k=3).item_ids[0]
        engaged = dict.fromkeys(model.items_.ids[model.explain_history(
            int(model.users_.index([user])[0]))[0]].tolist(), 1.0)
        for e in model.explain_items(user, listed):
            for reason in e.reasons:
                without = {i: v for i, v in engaged.items() if i != reason.item_id}
                before = model.fold_in(engaged)[model.items_.index([e.item_id])[0]]
                after = model.fold_in(without)[model.items_.index([e.item_id])[0]]
                assert before - after == pytest.approx(reason.contribution, abs=1e-5)
                assert reason.removal == pytest.approx(reason.contribution)
                named += 1
    assert named > 0


# ------------------------------------------------------------------------------ CF
def test_cf_contributions_match_the_ridge_solve_by_hand(ratings: Interactions) -> None:
    model = CollaborativeFiltering(embedding_size=3, epochs=10, seed=0).fit(ratings)
    user = ratings.users.ids[0]
    items, values = history_of(model, user)
    listed = model.items_.ids[:5]
    explained = model.explain_items(None, listed, ratings=given(items, values))
    # the closed form written out: θ = A⁻¹ Σ z_j t_j, A = ZᵀZ + s Λ
    X = model.item_factors_.astype(np.float64)
    offsets = model.item_bias_.astype(np.float64) + model.item_means_
    rows = model.items_.index(items)
    Z = np.hstack([X[rows], np.ones((len(rows), 1))])
    t = values - offsets[rows]
    n_user = len(rows)
    floor = model._count_floors[0]  # noqa: SLF001 - the test checks the exact solve
    scale = max(n_user, floor)
    reg = np.array([model.reg_] * X.shape[1] + [model.config.effective_bias_reg])
    A = Z.T @ Z + np.diag(reg * scale)
    for e, i in zip(explained, model.items_.index(listed), strict=True):
        zi = np.append(X[i], 1.0)
        expected = (zi @ np.linalg.solve(A, Z.T)) * t
        assert e.baseline == pytest.approx(offsets[i])
        assert e.personal == pytest.approx(expected.sum(), abs=1e-9)
        assert e.score == pytest.approx(model.fold_in_scores(items, values)[i], abs=1e-5)
        assert abs(e.unexplained) < 1e-5  # a folded-in user is exactly the solve
        for r in e.largest:
            assert r.contribution == pytest.approx(expected[list(items).index(r.item_id)])


@pytest.mark.parametrize("floor", [0.5, 0.0])
def test_cf_removal_is_the_leave_one_out_refold(ratings: Interactions, floor: float) -> None:
    """``removal`` is the exact drop when the rating is removed and the user re-solved (λ at
    its floor, or scaled by the user's count, which drops by one too); a named rating's
    removal lowers the score by at least half its stated contribution."""
    model = CollaborativeFiltering(embedding_size=3, epochs=10, reg_count_floor=floor,
                                   seed=0).fit(ratings)
    checked = 0
    for user in ratings.users.ids[:8]:
        items, values = history_of(model, user)
        full = model.fold_in_scores(items, values)
        listed = model.items_.ids
        explained = model.explain_items(None, listed, ratings=given(items, values))
        for e in explained[:10]:
            i = model.items_.index([e.item_id])[0]
            for r in e.largest[:2]:
                keep = items != r.item_id
                drop = full[i] - model.fold_in_scores(items[keep], values[keep])[i]
                assert r.removal == pytest.approx(drop, rel=1e-5, abs=1e-6)
                checked += 1
            for r in e.reasons:
                if r.kind == "history":
                    keep = items != r.item_id
                    drop = full[i] - model.fold_in_scores(items[keep], values[keep])[i]
                    assert drop >= 0.45 * r.contribution > 0
    assert checked > 20


def test_cf_known_user_is_the_stored_user_re_solved(ratings: Interactions) -> None:
    model = CollaborativeFiltering(embedding_size=3, epochs=30, seed=0).fit(ratings)
    user = ratings.users.ids[3]
    listed = model.recommend([user], k=5).item_ids[0]
    for e in model.explain_items(user, listed):
        raw = model.linear_scores()
        i = model.items_.index([e.item_id])[0]
        u = model.users_.index([user])[0]
        stored = float(raw.user_factors[u] @ raw.item_factors[i] + raw.user_offset[u]
                       + raw.item_offset[i])
        assert e.score == pytest.approx(stored, abs=1e-5)
        assert abs(e.unexplained) < 0.05  # the last ALS user step against its re-solve


def test_binary_cf_declares_it_cannot_explain() -> None:
    data = synthetic_ratings(30, 20, 300, seed=1).ratings.binarize(3.5)
    model = CollaborativeFiltering(kind="binary", embedding_size=3, epochs=3).fit(data)
    assert model.capabilities()["can_explain"] is False
    with pytest.raises(CapabilityError, match="can_explain"):
        model.explain_items(data.users.ids[0], data.items.ids[:2])


def test_cf_survives_a_model_file(ratings: Interactions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from palate import load, save

    model = CollaborativeFiltering(embedding_size=3, epochs=5).fit(ratings)
    loaded = load(save(model, tmp_path / "cf"))
    user = ratings.users.ids[0]
    listed = model.recommend([user], k=4).item_ids[0]
    assert loaded.explain_items(user, listed) == model.explain_items(user, listed)


# ------------------------------------------------------------------------------ others
def test_hybrid_named_rating_removal_lowers_the_blend(ratings: Interactions) -> None:
    model = HybridRecommender(engagement=EASE(reg=5.0),
                              rating=CollaborativeFiltering(embedding_size=3, epochs=10))
    model.fit(ratings)
    named = 0
    for user in ratings.users.ids[:10]:
        items, values = history_of(model.rating, user)
        given = dict(zip(items.tolist(), values, strict=True))
        listed, scores = model.recommend_for_ratings(given, k=5)
        listed = listed[np.isfinite(scores)]
        full = model.fold_in_ranking_scores(items, values)
        for e in model.explain_items(None, listed, ratings=given):
            i = model.items_.index([e.item_id])[0]
            assert e.score == pytest.approx(full[i], abs=1e-6)
            for r in e.reasons:
                if r.kind != "history":
                    continue
                keep = items != r.item_id
                after = model.fold_in_ranking_scores(items[keep], values[keep])[i]
                assert full[i] - after == pytest.approx(r.removal, abs=1e-6)
                assert full[i] - after >= 0.5 * r.contribution > 0
                named += 1
    assert named > 0


def test_popularity_explains_by_popularity(ratings: Interactions) -> None:
    model = Popularity().fit(ratings)
    (e,) = model.explain_items(ratings.users.ids[0], ratings.items.ids[:1])
    assert [r.kind for r in e.reasons] == ["popular"] and e.personal == 0
    assert "popular with everyone" in e.describe(ratings=False)


def test_a_rating_is_named_only_when_its_term_is_large() -> None:
    attribution = Attribution(
        score=np.array([1.0, 1.0]), baseline=np.array([0.3, 0.9]), reference=0.0,
        contributions=np.array([[0.5, 0.02, 0.18], [0.04, 0.03, 0.03]]),
        history=np.arange(3), values=np.array([5.0, 4.0, 3.0]),
    )
    first, second = explanations(attribution, ["a", "b"], ["x", "y", "z"])
    assert [r.item_id for r in first.reasons] == ["x", "z"]
    assert "because you rated x 5 (+0.50)" in first.describe()
    assert [r.kind for r in second.reasons] == ["popular"]  # the baseline dominates
