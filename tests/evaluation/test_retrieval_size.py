"""The retrieval-size experiment: its rows measure what they say."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import palate
from palate.data.split import user_holdout
from palate.data.synthetic import synthetic_ratings
from palate.errors import ConfigError
from palate.evaluation.metrics import ndcg_at_k, recall_at_k
from palate.evaluation.retrieval_size import (
    RetrievalSizeResult,
    best_operating_point,
    relevant_items,
    retrieval_size_experiment,
)
from palate.retrieval.sources import NearestToUser, Popular


@pytest.fixture(scope="module")
def setup():  # type: ignore[no-untyped-def]
    data = synthetic_ratings(80, 60, 1600, seed=3)
    train, test = user_holdout(data.ratings, last_n=3, seed=0)
    ranker = palate.ImplicitALS(embedding_size=4, epochs=3).fit(train)
    pipeline = palate.RetrieveThenRank(ranker, [Popular(top=10), NearestToUser(top=10)])
    return train, test, pipeline.fit(train, item_table=data.items)


def test_rows_match_direct_computation(setup) -> None:  # type: ignore[no-untyped-def]
    train, test, pipeline = setup
    result = retrieval_size_experiment(
        pipeline, test, sizes=[2, 20, 200], k=5, relevant_threshold=3.0, n_users=None
    )
    names = [row.config for row in result.rows]
    assert names == ["whole catalogue", "all sources", "all sources", "all sources",
                     "only popular", "only nearest_to_user"]
    relevant = relevant_items(test, 3.0)
    users = [u for u in relevant if u in train.users]
    assert result.n_users == len(users)
    expected = pipeline.ranker.recommend(users, k=5).item_ids
    truth = [relevant[u] for u in users]
    whole = result.rows[0]
    assert whole.ndcg == pytest.approx(np.nanmean(ndcg_at_k(expected, truth, 5)))
    assert whole.recall == pytest.approx(np.nanmean(recall_at_k(expected, truth, 5)))
    # 200 candidates: the exact nearest-to-user source holds the model's own top 5
    large = result.rows[3]
    assert large.ndcg == pytest.approx(whole.ndcg) and large.recall == pytest.approx(whole.recall)
    # candidates grow with the target, and so does the share of relevant items among them
    small, middle = result.rows[1], result.rows[2]
    assert small.candidates < middle.candidates <= large.candidates <= train.n_items
    assert small.candidate_recall <= middle.candidate_recall <= large.candidate_recall
    assert all(row.p50_ms <= row.p99_ms for row in result.rows)
    best = best_operating_point(result)
    assert best is not None and best.ndcg >= 0.98 * whole.ndcg


def test_outputs(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, test, pipeline = setup
    result = retrieval_size_experiment(pipeline, test, sizes=[5, 50], n_users=20,
                                       each_source=False)
    assert len(result.rows) == 3 and result.n_users == 20
    document = json.loads(result.save_json(tmp_path / "r.json").read_text())
    assert document["rows"][0]["candidate_recall"] is None  # not measured: null, not NaN
    again = RetrievalSizeResult.from_json(tmp_path / "r.json")
    assert again.to_frame().equals(result.to_frame()) or np.allclose(
        again.to_frame().select_dtypes("number").fillna(-1),
        result.to_frame().select_dtypes("number").fillna(-1),
    )
    png = result.plot(tmp_path / "r.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigError, match="sizes"):
        retrieval_size_experiment(pipeline, test, sizes=[0])
