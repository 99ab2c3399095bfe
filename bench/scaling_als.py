"""How palate's ALS scales with the number of ratings: fit time, time per sweep, peak memory.

For each size, a fresh Python process draws synthetic explicit ratings with
``palate.data.synthetic.synthetic_ratings`` (users and items proportional to the ratings:
n_users = n / 100, n_items = n / 500, so 10M ratings are 100k users x 20k items) and fits
``CollaborativeFiltering(solver="als", embedding_size=64, epochs=10)``. The parent reads the
child's peak resident memory from ``os.wait4`` (its own rusage, so sizes do not mix).

Seconds per sweep come from the model's per-epoch callback: the median gap between two
consecutive epochs (the first gap also includes setup, reported as ``first_sweep_seconds``).

Usage::

    python scaling_als.py [--sizes 100k,1m,10m] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    RESULTS_DIR,
    command_line,
    git_commit,
    library_versions,
    machine_note,
    now_iso,
    palate_model,
    parse_list,
    print_table,
    write_json,
)

EMBEDDING_SIZE = 64
EPOCHS = 10
USERS_PER_RATING = 1 / 100
ITEMS_PER_RATING = 1 / 500
SEED = 0
SIZES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
DEFAULT_SIZES = ["100k", "1m", "10m"]
SAMPLE_FOR_RMSE = 200_000


def shape_for(n_ratings: int) -> tuple[int, int]:
    return max(1, round(n_ratings * USERS_PER_RATING)), max(1, round(n_ratings * ITEMS_PER_RATING))


def _rss_kib(field: str) -> int | None:
    """VmRSS / VmHWM of this process in KiB from /proc (None where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# ----------------------------------------------------------------------------- child
def worker(n_ratings: int) -> dict[str, Any]:
    """Generate one data set and fit ALS on it; runs in its own process."""
    from palate.data.synthetic import synthetic_ratings

    n_users, n_items = shape_for(n_ratings)
    rss_start = _rss_kib("VmRSS")
    t0 = time.perf_counter()
    data = synthetic_ratings(n_users, n_items, n_ratings, seed=SEED).ratings
    generate_seconds = time.perf_counter() - t0
    rss_data = _rss_kib("VmRSS")
    hwm_data = _rss_kib("VmHWM")

    model = palate_model(
        "cf", solver="als", embedding_size=EMBEDDING_SIZE, epochs=EPOCHS, seed=SEED
    )
    stamps: list[float] = []
    costs: list[float] = []

    def callback(epoch: int, metrics: dict[str, float]) -> None:
        stamps.append(time.perf_counter())
        costs.append(float(metrics.get("cost", float("nan"))))

    start = time.perf_counter()
    try:
        model.fit(data, callback=callback)
    except TypeError:  # a fit without callbacks: fall back to the mean sweep time
        stamps.clear()
        model.fit(data)
    fit_seconds = time.perf_counter() - start
    gaps = np.diff([start, *stamps]) if stamps else np.array([])
    sweep_seconds = float(np.median(gaps[1:])) if len(gaps) > 1 else fit_seconds / EPOCHS

    rng = np.random.default_rng(SEED)
    rows = rng.choice(len(data), size=min(SAMPLE_FOR_RMSE, len(data)), replace=False)
    pred = model.predict(data.user_ids[rows], data.item_ids[rows]).astype(np.float64)
    train_rmse = float(np.sqrt(np.mean((pred - data.values[rows].astype(np.float64)) ** 2)))

    return {
        "n_ratings": len(data),
        "n_users": data.n_users,
        "n_items": data.n_items,
        "density": len(data) / (data.n_users * data.n_items),
        "generate_seconds": generate_seconds,
        "fit_seconds": fit_seconds,
        "seconds_per_sweep": sweep_seconds,
        "first_sweep_seconds": float(gaps[0]) if len(gaps) else None,
        "sweep_seconds": [float(g) for g in gaps],
        "epochs_run": len(stamps) or EPOCHS,
        "cost_per_epoch": costs,
        "train_rmse_sample": train_rmse,
        "rss_start_mib": None if rss_start is None else rss_start / 1024,
        "rss_after_data_mib": None if rss_data is None else rss_data / 1024,
        "peak_rss_before_fit_mib": None if hwm_data is None else hwm_data / 1024,
        "peak_rss_self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# ----------------------------------------------------------------------------- parent
def run_size(label: str, n_ratings: int, timeout: float) -> dict[str, Any]:
    """Run :func:`worker` in a subprocess and add its peak memory from ``wait4``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(n_ratings)]
    wall = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    assert proc.stdout is not None
    output = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - wall
    if proc.returncode != 0:
        why = (f"killed after the {timeout:.0f} s limit (--timeout)" if wall >= timeout
               else f"worker exited with status {proc.returncode}")
        return {"size": label, "n_ratings_requested": n_ratings, "error": why,
                "wall_seconds": wall, "peak_rss_mib": usage.ru_maxrss / 1024}
    record = json.loads(output.strip().splitlines()[-1])
    # ru_maxrss is in KiB on Linux.
    return {"size": label, "n_ratings_requested": n_ratings, **record,
            "peak_rss_mib": usage.ru_maxrss / 1024, "wall_seconds": wall}


def available() -> str | None:
    """Why the benchmark cannot run yet, or None when every piece imports."""
    try:
        from palate.data.synthetic import synthetic_ratings  # noqa: F401
        from palate.models.registry import model_class

        model_class("cf")
    except (ImportError, AttributeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=None,
                        help=f"comma-separated subset of {', '.join(SIZES)} "
                             f"(default: {', '.join(DEFAULT_SIZES)})")
    parser.add_argument("--out", type=Path, default=None,
                        help="result file (default: results/scaling_als.json for all sizes, "
                             "results/cache/scaling_als-partial.json otherwise)")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds one size may take before it is stopped (default: "
                             "%(default)s)")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        print(json.dumps(worker(args.worker)))
        return 0

    labels = parse_list(args.sizes) or DEFAULT_SIZES
    bad = [s for s in labels if s not in SIZES]
    if bad:
        parser.error(f"unknown size(s) {bad}; choose from {list(SIZES)}")
    out = args.out or (RESULTS_DIR / "scaling_als.json" if labels == DEFAULT_SIZES
                       else RESULTS_DIR / "cache" / "scaling_als-partial.json")

    reason = available()
    if reason is not None:
        print(f"skipping the ALS scaling benchmark: palate ALS or the synthetic generator is "
              f"not available yet ({reason})", file=sys.stderr)
        return 0

    versions = library_versions()
    machine = machine_note()
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v))
    print(f"machine: {machine['nproc']} cores, {machine['cpu_model']}, "
          f"torch threads {machine['torch_threads']}")

    results = []
    for label in labels:
        record = run_size(label, SIZES[label], args.timeout)
        results.append(record)
        if "error" in record:
            print(f"{label}: {record['error']}", file=sys.stderr)
        else:
            print(f"{label}: fit {record['fit_seconds']:.2f}s, "
                  f"{record['seconds_per_sweep']:.3f}s/sweep, "
                  f"peak {record['peak_rss_mib']:.0f} MiB", flush=True)

    rows = [
        [r["size"], f"{r['n_users']:,} x {r['n_items']:,}", f"{r['n_ratings']:,}",
         f"{r['fit_seconds']:.2f}", f"{r['seconds_per_sweep']:.3f}",
         f"{r['peak_rss_before_fit_mib']:.0f}", f"{r['peak_rss_mib']:.0f}",
         f"{r['train_rmse_sample']:.3f}"]
        for r in results if "error" not in r
    ]
    rows += [[r["size"], "-", f"{r['n_ratings_requested']:,}", r["error"], "-", "-",
              f"{r['peak_rss_mib']:.0f}", "-"] for r in results if "error" in r]
    print_table(
        f"palate ALS scaling: embedding_size={EMBEDDING_SIZE}, epochs={EPOCHS}, synthetic "
        "explicit ratings",
        ["size", "users x items", "ratings", "fit s", "s / sweep", "peak MiB before fit",
         "peak MiB", "train RMSE"],
        rows,
    )
    payload = {
        "benchmark": "ALS scaling",
        "model": f"palate.CollaborativeFiltering(solver='als', embedding_size={EMBEDDING_SIZE}, "
                 f"epochs={EPOCHS}, seed={SEED}); other settings at their defaults",
        "data": "palate.data.synthetic.synthetic_ratings(n_users=n/100, n_items=n/500, "
                f"n_ratings=n, seed={SEED}).ratings",
        "memory_note": "peak_rss_mib: the worker process's ru_maxrss from os.wait4 (whole "
                       "process: interpreter, torch, data and model); peak_rss_before_fit_mib: "
                       "its VmHWM after generating the data, before fitting",
        "created": now_iso(),
        "command": command_line(),
        "versions": versions,
        "palate_git_commit": git_commit(),
        "machine": machine,
        "results": results,
    }
    payload["load_average_at_end"] = list(os.getloadavg())
    path = write_json(out, payload)
    print(f"wrote {path}")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
