"""Protocol P2: binary (implicit) top-N recommendation on MovieLens 100K (or 1M).

Every model is fitted on the identical training positives and ranked for the identical users:

- positives: rows of ``u.data`` (``ratings.dat`` with ``--dataset ml-1m``) with rating >= 4
  (the other rows are dropped); every positive is a 1, the rating value is not used after that;
- split: users in ascending id order; a user with at least 5 positives has their positives
  sorted by item id, and ``rng.permutation(n)`` is drawn for them from one
  ``numpy.random.default_rng(0)`` shared by all users (one call per such user, nothing else
  draws from it). The first ``max(1, n // 5)`` positions of the permutation index the held-out
  positives; the rest are training. Users with fewer than 5 positives keep all of theirs for
  training and are not evaluated;
- ranking: every model ranks the items that have at least one training positive (the
  catalogue), with the user's training items removed; the top 20 is kept;
- metrics over the users with held-out items: precision@10, recall@10, recall@20, NDCG@10,
  MAP@10, hit rate@10 (means over users) and catalogue coverage@10, from
  ``palate.evaluation.metrics``. A held-out item with no training positive still counts in
  the user's relevant set (no model can rank it, so recall is out of all held-out items);
- seconds: building the library's input (``prep``), ``fit`` and ranking (``recommend``),
  measured with ``time.perf_counter``. palate's ALS and Adam models are first fitted once on
  the first 100 users' training positives (a warm-up, timed apart) so that compiling the
  numba kernels on first use is not counted as fitting.

Models: palate ``CollaborativeFiltering(kind="binary")`` at its defaults (ALS with sampled
negatives) and with ``solver="adam"``, palate ``ImplicitALS()``, ``TopNBlend()`` (EASE and
ImplicitALS blended), ``EASE()`` at its defaults and as plain EASE (``dropout=0,
item_exponent=0``), ``Popularity()``, EASE (Steck 2019, closed form, lambda = 250, numpy in
this script), and the ``implicit`` library's ``AlternatingLeastSquares(factors=64,
regularization=50, alpha=10)`` and ``BayesianPersonalizedRanking()`` (defaults), LightFM's
WARP loss and cornac's BPR (settings in ``RUNNERS``: picked among a few tried on this split,
which favours them, not palate). A model whose import fails is skipped with a message.

Usage::

    python p2_implicit.py [--dataset ml-100k|ml-1m] [--data DIR] [--models a,b] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from common import (
    DEFAULT_ML100K,
    RESULTS_DIR,
    available_runners,
    command_line,
    finish,
    git_commit,
    library_versions,
    load_ml1m,
    load_ratings,
    machine_note,
    now_iso,
    palate_model,
    parse_list,
    print_table,
    stopwatch,
)

POSITIVE_THRESHOLD = 4
MIN_POSITIVES = 5
HOLDOUT_SHARE = "max(1, n // 5)"
SPLIT_SEED = 0
TOP_N = 20
EASE_LAMBDA = 250.0
IMPLICIT_SEED = 0


@dataclass
class Split:
    """Training positives as a users x items CSR over the catalogue, and the held-out sets."""

    user_ids: np.ndarray  # external id of each CSR row
    item_ids: np.ndarray  # external id of each CSR column (the catalogue)
    train: sp.csr_matrix  # float32 ones, users x items
    train_pairs: pd.DataFrame  # user, item (external ids) of the training positives
    eval_rows: np.ndarray  # CSR rows of the evaluated users
    held_out: list[np.ndarray]  # external item ids held out, one array per evaluated user
    stats: dict[str, int]


@dataclass
class Runner:
    """How to build, fit and rank with one model on the P2 split."""

    name: str
    description: str
    make: Callable[[], Any]
    prepare: Callable[[Split], Any]
    fit: Callable[[Any, Any], Any]
    recommend: Callable[[Any, Split], np.ndarray]  # (n_eval, TOP_N) external item ids
    warm_up: bool = False  # fit once on a small sample first (numba compiles on first use)


# ----------------------------------------------------------------------------- palate
def _palate_prepare(split: Split) -> Any:
    import palate

    pairs = split.train_pairs
    return palate.Interactions.from_arrays(pairs["user"].to_numpy(), pairs["item"].to_numpy())


def _palate_fit(model: Any, data: Any) -> Any:
    return model.fit(data)


def _palate_recommend(model: Any, split: Split) -> np.ndarray:
    users = split.user_ids[split.eval_rows]
    recs = model.recommend(users, k=TOP_N, exclude_seen=True)
    if np.any(recs.fallback):
        raise RuntimeError(f"{int(recs.fallback.sum())} evaluated users unknown to the model")
    return np.asarray(recs.item_ids, dtype=np.int64)


def _palate(name: str, **kwargs: Any) -> Callable[[], Any]:
    """Makes the palate model called ``name`` in its registry, with these arguments."""

    def make() -> Any:
        return palate_model(name, **kwargs)

    return make


# ----------------------------------------------------------------------------- EASE
class Ease:
    """EASE (Steck 2019): B = P / -diag(P) with P = (XᵀX + λI)⁻¹, then diag(B) = 0."""

    def __init__(self, lam: float = EASE_LAMBDA) -> None:
        self.lam = lam
        self.B: np.ndarray | None = None

    def fit(self, X: sp.csr_matrix) -> Ease:
        gram = (X.T @ X).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.lam
        P = np.linalg.inv(gram)
        B = P / -np.diag(P)  # column j divided by -P[j, j]
        B[np.diag_indices_from(B)] = 0.0
        self.B = B
        return self


def _identity_prepare(split: Split) -> Any:
    return split.train


def _plain_fit(model: Any, X: sp.csr_matrix) -> Any:
    return model.fit(X)


def _ease_recommend(model: Ease, split: Split) -> np.ndarray:
    X = split.train[split.eval_rows]
    scores = np.asarray(X @ model.B)
    scores[X.nonzero()] = -np.inf  # training items out of the ranking
    top = np.argsort(-scores, axis=1, kind="stable")[:, :TOP_N]
    return split.item_ids[top]


# ----------------------------------------------------------------------------- implicit
def _implicit_fit(model: Any, X: sp.csr_matrix) -> Any:
    # implicit >= 0.5: fit takes the users x items matrix
    return model.fit(X, show_progress=False)


def _implicit_recommend(model: Any, split: Split) -> np.ndarray:
    rows = split.eval_rows
    ids, _ = model.recommend(rows, split.train[rows], N=TOP_N, filter_already_liked_items=True)
    ids = np.asarray(ids, dtype=np.int64)
    out = np.full(ids.shape, -1, dtype=np.int64)
    valid = ids >= 0
    out[valid] = split.item_ids[ids[valid]]
    return out


def _implicit_als() -> Any:
    from implicit.cpu.als import AlternatingLeastSquares

    return AlternatingLeastSquares(factors=64, regularization=50.0, alpha=10.0,
                                   random_state=IMPLICIT_SEED)


def _implicit_bpr() -> Any:
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    return BayesianPersonalizedRanking(random_state=IMPLICIT_SEED)


# ----------------------------------------------------------------------------- LightFM
LIGHTFM_EPOCHS = 30


def _lightfm_warp() -> Any:
    from lightfm import LightFM

    return LightFM(loss="warp", no_components=128, learning_rate=0.02,
                   random_state=IMPLICIT_SEED)


def _lightfm_fit(model: Any, X: sp.csr_matrix) -> Any:
    # one thread: LightFM's parallel SGD is lock-free, so several threads would make the
    # numbers change from run to run
    return model.fit(X.tocoo(), epochs=LIGHTFM_EPOCHS, num_threads=1)


def _top_from_scores(scores: np.ndarray, split: Split) -> np.ndarray:
    """Top ``TOP_N`` catalogue items per evaluated user, training items removed."""
    scores[split.train[split.eval_rows].nonzero()] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :TOP_N]
    return split.item_ids[top]


def _lightfm_recommend(model: Any, split: Split) -> np.ndarray:
    # the user's bias is a constant per row and does not change the ranking
    item_bias, item_vectors = model.get_item_representations()
    _, user_vectors = model.get_user_representations()
    scores = user_vectors[split.eval_rows] @ item_vectors.T + item_bias
    return _top_from_scores(np.asarray(scores, dtype=np.float64), split)


# ----------------------------------------------------------------------------- cornac
def _cornac_bpr() -> Any:
    from cornac.models import BPR

    return BPR(k=64, max_iter=200, learning_rate=0.01, lambda_reg=0.01, seed=IMPLICIT_SEED)


def _cornac_prepare(split: Split) -> Any:
    from cornac.data import Dataset

    # CSR row / column numbers as ids, so cornac's indices map back through split.item_ids
    rows, cols = split.train.nonzero()
    return Dataset.from_uir(list(zip(rows.tolist(), cols.tolist(), [1.0] * len(rows),
                                     strict=True)), seed=IMPLICIT_SEED)


def _cornac_recommend(model: Any, split: Split) -> np.ndarray:
    n_items = len(split.item_ids)
    user_index = np.array([model.uid_map[r] for r in split.eval_rows.tolist()])
    # cornac's item index -> CSR column
    column_of = np.empty(len(model.iid_map), dtype=np.int64)
    for column, index in model.iid_map.items():
        column_of[index] = column
    internal = model.u_factors[user_index] @ model.i_factors.T + model.i_biases
    scores = np.full((len(user_index), n_items), -np.inf)
    scores[:, column_of] = internal
    return _top_from_scores(scores, split)


RUNNERS: dict[str, Runner] = {
    runner.name: runner
    for runner in (
        Runner("palate-als",
               "palate CollaborativeFiltering(kind='binary') (defaults: ALS, sampled negatives)",
               _palate("cf", kind="binary"), _palate_prepare, _palate_fit,
               _palate_recommend, warm_up=True),
        Runner("palate-adam",
               "palate CollaborativeFiltering(kind='binary', solver='adam') (defaults otherwise)",
               _palate("cf", kind="binary", solver="adam"), _palate_prepare,
               _palate_fit, _palate_recommend, warm_up=True),
        Runner("palate-ials", "palate ImplicitALS() (defaults: 64 factors, reg 50, alpha 10)",
               _palate("ials"), _palate_prepare, _palate_fit, _palate_recommend,
               warm_up=True),
        Runner("palate-blend",
               "palate TopNBlend() (defaults: EASE() and ImplicitALS(), factor_weight 0.4)",
               _palate("blend"), _palate_prepare, _palate_fit, _palate_recommend,
               warm_up=True),
        Runner("palate-ease",
               "palate EASE() (defaults: dropout 0.25, item_exponent 0.2, λ by data size)",
               _palate("ease"), _palate_prepare, _palate_fit, _palate_recommend),
        Runner("palate-ease-plain", "palate EASE(dropout=0, item_exponent=0) (plain EASE, "
               "λ by data size)", _palate("ease", dropout=0.0, item_exponent=0.0),
               _palate_prepare, _palate_fit, _palate_recommend),
        Runner("palate-popularity", "palate Popularity() (defaults: by='count')",
               _palate("popularity"), _palate_prepare, _palate_fit, _palate_recommend),
        Runner("ease", f"EASE closed form (Steck 2019), lambda={EASE_LAMBDA:g}, numpy in this "
               "script", Ease, _identity_prepare, _plain_fit, _ease_recommend),
        Runner("implicit-als",
               "implicit AlternatingLeastSquares(factors=64, regularization=50, alpha=10, "
               f"random_state={IMPLICIT_SEED}) (defaults otherwise)",
               _implicit_als, _identity_prepare, _implicit_fit, _implicit_recommend),
        Runner("implicit-bpr",
               f"implicit BayesianPersonalizedRanking(random_state={IMPLICIT_SEED}) (defaults)",
               _implicit_bpr, _identity_prepare, _implicit_fit, _implicit_recommend),
        Runner("lightfm-warp",
               "LightFM(loss='warp', no_components=128, learning_rate=0.02, "
               f"random_state={IMPLICIT_SEED}), "
               f"{LIGHTFM_EPOCHS} epochs, 1 thread (defaults otherwise)",
               _lightfm_warp, _identity_prepare, _lightfm_fit, _lightfm_recommend),
        Runner("cornac-bpr",
               "cornac BPR(k=64, max_iter=200, learning_rate=0.01, lambda_reg=0.01, "
               f"seed={IMPLICIT_SEED})",
               _cornac_bpr, _cornac_prepare, _plain_fit, _cornac_recommend),
    )
}
DEFAULT_MODELS = list(RUNNERS)
# left out of the ML-1M run by default: full-batch Adam over ~2.3M entries (positives and
# sampled negatives) for 80 epochs takes tens of minutes here (``--models`` adds it back)
SLOW_ON_ML1M = {"palate-adam"}


# ----------------------------------------------------------------------------- protocol
def load_positives(dataset: str, data_dir: Path) -> pd.DataFrame:
    """Rows with rating >= 4 of ``u.data`` (ml-100k) or ``ratings.dat`` (ml-1m), as (user,
    item) in file order."""
    ratings = load_ratings(data_dir) if dataset == "ml-100k" else load_ml1m(data_dir)
    positives = ratings.loc[ratings["rating"] >= POSITIVE_THRESHOLD, ["user", "item"]]
    return positives.reset_index(drop=True)


DATASETS = {
    "ml-100k": "MovieLens 100K u.data (100,000 ratings, 943 users, 1,682 items)",
    "ml-1m": "MovieLens 1M ratings.dat (1,000,209 ratings, 6,040 users, 3,706 items)",
}


def make_split(positives: pd.DataFrame) -> Split:
    """The P2 split (see the module docstring for how the generator is consumed)."""
    rng = np.random.default_rng(SPLIT_SEED)
    train_parts: list[pd.DataFrame] = []
    held: dict[int, np.ndarray] = {}
    ordered = positives.sort_values(["user", "item"], kind="stable")
    for user, group in ordered.groupby("user", sort=True):
        items = group["item"].to_numpy()
        n = len(items)
        if n < MIN_POSITIVES:
            train_parts.append(group)
            continue
        order = rng.permutation(n)
        n_test = max(1, n // 5)
        held[int(user)] = np.sort(items[order[:n_test]])
        train_parts.append(group.iloc[np.sort(order[n_test:])])
    train = pd.concat(train_parts, ignore_index=True)

    user_ids = np.unique(train["user"].to_numpy())
    item_ids = np.unique(train["item"].to_numpy())
    rows = np.searchsorted(user_ids, train["user"].to_numpy())
    cols = np.searchsorted(item_ids, train["item"].to_numpy())
    matrix = sp.csr_matrix((np.ones(len(train), dtype=np.float32), (rows, cols)),
                           shape=(len(user_ids), len(item_ids)))
    matrix.sort_indices()
    eval_users = np.array(sorted(held), dtype=np.int64)
    eval_rows = np.searchsorted(user_ids, eval_users)
    assert np.array_equal(user_ids[eval_rows], eval_users)
    held_out = [held[int(u)] for u in eval_users]
    all_held = np.concatenate(held_out)
    stats = {
        "n_positives": len(positives),
        "n_users_with_positives": int(positives["user"].nunique()),
        "n_items_with_positives": int(positives["item"].nunique()),
        "n_train_positives": len(train),
        "n_held_out_positives": len(all_held),
        "n_evaluated_users": len(eval_users),
        "n_users_train_only": len(user_ids) - len(eval_users),
        "n_catalogue_items": len(item_ids),
        "n_held_out_items_not_in_catalogue": int((~np.isin(all_held, item_ids)).sum()),
    }
    return Split(user_ids, item_ids, matrix, train[["user", "item"]], eval_rows, held_out, stats)


def score(recommended: np.ndarray, split: Split) -> dict[str, float]:
    from palate.evaluation import metrics as m

    relevant = split.held_out
    n_items = len(split.item_ids)
    return {
        "precision@10": m.mean_over_users(m.precision_at_k(recommended, relevant, k=10)),
        "recall@10": m.mean_over_users(m.recall_at_k(recommended, relevant, k=10)),
        "recall@20": m.mean_over_users(m.recall_at_k(recommended, relevant, k=20)),
        "ndcg@10": m.mean_over_users(m.ndcg_at_k(recommended, relevant, k=10)),
        "map@10": m.map_at_k(recommended, relevant, k=10),
        "hit_rate@10": m.mean_over_users(m.hit_rate_at_k(recommended, relevant, k=10)),
        "coverage@10": m.catalog_coverage(recommended, n_items, k=10),
    }


def warm_up(runner: Runner, split: Split) -> float:
    """Fit a throw-away model on the first 100 users' training positives; its seconds.

    palate's ALS kernels are numba functions compiled on first use (and cached on disk), so
    without this the first fit in a fresh checkout would include tens of seconds of compiling.
    """
    pairs = split.train_pairs
    small = pairs[pairs["user"].isin(split.user_ids[:100])].reset_index(drop=True)
    sample = Split(split.user_ids[:100], split.item_ids, split.train[:100], small,
                   split.eval_rows[:0], [], {})
    with stopwatch() as seconds:
        runner.fit(runner.make(), runner.prepare(sample))
    return seconds[0]


def run_model(runner: Runner, split: Split) -> dict[str, Any]:
    warm_up_seconds = warm_up(runner, split) if runner.warm_up else None
    model = runner.make()
    with stopwatch() as prep:
        data = runner.prepare(split)
    with stopwatch() as fit:
        runner.fit(model, data)
    with stopwatch() as rec:
        recommended = runner.recommend(model, split)
    expected = (len(split.eval_rows), TOP_N)
    if recommended.shape != expected:
        raise RuntimeError(f"{runner.name}: got recommendations of shape {recommended.shape}, "
                           f"expected {expected}")
    # no model may return a training item of the user
    seen = split.train[split.eval_rows]
    cols = np.searchsorted(split.item_ids, recommended)
    valid = (recommended >= 0) & (cols < len(split.item_ids))
    cols = np.where(valid, np.minimum(cols, len(split.item_ids) - 1), 0)
    n_seen = int((seen.toarray()[np.arange(len(cols))[:, None], cols] != 0)[valid].sum())
    return {
        **score(recommended, split),
        "prep_seconds": prep[0],
        "fit_seconds": fit[0],
        "recommend_seconds": rec[0],
        "warm_up_seconds": warm_up_seconds,
        "n_padding_slots": int((recommended < 0).sum()),
        "n_training_items_recommended": n_seen,
    }


def available(names: list[str]) -> tuple[list[Runner], dict[str, str]]:
    """The runners whose model can be built here, and why the others were skipped."""
    return available_runners(RUNNERS, names)


METRIC_COLUMNS = ("precision@10", "recall@10", "recall@20", "ndcg@10", "map@10", "hit_rate@10",
                  "coverage@10")


def show(results: dict[str, dict[str, Any]], split: Split, dataset: str) -> None:
    rows = [[name, *(f"{r[c]:.4f}" for c in METRIC_COLUMNS), f"{r['fit_seconds']:.2f}"]
            for name, r in results.items()]
    print_table(
        f"P2: {dataset}, rating >= {POSITIVE_THRESHOLD} as positives, 20% of each user's "
        f"positives held out (default_rng({SPLIT_SEED})); {split.stats['n_evaluated_users']} "
        f"users, {split.stats['n_catalogue_items']} items ranked, training items excluded",
        ["model", "P@10", "R@10", "R@20", "NDCG@10", "MAP@10", "HR@10", "cov@10", "fit s"],
        rows,
    )


def _implicit_version() -> str | None:
    try:
        import implicit
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return None
    return str(getattr(implicit, "__version__", "unknown"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=tuple(DATASETS), default="ml-100k")
    parser.add_argument("--data", type=Path, default=None,
                        help="folder with ml-100k's u.data or ml-1m's ratings.dat "
                             "(default: ~/.cache/palate/<dataset>)")
    parser.add_argument("--models", default=None,
                        help=f"comma-separated subset of {', '.join(RUNNERS)} (default: all)")
    parser.add_argument("--out", type=Path, default=None,
                        help="result file (default: results/p2_<dataset>.json for a full run, "
                             "results/cache/p2_<dataset>-partial.json otherwise)")
    args = parser.parse_args(argv)

    defaults = DEFAULT_MODELS if args.dataset == "ml-100k" else [
        n for n in DEFAULT_MODELS if n not in SLOW_ON_ML1M
    ]
    names = parse_list(args.models) or defaults
    unknown = [n for n in names if n not in RUNNERS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(RUNNERS)}")
    full_run = names == defaults
    tag = args.dataset.replace("-", "")
    out = args.out or (RESULTS_DIR / f"p2_{tag}.json" if full_run
                       else RESULTS_DIR / "cache" / f"p2_{tag}-partial.json")
    data_dir = args.data or DEFAULT_ML100K.parent / args.dataset

    versions = library_versions()
    versions["implicit"] = _implicit_version()
    machine = machine_note()
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"machine: {machine['nproc']} cores, {machine['cpu_model']}, "
          f"torch threads {machine['torch_threads']}")

    runners, skipped = available(names)
    if not runners:
        print("no model available to run", file=sys.stderr)
        return 1

    split = make_split(load_positives(args.dataset, data_dir))
    print("split: " + ", ".join(f"{k} {v}" for k, v in split.stats.items()))
    results: dict[str, dict[str, Any]] = {}
    for runner in runners:
        record = run_model(runner, split)
        results[runner.name] = record
        print(f"{runner.name:18s} ndcg@10 {record['ndcg@10']:.4f} "
              f"recall@20 {record['recall@20']:.4f} fit {record['fit_seconds']:.2f}s "
              f"recommend {record['recommend_seconds']:.3f}s", flush=True)

    show(results, split, "MovieLens 100K" if args.dataset == "ml-100k" else "MovieLens 1M")
    payload = {
        "protocol": "P2",
        "dataset": DATASETS[args.dataset],
        "positives": f"rating >= {POSITIVE_THRESHOLD}, as binary 1s; other rows dropped",
        "split": (
            f"users in ascending id order; each user with >= {MIN_POSITIVES} positives: "
            f"positives sorted by item id, order = rng.permutation(n) with one shared "
            f"rng = numpy.random.default_rng({SPLIT_SEED}) (one call per such user, nothing "
            f"else draws from it); the first {HOLDOUT_SHARE} of order are held out, the rest "
            "train. Users with fewer positives keep all for training and are not evaluated."
        ),
        "split_stats": split.stats,
        "metrics_note": (
            f"means over the evaluated users; top {TOP_N} over the catalogue (items with a "
            "training positive), each user's training items excluded; relevant = all the "
            "user's held-out items (a held-out item outside the catalogue counts but cannot "
            "be hit); coverage@10 = distinct items in the top 10s / catalogue size. "
            "fit_seconds excludes prep_seconds (building the library's input) and "
            "recommend_seconds. palate ALS/Adam first fit a throw-away model on the first "
            "100 users' training positives (warm_up_seconds) so that numba compilation and "
            "first-call setup are not in fit_seconds."
        ),
        "created": now_iso(),
        "command": command_line(),
        "versions": versions,
        "palate_git_commit": git_commit(),
        "machine": machine,
        "models": {r.name: r.description for r in runners},
        "skipped": skipped,
        "results": results,
    }
    return finish(out, payload)


if __name__ == "__main__":
    raise SystemExit(main())
