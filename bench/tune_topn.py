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

    python tune_topn.py --dataset ml-1m --preset ease      # the grids behind the defaults

``--grid`` is a JSON list of keyword-argument sets for ``palate_model(--model, **kwargs)`` (the
registry's names: ``ease``, ``cf``, ``ials``, ``blend``); ``--preset`` runs one of the grids in
:data:`PRESETS` (the ones the defaults were chosen from); results go to
``results/tune_topn_<model>_<dataset>.json`` (or ``--out``).
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


def _ease_grid(regs: list[float]) -> list[dict[str, Any]]:
    pairs = [(0, 0), (0.25, 0), (0.5, 0), (0, 0.2), (0.25, 0.1), (0.25, 0.2), (0.5, 0.2),
             (0.25, 0.3)]
    grid: list[dict[str, Any]] = [{"dropout": 0, "item_exponent": 0}]
    grid += [{"reg": r, "dropout": p, "item_exponent": g} for r in regs for p, g in pairs]
    return [*grid, {}]


_CF_100K: list[dict[str, Any]] = [
    {"negative_ratio": 4, "negative_exponent": 0, "positive_weight": 1,
     "resample_negatives": False},  # the defaults before sampling was tuned
    {"negative_ratio": 4, "negative_exponent": 0, "positive_weight": 1},
    {"negative_ratio": 4, "positive_weight": 1},
    *({"negative_ratio": r, "positive_weight": w, "seed": seed}
      for r, w in ((8, 2), (10, 2.5)) for seed in (0, 1, 2)),
    {}, {"seed": 1}, {"seed": 2},  # the defaults: 12 negatives, exponent 0.5, weight 3
    {"negative_ratio": 16, "positive_weight": 4},
    {"embedding_size": 64}, {"reg": 0.03}, {"reg": 0.08},
    {"solver": "adam"}, {"solver": "adam", "negative_exponent": 0.5},
    {"solver": "adam", "negative_ratio": 12, "positive_weight": 3},
]

#: (model, dataset) -> the grid the defaults were chosen from
PRESETS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("ease", "ml-100k"): _ease_grid([300, 450, 600, 900]),
    ("ease", "ml-1m"): _ease_grid([800, 1600, 2400]),
    **{("blend", ds): [{"factor_weight": w} for w in (0, 0.2, 0.3, 0.4, 0.5, 0.6, 1)]
       for ds in ("ml-100k", "ml-1m")},
    ("cf", "ml-100k"): [{"kind": "binary", **params} for params in _CF_100K],
    ("cf", "ml-1m"): [{"kind": "binary", **params} for params in (
        {"negative_ratio": 4, "negative_exponent": 0, "positive_weight": 1,
         "resample_negatives": False},
        {"negative_ratio": 4, "positive_weight": 1},
        {},
    )],
}


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
    parser.add_argument("--grid", default=None, help="JSON list of parameter sets")
    parser.add_argument("--preset", default=None, choices=sorted({m for m, _ in PRESETS}),
                        help="run the grid the defaults were chosen from (sets --model)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    data_dir = args.data or DEFAULT_ML100K.parent / args.dataset
    if args.preset is not None:
        args.model = args.preset
        grid = PRESETS[(args.preset, args.dataset)]
    elif args.grid is not None:
        grid = json.loads(args.grid)
    else:
        parser.error("give --grid or --preset")
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
    out = args.out or RESULTS_DIR / f"tune_topn_{args.model}_{args.dataset}.json"
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
