"""evaluate / cross_validate: known answers on a hand-made case, intervals, folds."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from palate import Interactions, Popularity
from palate.data.synthetic import synthetic_ratings
from palate.errors import ConfigError, DataError
from palate.evaluation import EvaluationReport, cross_validate, evaluate
from palate.evaluation.evaluate import normal_interval, t_interval

# Train: u1 {3}, u2 {1, 2}, u3 {1, 2, 3}, u4 {1}  -> counts 1:3, 2:2, 3:2, 4:0, 5:0; 4 users.
# Test:  u1 2 (5.0), 4 (3.0); u2 3 (4.0); u3 4 (1.0), 5 (2.0) -> relevant (>= 4): u1 {2},
# u2 {3}; five items in the catalogue.
TRAIN_ROWS = [
    (1, 3, 5.0),
    (2, 1, 4.0),
    (2, 2, 3.0),
    (3, 1, 2.0),
    (3, 2, 4.0),
    (3, 3, 5.0),
    (4, 1, 3.0),
]
TEST_ROWS = [(1, 2, 5.0), (1, 4, 3.0), (2, 3, 4.0), (3, 4, 1.0), (3, 5, 2.0)]
RANKINGS = {1: [3, 1, 2, 4, 5], 2: [1, 3, 2, 5, 4], 3: [5, 4, 3, 2, 1]}
PREDICTIONS = {(1, 2): 4.0, (1, 4): 3.0, (2, 3): 4.0, (3, 4): 3.0, (3, 5): 2.0}
GENRES = pd.DataFrame(
    {"item_id": [1, 2, 3, 4, 5], "genres": [["A", "B"], ["A"], ["B", "C"], [], ["D"]]}
)


class Stub:
    """Fixed rankings (train items included: evaluate must drop them) and predictions."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def predict(self, user_ids: Any, item_ids: Any) -> np.ndarray:
        return np.array(
            [PREDICTIONS[(int(u), int(i))] for u, i in zip(user_ids, item_ids, strict=True)]
        )

    def recommend(self, user_ids: Any, k: int = 10, exclude_seen: bool = True) -> Any:
        self.calls.append({"users": list(user_ids), "k": k, "exclude_seen": exclude_seen})
        rows = [(RANKINGS[int(u)] + [-1] * k)[:k] for u in user_ids]
        return type("Recs", (), {"item_ids": np.array(rows)})()


@pytest.fixture(scope="module")
def split() -> tuple[Interactions, Interactions]:
    rows = TRAIN_ROWS + TEST_ROWS
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    data = Interactions.from_pandas(frame)
    n = len(TRAIN_ROWS)
    mask = np.arange(len(rows)) < n
    return data.subset(mask), data.subset(~mask)


def test_known_answers(split: tuple[Interactions, Interactions]) -> None:
    train, test = split
    report = evaluate(Stub(), train, test, k=2, items=GENRES)
    # lists after dropping train items: u1 [1, 2] (hit at 2), u2 [3, 5] (hit at 1); u3 has no
    # relevant test item
    expected = {
        "rmse": math.sqrt((1 + 0 + 0 + 4 + 0) / 5),
        "mae": 0.6,
        "precision@2": 0.5,
        "recall@2": 1.0,
        "ndcg@2": (1 / math.log2(3) + 1) / 2,
        "map@2": (0.5 + 1) / 2,
        "hit_rate@2": 1.0,
        "coverage@2": 4 / 5,
        # p(i) = max(count, 1) / 4 users: p1 3/4, p2 2/4, p3 2/4, p5 1/4
        "novelty": ((-math.log2(3 / 4) + 1) / 2 + (1 + 2) / 2) / 2,
        # top ceil(0.1 * 5) = 1 item: item 1
        "popularity_bias": (0.5 + 0.0) / 2,
        # u1: 1 - |{A}|/|{A,B}| = 0.5; u2: 1 - 0/|{B,C,D}| = 1
        "diversity": 0.75,
    }
    assert list(report.metrics) == list(expected)
    for name, value in expected.items():
        assert report[name].mean == pytest.approx(value), name
    assert report["precision@2"].n == 2 and report["rmse"].n == 5
    assert report.info["n_users"] == 2
    assert any("training items were excluded" in note for note in report.notes)


def test_intervals_on_known_values(split: tuple[Interactions, Interactions]) -> None:
    train, test = split
    report = evaluate(Stub(), train, test, k=2, items=GENRES)
    # constant per-user values: zero-width interval
    assert report["precision@2"].ci_low == report["precision@2"].ci_high == 0.5
    # popularity bias per user [0.5, 0]: mean ± 1.96 · sd / √2
    half = 1.959964 * np.std([0.5, 0.0], ddof=1) / math.sqrt(2)
    assert report["popularity_bias"].ci_low == pytest.approx(0.25 - half, abs=1e-6)
    assert report["popularity_bias"].ci_high == pytest.approx(0.25 + half, abs=1e-6)
    # MAE: normal approximation over |errors| = [1, 0, 0, 2, 0]
    half = 1.959964 * np.std([1, 0, 0, 2, 0], ddof=1) / math.sqrt(5)
    assert report["mae"].ci_high == pytest.approx(0.6 + half, abs=1e-6)
    # RMSE: seeded bootstrap, contains the estimate, repeatable
    rmse = report["rmse"]
    assert rmse.ci_low <= rmse.mean <= rmse.ci_high
    again = evaluate(Stub(), train, test, k=2, metrics=["rmse"])
    assert (again["rmse"].ci_low, again["rmse"].ci_high) == (rmse.ci_low, rmse.ci_high)
    assert math.isnan(report["coverage@2"].ci_low)


def test_textbook_interval() -> None:
    mean, low, high, n = normal_interval([0.0, 1.0])
    assert (mean, n) == (0.5, 2)
    assert high - mean == pytest.approx(1.96 * math.sqrt(0.5) / math.sqrt(2), abs=1e-4)
    assert mean - low == pytest.approx(high - mean)
    assert normal_interval([0.3, 0.3, 0.3])[1:3] == (pytest.approx(0.3), pytest.approx(0.3))
    assert math.isnan(normal_interval([1.0])[1])
    # t with 1 degree of freedom: 12.706 instead of 1.96
    _, low, high, _ = t_interval([0.0, 1.0])
    assert high - 0.5 == pytest.approx(12.7062 * math.sqrt(0.5) / math.sqrt(2), abs=1e-3)


def test_training_items_excluded(split: tuple[Interactions, Interactions]) -> None:
    train, test = split
    stub = Stub()
    excluded = evaluate(stub, train, test, k=2, metrics=["precision"])
    # asks for k + the most training items of an evaluated user (u2: 2) so that k remain
    assert stub.calls[-1]["k"] == 4 and stub.calls[-1]["exclude_seen"] is True
    assert excluded["precision@2"].mean == 0.5
    # not excluding: u1 gets [3, 1] (no hit), u2 [1, 3] (one hit)
    kept = evaluate(stub, train, test, k=2, metrics=["precision"], exclude_train=False)
    assert stub.calls[-1] == {"users": [1, 2], "k": 2, "exclude_seen": False}
    assert kept["precision@2"].mean == 0.25
    assert not any("excluded" in note for note in kept.notes)


def test_relevance_threshold_and_metric_choice(split: tuple[Interactions, Interactions]) -> None:
    train, test = split
    # threshold 3: u1 {2, 4}; u2 {3}
    report = evaluate(Stub(), train, test, k=2, metrics=["recall@2"], relevance_threshold=3.0)
    assert list(report.metrics) == ["recall@2"]
    assert report["recall@2"].mean == pytest.approx((0.5 + 1.0) / 2)
    with pytest.raises(ConfigError, match="unknown metric"):
        evaluate(Stub(), train, test, metrics=["auc"])
    with pytest.raises(DataError, match="no test event is relevant"):
        evaluate(Stub(), train, test, metrics=["ndcg"], relevance_threshold=6.0)


def test_report_outputs(split: tuple[Interactions, Interactions]) -> None:
    train, test = split
    report = evaluate(Stub(), train, test, k=2, items=GENRES)
    frame = report.to_pandas()
    assert list(frame.columns) == ["metric", "mean", "ci_low", "ci_high", "n"]
    assert frame["metric"].tolist() == list(report.metrics)
    document = json.loads(report.to_json())
    assert document["k"] == 2
    assert document["metrics"]["coverage@2"]["ci_low"] is None
    assert set(document["metrics"]["rmse"]) == {"mean", "ci_low", "ci_high", "n"}
    text = repr(report)
    assert "ndcg@2" in text and "95% CI" in text


class Recorder:
    """Records what each fold trains and is tested on."""

    log: list[dict[str, set[tuple[int, int]]]] = []

    def fit(self, data: Interactions) -> Recorder:
        self.entry = {
            "train": set(zip(data.user_ids.tolist(), data.item_ids.tolist(), strict=True)),
            "test": set(),
        }
        Recorder.log.append(self.entry)
        return self

    def predict(self, user_ids: Any, item_ids: Any) -> np.ndarray:
        self.entry["test"].update(
            zip(np.asarray(user_ids).tolist(), np.asarray(item_ids).tolist(), strict=True)
        )
        return np.full(len(user_ids), 3.0)


def test_cross_validate_folds_disjoint_and_cover() -> None:
    data = synthetic_ratings(20, 15, 120, seed=3).ratings
    everything = set(zip(data.user_ids.tolist(), data.item_ids.tolist(), strict=True))
    Recorder.log = []
    report = cross_validate(Recorder, data, n_splits=4, seed=1, metrics=["rmse", "mae"])
    assert len(Recorder.log) == 4 and len(report.folds) == 4
    tests = [entry["test"] for entry in Recorder.log]
    assert set().union(*tests) == everything
    assert sum(len(t) for t in tests) == len(everything)
    for entry in Recorder.log:
        assert not entry["train"] & entry["test"]
        assert entry["train"] | entry["test"] == everything
    per_fold = report["rmse"].values
    assert per_fold.shape == (4,)
    assert report["rmse"].mean == pytest.approx(per_fold.mean())
    _, low, high, _ = t_interval(per_fold)
    assert (report["rmse"].ci_low, report["rmse"].ci_high) == (low, high)
    assert len(json.loads(report.to_json())["metrics"]["mae"]["per_fold"]) == 4


def test_cross_validate_passes_fit_params_to_every_fold() -> None:
    data = synthetic_ratings(20, 15, 120, seed=3).ratings
    seen: list[Any] = []

    class WithFeatures(Recorder):
        def fit(self, data: Interactions, *, item_features: Any = None) -> Recorder:
            seen.append(item_features)
            return super().fit(data)

    Recorder.log = []
    cross_validate(WithFeatures, data, n_splits=3, metrics=["rmse"],
                   fit_params={"item_features": "table"})
    assert seen == ["table"] * 3


def test_cross_validate_real_model() -> None:
    synthetic = synthetic_ratings(40, 30, 600, seed=0)
    report = cross_validate(
        lambda: Popularity(by="mean"), synthetic.ratings, n_splits=3, k=5, items=synthetic.items
    )
    assert isinstance(report, EvaluationReport)
    assert {"rmse", "ndcg@5", "coverage@5", "novelty", "diversity"} <= set(report.metrics)
    assert 0.0 <= report["ndcg@5"].mean <= 1.0
    assert report["rmse"].n == 3
