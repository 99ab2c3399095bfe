"""The retrieval-size experiment: relevance and latency against the number of candidates.

More candidates give the ranking model more to choose from (better recommendations) but take
longer to gather and score (slower responses). For a fitted :class:`~palate.RetrieveThenRank`
the experiment scales every source's size so that together they return about N candidates,
for N from 10 to 1,000, runs each source alone, and compares with ranking the whole catalogue
by the same model. For each configuration it reports, over held-out users:

- ``recall@k``, ``ndcg@k``, ``precision@k`` of the k items shown (``precision@k``: the share of
  shown items the user engaged with in the test period);
- ``candidate_recall``: the share of the user's relevant test items among the candidates
  (what ranking could at best find);
- ``candidates``: the mean number of candidates after merging and filtering;
- ``p50_ms``, ``p99_ms``: the time of one request (``recommend([user], k)``) per user.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from palate.data.interactions import Interactions
from palate.errors import ConfigError, DataError, NotFittedError
from palate.evaluation.metrics import ndcg_at_k, precision_at_k, recall_at_k
from palate.ranking.pipeline import RetrieveThenRank

logger = logging.getLogger(__name__)

DEFAULT_SIZES = (10, 20, 50, 100, 200, 500, 1000)


@dataclass
class RetrievalSizeRow:
    """One configuration's results (means over the evaluated users)."""

    config: str
    target: int | None
    candidates: float
    candidate_recall: float
    recall: float
    ndcg: float
    precision: float
    p50_ms: float
    p99_ms: float


@dataclass
class RetrievalSizeResult:
    """The experiment's table, with what it ran on."""

    rows: list[RetrievalSizeRow]
    k: int
    n_users: int
    n_items: int
    relevant_threshold: float | None
    sources: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(row) for row in self.rows])

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "relevant_threshold": self.relevant_threshold,
            "sources": self.sources,
            "notes": self.notes,
            "rows": [finite_row(asdict(row)) for row in self.rows],
        }

    @classmethod
    def from_json(cls, path: str | Path) -> RetrievalSizeResult:
        """Read a result written by :meth:`save_json` (e.g. to plot it again)."""
        document = json.loads(Path(path).read_text())
        rows = []
        for row in document["rows"]:
            values: dict[str, Any] = {
                k: float("nan") if v is None and k != "target" else v for k, v in row.items()
            }
            rows.append(RetrievalSizeRow(**values))
        return cls(rows, document["k"], document["n_users"], document["n_items"],
                   document["relevant_threshold"], document.get("sources", []),
                   document.get("notes", {}))

    def save_json(self, path: str | Path) -> Path:
        target = Path(path)
        target.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return target

    def plot(self, path: str | Path, title: str | None = None) -> Path:
        """NDCG@k, recall@k and p99 latency against the number of candidates (PNG)."""
        try:
            import matplotlib
        except ImportError as exc:
            raise ConfigError(
                "plots need matplotlib; install it with pip install 'palate[plot]'"
            ) from exc

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter, ScalarFormatter

        frame = self.to_frame()
        mix = frame[frame["config"] == "all sources"].sort_values("candidates")
        alone = frame[frame["config"].str.startswith("only ")]
        full = frame[frame["config"] == "whole catalogue"]
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
        k = self.k
        left.plot(mix["candidates"], mix["ndcg"], "o-", label=f"NDCG@{k}, all sources")
        left.plot(mix["candidates"], mix["recall"], "s--", label=f"recall@{k}, all sources")
        left.plot(mix["candidates"], mix["precision"], "^:", label=f"precision@{k}, all sources")
        for _, row in alone.iterrows():
            left.scatter(row["candidates"], row["ndcg"], marker="x")
            left.annotate(row["config"][5:], (row["candidates"], row["ndcg"]), fontsize=7)
        if len(full):
            left.axhline(full["ndcg"].iloc[0], color="grey", lw=0.8, ls="--",
                         label=f"NDCG@{k}, whole catalogue")
        left.set_xscale("log")
        left.set_xlabel("candidates per user (after merge and filters)")
        left.set_ylabel("relevance of what is shown")
        left.legend(fontsize=7)
        right.plot(mix["candidates"], mix["p50_ms"], "o-", label="p50")
        right.plot(mix["candidates"], mix["p99_ms"], "s--", label="p99")
        if len(full):
            right.axhline(full["p50_ms"].iloc[0], color="grey", lw=0.8, ls="--",
                          label="p50, whole catalogue")
        right.set_xscale("log")
        right.set_yscale("log")
        right.set_xlabel("candidates per user (after merge and filters)")
        right.set_ylabel("ms per request")
        right.legend(fontsize=7)
        for axis in (left.xaxis, right.xaxis, right.yaxis):
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(NullFormatter())
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        target = Path(path)
        fig.savefig(target, dpi=110)
        plt.close(fig)
        return target


def finite_row(row: dict[str, Any]) -> dict[str, Any]:
    """NaN (not measured) as None, for JSON."""
    return {
        k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in row.items()
    }


def _single_thread() -> AbstractContextManager[Any]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return nullcontext()
    return threadpool_limits(1)


def relevant_items(
    test: Interactions, threshold: float | None
) -> dict[Any, set[Any]]:
    """Test items per user with a value >= threshold (all test items when None)."""
    keep = np.ones(len(test), dtype=bool) if threshold is None else test.values >= threshold
    frame = pd.DataFrame({"user": test.user_ids[keep], "item": test.item_ids[keep]})
    return {user: set(group["item"]) for user, group in frame.groupby("user", sort=False)}


def _percentiles(times: list[float]) -> tuple[float, float]:
    ms = np.asarray(times) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _mean(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def _measure(
    name: str,
    target: int | None,
    users: np.ndarray,
    relevant: list[set[Any]],
    k: int,
    request: Callable[[Any], np.ndarray],
    candidates_of: Callable[[Any], np.ndarray] | None,
) -> RetrievalSizeRow:
    shown, times, counts, found = [], [], [], []
    for user, rel in zip(users, relevant, strict=True):
        start = time.perf_counter()
        items = request(user)
        times.append(time.perf_counter() - start)
        shown.append(items)
        if candidates_of is not None:
            candidates = candidates_of(user)
            counts.append(len(candidates))
            found.append(len(rel & set(candidates.tolist())) / len(rel))
    recommended = np.array(shown, dtype=object)
    p50, p99 = _percentiles(times)
    return RetrievalSizeRow(
        config=name,
        target=target,
        candidates=float(np.mean(counts)) if counts else float("nan"),
        candidate_recall=float(np.mean(found)) if found else float("nan"),
        recall=_mean(recall_at_k(recommended, relevant, k)),
        ndcg=_mean(ndcg_at_k(recommended, relevant, k)),
        precision=_mean(precision_at_k(recommended, relevant, k)),
        p50_ms=p50,
        p99_ms=p99,
    )


def retrieval_size_experiment(
    pipeline: RetrieveThenRank,
    test: Interactions,
    *,
    sizes: Sequence[int] = DEFAULT_SIZES,
    k: int = 10,
    relevant_threshold: float | None = None,
    n_users: int | None = 500,
    each_source: bool = True,
    whole_catalogue: bool = True,
    seed: int = 0,
    single_thread: bool = True,
    progress: Callable[[str], None] | None = None,
) -> RetrievalSizeResult:
    """Run the retrieval-size experiment on a fitted pipeline.

    Parameters
    ----------
    pipeline : RetrieveThenRank
        Fitted on the training events (its sources set the mix that is scaled).
    test : Interactions
        Held-out events; a user's relevant items are their test items with a value >=
        ``relevant_threshold`` (all of them when None).
    sizes : sequence of int
        Target candidate counts N; every source's size is multiplied by
        ``N / pipeline.nominal_candidates``.
    k : int
        Items shown.
    n_users : int, optional
        Evaluate a random sample of this many test users the model knows (None: all).
    each_source : bool
        Also run each source alone at its configured size.
    whole_catalogue : bool
        Also rank the whole catalogue with the pipeline's ranker (the reference).
    single_thread : bool
        Limit BLAS to one thread while timing (latency per request on one core).

    Returns
    -------
    RetrievalSizeResult
    """
    if not pipeline.is_fitted:
        raise NotFittedError("fit the pipeline before measuring it: pipeline.fit(train, ...)")
    if not sizes or any(not isinstance(n, int) or n < 1 for n in sizes):
        raise ConfigError(f"sizes must be positive integers, got {sizes!r}")
    by_user = relevant_items(test, relevant_threshold)
    known = [u for u in by_user if u in pipeline.users_]
    users: np.ndarray = np.empty(len(known), dtype=object)
    users[:] = known
    if not len(users):
        raise DataError("no test user with relevant items is known to the model")
    if n_users is not None and len(users) > n_users:
        users = np.random.default_rng(seed).choice(users, n_users, replace=False)
    try:
        users = users.astype(test.users.ids.dtype)
    except (TypeError, ValueError):
        pass
    relevant = [by_user[u] for u in users]
    item_ids = pipeline.items_.ids
    say = progress or (lambda _: None)

    def run(p: RetrieveThenRank, name: str, target: int | None) -> RetrievalSizeRow:
        say(name if target is None else f"{name}, {target} candidates")

        def request(user: Any) -> np.ndarray:
            return p.recommend([user], k=k).item_ids[0]

        def candidates_of(user: Any) -> np.ndarray:
            return p.candidates(user)

        return _measure(name, target, users, relevant, k, request, candidates_of)

    rows: list[RetrievalSizeRow] = []
    nominal = pipeline.nominal_candidates
    with _single_thread() if single_thread else nullcontext():
        if whole_catalogue:
            ranker = pipeline.ranker

            def everything(user: Any) -> np.ndarray:
                return ranker.recommend([user], k=k).item_ids[0]

            say("whole catalogue")
            rows.append(_measure("whole catalogue", None, users, relevant, k, everything, None))
            rows[-1].candidates = float(len(item_ids))
        for target in sizes:
            rows.append(run(pipeline.resized(target / nominal), "all sources", target))
        if each_source:
            for j, source in enumerate(pipeline.sources_):
                rows.append(run(pipeline.only(j), f"only {source.name}", source.size))
    return RetrievalSizeResult(
        rows=rows,
        k=k,
        n_users=len(users),
        n_items=len(item_ids),
        relevant_threshold=relevant_threshold,
        sources=[s.config() for s in pipeline.sources_],
        notes={"single_thread": single_thread, "nominal_candidates": nominal},
    )


def best_operating_point(
    result: RetrievalSizeResult, tolerance: float = 0.02
) -> RetrievalSizeRow | None:
    """The fastest "all sources" row whose NDCG is within ``tolerance`` (relative) of the
    whole-catalogue ranking, or None."""
    full = [r for r in result.rows if r.config == "whole catalogue"]
    if not full:
        return None
    floor = full[0].ndcg * (1 - tolerance)
    ok = [r for r in result.rows if r.config == "all sources" and r.ndcg >= floor]
    return min(ok, key=lambda r: r.p99_ms) if ok else None


__all__ = [
    "DEFAULT_SIZES",
    "RetrievalSizeResult",
    "RetrievalSizeRow",
    "best_operating_point",
    "finite_row",
    "relevant_items",
    "retrieval_size_experiment",
]
