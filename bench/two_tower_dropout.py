"""Choose ``TwoTower(derived_dropout=...)`` on a validation split, not on the cold-start test.

The item cold-start protocol of ``two_tower.py`` holds out 20% of the items (seed 0). This
script takes only its training part and holds out 20% of *those* items (seed 1) as validation
items; each ``derived_dropout`` value is trained on the rest and scored like the test protocol
(the validation items ranked for each user from genres and year alone, NDCG@10 against ratings
>= 4), beside a random ranking of the same items (mean of 5 draws).

Usage::

    python two_tower_dropout.py [--data DIR] [--values 0,0.5,0.8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_ML100K
from two_tower import RELEVANT, K, _ndcg, _ranked


def _hold_out_items(data: Any, seed: int) -> tuple[Any, Any, np.ndarray]:
    rng = np.random.default_rng(seed)
    items = data.items.ids
    is_held = np.zeros(len(items), dtype=bool)
    is_held[rng.permutation(len(items))[: len(items) // 5]] = True
    train = data.subset(np.flatnonzero(~is_held[data.item_idx])).compact()
    held = data.subset(np.flatnonzero(is_held[data.item_idx]))
    return train, held, items[is_held]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_ML100K)
    parser.add_argument("--values", default="0,0.5,0.8")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    import palate

    torch.set_num_threads(args.threads)
    ml = palate.datasets.movielens("ml-100k", path=args.data, download=False)
    outer_train, _, _ = _hold_out_items(ml.ratings, 0)  # the test protocol's training part
    train, validation, candidates = _hold_out_items(outer_train, 1)
    frame = validation.to_pandas()
    positive = frame[frame["value"] >= RELEVANT].groupby("user_id")["item_id"].apply(set)
    users = [u for u in positive.index if u in train.users]
    relevant = [positive[u] for u in users]
    rows = ml.item_features.rows(candidates)
    random = np.mean([
        _ndcg([np.random.default_rng(1000 + d).permutation(candidates)[:K] for _ in users],
              relevant)
        for d in range(5)
    ])
    print(f"validation: {len(candidates)} items, {len(users)} users, random {random:.4f}",
          flush=True)
    for value in (float(v) for v in args.values.split(",")):
        start = time.perf_counter()
        model = palate.TwoTower(derived_dropout=value, seed=0).fit(
            train, user_features=ml.user_features, item_features=ml.item_features
        )
        scores = model.user_vectors(np.asarray(users)) @ model.item_vectors(features=rows).T
        ndcg = _ndcg([_ranked(row, candidates) for row in scores], relevant)
        print(f"derived_dropout={value}: validation NDCG@10 {ndcg:.4f}  "
              f"epochs {len(model.history_)}  fit {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
