"""Candidate sources return what the curriculum describes, on a hand-made catalogue."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from palate.data import Interactions
from palate.errors import ConfigError, DataError
from palate.models.base import seen_matrix
from palate.retrieval.sources import (
    NearestToUser,
    Popular,
    SimilarToRecent,
    SourceData,
    TopInFavoriteGenres,
    TopInSegment,
    UserContext,
    default_sources,
    make_source,
)


def ids(data: Interactions, rows: np.ndarray) -> set[str]:
    return {str(data.items.ids[r]) for r in rows}

#: 1-D item positions: "similar" is "close on the line"
POSITIONS = np.array([[0.0], [1.0], [2.0], [3.0], [4.5], [6.0], [7.0], [8.0]], dtype=np.float32)


def source_data(catalogue: tuple[Interactions, pd.DataFrame, pd.DataFrame]) -> SourceData:
    data, item_table, user_table = catalogue
    return SourceData(
        interactions=data,
        seen=seen_matrix(data),
        item_table=item_table,
        user_table=user_table,
        item_vectors=np.eye(8, dtype=np.float32),
        similarity_vectors=POSITIONS,
        popularity=data.item_counts().astype(np.float32),
    )


def context(data: Interactions, user: str, vector: np.ndarray | None = None) -> UserContext:
    row = int(data.users.index([user])[0])
    mine = data.user_idx == row
    order = np.argsort(-data.timestamps[mine])  # type: ignore[index]
    return UserContext(
        row=row,
        seen=np.sort(data.item_idx[mine]).astype(np.int64),
        recent=data.item_idx[mine][order].astype(np.int64),
        recent_values=data.values[mine][order],
        vector=vector,
    )


def test_popular_skips_seen_items(catalogue) -> None:  # type: ignore[no-untyped-def]
    data = catalogue[0]
    source = Popular(top=2).fit(source_data(catalogue))
    found = source.retrieve(context(data, "u1"))  # u1 saw a, c, d; unseen e3 f3 b2 g2 h1
    assert ids(data, found.items) == {"e", "f"}
    np.testing.assert_array_equal(found.scores, [3.0, 3.0])
    assert source.explain(-1, str) == "popular with everyone"


def test_top_in_favorite_genres(catalogue) -> None:  # type: ignore[no-untyped-def]
    data = catalogue[0]
    fitted = source_data(catalogue)
    # u2 watched a, b, h: Comedy x3; unseen comedies c (2 events), h seen -> only c
    one = TopInFavoriteGenres(n_genres=1, per_genre=2).fit(fitted)
    found = one.retrieve(context(data, "u2"))
    assert ids(data, found.items) == {"c"}
    assert one.explain(int(found.anchors[0]), str) == (
        "popular in Comedy, one of your favourite genres"
    )
    # u1 watched a (Comedy), c (Comedy, Drama), d (Drama): top genres Comedy and Drama; the
    # best unseen comedy is b (2 events), the best unseen drama e (3 events)
    two = TopInFavoriteGenres(n_genres=2, per_genre=1).fit(fitted)
    found = two.retrieve(context(data, "u1"))
    assert ids(data, found.items) == {"b", "e"}
    reasons = {two.explain(int(a), str) for a in found.anchors}
    assert reasons == {"popular in Comedy, one of your favourite genres",
                       "popular in Drama, one of your favourite genres"}
    assert len(two.retrieve(UserContext(-1, *(np.empty(0, np.int64),) * 2, np.empty(0)))) == 0


def test_top_in_segment_by_occupation_and_age_bucket(catalogue) -> None:  # type: ignore[no-untyped-def]
    data = catalogue[0]
    fitted = source_data(catalogue)
    source = TopInSegment("occupation", top=1).fit(fitted)
    # writers (u1-u3) watched a x3, b x2, c d f h x1; u1 has not seen b
    found = source.retrieve(context(data, "u1"))
    assert ids(data, found.items) == {"b"}
    assert source.explain(int(found.anchors[0]), str) == (
        "popular with users whose occupation is writer"
    )
    # artists (u4-u6) watched e x3, d f g x2, c x1; u4 has seen all but c
    found = TopInSegment("occupation", top=5).fit(fitted).retrieve(context(data, "u4"))
    assert ids(data, found.items) == {"c"}
    # age buckets [18, 30), [30, 45), [45, ...): u2, u3, u6 share the middle bucket
    by_age = TopInSegment("age", top=10, bins=[18, 30, 45]).fit(fitted)
    found = by_age.retrieve(context(data, "u2"))  # u3: a b f, u6: e f c; u2 saw a b h
    assert ids(data, found.items) == {"f", "e", "c"}
    assert by_age.explain(int(found.anchors[0]), str) == "popular with users whose age is 30-45"


def test_similar_to_recent(catalogue) -> None:  # type: ignore[no-untyped-def]
    data = catalogue[0]
    fitted = source_data(catalogue)
    # u1's latest item is d (position 3); unseen by distance: e 2.25, b 4, f 9
    source = SimilarToRecent(n_recent=1, n_similar=2).fit(fitted)
    found = source.retrieve(context(data, "u1"))
    assert ids(data, found.items) == {"e", "b"}
    def label(index: int) -> str:
        return str(data.items.ids[index])

    assert {source.explain(int(a), label) for a in found.anchors} == {"because you watched d"}
    np.testing.assert_allclose(sorted(found.scores), [-4.0, -2.25])
    # with the last two (d, then c at 2): b is 1 from c, better than its 4 from d
    two = SimilarToRecent(n_recent=2, n_similar=1).fit(fitted).retrieve(context(data, "u1"))
    anchors = {label(i): label(a) for i, a in zip(two.items, two.anchors, strict=True)}
    assert set(anchors) == {"e", "b"}
    assert anchors == {"b": "c", "e": "d"}
    # min_value: only liked items anchor (u1 rated d 2, c 4, a 5)
    liked = SimilarToRecent(n_recent=1, n_similar=1, min_value=4).fit(fitted)
    found = liked.retrieve(context(data, "u1"))
    assert ids(data, found.items) == {"b"} and data.items.ids[found.anchors[0]] == "c"


@pytest.mark.parametrize("index", [{"kind": "exact"}, {"kind": "hnsw", "recall_sample": 0}])
def test_nearest_to_user(catalogue, index) -> None:  # type: ignore[no-untyped-def]
    data = catalogue[0]
    source = NearestToUser(top=2, index=index).fit(source_data(catalogue))
    taste = np.array([0.1, 0.9, 0.8, 0.95, 0.2, 0.7, 0.0, 0.3], dtype=np.float32)
    found = source.retrieve(context(data, "u1", taste))  # u1 saw a, c, d -> b 0.9, f 0.7
    assert ids(data, found.items) == {"b", "f"}
    assert len(source.retrieve(context(data, "u1"))) == 0  # no vector, no candidates


def test_a_built_index_is_used_as_given(catalogue) -> None:  # type: ignore[no-untyped-def]
    from palate.retrieval import ExactIndex, FaissIndex

    data = catalogue[0]
    built = FaissIndex("hnsw", recall_sample=0).build(np.eye(8, dtype=np.float32))
    source = NearestToUser(top=2, index=built).fit(source_data(catalogue))
    assert source.index_ is built
    assert source.config()["index"]["kind"] == "hnsw"
    taste = np.array([0.1, 0.9, 0.8, 0.95, 0.2, 0.7, 0.0, 0.3], dtype=np.float32)
    assert ids(data, source.retrieve(context(data, "u1", taste)).items) == {"b", "f"}
    with pytest.raises(ConfigError, match="l2"):
        SimilarToRecent(index=built)
    with pytest.raises(ConfigError, match="built"):
        NearestToUser(index=ExactIndex())


def test_sizes_scale_and_configs_round_trip() -> None:
    for source in default_sources():
        copy = make_source(source.config())
        assert copy.config() == source.config()
        assert source.scaled(3.0).size == 3 * source.size
    assert [s.size for s in default_sources()] == [100, 30, 20, 20, 100]


def test_configuration_errors(catalogue) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="n_similar"):
        SimilarToRecent(n_similar=0)
    with pytest.raises(ConfigError, match="unknown source kind"):
        make_source({"kind": "trending"})
    with pytest.raises(ConfigError, match="source 'popular'"):
        make_source({"kind": "popular", "size": 3})
    fitted = source_data(catalogue)
    fitted.user_table = None
    with pytest.raises(DataError, match="user table"):
        TopInSegment("country").fit(fitted)


@pytest.mark.parametrize("precomputed", [2, 7])
def test_precomputed_related_items_equal_the_search(catalogue, monkeypatch, precomputed) -> None:  # type: ignore[no-untyped-def]
    """Related items read from the table computed at fit time are what the index search
    finds; an anchor whose stored items are all seen is searched (2 stored: u1 has seen
    the neighbours of some of its items)."""
    data = catalogue[0]
    fitted = source_data(catalogue)
    searched = SimilarToRecent(n_recent=3, n_similar=2).fit(fitted)
    stored = SimilarToRecent(n_recent=3, n_similar=2, precomputed=precomputed).fit(fitted)
    assert stored.related_ is not None and stored.related_.shape == (8, precomputed)
    assert (stored.related_ != np.arange(8)[:, None]).all()  # never the item itself
    for user in ("u1", "u2", "u3"):
        a, b = searched.retrieve(context(data, user)), stored.retrieve(context(data, user))
        np.testing.assert_array_equal(a.items, b.items)
        np.testing.assert_array_equal(a.anchors, b.anchors)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)
    # model files: the table comes back without being computed again
    arrays, extra = stored.state()
    assert {"related", "related_distances"} <= set(arrays)
    import palate.retrieval.sources as sources

    monkeypatch.setattr(sources, "_related_items", lambda *a: pytest.fail("recomputed"))
    copy = make_source(stored.config())
    assert isinstance(copy, SimilarToRecent)
    copy.restore(arrays, extra, fitted)
    found = copy.retrieve(context(data, "u1"))
    np.testing.assert_array_equal(found.items, stored.retrieve(context(data, "u1")).items)
    with pytest.raises(ConfigError, match="precomputed"):
        SimilarToRecent(precomputed=-1)
