"""Bar charts of the committed benchmark results, for BENCHMARKS.md.

Reads ``results/p1_*.json`` and ``results/p2_*.json`` and writes, per result file, a chart of
its main quality metric (RMSE for P1 with the spread over folds, NDCG@10 for P2) and one of
fit seconds, into ``plots/``. palate's models are drawn in orange.

Usage::

    python plot_results.py [--results DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from common import BENCH_DIR, RESULTS_DIR

from palate.evaluation.plots import bar_chart

TITLES = {
    "p1_ml100k": "P1 MovieLens 100K, 5-fold CV",
    "p1_ml1m": "P1 MovieLens 1M, 90/10 split",
    "p2_ml100k": "P2 MovieLens 100K, rating >= 4, 20% of positives held out",
    "p2_ml1m": "P2 MovieLens 1M, rating >= 4, 20% of positives held out",
}


def p1_charts(name: str, document: dict[str, Any], out: Path) -> list[Path]:
    summary = document["summary"]
    models = sorted(summary, key=lambda m: summary[m]["rmse_mean"])
    palate = [m.startswith("palate") for m in models]
    folds = document.get("folds_run", 1)
    spread = [summary[m]["rmse_std"] for m in models] if folds > 1 else None
    title = TITLES.get(name, name)
    rmse = [summary[m]["rmse_mean"] for m in models]
    low = min(rmse) - 0.03
    return [
        bar_chart(models, rmse, out / f"{name}_rmse.png", errors=spread, highlight=palate,
                  title=f"{title}: RMSE (lower is better)"
                  + (", ± std over folds" if spread else ""),
                  xlabel="RMSE", limits=(low, max(rmse) + 0.02)),
        bar_chart(models, [summary[m]["fit_seconds_mean"] for m in models],
                  out / f"{name}_fit_seconds.png", highlight=palate,
                  title=f"{title}: fit seconds (same run; compare ratios)", xlabel="seconds",
                  fmt="{:.2f}"),
    ]


def p2_charts(name: str, document: dict[str, Any], out: Path) -> list[Path]:
    results = document["results"]
    models = sorted(results, key=lambda m: -results[m]["ndcg@10"])
    palate = [m.startswith("palate") for m in models]
    title = TITLES.get(name, name)
    return [
        bar_chart(models, [results[m]["ndcg@10"] for m in models], out / f"{name}_ndcg.png",
                  highlight=palate, title=f"{title}: NDCG@10 (higher is better)",
                  xlabel="NDCG@10"),
        bar_chart(models, [results[m]["fit_seconds"] for m in models],
                  out / f"{name}_fit_seconds.png", highlight=palate,
                  title=f"{title}: fit seconds (same run; compare ratios)", xlabel="seconds",
                  fmt="{:.2f}"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "plots")
    args = parser.parse_args(argv)
    written: list[Path] = []
    for path in sorted(args.results.glob("p[12]_*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        charts = p1_charts if path.stem.startswith("p1") else p2_charts
        written.extend(charts(path.stem, document, args.out))
    for path in written:
        print(f"wrote {path}")
    return 0 if written else 1


if __name__ == "__main__":
    raise SystemExit(main())
