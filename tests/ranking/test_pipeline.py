"""RetrieveThenRank: merge, dedupe, seen and block-list filtering, policies, ranking by the
model's own scores, MMR, provenance, unknown users, configuration and model files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import palate
from palate.data import Interactions
from palate.errors import ConfigError, DataError, NotFittedError
from palate.ranking import ItemPolicy, VectorScorer, read_pipeline_config
from palate.ranking.pipeline import _mmr
from palate.retrieval.sources import NearestToUser, Popular, SimilarToRecent, TopInSegment

Catalogue = tuple[Interactions, pd.DataFrame, pd.DataFrame]


@pytest.fixture(scope="module")
def cf(catalogue: Catalogue) -> palate.CollaborativeFiltering:
    return palate.CollaborativeFiltering(embedding_size=2, epochs=5, seed=0).fit(catalogue[0])


def fitted(cf: palate.CollaborativeFiltering, catalogue: Catalogue, *sources, **options):  # type: ignore[no-untyped-def]
    data, items, users = catalogue
    pipeline = palate.RetrieveThenRank(cf, list(sources) or None, **options)
    return pipeline.fit(data, item_table=items, user_table=users)


def seen_by(data: Interactions, user: str) -> set[str]:
    row = data.users.index([user])[0]
    return {str(data.items.ids[i]) for i in data.item_idx[data.user_idx == row]}


def test_scorer_vectors_reproduce_each_model(catalogue: Catalogue, cf) -> None:  # type: ignore[no-untyped-def]
    data = catalogue[0]
    models = [
        cf,
        palate.ImplicitALS(embedding_size=2, epochs=3).fit(data),
        palate.TwoTower(hidden_sizes=(8,), embedding_size=4, epochs=2, batch_size=8).fit(data),
    ]
    users = np.repeat(data.users.ids, data.n_items)
    items = np.tile(data.items.ids, data.n_users)
    for model in models:
        scorer = VectorScorer.from_model(model)
        raw = scorer.user_matrix @ scorer.item_matrix.T
        linked = np.asarray(scorer.link(raw.astype(np.float64))).reshape(-1)
        # the vectors rank as the model's recommend does ...
        ranked = model.link(model.ranking_scores()(np.arange(data.n_users)).astype(np.float64))
        np.testing.assert_allclose(linked, ranked.reshape(-1), rtol=1e-4, atol=1e-4)
        # ... which is the prediction itself unless the model ranks by something else
        if model.ranks_by == "prediction":
            np.testing.assert_allclose(linked, model.predict(users, items), rtol=1e-4,
                                       atol=1e-4)
    with pytest.raises(ConfigError, match="ranker"):
        VectorScorer.from_model(palate.Popularity().fit(data))


def test_whole_catalogue_retrieval_ranks_like_the_model(catalogue: Catalogue, cf) -> None:  # type: ignore[no-untyped-def]
    data = catalogue[0]
    pipeline = fitted(cf, catalogue, NearestToUser(top=8))
    ours = pipeline.recommend(data.users.ids, k=3)
    theirs = cf.recommend(data.users.ids, k=3)
    np.testing.assert_array_equal(ours.item_ids, theirs.item_ids)
    np.testing.assert_allclose(ours.scores, theirs.scores, rtol=1e-5)


def test_merge_removes_duplicates_seen_and_blocked_items(catalogue: Catalogue, cf) -> None:  # type: ignore[no-untyped-def]
    data = catalogue[0]
    pipeline = fitted(
        cf, catalogue, Popular(top=8), NearestToUser(top=8), SimilarToRecent(), block_items=["e"]
    )
    result = pipeline.recommend(data.users.ids, k=8)
    for user, row in zip(data.users.ids, result.item_ids, strict=True):
        shown = [i for i in row.tolist() if i is not None]
        assert len(shown) == len(set(shown))  # found by three sources, shown once
        assert not set(shown) & seen_by(data, user)
        assert "e" not in shown
        # everything unseen and not blocked is shown (8 candidates ask for all of them)
        assert set(shown) == set("abcdfgh") - seen_by(data, user)
    everything = pipeline.recommend(data.users.ids[:1], k=8, exclude_seen=False)
    assert set(everything.item_ids[0].tolist()) - {None} == set("abcdfgh")


def test_policies_filter_on_item_attributes(catalogue: Catalogue, cf) -> None:  # type: ignore[no-untyped-def]
    data = catalogue[0]
    pipeline = fitted(
        cf, catalogue, Popular(top=8),
        policies=[{"column": "unsafe", "op": "!=", "value": True},
                  ItemPolicy("genres", "not contains", "Drama")],
    )
    shown = set(pipeline.recommend(data.users.ids, k=8).item_ids.reshape(-1).tolist()) - {None}
    assert shown == {"a", "b", "f", "h"}  # g is unsafe; c, d, e are dramas
    years = fitted(cf, catalogue, Popular(top=8), policies=[ItemPolicy("year", ">=", 1995)])
    shown = set(years.recommend(data.users.ids, k=8).item_ids.reshape(-1).tolist()) - {None}
    assert shown == {"f", "g", "h"}
    with pytest.raises(DataError, match="not in the item table"):
        fitted(cf, catalogue, Popular(), policies=[ItemPolicy("country", "==", "NZ")])
    with pytest.raises(ConfigError, match="operator"):
        ItemPolicy("year", "~", 3)


def test_provenance_survives_ranking(catalogue: Catalogue, cf) -> None:  # type: ignore[no-untyped-def]
    data = catalogue[0]
    pipeline = fitted(cf, catalogue, SimilarToRecent(n_recent=1, n_similar=2),
                      TopInSegment("occupation", top=1))
    row = int(data.users.index(["u1"])[0])
    similar, segment = pipeline.retrieve(row)
    assert len(similar) == 2
    # writers' most popular item u1 has not seen is b
    assert [data.items.ids[i] for i in segment.items] == ["b"]
    explained = pipeline.explain("u1", k=5, item_label=lambda i: f"<{i}>")
    found = {str(data.items.ids[i]) for i in np.concatenate([similar.items, segment.items])}
    assert {r.item_id for r in explained} == found
    for r in explained:
        index = int(data.items.index([r.item_id])[0])
        names = []
        if index in similar.items:
            names.append("similar_to_recent")
            # u1's latest item is d: every similar item was found from it
            assert "because you watched <d>" in r.because
        if index in segment.items:
            names.append("top_in_segment:occupation")
            assert "popular with users whose occupation is writer" in r.because
        assert r.sources == tuple(names)
    scores = [r.score for r in explained]
    assert scores == sorted(scores, reverse=True)
    # the scores are the ranker's ranking scores (its confidence-aware predicted rating)
    ranked = cf.link(cf.ranking_scores()(np.array([row])).astype(np.float64))[0]
    listed = data.items.index([r.item_id for r in explained])
    np.testing.assert_allclose(scores, ranked[listed], rtol=1e-5)


def test_mmr_known_answer() -> None:
    features = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    raw = np.array([1.0, 0.99, 0.5])
    assert _mmr(raw, features, 3, 1.0).tolist() == [0, 1, 2]
    # λ = 0.5: after item 0, item 1 scores 0.5·0.98 − 0.5·1 = −0.01 and item 2 scores 0
    assert _mmr(raw, features, 3, 0.5).tolist() == [0, 2, 1]


def test_mmr_lambda_changes_the_order_only(catalogue: Catalogue, cf) -> None:  # type: ignore[no-untyped-def]
    data = catalogue[0]
    plain = fitted(cf, catalogue, Popular(top=8)).recommend(data.users.ids, k=5)
    diverse = fitted(cf, catalogue, Popular(top=8), mmr_lambda=0.0).recommend(data.users.ids, k=5)
    for a, b in zip(plain.item_ids, diverse.item_ids, strict=True):
        assert a[0] == b[0]  # the best item always comes first
        assert set(a.tolist()) - {None} <= set("abcdefgh")
    assert not np.array_equal(plain.item_ids, diverse.item_ids)
    with pytest.raises(ConfigError, match="mmr_lambda"):
        palate.RetrieveThenRank(cf, mmr_lambda=2.0)


@pytest.mark.parametrize("blocked", ["abc", b"abc", 7])
def test_block_items_is_a_list_not_a_string(cf, blocked: object) -> None:  # type: ignore[no-untyped-def]
    # a string would block its characters one by one
    with pytest.raises(ConfigError, match="block_items must be a list"):
        palate.RetrieveThenRank(cf, block_items=blocked)  # type: ignore[arg-type]
    assert palate.RetrieveThenRank(cf, block_items=["abc"]).block_items == ["abc"]


def test_unknown_users_get_the_fallback(catalogue: Catalogue, cf) -> None:  # type: ignore[no-untyped-def]
    pipeline = fitted(cf, catalogue, Popular(top=3), SimilarToRecent())
    result = pipeline.recommend(["nobody", "u1"], k=3)
    assert result.fallback.tolist() == [True, False]
    assert set(result.item_ids[0].tolist()) <= {"a", "d", "e", "f"}  # the 3-event items
    only_similar = fitted(cf, catalogue, SimilarToRecent())
    assert only_similar.recommend(["nobody"], k=2).fallback.tolist() == [True]


def test_default_sources_leave_out_what_the_data_cannot_feed(catalogue: Catalogue, cf) -> None:  # type: ignore[no-untyped-def]
    data, items, _ = catalogue
    pipeline = palate.RetrieveThenRank(cf).fit(data, item_table=items)
    assert [s.kind for s in pipeline.sources_] == [
        "similar_to_recent", "top_in_favorite_genres", "popular", "nearest_to_user"
    ]
    with pytest.raises(NotFittedError):
        palate.RetrieveThenRank(cf).recommend(["u1"])


def test_model_files_round_trip(catalogue: Catalogue, cf, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = catalogue[0]
    pipeline = fitted(
        cf, catalogue, SimilarToRecent(n_similar=2, index={"kind": "hnsw", "recall_sample": 0}),
        TopInSegment("age", bins=[18, 30, 45]), Popular(top=2),
        NearestToUser(top=3, index={"kind": "hnsw", "recall_sample": 8}),
        block_items=["h"], policies=[ItemPolicy("unsafe", "!=", True)], mmr_lambda=0.7,
    )
    palate.save(pipeline, tmp_path / "pipeline")
    loaded = palate.load(tmp_path / "pipeline")
    assert isinstance(loaded, palate.RetrieveThenRank)
    assert loaded.get_params() == pipeline.get_params()
    a, b = pipeline.recommend(data.users.ids, k=4), loaded.recommend(data.users.ids, k=4)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)
    np.testing.assert_allclose(a.scores, b.scores)
    assert loaded.explain("u3", k=4) == pipeline.explain("u3", k=4)
    assert loaded.sources_[3].index_.metadata_ == pipeline.sources_[3].index_.metadata_


def test_toml_configuration(catalogue: Catalogue, cf, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "pipeline.toml"
    path.write_text(
        'mmr_lambda = 0.9\nblock_items = ["a"]\n\n'
        '[[sources]]\nkind = "popular"\ntop = 5\n\n'
        '[[sources]]\nkind = "nearest_to_user"\ntop = 4\nindex = { kind = "exact" }\n\n'
        '[[policies]]\ncolumn = "year"\nop = "<"\nvalue = 2015\n'
    )
    config = read_pipeline_config(path)
    pipeline = palate.RetrieveThenRank.from_config(cf, config)
    assert [s.config() for s in pipeline.sources] == [
        {"kind": "popular", "top": 5},
        {"kind": "nearest_to_user", "top": 4, "index": {"kind": "exact"}},
    ]
    assert pipeline.mmr_lambda == 0.9 and pipeline.block_items == ["a"]
    data, items, users = catalogue
    shown = pipeline.fit(data, item_table=items).recommend(data.users.ids, k=8).item_ids
    assert not {"a", "h"} & set(shown.reshape(-1).tolist())
    with pytest.raises(ConfigError, match="unknown pipeline setting"):
        palate.RetrieveThenRank.from_config(cf, {"sorces": []})
    (tmp_path / "bad.toml").write_text("sources = [")
    with pytest.raises(ConfigError, match="TOML"):
        read_pipeline_config(tmp_path / "bad.toml")


def test_a_two_tower_ranker_round_trips(catalogue: Catalogue, tmp_path: Path) -> None:
    from palate import ItemFeatures

    data, items, users = catalogue
    features = ItemFeatures(items[["item_id", "genres", "year"]],
                            {"genres": "multi", "year": "year"})
    tower = palate.TwoTower(hidden_sizes=(8,), embedding_size=4, epochs=2, batch_size=8)
    tower.fit(data, item_features=features)
    pipeline = palate.RetrieveThenRank(tower, [SimilarToRecent(), NearestToUser(top=8)])
    pipeline.fit(data, item_table=items)
    whole = tower.recommend(data.users.ids, k=3)
    ours = pipeline.recommend(data.users.ids, k=3)
    np.testing.assert_array_equal(ours.item_ids, whole.item_ids)
    palate.save(pipeline, tmp_path / "tt")
    loaded = palate.load(tmp_path / "tt")
    np.testing.assert_array_equal(loaded.recommend(data.users.ids, k=3).item_ids, whole.item_ids)
