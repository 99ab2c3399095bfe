"""How palate's top-N defaults were chosen: grids on a validation split carved from P2's training
positives only.

The P2 split is built exactly as ``p2_implicit.py`` builds it; its test positives are never read.
The *training* positives are split again by the same rule (users in ascending id order; a user
with at least 5 training positives has ``max(1, n // 5)`` of them, drawn by
``rng.permutation`` from one ``numpy.random.default_rng(0)``, held out as validation positives;
the rest are the validation-fit data). Every candidate is fitted on the validation-fit data and
ranks the catalogue for the users with validation positives, training items excluded; the score
is NDCG@10 over those users (``palate.evaluation.metrics``), as in P2.

Usage::

    python tune_topn.py --dataset ml-100k --model ease \\
        --grid '[{"reg": 300}, {"reg": 600, "dropout": 0.25, "item_exponent": 0.2}]'

``--grid`` is a JSON list of keyword-argument sets for ``palate_model(--model, **kwargs)`` (the
registry's names: ``ease``, ``cf``, ``ials``, ``blend``); results go to
``results/tune_<model>_<dataset>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import RESULTS_DIR, command_line, git_commit, now_iso, palate_model, write_json
from p2_implicit import DEFAULT_ML100K, TOP_N, load_positives, make_split, score

import palate


def validation_split(dataset: str, data_dir: Path) -> Any:
    """P2's training positives, split again by P2's rule (the test positives are dropped)."""
    test = make_split(load_positives(dataset, data_dir))
    return make_split(test.train_pairs)


def evaluate(name: str, params: dict[str, Any], split: Any) -> dict[str, Any]:
    pairs = split.train_pairs
    data = palate.Interactions.from_arrays(pairs["user"].to_numpy(), pairs["item"].to_numpy())
    model = palate_model(name, **params)
    start = time.perf_counter()
    model.fit(data)
    seconds = time.perf_counter() - start
    users = split.user_ids[split.eval_rows]
    recommended = np.asarray(model.recommend(users, k=TOP_N).item_ids, dtype=np.int64)
    return {"params": params, **score(recommended, split), "fit_seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "ml-1m"])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--model", default="ease")
    parser.add_argument("--grid", required=True, help="JSON list of parameter sets")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    data_dir = args.data or DEFAULT_ML100K.parent / args.dataset
    grid = json.loads(args.grid)
    split = validation_split(args.dataset, data_dir)
    print("validation split: " + ", ".join(f"{k} {v}" for k, v in split.stats.items()))
    rows = []
    for params in grid:
        row = evaluate(args.model, params, split)
        rows.append(row)
        print(f"{json.dumps(params):70s} ndcg@10 {row['ndcg@10']:.4f} "
              f"fit {row['fit_seconds']:.1f}s", flush=True)
    best = max(rows, key=lambda r: r["ndcg@10"])
    print("best:", json.dumps(best["params"]), f"{best['ndcg@10']:.4f}")
    out = args.out or RESULTS_DIR / f"tune_{args.model}_{args.dataset}.json"
    write_json(out, {
        "procedure": __doc__.split("Usage::")[0].strip(),
        "dataset": args.dataset,
        "model": args.model,
        "validation_stats": split.stats,
        "created": now_iso(),
        "command": command_line(),
        "palate_git_commit": git_commit(),
        "results": rows,
        "best": best["params"],
    })
    print("wrote", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
