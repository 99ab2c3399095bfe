"""Protocol T1: top-N from a table of ratings — the list a person sees, beside the RMSE.

Every model is fitted on the identical training ratings and ranks for the identical users:

- split: ``palate.data.split.random_split(ratings, test_fraction=0.2, seed=0)`` (a random 20%
  of the rating rows held out);
- relevant: a user's held-out ratings >= 4; users with at least one are evaluated;
- ranking: every item the model knows, the user's training items removed, top 10;
- metrics: NDCG@10, precision@10, recall@10 (means over users, ``palate.evaluation.metrics``),
  the median number of training ratings of the listed items (how obscure the lists are), and
  the held-out RMSE of the models that predict ratings.

Models: ``Popularity()`` (most rated), ``CollaborativeFiltering(rank_by="prediction")`` (the
predicted rating, the curriculum's ordering), ``CollaborativeFiltering()`` (its default
support-shrunk ordering), ``EASE()`` fitted on every rated item as an engagement, and
``HybridRecommender()`` (EASE blended with the predicted rating: the command line's default
model). The defaults were chosen on validation splits carved from training ratings; this is
the test split.

Usage::

    python topn_ratings.py [--dataset ml-latest-small|ml-100k] [--data DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    command_line,
    finish,
    git_commit,
    library_versions,
    machine_note,
    now_iso,
    print_table,
    stopwatch,
)

import palate
from palate.data.split import random_split
from palate.evaluation.metrics import ndcg_at_k, precision_at_k, recall_at_k, rmse

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
K = 10


def models() -> dict[str, Any]:
    return {
        "popularity": lambda: palate.Popularity(),
        "cf (rank by predicted rating)": lambda: palate.CollaborativeFiltering(
            rank_by="prediction"),
        "cf (default: by confidence)": lambda: palate.CollaborativeFiltering(),
        "ease (every rated item)": None,  # fitted on engagements, below
        "hybrid (default model)": lambda: palate.HybridRecommender(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=("ml-latest-small", "ml-100k"),
                        default="ml-latest-small")
    parser.add_argument("--data", type=Path, default=None, help="the dataset's directory")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    path = args.data or (DATA / "ml-latest-small" if args.dataset == "ml-latest-small" else None)
    if path is None:
        parser.error("--data DIR is needed for ml-100k (make -C bench data builds it)")
    ratings = palate.datasets.movielens(path=path, download=False).ratings
    train, test = random_split(ratings, test_fraction=0.2, seed=0)
    frame = test.to_pandas()
    frame = frame[frame["value"] >= 4]
    relevant_by_user = frame.groupby("user_id")["item_id"].apply(list)
    users = np.array([u for u in relevant_by_user.index if u in train.users], dtype=object)
    users = users.astype(train.users.ids.dtype)
    relevant = [relevant_by_user[u] for u in users]
    counts = dict(zip(train.items.ids.tolist(), train.item_counts().tolist(), strict=True))
    engagements = train.binarize(float(train.values.min()), keep_negatives=True)

    results: dict[str, dict[str, float]] = {}
    for name, make in models().items():
        with stopwatch() as fit_time:
            if make is None:
                model: Any = palate.EASE().fit(engagements)
            else:
                model = make().fit(train)
        lists = model.recommend(users, k=K).item_ids
        row = {
            "ndcg@10": float(np.mean(ndcg_at_k(lists, relevant, K))),
            "precision@10": float(np.mean(precision_at_k(lists, relevant, K))),
            "recall@10": float(np.mean(recall_at_k(lists, relevant, K))),
            "median_ratings_of_listed": float(np.median(
                [counts.get(i, 0) for i in lists.reshape(-1).tolist()])),
            "fit_seconds": fit_time[0],
        }
        if model.score_kind == "rating":
            row["rmse"] = rmse(test.values, model.predict(test.user_ids, test.item_ids))
        results[name] = row
        print(f"{name:32s} " + "  ".join(f"{k} {v:.4f}" for k, v in row.items()), flush=True)

    best_peer = results["ease (every rated item)"]["ndcg@10"]
    print_table(
        f"T1: top-10 from {args.dataset} ratings (random 80/20 split, relevant = held-out "
        f"ratings >= 4, {len(users)} users, training items excluded)",
        ["model", "NDCG@10", "P@10", "R@10", "median ratings of listed", "RMSE", "vs EASE"],
        [
            [name, f"{r['ndcg@10']:.4f}", f"{r['precision@10']:.4f}", f"{r['recall@10']:.4f}",
             f"{r['median_ratings_of_listed']:.0f}",
             f"{r['rmse']:.4f}" if "rmse" in r else "-", f"{r['ndcg@10'] / best_peer:.3f}"]
            for name, r in results.items()
        ],
    )
    out = args.out or Path(__file__).parent / "results" / f"topn_ratings_{args.dataset}.json"
    return finish(out, {
        "protocol": "T1",
        "dataset": args.dataset,
        "n_users": len(users),
        "created": now_iso(),
        "command": command_line(),
        "versions": library_versions(),
        "palate_git_commit": git_commit(),
        "machine": machine_note(),
        "results": results,
    })


if __name__ == "__main__":
    sys.exit(main())
