"""Choose the two-tower set-up for new items on validation items, not on the cold-start test.

The item cold-start protocol of ``two_tower.py`` holds out 20% of the items (``seed``). This
script takes only its training part and, twice, holds out 20% of *those* items
(``default_rng(seed + 1)`` and ``(seed + 2)``) as validation cold items. Each candidate
set-up is trained on the other training items' ratings >= 4 for up to ``--epochs`` epochs,
and after every epoch the validation items are ranked for each of their users from genres
and year alone (NDCG@10 against ratings >= 4). A set-up's score is the best epoch of the
mean curve over the two carves (the epoch count itself is chosen the same way in
``two_tower.py``); LightFM with item features (``two_tower.py``'s set-up) is scored on the
same validation items for reference.

Usage::

    python two_tower_cold_items.py [--data DIR] [--epochs 16] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_ML100K, RESULTS_DIR, command_line, finish, git_commit, now_iso
from two_tower import (
    RETRIEVAL,
    VALIDATION_CARVES,
    _cold_item_targets,
    _hold_out_items,
    _item_validation_curve,
    _lightfm_item_cold,
    _ndcg,
)

#: users: a 32-long id embedding beside attributes and derived features; items: features only
USER_IDS = {"id_embedding_size": 32, "id_embedding_sides": "users", "id_dropout": 0.0}
FEATURES_ONLY_ITEMS = {"derived_dropout": (0.0, 1.0)}
LINEAR_ITEMS = {"item_hidden_sizes": ()}
LR = {"learning_rate": 1e-3}

CANDIDATES: dict[str, dict[str, Any]] = {
    "previous (retrieval, derived_dropout 0.8, lr 3e-4, tau 0.1)": {
        **RETRIEVAL, "derived_dropout": 0.8},
    "item derived features never seen": {**RETRIEVAL, **FEATURES_ONLY_ITEMS},
    "+ linear item tower": {**RETRIEVAL, **FEATURES_ONLY_ITEMS, **LINEAR_ITEMS},
    "+ user ids, MLP item tower, lr 1e-3": {
        **RETRIEVAL, **FEATURES_ONLY_ITEMS, **USER_IDS, **LR},
    "+ user ids, linear item tower, lr 1e-3, tau 0.1": {
        **RETRIEVAL, **FEATURES_ONLY_ITEMS, **LINEAR_ITEMS, **USER_IDS, **LR},
    "+ user ids, linear item tower, lr 1e-3, tau 0.05 (cold_items)": {
        **RETRIEVAL, **FEATURES_ONLY_ITEMS, **LINEAR_ITEMS, **USER_IDS, **LR,
        "temperature": 0.05},
    "cold_items, tau 0.2": {
        **RETRIEVAL, **FEATURES_ONLY_ITEMS, **LINEAR_ITEMS, **USER_IDS, **LR,
        "temperature": 0.2},
    "cold_items, id_dropout 0.2": {
        **RETRIEVAL, **FEATURES_ONLY_ITEMS, **LINEAR_ITEMS, **USER_IDS, **LR,
        "temperature": 0.05, "id_dropout": 0.2},
    "cold_items, user derived dropout 0.5": {
        **RETRIEVAL, **FEATURES_ONLY_ITEMS, **LINEAR_ITEMS, **USER_IDS, **LR,
        "temperature": 0.05, "derived_dropout": (0.5, 1.0)},
    "cold_items + 1024 uniform negatives": {
        **RETRIEVAL, **FEATURES_ONLY_ITEMS, **LINEAR_ITEMS, **USER_IDS, **LR,
        "temperature": 0.05, "uniform_negatives": 1024},
    "cold_items + 1024 uniform negatives, no log-q correction": {
        **RETRIEVAL, **FEATURES_ONLY_ITEMS, **LINEAR_ITEMS, **USER_IDS, **LR,
        "temperature": 0.05, "uniform_negatives": 1024, "log_q_correction": False},
    "cold_items, no log-q correction": {
        **RETRIEVAL, **FEATURES_ONLY_ITEMS, **LINEAR_ITEMS, **USER_IDS, **LR,
        "temperature": 0.05, "log_q_correction": False},
    "cold_items, batch 256": {
        **RETRIEVAL, **FEATURES_ONLY_ITEMS, **LINEAR_ITEMS, **USER_IDS, **LR,
        "temperature": 0.05, "batch_size": 256},
    "cold_items, embedding 64": {
        **RETRIEVAL, **FEATURES_ONLY_ITEMS, **LINEAR_ITEMS, **USER_IDS, **LR,
        "temperature": 0.05, "embedding_size": 64, "id_embedding_size": 64},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_ML100K)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="comma-separated candidate names")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "two_tower_cold_items.json")
    args = parser.parse_args()
    import torch

    import palate

    torch.set_num_threads(1)
    ml = palate.datasets.movielens("ml-100k", path=args.data, download=False)
    train, _test, _ = _hold_out_items(ml.ratings, args.seed)
    wanted = [n for n in args.only.split(",") if n] or list(CANDIDATES)
    payload: dict[str, Any] = {
        "benchmark": "two_tower_cold_items", "dataset": ml.name, "command": command_line(),
        "started": now_iso(), "git_commit": git_commit(),
        "load_average_at_start": list(os.getloadavg()), "epochs": args.epochs,
        "carve_seeds": [args.seed + c for c in VALIDATION_CARVES], "candidates": {},
    }
    lightfm = []
    for carve in VALIDATION_CARVES:
        fit, val, val_items = _hold_out_items(train, args.seed + carve)
        users, relevant = _cold_item_targets(fit, val)
        ranked = _lightfm_item_cold(ml, fit, users, val_items, args.seed)
        if ranked is not None:
            lightfm.append(_ndcg(ranked[0], relevant))
    payload["lightfm_validation_ndcg@10"] = lightfm
    print(f"LightFM with features, validation NDCG@10 per carve: {lightfm}", flush=True)
    for name in wanted:
        options = CANDIDATES[name]
        start = time.perf_counter()
        curves = [
            _item_validation_curve(ml, train, args.seed, args.seed + carve, options,
                                   args.epochs)[0]
            for carve in VALIDATION_CARVES
        ]
        mean = np.mean(curves, axis=0)
        best = int(np.argmax(mean))
        payload["candidates"][name] = {
            "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
            "best_epoch": best + 1, "best_mean_ndcg@10": float(mean[best]),
            "mean_ndcg@10_per_epoch": mean.tolist(), "ndcg@10_per_epoch": curves,
            "seconds": time.perf_counter() - start,
        }
        print(f"{name}: best mean {mean[best]:.4f} at epoch {best + 1} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    return finish(args.out, payload)


if __name__ == "__main__":
    sys.exit(main())
