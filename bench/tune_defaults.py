"""How palate's EASE default λ was chosen: a grid on a validation split of the P2 training data.

The P2 split is built exactly as ``p2_implicit.py`` builds it; only its *training* positives
are used here, and palate's :func:`palate.evaluation.tune.grid_search` carves 10% of them
(seed 0) as the validation set. The test positives of P2 are never read.

Usage: ``python tune_defaults.py --dataset ml-100k --data ~/.cache/palate/ml-100k``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from p2_implicit import load_positives, make_split

import palate
from palate.evaluation.tune import grid_search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "ml-1m"])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--grid", default="50,100,200,300,500,800,1200")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    split = make_split(load_positives(args.dataset, args.data))
    pairs = split.train_pairs
    train = palate.Interactions.from_arrays(pairs["user"].to_numpy(), pairs["item"].to_numpy())
    grid = {"reg": [float(v) for v in args.grid.split(",")]}
    results = grid_search(palate.EASE, train, grid, metric="ndcg@10", seed=0)
    print(results.to_pandas().to_string(index=False))
    print("best:", results.best_params)
    out = args.out or Path(__file__).parent / "results" / f"tune_ease_{args.dataset}.json"
    out.write_text(json.dumps(json.loads(results.to_json()), indent=2) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
