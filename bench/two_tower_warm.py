"""Choose the warm two-tower set-up on the model's own validation split, not on the test split.

``two_tower.py --parts warm`` scores models on ``random_split(ratings, 0.1, seed)``. This
script takes only its training part: ``TwoTower(seed=seed)`` holds out 10% of it for early
stopping (``palate.models.two_tower.training.validation_split``); each candidate is fitted and
its best validation RMSE (the history's ``val_rmse``) is set beside the RMSE of
``CollaborativeFiltering()`` fitted on the same 90% and scored on the same 10%.

Usage::

    python two_tower_warm.py --dataset ml-1m --data ~/.cache/palate/ml-1m [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import RESULTS_DIR, command_line, finish, git_commit, now_iso, rmse

CANDIDATES: dict[str, dict[str, Any]] = {
    "default (derived_dropout 0.5), lr 3e-3": {"learning_rate": 3e-3},
    "derived_dropout 0, lr 3e-3": {"derived_dropout": 0.0, "learning_rate": 3e-3},
    "derived_dropout 0 (warm preset)": {"derived_dropout": 0.0},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "two_tower_warm_validation.json")
    args = parser.parse_args()
    import torch

    import palate
    from palate.data.split import random_split
    from palate.models.two_tower.training import validation_split

    torch.set_num_threads(args.threads)
    ml = palate.datasets.movielens(args.dataset, path=args.data, download=False)
    train, _test = random_split(ml.ratings, test_fraction=0.1, seed=args.seed)
    fitting, _held, val = validation_split(train, args.seed, 0.1)
    assert val is not None
    cf = palate.CollaborativeFiltering().fit(fitting)
    cf_rmse = rmse(val.values, cf.predict(val.user_ids, val.item_ids))
    print(f"CF validation RMSE {cf_rmse:.4f}", flush=True)
    payload: dict[str, Any] = {
        "benchmark": "two_tower_warm_validation", "dataset": ml.name,
        "command": command_line(), "started": now_iso(), "git_commit": git_commit(),
        "load_average_at_start": list(os.getloadavg()), "cf_validation_rmse": cf_rmse,
        "candidates": {},
    }
    for name, options in CANDIDATES.items():
        start = time.perf_counter()
        model = palate.TwoTower(**options, seed=args.seed).fit(
            train, user_features=ml.user_features, item_features=ml.item_features
        )
        curve = [h["val_rmse"] for h in model.history_]
        best = int(np.argmin(curve))
        payload["candidates"][name] = {
            "options": options, "best_validation_rmse": curve[best], "best_epoch": best + 1,
            "epochs_run": len(curve), "vs_cf": curve[best] / cf_rmse - 1,
            "validation_rmse_per_epoch": curve, "fit_s": time.perf_counter() - start,
        }
        print(f"{name}: validation RMSE {curve[best]:.4f} at epoch {best + 1} of "
              f"{len(curve)} ({curve[best] / cf_rmse - 1:+.1%} vs CF)", flush=True)
    return finish(args.out, payload)


if __name__ == "__main__":
    sys.exit(main())
