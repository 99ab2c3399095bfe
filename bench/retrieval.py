"""Retrieval at a million items: exact and approximate search, and a full retrieve-then-rank
request, single-threaded.

Parts (``--parts``, default all):

- **exact**: one query at a time against ``n`` random 64-dim float32 vectors (inner
  product, k = 10): palate ``ExactIndex``, FAISS ``IndexFlatIP`` and plain NumPy (one matrix
  product, then ``argpartition``), each against the memory-bandwidth floor
  ``n · dim · 4 bytes ÷ read bandwidth``. The read bandwidth is measured in the same run: the
  fastest of 5 passes over a 1 GiB float32 array by ``np.add.reduce`` and by a BLAS dot
  product of the array with itself. Because the machine's load moves the bandwidth, every
  query is also paired with a read of the same 256 MB just before it (a BLAS dot of the
  vectors with themselves), and the median of query time ÷ paired read is reported.
- **ann**: palate ``FaissIndex("hnsw")`` over the planted item vectors of a synthetic
  catalogue (``synthetic_ratings(..., embedding_size=dim)``: Gaussian factors), queried with the
  planted user vectors (maximum inner product, k = 10); recall@10 against the exact scan on
  ``--queries`` queries (ties counted, ``palate.retrieval.index.recall_against_exact``; and
  the plain id overlap) and per-query p50/p99 for a sweep of ``efSearch``. The built index is
  cached under ``~/.cache/palate/bench`` (its build time is reported when it was built).
- **pq**: palate ``FaissIndex("pq")`` (4-bit product-quantised codes scanned by FAISS's
  SIMD "fast scan", the best ``refine_factor × k`` re-ranked exactly) over the same vectors
  and queries as **ann**, for each ``--pq-m`` and ``--refine-factors``.
- **auto**: palate ``FaissIndex("auto", target_recall=0.99)`` over the item vectors of each
  ``--vector-sets`` set (``gaussian``: the planted factors; ``movielens``: the same redrawn
  with the mean and covariance of ImplicitALS vectors learned on MovieLens 1M), choosing its
  setting on ``--recall-sample`` user vectors, then timed one query at a time on
  ``--queries`` other users (``--repeats`` passes) beside one exact scan of the same vectors
  timed in the same run (before and after; the faster is the reference): held-out
  recall@10, p50/p99, p99 ÷ the exact p50 (target ≤ ``--ann-ratio``), build time, memory,
  and every setting it tried.
- **pipeline**: a full ``RetrieveThenRank.recommend([user], k=10)`` on the same catalogue, the
  ranker's vectors being the planted ones (an ``ImplicitALS`` rebuilt from them, so scoring is
  ``w(u) · x(i)``): SimilarToRecent (10 x 10, HNSW over the item vectors, squared Euclidean;
  each item's 30 nearest computed at fit time, ``--similar-precomputed``),
  TopInFavoriteGenres (3 x 10), TopInSegment (top 20 per country, a random attribute of 50
  values), Popular (20) and NearestToUser (HNSW, top 100, sized up to ``--candidates``), merge,
  seen-item and block-list filtering, ranking of the candidates; p50/p99 over ``--users``
  users, beside ranking the whole catalogue with the same vectors and one exact scan of the
  item vectors (p99 ÷ its p50: the target is ≤ 0.7).

Every timing runs with one BLAS / OpenMP thread (``OMP_NUM_THREADS=1`` etc. are set before
NumPy loads); index builds use ``--build-threads``.

Usage::

    python retrieval.py [--items 1000000] [--dim 64] [--parts exact,ann,pipeline]
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from common import (  # noqa: E402
    RESULTS_DIR,
    command_line,
    finish,
    git_commit,
    library_versions,
    machine_note,
    now_iso,
    parse_list,
    print_table,
)

CACHE = Path.home() / ".cache" / "palate" / "bench"


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def timed_queries(index: Any, queries: np.ndarray, k: int = 10
                  ) -> tuple[float, float, np.ndarray]:
    """p50 and p99 (ms) of one query at a time (after one untimed search), and the indices
    found, shape (n_queries, k)."""
    index.search(queries[:1], k)
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        result = index.search(q[None, :], k)
        times.append(time.perf_counter() - start)
        found.append(result.indices[0])
    p50, p99 = percentiles(times)
    return p50, p99, np.array(found)


def read_bandwidth(gib: float = 1.0, repeats: int = 5) -> dict[str, float]:
    """Read bandwidth in bytes per second: the fastest of ``repeats`` passes over ``gib`` GiB
    of float32, by a reduction (``np.add.reduce``) and by a BLAS dot product of the array
    with itself (one read per element); ``best`` is the faster of the two."""
    data = np.ones(int(gib * 2**30) // 4, dtype=np.float32)
    rates = {}
    for name, read in (("add_reduce", np.add.reduce), ("blas_dot", lambda a: a @ a)):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            read(data)
            best = min(best, time.perf_counter() - start)
        rates[name] = data.nbytes / best
    rates["best"] = max(rates.values())
    return rates


def catalogue(n_items: int, dim: int, n_users: int, seed: int) -> Any:
    from palate.data.synthetic import synthetic_ratings

    return synthetic_ratings(n_users, n_items, n_users * 30, embedding_size=dim, seed=seed)


def part_exact(args: argparse.Namespace) -> dict[str, Any]:
    import faiss

    from palate.retrieval import ExactIndex

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.items, args.dim), dtype=np.float32)
    queries = rng.standard_normal((args.exact_queries, args.dim), dtype=np.float32)
    rates = read_bandwidth()
    bandwidth = rates["best"]
    floor_ms = x.nbytes / bandwidth * 1e3
    palate_index = ExactIndex().build(x)
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(x)

    def plain(q: np.ndarray) -> np.ndarray:
        scores = x @ q
        return np.argpartition(-scores, 10)[:10]

    runners = {
        "palate ExactIndex": lambda q: palate_index.search(q[None, :], 10),
        "faiss IndexFlatIP": lambda q: flat.search(q[None, :], 10),
        "numpy matmul + argpartition": plain,
    }
    reference = palate_index.search(queries, 10).indices
    flat_x = x.reshape(-1)
    rows: dict[str, Any] = {}
    for name, run in runners.items():
        run(queries[0])  # warm up
        times, floors = [], []
        for q in queries:
            # the floor read right before each query: the same 256 MB, one BLAS dot
            start = time.perf_counter()
            flat_x @ flat_x
            floors.append(time.perf_counter() - start)
            start = time.perf_counter()
            run(q)
            times.append(time.perf_counter() - start)
        p50, p99 = percentiles(times)
        paired = float(np.median(np.asarray(times) / np.asarray(floors)))
        rows[name] = {"p50_ms": p50, "p99_ms": p99, "p50_over_floor": p50 / floor_ms,
                      "paired_floor_p50_ms": percentiles(floors)[0],
                      "median_over_paired_floor": paired}
    _, faiss_top = flat.search(queries, 10)
    agreement = np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(reference, faiss_top,
                                                                          strict=True)])
    print_table(
        f"Exact search, {args.items:,} x {args.dim} float32, one query at a time "
        f"(floor {floor_ms:.2f} ms at {bandwidth / 1e9:.1f} GB/s)",
        ["method", "p50 ms", "p99 ms", "p50 / floor", "floor read p50 ms", "÷ paired read"],
        [[n, f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['p50_over_floor']:.2f}",
          f"{r['paired_floor_p50_ms']:.2f}", f"{r['median_over_paired_floor']:.2f}"]
         for n, r in rows.items()],
    )
    return {
        "items": args.items, "dim": args.dim, "queries": args.exact_queries,
        "read_bandwidth_gb_s": {k: v / 1e9 for k, v in rates.items()},
        "bytes_per_query": x.nbytes,
        "floor_ms": floor_ms, "methods": rows, "palate_vs_faiss_top10_agreement": agreement,
    }


def hnsw_index(
    vectors: np.ndarray, args: argparse.Namespace, metric: str, small: bool = False,
    tag: str = "",
) -> tuple[Any, float]:
    """A palate FaissIndex (HNSW), loaded from the cache or built; (index, build seconds).
    ``small``: the cheaper graph of the similar-items source (M=16, efConstruction=40)."""
    import faiss

    from palate.retrieval import FaissIndex, load_index

    m, efc = (16, 40) if small else (args.hnsw_m, args.ef_construction)
    mips_to_l2 = bool(args.mips_to_l2) and metric == "inner_product" and not small
    name = f"hnsw_{metric}_{len(vectors)}x{vectors.shape[1]}_M{m}_efc{efc}_seed{args.seed}"
    if mips_to_l2:
        name += "_mips2l2"
    if tag:
        name += f"_{tag}"
    path = CACHE / name
    if (path / "index.json").exists() and not args.rebuild:
        index = load_index(path)
        if len(index) == len(vectors) and np.array_equal(index.vectors_[:100], vectors[:100]):  # type: ignore[index]
            return index, float("nan")
    faiss.omp_set_num_threads(args.build_threads)
    start = time.perf_counter()
    index = FaissIndex("hnsw", metric, hnsw_m=m,  # type: ignore[arg-type]
                       ef_construction=efc, recall_sample=0,
                       mips_to_l2=mips_to_l2).build(vectors)
    seconds = time.perf_counter() - start
    faiss.omp_set_num_threads(1)
    index.save(path)
    return index, seconds


def learned_statistics(dim: int, seed: int) -> dict[str, np.ndarray]:
    """Mean and covariance Cholesky factor of the item and of the user vectors that
    ``ImplicitALS(embedding_size=dim)`` learns on MovieLens 1M (all ratings as events)."""
    import palate

    ml = palate.datasets.movielens("ml-1m", download=False)
    model = palate.ImplicitALS(embedding_size=dim, seed=seed).fit(ml.ratings)
    out = {}
    for name, vectors in (("item", model.item_factors_), ("user", model.user_factors_)):
        v = np.asarray(vectors, dtype=np.float64)
        cov = np.cov(v.T) + 1e-9 * np.eye(dim)
        out[f"{name}_mean"], out[f"{name}_chol"] = v.mean(axis=0), np.linalg.cholesky(cov)
        out[f"{name}_variances"] = np.linalg.eigvalsh(cov)[::-1]
    return out


def part_ann(args: argparse.Namespace, data: Any) -> dict[str, Any]:
    import faiss

    from palate.retrieval import ExactIndex
    from palate.retrieval.index import recall_against_exact

    x = data.true_item_factors.astype(np.float32)
    rng = np.random.default_rng(args.seed + 1)
    users = data.true_user_factors.astype(np.float32)
    queries = users[rng.choice(len(users), args.queries, replace=False)]
    variances = None
    if args.vectors == "movielens":
        # the planted factors are standard Gaussian: every direction equally wide, centred.
        # Learned factors share a mean direction (popularity) and put more variance in a few
        # directions: redraw both sides with the mean and covariance learned on MovieLens 1M.
        stats = learned_statistics(x.shape[1], args.seed)
        x = (stats["item_mean"] + (x / x.std()) @ stats["item_chol"].T).astype(np.float32)
        queries = (stats["user_mean"] + (queries / queries.std()) @ stats["user_chol"].T
                   ).astype(np.float32)
        variances = stats["item_variances"]
    index, build_seconds = hnsw_index(x, args, "inner_product", tag=args.vectors)
    faiss.omp_set_num_threads(1)
    exact = ExactIndex().build(x).search(queries, 10)
    rows = []
    for ef in [int(e) for e in parse_list(args.ef_search) or ["64", "128", "256", "512"]]:
        index.ef_search = ef
        index._attach()
        p50, p99, returned = timed_queries(index, queries)
        overlap = np.mean([len(np.intersect1d(a, e)) / 10
                           for a, e in zip(returned, exact.indices, strict=True)])
        rows.append({"ef_search": ef,
                     "recall_at_10": recall_against_exact(queries, x, returned, exact,
                                                          "inner_product"),
                     "id_overlap_at_10": float(overlap), "p50_ms": p50, "p99_ms": p99})
    print_table(
        f"HNSW (M={args.hnsw_m}, efConstruction={args.ef_construction}"
        f"{', MIPS as L2' if args.mips_to_l2 else ''}) over {len(x):,} x {x.shape[1]} planted "
        f"item vectors ({args.vectors}), user-vector queries, k = 10",
        ["efSearch", "recall@10", "id overlap", "p50 ms", "p99 ms"],
        [[str(r["ef_search"]), f"{r['recall_at_10']:.4f}", f"{r['id_overlap_at_10']:.4f}",
          f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}"] for r in rows],
    )
    return {"items": len(x), "dim": x.shape[1], "queries": args.queries, "hnsw_m": args.hnsw_m,
            "ef_construction": args.ef_construction, "build_seconds": build_seconds,
            "vectors": args.vectors, "mips_to_l2": bool(args.mips_to_l2),
            "learned_item_variances": None if variances is None else variances.tolist(),
            "build_threads": args.build_threads, "sweep": rows}


def part_pq(args: argparse.Namespace, data: Any) -> dict[str, Any]:
    """FaissIndex("pq"): 4-bit fast-scan codes re-ranked exactly, same vectors and queries as
    the HNSW sweep; recall@10 and per-query p50/p99 for each (pq_m, refine_factor)."""
    import faiss

    from palate.retrieval import ExactIndex, FaissIndex
    from palate.retrieval.index import recall_against_exact

    x = data.true_item_factors.astype(np.float32)
    rng = np.random.default_rng(args.seed + 1)
    users = data.true_user_factors.astype(np.float32)
    queries = users[rng.choice(len(users), args.queries, replace=False)]
    faiss.omp_set_num_threads(1)
    exact = ExactIndex().build(x).search(queries, 10)
    rows = []
    for pq_m in [int(m) for m in parse_list(args.pq_m) or ["64"]]:
        faiss.omp_set_num_threads(args.build_threads)
        start = time.perf_counter()
        index = FaissIndex("pq", pq_m=pq_m, recall_sample=0, seed=args.seed).build(x)
        build = time.perf_counter() - start
        faiss.omp_set_num_threads(1)
        for factor in [int(f) for f in parse_list(args.refine_factors) or ["5", "10", "30"]]:
            index.refine_factor = factor
            p50, p99, returned = timed_queries(index, queries)
            rows.append({"pq_m": pq_m, "refine_factor": factor, "build_seconds": build,
                         "recall_at_10": recall_against_exact(queries, x, returned, exact,
                                                              "inner_product"),
                         "p50_ms": p50, "p99_ms": p99})
    print_table(
        f"PQ fast scan + exact re-ranking over {len(x):,} x {x.shape[1]} planted item vectors, "
        "user-vector queries, k = 10, one thread",
        ["pq_m", "refine factor", "build s", "recall@10", "p50 ms", "p99 ms"],
        [[str(r["pq_m"]), str(r["refine_factor"]), f"{r['build_seconds']:.1f}",
          f"{r['recall_at_10']:.4f}", f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}"] for r in rows],
    )
    return {"items": len(x), "dim": x.shape[1], "queries": args.queries,
            "build_threads": args.build_threads, "sweep": rows}


def vector_set(data: Any, name: str, seed: int, n_queries: int, n_sample: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item vectors, timed queries, recall-sample queries): the planted Gaussian item and
    user vectors, or (``"movielens"``) the same redrawn with the mean and covariance of
    vectors learned on MovieLens 1M. Timed and sample queries are different users."""
    x = data.true_item_factors.astype(np.float32)
    users = data.true_user_factors.astype(np.float32)
    rng = np.random.default_rng(seed + 1)
    chosen = rng.choice(len(users), n_queries + n_sample, replace=False)
    queries, sample = users[chosen[:n_queries]], users[chosen[n_queries:]]
    if name == "movielens":
        stats = learned_statistics(x.shape[1], seed)
        scale = users.std()
        x = (stats["item_mean"] + (x / x.std()) @ stats["item_chol"].T).astype(np.float32)
        queries, sample = (
            (stats["user_mean"] + (u / scale) @ stats["user_chol"].T).astype(np.float32)
            for u in (queries, sample)
        )
    return x, queries, sample


def part_auto(args: argparse.Namespace, data: Any) -> dict[str, Any]:
    """FaissIndex("auto", target_recall): the setting it picks at 1M items, its held-out
    recall@10 and p50/p99 one query at a time, beside one exact scan of the same vectors
    timed in the same run (target: p99 <= ``--ann-ratio`` x the exact scan's p50)."""
    import faiss

    from palate.retrieval import ExactIndex, FaissIndex
    from palate.retrieval.index import recall_against_exact

    out: dict[str, Any] = {"target_recall": args.target_recall, "ratio_target": args.ann_ratio,
                           "sets": {}}
    rows = []
    for name in parse_list(args.vector_sets) or ["gaussian", "movielens"]:
        x, queries, sample = vector_set(data, name, args.seed, args.queries, args.recall_sample)
        faiss.omp_set_num_threads(1)
        exact = ExactIndex().build(x)
        truth = exact.search(queries, 10)
        exact_p50, exact_p99, _ = timed_queries(exact, queries[: args.exact_queries])
        faiss.omp_set_num_threads(args.build_threads)
        start = time.perf_counter()
        index = FaissIndex("auto", target_recall=args.target_recall,
                           recall_sample=args.recall_sample, seed=args.seed).build(x, sample)
        build = time.perf_counter() - start
        faiss.omp_set_num_threads(1)
        memory = index.memory_bytes()
        found = index.search(queries, 10).indices
        times: list[float] = []
        index.search(queries[:1], 10)
        for _ in range(args.repeats):
            for q in queries:
                start = time.perf_counter()
                index.search(q[None, :], 10)
                times.append(time.perf_counter() - start)
        p50, p99 = percentiles(times)
        recall = recall_against_exact(queries, x, found, truth, "inner_product")
        # the exact scan again after the ANN timing: the load moves
        exact_p50_after, _, _ = timed_queries(exact, queries[: args.exact_queries])
        reference = min(exact_p50, exact_p50_after)
        row = {
            "vectors": name, "items": len(x), "dim": x.shape[1],
            "setting": index.metadata_["setting"],
            "build_recall_at_10": index.measured_recall, "meets_target": index.meets_target,
            "held_out_recall_at_10": recall, "p50_ms": p50, "p99_ms": p99,
            "timed_queries": len(times),
            "exact_p50_ms": exact_p50, "exact_p99_ms": exact_p99,
            "exact_p50_after_ms": exact_p50_after,
            "p99_over_exact_p50": p99 / reference,
            "build_seconds": build, "memory_bytes": memory,
            "vectors_bytes": int(x.nbytes), "trials": index.metadata_["auto_trials"],
        }
        out["sets"][name] = row
        rows.append(row)
        print(f"{name}: auto trials")
        for t in row["trials"]:
            setting = ", ".join(f"{k}={t[k]}" for k in ("pq_m", "refine_factor", "nlist",
                                                        "nprobe") if k in t)
            print(f"  {t['kind']:5s} {setting}: recall {t['recall_at_10']:.4f}, "
                  f"p50 {t['p50_ms']:.3f} ms")
        del index, exact
        gc.collect()
    print_table(
        f"FaissIndex('auto', target_recall={args.target_recall}), {args.items:,} x {args.dim}, "
        f"one query at a time, one thread, k = 10 ({args.queries} queries x {args.repeats})",
        ["vectors", "setting", "recall@10 (held out)", "p50 ms", "p99 ms", "exact p50 ms",
         "p99 / exact p50", "build s", "memory MB"],
        [[r["vectors"],
          ", ".join(f"{k}={v}" for k, v in r["setting"].items() if v is not None),
          f"{r['held_out_recall_at_10']:.4f}", f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}",
          f"{r['exact_p50_ms']:.2f} / {r['exact_p50_after_ms']:.2f}",
          f"{r['p99_over_exact_p50']:.3f}", f"{r['build_seconds']:.1f}",
          f"{r['memory_bytes'] / 1e6:.0f}"] for r in rows],
    )
    return out


def part_pipeline(args: argparse.Namespace, data: Any) -> dict[str, Any]:
    import faiss
    import pandas as pd

    from palate import ImplicitALS, RetrieveThenRank
    from palate.models.base import ModelState, seen_matrix
    from palate.models.popularity import popularity_scores
    from palate.retrieval.sources import (
        NearestToUser,
        Popular,
        SimilarToRecent,
        TopInFavoriteGenres,
        TopInSegment,
    )

    ratings = data.ratings
    seen = seen_matrix(ratings)
    fallback, _ = popularity_scores(ratings, "count")
    ranker = ImplicitALS.from_state(ModelState(
        config={"embedding_size": args.dim},
        arrays={
            "user_factors": data.true_user_factors.astype(np.float32),
            "item_factors": data.true_item_factors.astype(np.float32),
            "fallback_scores": fallback,
            "seen_indptr": seen.indptr.astype(np.int64),
            "seen_indices": seen.indices.astype(np.int32),
        },
        vocabularies={"users": ratings.users, "items": ratings.items},
    ))
    similar, similar_build = hnsw_index(ranker.item_factors_, args, "l2", small=True)
    if args.pipeline_nearest == "hnsw":
        nearest, nearest_build = hnsw_index(ranker.item_factors_, args, "inner_product")
        indexes = (nearest, similar)
    else:
        from palate.retrieval import FaissIndex

        faiss.omp_set_num_threads(args.build_threads)
        start = time.perf_counter()
        nearest = FaissIndex("pq", pq_m=args.dim // 2, refine_factor=args.pipeline_refine,
                             recall_sample=0, seed=args.seed).build(ranker.item_factors_)
        nearest_build = time.perf_counter() - start
        indexes = (similar,)
    for index in indexes:
        index.ef_search = args.pipeline_ef_search
        index._attach()
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(args.seed + 2)
    users_table = pd.DataFrame({"user_id": ratings.users.ids,
                                "country": rng.integers(0, 50, ratings.n_users).astype(str)})
    blocked = rng.choice(ratings.items.ids, 1000, replace=False).tolist()
    base = [SimilarToRecent(index=similar, precomputed=args.similar_precomputed),
            TopInFavoriteGenres(), TopInSegment("country"), Popular()]
    # the related-items table (minutes at 1M items) is cached beside the graph it came from
    related_path = CACHE / (f"related_{len(ranker.item_factors_)}x{args.dim}_M16_efc40_"
                            f"seed{args.seed}_{args.similar_precomputed}.npz")
    similar_source = base[0]
    assert isinstance(similar_source, SimilarToRecent)
    if args.similar_precomputed and related_path.exists() and not args.rebuild:
        with np.load(related_path, allow_pickle=False) as cached:
            similar_source.related_ = cached["related"]
            similar_source.related_distances_ = cached["distances"]
    rows = []
    sample = rng.choice(ratings.users.ids, args.users, replace=False)
    if args.gc_freeze:
        # as `palate serve` does after loading: the catalogue's millions of objects (genre
        # lists, id tables) leave the cycle collector, whose full passes over them would
        # otherwise land inside some requests
        gc.collect()
        gc.freeze()
    for target in [int(c) for c in parse_list(args.candidates) or ["270", "500"]]:
        top = max(10, target - sum(s.size for s in base))
        faiss.omp_set_num_threads(args.build_threads)  # the related-items table, once
        start = time.perf_counter()
        pipeline = RetrieveThenRank(
            ranker, [*base, NearestToUser(top=top, index=nearest)], block_items=blocked
        ).fit(ratings, item_table=data.items, user_table=users_table)
        fit_seconds = time.perf_counter() - start
        faiss.omp_set_num_threads(1)
        if similar_source.related_ is not None and not related_path.exists():
            np.savez(related_path, related=similar_source.related_,
                     distances=similar_source.related_distances_)
        pipeline.recommend(sample[:5], k=10)
        if args.profile:
            import cProfile
            import pstats

            with cProfile.Profile() as profile:
                for user in sample[:200]:
                    pipeline.recommend([user], k=10)
            print(f"profile, nearest top {top}:")
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        times, counts = [], []
        for user in sample:
            start = time.perf_counter()
            pipeline.recommend([user], k=10)
            times.append(time.perf_counter() - start)
        for user in sample[:100]:
            counts.append(len(pipeline._rank(int(ratings.users.index([user])[0]), 10, True)[3]))
        p50, p99 = percentiles(times)
        slowest = np.argsort(times)[-6:]
        print(f"  slowest requests (order, ms): "
              f"{[(int(i), round(times[i] * 1e3, 1)) for i in sorted(slowest)]}")
        rows.append({"config": f"retrieve then rank, nearest top {top}", "target": target,
                     "fit_seconds": fit_seconds,
                     "candidates": float(np.mean(counts)), "p50_ms": p50, "p99_ms": p99})
    times = []
    ranker.recommend(sample[:2], k=10)
    for user in sample[: min(len(sample), args.whole_catalogue_users)]:
        start = time.perf_counter()
        ranker.recommend([user], k=10)
        times.append(time.perf_counter() - start)
    p50, p99 = percentiles(times)
    rows.append({"config": "whole catalogue (ImplicitALS.recommend)", "target": None,
                 "candidates": float(ratings.n_items), "p50_ms": p50, "p99_ms": p99})
    # the reference of the target: one exact scan of the same item vectors, same run
    from palate.retrieval import ExactIndex

    exact = ExactIndex().build(ranker.item_factors_)
    user_vectors = ranker.user_factors_[ratings.users.index(sample[: args.exact_queries])]
    exact_p50, exact_p99, _ = timed_queries(exact, user_vectors)
    for r in rows:
        r["p99_over_exact_p50"] = r["p99_ms"] / exact_p50
    print_table(
        f"One request, {ratings.n_items:,} items x {args.dim} dims, one thread, "
        f"{args.users} users; one exact scan of the item vectors: p50 {exact_p50:.2f} ms",
        ["configuration", "candidates", "p50 ms", "p99 ms", "p99 / exact p50"],
        [[r["config"], f"{r['candidates']:.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
          f"{r['p99_over_exact_p50']:.3f}"] for r in rows],
    )
    return {"items": ratings.n_items, "users_in_catalogue": ratings.n_users,
            "events": len(ratings), "dim": args.dim, "users_timed": args.users,
            "ef_search": args.pipeline_ef_search, "nearest_index": args.pipeline_nearest,
            "nearest_refine_factor": args.pipeline_refine, "index_build_seconds":
            {"nearest": nearest_build, "similar": similar_build},
            "exact_scan_p50_ms": exact_p50, "exact_scan_p99_ms": exact_p99, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--catalogue-users", type=int, default=20_000)
    parser.add_argument("--parts", default="exact,ann,pipeline")
    parser.add_argument("--exact-queries", type=int, default=50)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=64)
    parser.add_argument("--ef-search", default="64,128,256,512")
    parser.add_argument("--pipeline-ef-search", type=int, default=64)
    parser.add_argument("--candidates", default="270,500")
    parser.add_argument("--pipeline-nearest", choices=("hnsw", "pq"), default="hnsw",
                        help="pipeline part: NearestToUser's index, the HNSW graph of the ann "
                             "part or FaissIndex('pq', pq_m=dim/2, refine_factor="
                             "--pipeline-refine)")
    parser.add_argument("--pipeline-refine", type=int, default=10)
    parser.add_argument("--whole-catalogue-users", type=int, default=100,
                        help="pipeline part: users timed scoring the whole catalogue")
    parser.add_argument("--similar-precomputed", type=int, default=30,
                        help="pipeline part: SimilarToRecent(precomputed=...), related items "
                             "per item computed at fit time (0: search per request)")
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--pq-m", default="64", help="pq part: sub-quantizer counts")
    parser.add_argument("--refine-factors", default="5,10,30",
                        help="pq part: candidates re-ranked exactly, as multiples of k")
    parser.add_argument("--no-gc-freeze", dest="gc_freeze", action="store_false",
                        help="pipeline part: leave the loaded catalogue to the cycle collector")
    parser.add_argument("--profile", action="store_true",
                        help="pipeline part: print a cProfile of 200 requests per size")
    parser.add_argument(
        "--vectors", choices=("gaussian", "movielens"), default="gaussian",
        help="ann part: the planted standard Gaussian vectors, or the same redrawn with the "
             "mean and covariance of vectors learned on MovieLens 1M (needs ml-1m cached)")
    parser.add_argument("--mips-to-l2", action="store_true",
                        help="ann part: FaissIndex(mips_to_l2=True) (a Euclidean graph)")
    parser.add_argument("--target-recall", type=float, default=0.99,
                        help="auto part: the recall@10 FaissIndex('auto') must reach")
    parser.add_argument("--ann-ratio", type=float, default=0.15,
                        help="auto part: target p99 as a share of one exact scan's p50")
    parser.add_argument("--vector-sets", default="gaussian,movielens",
                        help="auto part: the vector sets measured")
    parser.add_argument("--recall-sample", type=int, default=1000,
                        help="auto part: users (not among the timed ones) auto measures on")
    parser.add_argument("--repeats", type=int, default=4,
                        help="auto part: passes over the timed queries")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "retrieval.json")
    args = parser.parse_args(argv)
    parts = parse_list(args.parts) or []
    payload: dict[str, Any] = {
        "benchmark": "retrieval", "started": now_iso(), "command": command_line(),
        "git_commit": git_commit(), "machine": machine_note(), "versions": library_versions(),
    }
    data = None
    if {"ann", "pq", "auto", "pipeline"} & set(parts):
        start = time.perf_counter()
        data = catalogue(args.items, args.dim, args.catalogue_users, args.seed)
        payload["catalogue_seconds"] = time.perf_counter() - start
    for part in parts:
        start = time.perf_counter()
        if part == "exact":
            payload[part] = part_exact(args)
        elif part == "ann":
            payload[part] = part_ann(args, data)
        elif part == "pq":
            payload[part] = part_pq(args, data)
        elif part == "auto":
            payload[part] = part_auto(args, data)
        elif part == "pipeline":
            payload[part] = part_pipeline(args, data)
        else:
            print(f"unknown part {part!r}", file=sys.stderr)
            return 2
        payload[part]["seconds"] = time.perf_counter() - start
    return finish(args.out, payload)


if __name__ == "__main__":
    raise SystemExit(main())
