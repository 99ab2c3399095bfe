"""Protocol P1: explicit-rating prediction on MovieLens 100K, 5-fold cross-validation.

Every model is fitted and scored on the identical train/test rows of each fold:

- rows: ``u.data`` read with pandas in file order (tab-separated: user, item, rating, time);
- folds: ``sklearn.model_selection.KFold(n_splits=5, shuffle=True, random_state=0)``;
- metrics: RMSE and MAE of the predicted rating on the test rows; fit and predict seconds
  measured with ``time.perf_counter``. Building each library's training structure
  (``Interactions`` / Surprise ``Trainset`` / myFM relation blocks) is timed apart as "prep".

Models run at their default settings: palate ``BayesianCollaborativeFiltering()`` (the
``bayes`` model), ``CollaborativeFiltering()`` (ALS) and ``CollaborativeFiltering(solver=
"adam")``, myFM's Bayesian factorization machine (rank 10, 200 Gibbs samples) with and without
SVD++-style implicit features, Surprise ``SVD()`` and ``KNNBaseline`` with the item-based
pearson_baseline similarity. A model whose import fails is skipped with a message.
``--validate`` scores on a tenth of each fold's training rows instead of its test rows: the
protocol that chose palate's defaults.


Usage::

    python p1_explicit.py [--data DIR] [--folds N] [--models a,b] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
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
    mae,
    mean_std,
    now_iso,
    palate_model,
    parse_list,
    print_table,
    rmse,
    stopwatch,
)
from sklearn.model_selection import KFold

N_SPLITS = 5
SPLIT_SEED = 0
RATING_SCALE = (1.0, 5.0)
REFERENCE_MODEL = "surprise-svd"
VALIDATION_SEED = 1


@dataclass
class Runner:
    """How to prepare data for, fit and query one model on one fold."""

    name: str
    description: str
    make: Callable[[], Any]
    prepare: Callable[[pd.DataFrame], Any]
    fit: Callable[[Any, Any], Any]
    predict: Callable[[Any, pd.DataFrame], np.ndarray]


# ----------------------------------------------------------------------------- palate
def _palate_prepare(train: pd.DataFrame) -> Any:
    import palate

    return palate.Interactions.from_arrays(
        train["user"].to_numpy(),
        train["item"].to_numpy(),
        train["rating"].to_numpy(),
        train["timestamp"].to_numpy(),
        rating_scale=RATING_SCALE,
    )


def _palate_fit(model: Any, data: Any) -> Any:
    return model.fit(data)


def _palate_predict(model: Any, test: pd.DataFrame) -> np.ndarray:
    pred = model.predict(test["user"].to_numpy(), test["item"].to_numpy())
    return np.asarray(pred, dtype=np.float64)


def _palate(name: str, **kwargs: Any) -> Callable[[], Any]:
    """Makes the palate model called ``name`` in its registry, with these arguments."""

    def make() -> Any:
        return palate_model(name, **kwargs)

    return make


def _with_params(make: Callable[[], Any], extra: dict[str, Any]) -> Callable[[], Any]:
    def remade() -> Any:
        return make().with_params(**extra)

    return remade


# ----------------------------------------------------------------------------- Surprise
def _surprise_prepare(train: pd.DataFrame) -> Any:
    from surprise import Dataset, Reader

    reader = Reader(rating_scale=RATING_SCALE)
    dataset = Dataset.load_from_df(train[["user", "item", "rating"]], reader)
    return dataset.build_full_trainset()


def _surprise_fit(model: Any, trainset: Any) -> Any:
    # KNNBaseline reports its progress on stdout; keep the table readable.
    with contextlib.redirect_stdout(io.StringIO()):
        return model.fit(trainset)


def _surprise_predict(model: Any, test: pd.DataFrame) -> np.ndarray:
    testset = list(
        zip(
            test["user"].tolist(), test["item"].tolist(), test["rating"].tolist(), strict=True
        )
    )
    with contextlib.redirect_stdout(io.StringIO()):
        predictions = model.test(testset)
    return np.fromiter((p.est for p in predictions), dtype=np.float64, count=len(testset))


def _surprise_svd() -> Any:
    from surprise import SVD

    return SVD()


def _surprise_knn_baseline() -> Any:
    from surprise import KNNBaseline

    return KNNBaseline(sim_options={"name": "pearson_baseline", "user_based": False})


# ----------------------------------------------------------------------------- cornac
CORNAC_SEED = 0


def _cornac_prepare(train: pd.DataFrame) -> Any:
    from cornac.data import Dataset

    triples = zip(train["user"].tolist(), train["item"].tolist(), train["rating"].tolist(),
                  strict=True)
    return Dataset.from_uir(list(triples), seed=CORNAC_SEED)


def _cornac_fit(model: Any, train_set: Any) -> Any:
    return model.fit(train_set)


def _cornac_predict(model: Any, test: pd.DataFrame) -> np.ndarray:
    """``u·i + b_u + b_i + μ`` from cornac MF's learned arrays (what ``score`` computes), NaN
    for a user or item the training fold never saw."""
    users = np.array([model.uid_map.get(u, -1) for u in test["user"].tolist()])
    items = np.array([model.iid_map.get(i, -1) for i in test["item"].tolist()])
    known = (users >= 0) & (items >= 0)
    out = np.full(len(test), np.nan)
    u, i = users[known], items[known]
    out[known] = (np.einsum("ij,ij->i", model.u_factors[u], model.i_factors[i])
                  + model.u_biases[u] + model.i_biases[i] + model.global_mean)
    return out


def _cornac_mf() -> Any:
    from cornac.models import MF

    return MF(seed=CORNAC_SEED)


# ----------------------------------------------------------------------------- myFM
MYFM_RANK = 10
MYFM_SAMPLES = 200
MYFM_SEED = 0


@dataclass
class MyFMData:
    """A training fold as myFM relation blocks: one row per user ([one-hot user | the items
    the user rated, each 1/sqrt(n)]) and one per item ([one-hot item | the users who rated
    it, each 1/sqrt(n)]), built from the training rows only, and the index maps."""

    users: dict[Any, int]
    items: dict[Any, int]
    user_block: Any
    item_block: Any
    user_rows: np.ndarray
    item_rows: np.ndarray
    y: np.ndarray
    implicit: bool


def _myfm_block(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int,
                implicit: bool) -> Any:
    """[I | N / sqrt(|N|)] for the entities of ``rows`` (one row each, plus an all-zero row
    at the end for ids the fold never saw), ``cols`` the other side of every training row."""
    import scipy.sparse as sps

    eye = sps.identity(n_rows, format="csr")
    if implicit:
        counts = np.bincount(rows, minlength=n_rows).astype(np.float64)
        weights = 1.0 / np.sqrt(counts[rows])
        implicit_part = sps.csr_matrix((weights, (rows, cols)), shape=(n_rows, n_cols))
        block = sps.hstack([eye, implicit_part], format="csr")
    else:
        block = eye
    zero = sps.csr_matrix((1, block.shape[1]))
    return sps.vstack([block, zero], format="csr")


def _myfm_prepare(implicit: bool) -> Callable[[pd.DataFrame], MyFMData]:
    def prepare(train: pd.DataFrame) -> MyFMData:
        user_ids, user_rows = np.unique(train["user"].to_numpy(), return_inverse=True)
        item_ids, item_rows = np.unique(train["item"].to_numpy(), return_inverse=True)
        n_u, n_i = len(user_ids), len(item_ids)
        return MyFMData(
            users={u: k for k, u in enumerate(user_ids.tolist())},
            items={i: k for k, i in enumerate(item_ids.tolist())},
            user_block=_myfm_block(user_rows, item_rows, n_u, n_i, implicit),
            item_block=_myfm_block(item_rows, user_rows, n_i, n_u, implicit),
            user_rows=user_rows.astype(np.int64),
            item_rows=item_rows.astype(np.int64),
            y=train["rating"].to_numpy(dtype=np.float64),
            implicit=implicit,
        )

    return prepare


def _myfm_relations(data: MyFMData, user_rows: np.ndarray, item_rows: np.ndarray) -> list[Any]:
    from myfm import RelationBlock

    return [RelationBlock(user_rows, data.user_block), RelationBlock(item_rows, data.item_block)]


def _myfm_fit(model: Any, data: MyFMData) -> Any:
    # group order follows the columns: user block [user, items], item block [item, users]
    n_u, n_i = len(data.users), len(data.items)
    groups = [n_u, n_i, n_i, n_u] if data.implicit else [n_u, n_i]
    # myFM draws a progress bar on stderr; keep the table readable
    with contextlib.redirect_stderr(io.StringIO()):
        model.fit(
            None,
            data.y,
            X_rel=_myfm_relations(data, data.user_rows, data.item_rows),
            n_iter=MYFM_SAMPLES,
            n_kept_samples=MYFM_SAMPLES,
            group_shapes=groups,
        )
    model.palate_data_ = data
    return model


def _myfm_predict(model: Any, test: pd.DataFrame) -> np.ndarray:
    data: MyFMData = model.palate_data_
    n_u, n_i = len(data.users), len(data.items)
    users = np.array([data.users.get(u, n_u) for u in test["user"].tolist()], dtype=np.int64)
    items = np.array([data.items.get(i, n_i) for i in test["item"].tolist()], dtype=np.int64)
    pred = model.predict(None, X_rel=_myfm_relations(data, users, items))
    return np.asarray(pred, dtype=np.float64)


def _myfm() -> Any:
    import warnings

    with warnings.catch_warnings():  # myFM 0.4 imports pkg_resources (setuptools < 81)
        warnings.simplefilter("ignore")
        import myfm

    return myfm.MyFMRegressor(rank=MYFM_RANK, random_seed=MYFM_SEED)


RUNNERS: dict[str, Runner] = {
    runner.name: runner
    for runner in (
        Runner(
            "palate-als",
            "palate CollaborativeFiltering() (defaults, solver='als')",
            _palate("cf"),
            _palate_prepare,
            _palate_fit,
            _palate_predict,
        ),
        Runner(
            "palate-adam",
            "palate CollaborativeFiltering(solver='adam') (defaults)",
            _palate("cf", solver="adam"),
            _palate_prepare,
            _palate_fit,
            _palate_predict,
        ),
        Runner(
            "palate-gibbs",
            "palate CollaborativeFiltering(solver='gibbs', embedding_size=16, "
            "reg_scaling='none', reg=5.0, samples=100)",
            _palate(
                "cf", solver="gibbs", embedding_size=16, reg_scaling="none", reg=5.0, samples=100
            ),
            _palate_prepare,
            _palate_fit,
            _palate_predict,
        ),
        Runner(
            "palate-bayes",
            "palate BayesianCollaborativeFiltering() (defaults: solver='bayes', "
            "embedding_size=10, 200 samples after 5 burn-in sweeps, implicit terms on both "
            "sides, per-user and per-item noise levels)",
            _palate("bayes"),
            _palate_prepare,
            _palate_fit,
            _palate_predict,
        ),
        Runner(
            "surprise-svd",
            "Surprise SVD() (defaults)",
            _surprise_svd,
            _surprise_prepare,
            _surprise_fit,
            _surprise_predict,
        ),
        Runner(
            "surprise-knnbaseline",
            "Surprise KNNBaseline(sim_options={'name': 'pearson_baseline', "
            "'user_based': False}) (defaults otherwise)",
            _surprise_knn_baseline,
            _surprise_prepare,
            _surprise_fit,
            _surprise_predict,
        ),
        Runner(
            "cornac-mf",
            f"cornac MF(seed={CORNAC_SEED}) (defaults: k=10, 20 epochs of SGD, lr 0.01, "
            "lambda 0.02, biases)",
            _cornac_mf,
            _cornac_prepare,
            _cornac_fit,
            _cornac_predict,
        ),
        Runner(
            "myfm",
            f"myFM MyFMRegressor(rank={MYFM_RANK}), {MYFM_SAMPLES} Gibbs samples, all kept; "
            "relation blocks [user | items the user rated / sqrt(n)] and [item | users who "
            "rated it / sqrt(n)] from the training rows, one hyperprior group per block part",
            _myfm,
            _myfm_prepare(implicit=True),
            _myfm_fit,
            _myfm_predict,
        ),
        Runner(
            "myfm-plain",
            f"myFM MyFMRegressor(rank={MYFM_RANK}), {MYFM_SAMPLES} Gibbs samples, all kept; "
            "one-hot user and item only (no implicit features)",
            _myfm,
            _myfm_prepare(implicit=False),
            _myfm_fit,
            _myfm_predict,
        ),
        Runner(
            "palate-popularity",
            "palate Popularity(by='mean'): item mean shrunk to the global mean (baseline)",
            _palate("popularity", by="mean"),
            _palate_prepare,
            _palate_fit,
            _palate_predict,
        ),
    )
}
DEFAULT_MODELS = [
    "palate-bayes",
    "myfm",
    "myfm-plain",
    "palate-als",
    "palate-adam",
    "palate-gibbs",
    "surprise-svd",
    "surprise-knnbaseline",
    "cornac-mf",
]


# ----------------------------------------------------------------------------- protocol
def holdout(n_rows: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ML-1M split: a random 10% of the rows (default_rng(0).permutation) is the test set."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n_rows)
    n_test = n_rows // 10
    return [(np.sort(order[n_test:]), np.sort(order[:n_test]))]


def folds(n_rows: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The P1 folds: KFold(5, shuffle=True, random_state=0) over the row positions."""
    splitter = KFold(n_splits=N_SPLITS, shuffle=True, random_state=SPLIT_SEED)
    return list(splitter.split(np.arange(n_rows)))


def validation_split(train_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``--validate``: a random tenth of a fold's training rows (default_rng(1)) becomes the
    held-out set and the rest the training set; the fold's test rows are not used."""
    order = np.random.default_rng(VALIDATION_SEED).permutation(len(train_rows))
    n_val = len(train_rows) // 10
    return np.sort(train_rows[order[n_val:]]), np.sort(train_rows[order[:n_val]])


def run_fold(
    runner: Runner, train: pd.DataFrame, test: pd.DataFrame, fold: int
) -> dict[str, Any]:
    """Fit and score one model on one fold; returns the per-fold record."""
    # Surprise draws its initial factors from NumPy's global generator; seeding it makes
    # the run repeatable without changing any model setting.
    np.random.seed(SPLIT_SEED + fold)  # noqa: NPY002 - Surprise reads the global state
    model = runner.make()
    with stopwatch() as prep:
        data = runner.prepare(train)
    with stopwatch() as fit:
        runner.fit(model, data)
    with stopwatch() as predict:
        pred = runner.predict(model, test)
    truth = test["rating"].to_numpy(dtype=np.float64)
    if pred.shape != truth.shape:
        raise RuntimeError(f"{runner.name}: predict returned shape {pred.shape}, expected "
                           f"{truth.shape}")
    # The protocol needs a number for every test row. A NaN (an id the model does not
    # know, with no fallback) is scored as the training mean and counted.
    missing = ~np.isfinite(pred)
    n_missing = int(missing.sum())
    if n_missing:
        pred = pred.copy()
        pred[missing] = float(train["rating"].mean())
    clipped = np.clip(pred, *RATING_SCALE)
    return {
        "fold": fold,
        "rmse": rmse(truth, pred),
        "mae": mae(truth, pred),
        "rmse_clipped": rmse(truth, clipped),
        "mae_clipped": mae(truth, clipped),
        "prep_seconds": prep[0],
        "fit_seconds": fit[0],
        "predict_seconds": predict[0],
        "n_train": len(train),
        "n_test": len(test),
        "n_nan_predictions_filled": n_missing,
        "prediction_min": float(pred.min()),
        "prediction_max": float(pred.max()),
    }


def cold_counts(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, int]:
    """How many test rows have a user / item that the training rows never saw."""
    unknown_user = ~test["user"].isin(pd.unique(train["user"]))
    unknown_item = ~test["item"].isin(pd.unique(train["item"]))
    return {
        "test_rows_unknown_user": int(unknown_user.sum()),
        "test_rows_unknown_item": int(unknown_item.sum()),
    }


def available(names: list[str]) -> tuple[list[Runner], dict[str, str]]:
    """The runners whose model can be built here, and why the others were skipped."""
    return available_runners(RUNNERS, names)


def summarise(per_model: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    summary: dict[str, dict[str, float]] = {}
    for name, records in per_model.items():
        stats: dict[str, float] = {}
        for key in ("rmse", "mae", "rmse_clipped", "prep_seconds", "fit_seconds",
                    "predict_seconds"):
            stats[f"{key}_mean"], stats[f"{key}_std"] = mean_std([r[key] for r in records])
        summary[name] = stats
    reference = summary.get(REFERENCE_MODEL)
    for stats in summary.values():
        stats["fit_time_ratio_vs_surprise_svd"] = (
            stats["fit_seconds_mean"] / reference["fit_seconds_mean"]
            if reference else float("nan")
        )
    return summary


def show(summary: dict[str, dict[str, float]], n_folds: int, title: str | None = None) -> None:
    def pm(stats: dict[str, float], key: str, digits: int) -> str:
        return f"{stats[key + '_mean']:.{digits}f} ± {stats[key + '_std']:.{digits}f}"

    rows = []
    for name, stats in summary.items():
        ratio = stats["fit_time_ratio_vs_surprise_svd"]
        rows.append([
            name,
            pm(stats, "rmse", 4),
            pm(stats, "mae", 4),
            pm(stats, "fit_seconds", 2),
            pm(stats, "predict_seconds", 3),
            "-" if not np.isfinite(ratio) else f"{ratio:.2f}x",
        ])
    print_table(
        title
        or f"P1: MovieLens 100K, {n_folds}-fold CV (KFold shuffle, random_state={SPLIT_SEED}); "
        "mean ± std over folds",
        ["model", "RMSE", "MAE", "fit s", "predict s", "fit time / Surprise SVD"],
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("ml-100k", "ml-1m"), default="ml-100k",
                        help="ml-100k: 5-fold CV (P1); ml-1m: one 90/10 random split, seed 0")
    parser.add_argument("--data", type=Path, default=None,
                        help="folder with ml-100k's u.data or ml-1m's ratings.dat "
                             "(default: ~/.cache/palate/<dataset>)")
    parser.add_argument("--folds", type=int, default=N_SPLITS,
                        help="run only the first N of the 5 folds (quick checks)")
    parser.add_argument("--models", default=None,
                        help=f"comma-separated subset of {', '.join(RUNNERS)} "
                             f"(default: {', '.join(DEFAULT_MODELS)})")
    parser.add_argument("--out", type=Path, default=None,
                        help="result file (default: results/p1_ml100k.json for a full run, "
                             "results/cache/p1_ml100k-partial.json otherwise)")
    parser.add_argument("--validate", action="store_true",
                        help="score on a random 10%% of each fold's training rows, training "
                             "on the other 90%% (how defaults are chosen; the test rows are "
                             "not used)")
    parser.add_argument("--params", default=None,
                        help="JSON keyword arguments for the palate models (validation runs)")
    args = parser.parse_args(argv)
    if args.params:
        import json

        extra = json.loads(args.params)
        for runner in RUNNERS.values():
            if runner.name.startswith("palate-"):
                runner.make = _with_params(runner.make, extra)
                runner.description += f" with {extra}"

    names = parse_list(args.models) or DEFAULT_MODELS
    unknown = [n for n in names if n not in RUNNERS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(RUNNERS)}")
    if not 1 <= args.folds <= N_SPLITS:
        parser.error(f"--folds must be between 1 and {N_SPLITS}")
    full_run = (args.folds == N_SPLITS and names == DEFAULT_MODELS and not args.validate
                and not args.params)
    tag = "ml100k" if args.dataset == "ml-100k" else "ml1m"
    out = args.out or (RESULTS_DIR / f"p1_{tag}.json" if full_run
                       else RESULTS_DIR / "cache" / f"p1_{tag}-partial.json")
    data_dir = args.data or DEFAULT_ML100K.parent / args.dataset

    versions = library_versions()
    machine = machine_note()
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"machine: {machine['nproc']} cores, {machine['cpu_model']}, "
          f"torch threads {machine['torch_threads']}")

    runners, skipped = available(names)
    if not runners:
        print("no model available to run", file=sys.stderr)
        return 1

    if args.dataset == "ml-100k":
        ratings = load_ratings(data_dir)
        all_folds = folds(len(ratings))[: args.folds]
        dataset = "MovieLens 100K u.data (100,000 ratings, 943 users, 1,682 items)"
        split = (f"sklearn KFold(n_splits={N_SPLITS}, shuffle=True, "
                 f"random_state={SPLIT_SEED}) over u.data rows in file order")
    else:
        ratings = load_ml1m(data_dir)
        all_folds = holdout(len(ratings))
        dataset = "MovieLens 1M ratings.dat (1,000,209 ratings, 6,040 users, 3,706 items)"
        split = ("90/10 random split: numpy.random.default_rng(0).permutation(n); the first "
                 "n // 10 row positions are the test set")
    per_model: dict[str, list[dict[str, Any]]] = {r.name: [] for r in runners}
    fold_info = []
    if args.validate:
        all_folds = [validation_split(train_rows) for train_rows, _ in all_folds]
        split += ("; --validate: each fold's training rows split again, a random 10% "
                  f"(default_rng({VALIDATION_SEED})) held out, the test rows unused")
    for fold, (train_rows, test_rows) in enumerate(all_folds):
        train = ratings.iloc[train_rows].reset_index(drop=True)
        test = ratings.iloc[test_rows].reset_index(drop=True)
        fold_info.append({"fold": fold, "n_train": len(train), "n_test": len(test),
                          **cold_counts(train, test)})
        for runner in runners:
            record = run_fold(runner, train, test, fold)
            per_model[runner.name].append(record)
            print(f"fold {fold} {runner.name:22s} rmse {record['rmse']:.4f} "
                  f"mae {record['mae']:.4f} fit {record['fit_seconds']:.2f}s "
                  f"predict {record['predict_seconds']:.3f}s", flush=True)

    summary = summarise(per_model)
    show(summary, len(all_folds),
         None if args.dataset == "ml-100k" else "P1 on MovieLens 1M: 90/10 random split (seed 0)")
    payload = {
        "protocol": "P1",
        "dataset": dataset,
        "split": split,
        "folds_run": len(all_folds),
        "metrics_note": "rmse/mae on raw predictions; *_clipped after clipping to [1, 5] "
                        "(Surprise clips its own estimates). fit_seconds excludes prep_seconds "
                        "(building the library's training structure).",
        "created": now_iso(),
        "command": command_line(),
        "versions": versions,
        "palate_git_commit": git_commit(),
        "machine": machine,
        "models": {r.name: r.description for r in runners},
        "skipped": skipped,
        "folds": fold_info,
        "summary": summary,
        "per_fold": per_model,
    }
    return finish(out, payload)


if __name__ == "__main__":
    raise SystemExit(main())
