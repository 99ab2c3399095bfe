"""Known answers for the popularity baseline (the last-resort fallback)."""

from __future__ import annotations

import numpy as np
import pytest

from palate import ConfigError, DataError, Interactions, NotFittedError, Popularity

# item:  p: 5 5 4   q: 1 2   r: 5   s: 3 4   t: 2 2 2 2      12 events, Σ = 37, C = 37/12
EVENTS = [
    ("u1", "p", 5.0), ("u1", "q", 1.0), ("u1", "t", 2.0),
    ("u2", "p", 5.0), ("u2", "s", 3.0), ("u2", "t", 2.0),
    ("u3", "p", 4.0), ("u3", "r", 5.0), ("u3", "t", 2.0),
    ("u4", "q", 2.0), ("u4", "s", 4.0), ("u4", "t", 2.0),
]
C = 37 / 12
SUMS = {"p": 14.0, "q": 3.0, "r": 5.0, "s": 7.0, "t": 8.0}
COUNTS = {"p": 3, "q": 2, "r": 1, "s": 2, "t": 4}


@pytest.fixture(scope="module")
def events() -> Interactions:
    users, items, values = zip(*EVENTS, strict=True)
    return Interactions.from_arrays(list(users), list(items), list(values),
                                    rating_scale=(1.0, 5.0))


def shrunk(item: str, prior: float) -> float:
    return (SUMS[item] + prior * C) / (COUNTS[item] + prior)


@pytest.mark.parametrize("prior", [0.0, 1.0, 10.0])
def test_predict_is_the_shrunk_item_mean(events: Interactions, prior: float) -> None:
    model = Popularity(prior=prior).fit(events)
    items = ["p", "q", "r", "s", "t"]
    expected = [shrunk(i, prior) for i in items]
    np.testing.assert_allclose(model.predict(["u1"] * 5, items), expected, rtol=1e-6)
    # the user does not matter, known or not
    np.testing.assert_allclose(model.predict(["nobody"] * 5, items), expected, rtol=1e-6)


def test_by_count_ranks_by_number_of_events_ties_by_mean(events: Interactions) -> None:
    model = Popularity(by="count", prior=1.0).fit(events)
    rec = model.recommend(["nobody"], k=5, exclude_seen=False)
    # t 4, p 3, then s and q with 2 each (s has the higher shrunk mean), r 1
    assert rec.item_ids.tolist() == [["t", "p", "s", "q", "r"]]
    np.testing.assert_allclose(np.floor(rec.scores[0]), [4, 3, 2, 2, 1])


@pytest.mark.parametrize(
    ("prior", "order"), [(0.0, ["r", "p", "s", "t", "q"]), (1.0, ["p", "r", "s", "t", "q"])]
)
def test_by_mean_ranks_by_shrunk_mean(events: Interactions, prior: float, order: list) -> None:
    # prior 0: raw means r 5, p 4.67, s 3.5, t 2, q 1.5; one pseudo-event at C pulls r below p
    model = Popularity(by="mean", prior=prior).fit(events)
    rec = model.recommend(["nobody"], k=5, exclude_seen=False)
    assert rec.item_ids.tolist() == [order]
    np.testing.assert_allclose(rec.scores[0], [shrunk(i, prior) for i in order], rtol=1e-6)


def test_recommend_excludes_seen_items_and_pads(events: Interactions) -> None:
    model = Popularity(prior=1.0).fit(events)
    rec = model.recommend(["u1", "u3", "nobody"], k=4)
    assert rec.item_ids.tolist() == [
        ["s", "r", None, None],  # u1 saw p, q, t
        ["s", "q", None, None],  # u3 saw p, r, t
        ["t", "p", "s", "q"],
    ]
    assert np.isnan(rec.scores[:2, 2:]).all() and np.isfinite(rec.scores[2]).all()
    assert rec.user_ids.tolist() == ["u1", "u3", "nobody"]


def test_predict_unknown_item_is_nan(events: Interactions) -> None:
    model = Popularity().fit(events)
    out = model.predict(["u1", "u1"], ["p", "zzz"])
    assert np.isfinite(out[0]) and np.isnan(out[1])
    assert out.dtype == np.float32


def test_predict_scores_pairs(events: Interactions) -> None:
    model = Popularity().fit(events)
    with pytest.raises(DataError, match="pairs"):
        model.predict(["u1", "u2"], ["p"])


def test_integer_ids_pad_with_minus_one() -> None:
    data = Interactions.from_arrays([1, 1, 2], [10, 20, 10], [4.0, 3.0, 5.0])
    rec = Popularity().fit(data).recommend([1], k=3)
    assert rec.item_ids.tolist() == [[-1, -1, -1]]
    rec = Popularity().fit(data).recommend([2], k=3)
    assert rec.item_ids.tolist() == [[20, -1, -1]]
    assert rec.item_ids.dtype.kind == "i"


def test_binary_labels_count_events(tiny_binary: Interactions) -> None:
    model = Popularity().fit(tiny_binary)
    counts = tiny_binary.item_counts()
    best = tiny_binary.items.ids[np.argmax(counts)]
    assert model.recommend(["nobody"], k=1, exclude_seen=False).item_ids[0, 0] == best
    # a label 0 is a training event too: it is excluded from the user's recommendations
    rec = model.recommend(["ann"], k=6).item_ids[0].tolist()
    assert "brazil" not in rec  # ann was shown brazil and did not engage


def test_not_fitted(events: Interactions) -> None:
    model = Popularity()
    assert not model.is_fitted
    with pytest.raises(NotFittedError):
        model.recommend(["u1"])
    with pytest.raises(NotFittedError):
        model.predict(["u1"], ["p"])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"by": "votes"}, "by"),
        ({"prior": -1.0}, "prior"),
        ({"prior": float("nan")}, "prior"),
        ({"prior": float("inf")}, "prior"),
        pytest.param({"prior": "ten"}, "prior"),
        pytest.param({"prior": None}, "prior"),
    ],
)
def test_invalid_configuration(kwargs: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Popularity(**kwargs)


def test_get_params_round_trip() -> None:
    model = Popularity(by="mean", prior=3)
    assert model.get_params() == {"by": "mean", "prior": 3.0}
    assert Popularity(**model.get_params()).get_params() == model.get_params()
