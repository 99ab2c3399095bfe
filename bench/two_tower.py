"""The two-tower model on MovieLens: warm RMSE beside CF, cold start, training throughput.

Protocols (all splits drawn from ``numpy.random.default_rng(seed)``):

- **warm**: ``palate.data.split.random_split(ratings, 0.1, seed)``; RMSE on the held-out
  ratings of palate ``CollaborativeFiltering()`` (defaults) and ``TwoTower`` (user + item
  features: defaults; the registry preset ``warm``, without cold-start dropout; and the
  hybrid with 32-long id embeddings, left out with ``--no-hybrid``).
- **item cold start**: 20% of the items are held out with all their ratings; the model is
  trained on the rest. For every user with a held-out rating of 4 or more, the held-out items
  are ranked (item vectors from genres and year only) and NDCG@10 is computed with "rated
  >= 4" as relevant. Baselines on the same candidates: a random ranking (mean of 20 draws)
  and genre popularity (an item's score: the highest mean number of ratings >= 4 per
  training item among its genres). ``two_tower_cold_items`` is ``TwoTower`` with the
  registry preset ``cold_items`` (retrieval objective on the ratings >= 4, user id
  embeddings, items from their features alone through one linear layer), its number of
  epochs (1 to 16) chosen on validation cold items: 20% of the *training* items held out
  twice (``default_rng(seed + 1)`` and ``(seed + 2)``), a model trained on the others'
  positives, the held-out validation items ranked for their users after every epoch; the
  epoch with the highest mean NDCG@10 over the two carves is chosen, and the final model is
  trained on all training positives for that many epochs. The test items are never looked
  at.
- **user cold start**: 20% of the users are held out with all their ratings. Each is ranked
  every training item from their attributes alone (age, gender, occupation, zip region);
  NDCG@10 against their ratings >= 4, beside most-popular (count). Then after their first
  1, 3 and 10 ratings (by time): CF fold-in versus the two-tower user vector whose derived
  features come from those ratings, scored on their remaining ratings (the given ones are
  excluded from the list). Beside the ratings-objective two-tower (which learns how much a
  rated item is liked, not which items a user rates highly at all), ``two_tower_retrieval``:
  ``TwoTower(objective="retrieval", temperature=0.1, learning_rate=3e-4)`` trained on the
  training users' ratings >= 4 only (in-batch softmax with the log-frequency correction, so
  its scores keep item popularity), its derived user features from the given ratings >= 4.
  Its number of epochs (1 to 8) is chosen on validation cold users: 20% of the training users
  (``default_rng(seed + 1)``), ranked from their attributes after every epoch of a model
  trained on the others; the held-out users are never looked at.
- **LightFM with features** (both cold-start protocols, when ``lightfm`` imports; otherwise
  a line says it was skipped): ``LightFM(loss="warp", no_components=32, random_state=seed)``,
  30 epochs, 1 thread, trained on the same training part as the two-tower with its ratings
  >= 4 as the positive interactions (the relevance of the metric; the other ratings are
  left out, not used as negatives). Features are one-hot labels built from the training
  rows (a label absent from them is dropped): items ``genre=…`` (multi-hot) and ``year=…``
  (decade, or ``year=unknown``); users ``age=…`` (buckets <18, 18-24, 25-34, 35-44, 45-49,
  50-55, 56+), ``gender=…``, ``occupation=…``, ``zip_region=…`` (first character of the zip
  code). Each row is normalised to sum to 1 (as ``lightfm.data.Dataset`` does by default).
  In the item cold start the items are represented by their features only (no per-item
  identity column, so a held-out item is built exactly like a training item) and the users
  by an identity column plus their attributes; in the user cold start the mirror: users by
  their attributes only, items by an identity column plus their features. A score is
  ``item bias + user vector · item vector`` on exactly the candidates of the other methods;
  in the user cold start the LightFM user vector comes from the attributes alone at every
  step (LightFM does not fold in a new user's ratings; the given items are excluded from
  its list, as for every method).
- **throughput** (``--threads``, default 2): examples/s of the full ``TwoTower.fit`` loop at
  batch 1024 with the default towers (feature gathering, shuffling, loss, Adam), measured
  between the end of the first and the last epoch; the FLOPs one training example needs
  (forward, weight and input gradients of both towers' dense layers); the rate of a
  4096 x 4096 float32 ``torch.mm`` in the same run (the larger of a rate taken before and
  one after); and a bare training step (same towers and widths, random in-memory tensors, no
  data pipeline). The loop is measured as is (the default hand-written step) and with
  ``TwoTower(compile=True)`` (autograd through ``torch.compile``); the bare step as the
  default step, as the autograd step, and compiled. Compilation happens inside the untimed
  first epoch / pass.

Usage::

    python two_tower.py [--data DIR] [--dataset ml-100k|ml-1m] [--parts warm,item_cold,...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from common import (
    DEFAULT_ML100K,
    RESULTS_DIR,
    command_line,
    finish,
    git_commit,
    library_versions,
    machine_note,
    now_iso,
    parse_list,
    print_table,
    rmse,
)

PARTS = ("warm", "item_cold", "user_cold", "throughput")
K = 10
RELEVANT = 4.0


def load(args: argparse.Namespace) -> Any:
    import palate

    return palate.datasets.movielens(args.dataset, path=args.data, download=False)


# ------------------------------------------------------------------------------ warm
def warm(ml: Any, seed: int, hybrid: bool = True) -> dict[str, Any]:
    import palate
    from palate.data.split import random_split
    from palate.models.two_tower.config import WARM

    train, test = random_split(ml.ratings, test_fraction=0.1, seed=seed)
    rows: dict[str, Any] = {}

    def run(name: str, model: Any, **fit: Any) -> None:
        start = time.perf_counter()
        model.fit(train, **fit)
        seconds = time.perf_counter() - start
        value = rmse(test.values, model.predict(test.user_ids, test.item_ids))
        rows[name] = {"rmse": value, "fit_s": seconds,
                      "epochs": len(getattr(model, "history_", []))}
        print(f"  {name}: RMSE {value:.4f}  fit {seconds:.1f} s", flush=True)

    features = {"user_features": ml.user_features, "item_features": ml.item_features}
    run("cf", palate.CollaborativeFiltering())
    run("two_tower", palate.TwoTower(seed=seed), **features)
    run("two_tower_warm", palate.TwoTower(**WARM, seed=seed), **features)
    if hybrid:
        run("two_tower_hybrid", palate.TwoTower(id_embedding_size=32, seed=seed), **features)
    for name in ("two_tower", "two_tower_warm", "two_tower_hybrid"):
        if name in rows:
            rows[name]["vs_cf"] = rows[name]["rmse"] / rows["cf"]["rmse"] - 1
    return {"n_train": len(train), "n_test": len(test), "models": rows}


# ------------------------------------------------------------------------------ LightFM
#: LightFM with features in the cold-start protocols (see the module docstring).
LIGHTFM = {"loss": "warp", "no_components": 32}
LIGHTFM_EPOCHS = 30
#: Lower edges of the age buckets (those of MovieLens 1M, whose ages are these codes).
AGE_EDGES = (18, 25, 35, 45, 50, 56)


def _lightfm_class() -> Any | None:
    """``lightfm.LightFM``, or ``None`` (with a line saying so) when it cannot be imported."""
    try:
        from lightfm import LightFM
    except ImportError as error:
        print(f"  lightfm: skipped, it cannot be imported ({error}); "
              "`make -C bench venv` builds a virtual environment with it", flush=True)
        return None
    return LightFM


def _age_label(age: Any) -> str:
    if age is None or pd.isna(age):
        return "age=unknown"
    lower = [edge for edge in AGE_EDGES if float(age) >= edge]
    if not lower:
        return f"age=<{AGE_EDGES[0]}"
    if lower[-1] == AGE_EDGES[-1]:
        return f"age={AGE_EDGES[-1]}+"
    return f"age={lower[-1]}-{AGE_EDGES[len(lower)] - 1}"


def _item_labels(ml: Any, ids: np.ndarray) -> list[list[str]]:
    """Feature labels of each item: ``genre=…`` for each genre and ``year=<decade>s``."""
    table = ml.items.set_index("item_id")
    labels = []
    for item in ids:
        row = table.loc[item]
        genres = row["genres"] if isinstance(row["genres"], (list, tuple, np.ndarray)) else []
        year = row["year"] if "year" in table.columns else None
        decade = "unknown" if year is None or pd.isna(year) else f"{int(year) // 10 * 10}s"
        labels.append([*(f"genre={g}" for g in genres), f"year={decade}"])
    return labels


def _user_labels(ml: Any, ids: np.ndarray) -> list[list[str]]:
    """Feature labels of each user: age bucket, gender, occupation and zip region."""
    table = ml.users.set_index("user_id")
    labels = []
    for user in ids:
        row = table.loc[user]
        zip_code = row.get("zip")
        region = "unknown" if zip_code is None or pd.isna(zip_code) else str(zip_code)[:1]
        labels.append([_age_label(row.get("age")), f"gender={row.get('gender')}",
                       f"occupation={row.get('occupation')}", f"zip_region={region}"])
    return labels


def _feature_matrix(labels: list[list[str]], vocabulary: dict[str, int],
                    identity: bool) -> sp.csr_matrix:
    """Rows of one-hot labels (unknown labels dropped), after an identity block when
    ``identity``; each row normalised to sum to 1."""
    n = len(labels)
    offset = n if identity else 0
    rows: list[int] = []
    cols: list[int] = []
    for r, row in enumerate(labels):
        if identity:
            rows.append(r)
            cols.append(r)
        for label in row:
            if label in vocabulary:
                rows.append(r)
                cols.append(offset + vocabulary[label])
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                           shape=(n, offset + len(vocabulary)))
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    sums[sums == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / sums).astype(np.float32) @ matrix)


def _label_vocabulary(labels: list[list[str]]) -> dict[str, int]:
    return {label: j for j, label in enumerate(sorted({x for row in labels for x in row}))}


def _fit_lightfm(model_class: Any, train: Any, user_x: sp.csr_matrix, item_x: sp.csr_matrix,
                 seed: int) -> tuple[Any, float]:
    """LightFM fitted on the ratings >= 4 of ``train`` (rows and columns: its vocabularies)."""
    keep = train.values >= RELEVANT
    positives = sp.coo_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32),
         (train.user_idx[keep], train.item_idx[keep])),
        shape=(len(train.users), len(train.items)),
    )
    model = model_class(**LIGHTFM, random_state=seed)
    start = time.perf_counter()
    # one thread: LightFM's parallel SGD is lock-free (Hogwild), so more threads would make
    # the result depend on the scheduling
    model.fit(positives, user_features=user_x, item_features=item_x, epochs=LIGHTFM_EPOCHS,
              num_threads=1)
    return model, time.perf_counter() - start


def _lightfm_scores(model: Any, user_x: sp.csr_matrix, item_x: sp.csr_matrix) -> np.ndarray:
    """``item bias + user vector · item vector`` for every row of ``user_x`` x ``item_x``."""
    _, users = model.get_user_representations(user_x)
    item_bias, items = model.get_item_representations(item_x)
    return users @ items.T + item_bias[None, :]


def _lightfm_item_cold(ml: Any, train: Any, users: list[Any], candidates: np.ndarray,
                       seed: int) -> tuple[list[np.ndarray], float] | None:
    """Rankings of ``candidates`` for ``users`` by LightFM with features-only items."""
    model_class = _lightfm_class()
    if model_class is None:
        return None
    item_labels = _item_labels(ml, train.items.ids)
    item_vocabulary = _label_vocabulary(item_labels)
    user_labels = _user_labels(ml, train.users.ids)
    user_x = _feature_matrix(user_labels, _label_vocabulary(user_labels), identity=True)
    model, seconds = _fit_lightfm(
        model_class, train, user_x,
        _feature_matrix(item_labels, item_vocabulary, identity=False), seed,
    )
    rows = train.users.index(np.asarray(users))
    scores = _lightfm_scores(
        model, user_x[rows], _feature_matrix(_item_labels(ml, candidates), item_vocabulary,
                                             identity=False)
    )
    return [_ranked(row, candidates) for row in scores], seconds


def _lightfm_user_cold(ml: Any, train: Any, users: np.ndarray, seed: int
                       ) -> tuple[dict[Any, np.ndarray], float] | None:
    """Scores of every training item for each new user in ``users``, by LightFM with users
    represented by their attributes only."""
    model_class = _lightfm_class()
    if model_class is None:
        return None
    user_labels = _user_labels(ml, train.users.ids)
    user_vocabulary = _label_vocabulary(user_labels)
    item_labels = _item_labels(ml, train.items.ids)
    item_x = _feature_matrix(item_labels, _label_vocabulary(item_labels), identity=True)
    model, seconds = _fit_lightfm(
        model_class, train, _feature_matrix(user_labels, user_vocabulary, identity=False),
        item_x, seed,
    )
    scores = _lightfm_scores(
        model, _feature_matrix(_user_labels(ml, users), user_vocabulary, identity=False), item_x
    )
    return dict(zip(users.tolist(), scores, strict=True)), seconds


# ------------------------------------------------------------------------------ cold items
def _ndcg(ranked_ids: list[np.ndarray], relevant: list[set]) -> float:
    from palate.evaluation.metrics import mean_over_users, ndcg_at_k

    width = max(len(r) for r in ranked_ids)
    matrix = np.full((len(ranked_ids), width), -1, dtype=np.int64)
    for row, ids in enumerate(ranked_ids):
        matrix[row, : len(ids)] = ids
    return float(mean_over_users(ndcg_at_k(matrix, relevant, k=K)))


def _ranked(scores: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    return candidates[np.argsort(-scores, kind="stable")[:K]]


def _hold_out_items(data: Any, seed: int) -> tuple[Any, Any, np.ndarray]:
    """(events of 80% of the items, compacted; events of the other 20%; those items' ids),
    drawn from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    items = data.items.ids
    is_held = np.zeros(len(items), dtype=bool)
    is_held[rng.permutation(len(items))[: len(items) // 5]] = True
    train = data.subset(np.flatnonzero(~is_held[data.item_idx])).compact()
    test = data.subset(np.flatnonzero(is_held[data.item_idx]))
    return train, test, items[is_held]


def _cold_item_targets(train: Any, test: Any) -> tuple[list[Any], list[set]]:
    """Users of ``train`` with a held-out item rated >= 4, and those items per user."""
    frame = test.to_pandas()
    positive = frame[frame["value"] >= RELEVANT]
    by_user = positive.groupby("user_id")["item_id"].apply(set)
    users = [u for u in by_user.index if u in train.users]
    return users, [by_user[u] for u in users]


def _cold_item_rankings(model: Any, ml: Any, users: list[Any], candidates: np.ndarray
                        ) -> list[np.ndarray]:
    """Each user's ranking of the held-out items, item vectors from features alone."""
    v_m = model.item_vectors(features=ml.item_features.rows(candidates))
    scores = model.user_vectors(np.asarray(users)) @ v_m.T
    return [_ranked(row, candidates) for row in scores]


def _item_validation_curve(ml: Any, train: Any, seed: int, carve: int, options: dict[str, Any],
                           epochs: int) -> tuple[list[float], int, int]:
    """NDCG@10 per epoch of ``TwoTower(**options)`` on validation cold items: 20% of the
    training items (``default_rng(carve)``) held out with their ratings, the model trained on
    the others' positives, the held-out items ranked for their users by features alone after
    every epoch. Returns (the curve, the number of validation items, of validation users)."""
    import palate

    fit, val, val_items = _hold_out_items(train, carve)
    users, relevant = _cold_item_targets(fit, val)
    model = palate.TwoTower(**{**options, "epochs": epochs, "early_stopping": None}, seed=seed)
    curve: list[float] = []

    def after_epoch(epoch: int, metrics: dict[str, float]) -> None:
        model.refresh_vectors()
        curve.append(_ndcg(_cold_item_rankings(model, ml, users, val_items), relevant))

    model.fit(_positives(fit), user_features=ml.user_features, item_features=ml.item_features,
              callback=after_epoch)
    return curve, int(len(val_items)), len(users)


def item_retrieval_epochs(ml: Any, train: Any, seed: int) -> dict[str, Any]:
    """Epochs of the cold-items two-tower, chosen on validation cold items carved from the
    training items only: :func:`_item_validation_curve` for two carves (``default_rng(seed +
    1)`` and ``(seed + 2)``), up to :data:`MAX_ITEM_EPOCHS` epochs; the epoch with the highest
    mean NDCG@10 of the two is chosen."""
    from palate.models.two_tower.config import COLD_ITEMS

    curves, sizes = [], []
    for carve in VALIDATION_CARVES:
        curve, n_items, n_users = _item_validation_curve(
            ml, train, seed, seed + carve, COLD_ITEMS, MAX_ITEM_EPOCHS
        )
        curves.append(curve)
        sizes.append({"carve_seed": seed + carve, "validation_items": n_items,
                      "validation_users": n_users})
    mean = np.mean(curves, axis=0)
    return {"epochs": int(np.argmax(mean)) + 1, "carves": sizes,
            "validation_ndcg@10_per_epoch": curves,
            "mean_validation_ndcg@10_per_epoch": mean.tolist()}


def item_cold(ml: Any, seed: int) -> dict[str, Any]:
    import palate
    from palate.models.two_tower.config import COLD_ITEMS

    data = ml.ratings
    train, test, candidates = _hold_out_items(data, seed)
    model = palate.TwoTower(seed=seed).fit(
        train, user_features=ml.user_features, item_features=ml.item_features
    )
    hybrid = palate.TwoTower(id_embedding_size=32, seed=seed).fit(
        train, user_features=ml.user_features, item_features=ml.item_features
    )
    selection = item_retrieval_epochs(ml, train, seed)
    print(f"  cold-items epochs chosen on validation items: {selection}", flush=True)
    cold_items = palate.TwoTower(
        **{**COLD_ITEMS, "epochs": selection["epochs"]}, seed=seed
    ).fit(_positives(train), user_features=ml.user_features, item_features=ml.item_features)
    users, relevant = _cold_item_targets(train, test)

    def tower_ranking(m: Any) -> list[np.ndarray]:
        return _cold_item_rankings(m, ml, users, candidates)

    # genre popularity: mean number of ratings >= 4 per training item, by genre
    train_frame = train.to_pandas()
    genres_of = ml.items.set_index("item_id")["genres"]
    positives_per_item = (
        train_frame[train_frame["value"] >= RELEVANT].groupby("item_id").size()
        .reindex(train.items.ids, fill_value=0)
    )
    per_genre: dict[str, list[float]] = {}
    for item, count in positives_per_item.items():
        for genre in genres_of.get(item, []):
            per_genre.setdefault(genre, []).append(float(count))
    genre_score = {g: float(np.mean(v)) for g, v in per_genre.items()}
    item_score = np.array(
        [max((genre_score.get(g, 0.0) for g in genres_of.get(i, [])), default=0.0)
         for i in candidates]
    )
    popular = _ranked(item_score, candidates)
    random_scores = []
    for draw in range(20):
        order = np.random.default_rng(1000 + draw)
        random_scores.append(
            _ndcg([order.permutation(candidates)[:K] for _ in users], relevant)
        )
    lightfm = _lightfm_item_cold(ml, train, users, candidates, seed)
    result = {
        "n_held_out_items": int(len(candidates)),
        "n_users": len(users),
        "ndcg@10": {
            "two_tower": _ndcg(tower_ranking(model), relevant),
            "two_tower_hybrid": _ndcg(tower_ranking(hybrid), relevant),
            "two_tower_cold_items": _ndcg(tower_ranking(cold_items), relevant),
            "genre_popularity": _ndcg([popular] * len(users), relevant),
            "random": float(np.mean(random_scores)),
        },
    }
    ndcg = result["ndcg@10"]
    if lightfm is not None:
        ndcg["lightfm"] = _ndcg(lightfm[0], relevant)
        result["lightfm"] = {**LIGHTFM, "epochs": LIGHTFM_EPOCHS, "fit_s": lightfm[1],
                             "positives": f"ratings >= {RELEVANT:g}",
                             "items": "features only", "users": "identity + attributes"}
    result["two_tower_vs_random"] = ndcg["two_tower"] / ndcg["random"]
    result["cold_items_vs_lightfm"] = (
        ndcg["two_tower_cold_items"] / ndcg["lightfm"] if "lightfm" in ndcg else None
    )
    result["cold_items"] = {**COLD_ITEMS, **selection}
    print(f"  item cold start NDCG@10: {ndcg}", flush=True)
    return result


# ------------------------------------------------------------------------------ cold users
#: The retrieval model of the user cold start: softmax over in-batch items with the log-frequency
#: correction, trained on ratings >= 4 only, so that its scores estimate p(item | user) —
#: popularity included. τ and the learning rate were chosen on validation users carved from
#: the training users of ML-100K (seed 0); the number of epochs is chosen per run, see
#: :func:`retrieval_epochs`.
RETRIEVAL = {"objective": "retrieval", "temperature": 0.1, "learning_rate": 3e-4}
MAX_RETRIEVAL_EPOCHS = 8
#: Cold items: the registry preset ``cold_items`` (palate.models.two_tower.config.COLD_ITEMS),
#: its epochs chosen per run on two carves of validation items (:func:`item_retrieval_epochs`).
MAX_ITEM_EPOCHS = 16
VALIDATION_CARVES = (1, 2)


def _hold_out_users(data: Any, seed: int) -> tuple[Any, Any]:
    """(events of 80% of the users, compacted; events of the other 20%), drawn from
    ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    users = data.users.ids
    is_held = np.zeros(len(users), dtype=bool)
    is_held[rng.permutation(len(users))[: len(users) // 5]] = True
    train = data.subset(np.flatnonzero(~is_held[data.user_idx])).compact()
    test = data.subset(np.flatnonzero(is_held[data.user_idx]))
    return train, test


def _positives(data: Any) -> Any:
    """The events rated >= 4 (the vocabularies kept, so every training item has a vector)."""
    return data.subset(np.flatnonzero(data.values >= RELEVANT))


def _relevant_by_user(test: Any, catalogue: np.ndarray) -> tuple[list[Any], list[set]]:
    frame = test.to_pandas()
    frame = frame[frame["item_id"].isin(catalogue) & (frame["value"] >= RELEVANT)]
    by_user = frame.groupby("user_id")["item_id"].apply(set)
    return list(by_user.index), [by_user[u] for u in by_user.index]


def _attribute_ndcg(model: Any, ml: Any, users: list[Any], relevant: list[set],
                    catalogue: np.ndarray) -> float:
    """NDCG@10 of ranking the catalogue for new users from their attributes alone."""
    scores = model.user_vectors(features=ml.user_features.rows(users)) @ (
        model.item_vectors(catalogue).T
    )
    return _ndcg([_ranked(row, catalogue) for row in scores], relevant)


def retrieval_epochs(ml: Any, train: Any, seed: int) -> dict[str, Any]:
    """The number of epochs of the retrieval model, chosen on validation cold users.

    20% of the training users (``default_rng(seed + 1)``) are held out; the retrieval model
    is trained on the positives of the others for up to :data:`MAX_RETRIEVAL_EPOCHS` epochs
    and after each epoch the held-out users are ranked every item from their attributes
    alone. The epoch with the highest NDCG@10 is chosen. (The model's own early stopping
    watches the loss of known users, which keeps improving after the attribute-only ranking
    of new users has started to get worse.)
    """
    import palate

    fit, val = _hold_out_users(train, seed + 1)
    catalogue = fit.items.ids
    users, relevant = _relevant_by_user(val, catalogue)
    model = palate.TwoTower(**RETRIEVAL, epochs=MAX_RETRIEVAL_EPOCHS, early_stopping=None,
                            seed=seed)
    curve: list[float] = []

    def after_epoch(epoch: int, metrics: dict[str, float]) -> None:
        model.refresh_vectors()
        curve.append(_attribute_ndcg(model, ml, users, relevant, catalogue))

    model.fit(_positives(fit), user_features=ml.user_features, item_features=ml.item_features,
              callback=after_epoch)
    popularity = palate.Popularity().fit(fit).item_scores_.astype(float)
    return {
        "epochs": int(np.argmax(curve)) + 1,
        "validation_users": len(users),
        "validation_ndcg@10_per_epoch": curve,
        "validation_popularity_ndcg@10": _ndcg([_ranked(popularity, catalogue)] * len(users),
                                               relevant),
    }


def user_cold(ml: Any, seed: int, n_given: tuple[int, ...] = (1, 3, 10)) -> dict[str, Any]:
    import palate

    data = ml.ratings
    train, test = _hold_out_users(data, seed)
    frame = test.to_pandas().sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    frame = frame[frame["item_id"].isin(train.items.ids)]
    model = palate.TwoTower(seed=seed).fit(
        train, user_features=ml.user_features, item_features=ml.item_features
    )
    selection = retrieval_epochs(ml, train, seed)
    print(f"  retrieval epochs chosen on validation users: {selection}", flush=True)
    retrieval = palate.TwoTower(
        **RETRIEVAL, epochs=selection["epochs"], early_stopping=None, seed=seed
    ).fit(_positives(train), user_features=ml.user_features, item_features=ml.item_features)
    cf = palate.CollaborativeFiltering().fit(train)
    popularity = palate.Popularity().fit(train)
    catalogue = train.items.ids
    item_vectors = model.item_vectors(catalogue)
    retrieval_items = retrieval.item_vectors(catalogue)
    pop_scores = popularity.item_scores_
    lightfm = _lightfm_user_cold(ml, train, frame["user_id"].unique(), seed)
    out: dict[str, Any] = {
        "n_held_out_users": int(len(test.to_pandas()["user_id"].unique())),
        "retrieval": {**RETRIEVAL, **selection},
    }
    if lightfm is not None:
        out["lightfm"] = {**LIGHTFM, "epochs": LIGHTFM_EPOCHS, "fit_s": lightfm[1],
                          "positives": f"ratings >= {RELEVANT:g}",
                          "users": "attributes only", "items": "identity + features"}
    for given in (0, *n_given):
        rankings: dict[str, list[np.ndarray]] = {
            "two_tower": [], "two_tower_retrieval": [], "popularity": []
        }
        if given:
            rankings["cf_fold_in"] = []
        if lightfm is not None:
            rankings["lightfm"] = []
        relevant = []
        for user, rows in frame.groupby("user_id", sort=False):
            first, rest = rows.iloc[:given], rows.iloc[given:]
            wanted = set(rest.loc[rest["value"] >= RELEVANT, "item_id"].tolist())
            if len(first) < given or not wanted:
                continue
            attributes = ml.user_features.rows([user])
            ratings = dict(zip(first["item_id"], first["value"], strict=True)) if given else None
            v_u = model.user_vectors(features=attributes, ratings=ratings)[0]
            # the retrieval model's derived features come from positives, as in its training
            liked = None
            if given:
                liked = {i: y for i, y in ratings.items() if y >= RELEVANT}  # type: ignore[union-attr]
            v_r = retrieval.user_vectors(features=attributes, ratings=liked)[0]
            exclude = np.isin(catalogue, first["item_id"].to_numpy())
            scores = {"two_tower": item_vectors @ v_u, "two_tower_retrieval": retrieval_items @ v_r,
                      "popularity": pop_scores.astype(float)}
            if given:
                scores["cf_fold_in"] = cf.fold_in(ratings)  # type: ignore[arg-type]
            if lightfm is not None:
                scores["lightfm"] = lightfm[0][user]
            for name, s in scores.items():
                s = np.where(exclude, -np.inf, s)
                rankings[name].append(_ranked(s, catalogue))
            relevant.append(wanted)
        out[f"after_{given}"] = {
            "n_users": len(relevant),
            "ndcg@10": {name: _ndcg(r, relevant) for name, r in rankings.items()},
        }
        print(f"  user cold start, {given} ratings: {out[f'after_{given}']}", flush=True)
    return out


# ------------------------------------------------------------------------------ throughput
def matmul_rate(size: int = 4096, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best


def _loop_rate(
    ml: Any, train: Any, seed: int, epochs: int, compile_step: bool
) -> tuple[float, Any]:
    import palate

    stamps: list[float] = []
    model = palate.TwoTower(epochs=epochs, early_stopping=None, validation_fraction=0.0,
                            seed=seed, compile=compile_step)
    model.fit(train, user_features=ml.user_features, item_features=ml.item_features,
              callback=lambda epoch, metrics: stamps.append(time.perf_counter()))
    # from the end of the first epoch: compilation (and warm-up) happen in the first
    return len(train) * (len(stamps) - 1) / (stamps[-1] - stamps[0]), model


def _bare_rate(du: int, di: int, config: Any, seed: int, step: str) -> float:
    """Examples/s of one training step on random in-memory batches (no data pipeline):
    ``step`` "manual" (the default hand-written step), "autograd" (``batch_loss`` and
    ``backward``) or "compiled" (that, through ``torch.compile``)."""
    import torch

    from palate.models.two_tower.losses import ratings_loss
    from palate.models.two_tower.manual import FlatAdam, FlatParameters, ManualTower
    from palate.models.two_tower.towers import Tower
    from palate.models.two_tower.training import (
        Batch,
        LoopSettings,
        make_optimizer,
        manual_step,
        tower_inputs,
    )

    torch.manual_seed(seed)
    users, items = Tower(du, config.hidden_sizes, 32), Tower(di, config.hidden_sizes, 32)
    settings = LoopSettings("ratings", 1, 1024, 1e-3, 0.0, 1.0, 0.0, None)
    x_u, x_i, t = torch.randn(1024, du), torch.randn(1024, di), torch.rand(1024) * 2 - 1
    if step == "manual":
        flat = FlatParameters((users, items))
        towers = (ManualTower(users, flat), ManualTower(items, flat))
        adam = FlatAdam(flat.flat, 1e-3, 0.0)
        inputs = tower_inputs(x_u.numpy(), x_i.numpy(), torch.device("cpu"))
        rows = torch.arange(1024)

        def train_step() -> None:
            with torch.no_grad():
                manual_step(towers, inputs, Batch(rows, rows, t), settings)
            adam.step()
    else:
        optimizer = make_optimizer(list(users.parameters()) + list(items.parameters()),
                                   settings)

        def loss_of(a: Any, b: Any, c: Any) -> Any:
            return ratings_loss(users(a), items(b), c)

        loss_fn = torch.compile(loss_of) if step == "compiled" else loss_of

        def train_step() -> None:
            loss = loss_fn(x_u, x_i, t)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    steps = 300
    for _repeat in range(2):  # the first pass warms up (and compiles)
        start = time.perf_counter()
        for _ in range(steps):
            train_step()
        rate = steps * 1024 / (time.perf_counter() - start)
    return rate


def throughput(ml: Any, seed: int, epochs: int = 4) -> dict[str, Any]:
    import torch

    from palate.data.split import random_split
    from palate.models.two_tower.towers import flops_per_example

    train, _ = random_split(ml.ratings, test_fraction=0.1, seed=seed)
    rate_before = matmul_rate()
    loop_rate, model = _loop_rate(ml, train, seed, epochs, compile_step=False)
    loop_compiled, _ = _loop_rate(ml, train, seed, epochs, compile_step=True)
    config = model.config
    du, di = model.features_.user_inputs.shape[1], model.features_.item_inputs.shape[1]
    flops = (
        flops_per_example(du, config.hidden_sizes, config.embedding_size)[1]
        + flops_per_example(di, config.hidden_sizes, config.embedding_size)[1]
    )
    # bare step: the same towers on random in-memory batches
    bare_rate = _bare_rate(du, di, config, seed, "manual")
    bare_autograd = _bare_rate(du, di, config, seed, "autograd")
    bare_compiled = _bare_rate(du, di, config, seed, "compiled")
    rate_after = matmul_rate()
    matmul = max(rate_before, rate_after)
    result = {
        "threads": torch.get_num_threads(),
        "batch_size": config.batch_size,
        "towers": [*config.hidden_sizes, config.embedding_size],
        "input_widths": [du, di],
        "flops_per_example": flops,
        "matmul_gflops": matmul / 1e9,
        "matmul_gflops_before_after": [rate_before / 1e9, rate_after / 1e9],
        "loop_examples_per_s": loop_rate,
        "loop_share_of_matmul": loop_rate * flops / matmul,
        "loop_compiled_examples_per_s": loop_compiled,
        "loop_compiled_share_of_matmul": loop_compiled * flops / matmul,
        "bare_examples_per_s": bare_rate,
        "bare_share_of_matmul": bare_rate * flops / matmul,
        "bare_autograd_examples_per_s": bare_autograd,
        "bare_autograd_share_of_matmul": bare_autograd * flops / matmul,
        "bare_compiled_examples_per_s": bare_compiled,
        "bare_compiled_share_of_matmul": bare_compiled * flops / matmul,
        "epochs_timed": epochs - 1,
    }
    print(f"  throughput: {result}", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-hybrid", action="store_true",
                        help="warm part: leave out the hybrid (id embeddings) two-tower")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.data is None and args.dataset == "ml-100k":
        args.data = DEFAULT_ML100K
    import torch

    torch.set_num_threads(args.threads)
    parts = parse_list(args.parts) or list(PARTS)
    unknown = set(parts) - set(PARTS)
    if unknown:
        print(f"unknown parts {sorted(unknown)}; choose from {PARTS}", file=sys.stderr)
        return 2
    ml = load(args)
    print(ml, flush=True)
    payload: dict[str, Any] = {
        "benchmark": "two_tower",
        "dataset": ml.name,
        "command": command_line(),
        "started": now_iso(),
        "git_commit": git_commit(),
        "machine": machine_note(),
        "versions": library_versions(),
        "load_average_at_start": list(os.getloadavg()),
    }
    runners = {"warm": lambda ml, seed: warm(ml, seed, hybrid=not args.no_hybrid),
               "item_cold": item_cold, "user_cold": user_cold, "throughput": throughput}
    for part in parts:
        print(f"{part}:", flush=True)
        start = time.perf_counter()
        payload[part] = runners[part](ml, args.seed)
        payload[part]["seconds"] = time.perf_counter() - start
    if "warm" in payload:
        rows = [[name, f"{r['rmse']:.4f}", f"{r['fit_s']:.1f}", str(r["epochs"])]
                for name, r in payload["warm"]["models"].items()]
        print_table(f"warm RMSE, {ml.name}", ["model", "RMSE", "fit s", "epochs"], rows)
    name = "_".join(p.replace("_", "") for p in parts) if set(parts) != set(PARTS) else "all"
    out = args.out or RESULTS_DIR / f"two_tower_{ml.name.replace('-', '')}_{name}.json"
    return finish(out, payload)


if __name__ == "__main__":
    sys.exit(main())
