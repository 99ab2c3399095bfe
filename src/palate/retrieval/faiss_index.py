"""Approximate nearest-neighbour search on FAISS, and the ``"auto"`` kind that picks the
cheapest setting meeting a recall target, measured against the exact scan at build time.

Index files and model files hold FAISS's own serialisation (never a pickle); the chosen
setting and the measured recall travel in the index metadata.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from palate.errors import ConfigError
from palate.retrieval.index import (
    ExactIndex,
    Exclude,
    Metric,
    Neighbors,
    VectorIndexBase,
    _as_vectors,
    check_k,
    exclusion_lists,
    not_in,
    recall_against_exact,
)

logger = logging.getLogger(__name__)

FAISS_FILE = "index.faiss"
#: what ``"auto"`` records of the setting it picked, applied again when the index is read
SETTING_KEYS = ("kind", "pq_m", "refine_factor", "nlist", "nprobe")
#: refine factors ``"auto"`` tries, cheapest first (multiples of k re-ranked exactly)
_AUTO_REFINE = (2, 5, 10, 20, 50, 100, 200, 400)
#: IVF cells visited that ``"auto"`` tries
_AUTO_NPROBE = (4, 8, 16, 32, 64, 128, 256, 512, 1024)
#: below this many rows ``"auto"`` only measures the flat scan (quantisers need data to train)
_AUTO_MIN_QUANTISED = 2_000
#: ``"auto"`` tries IVF from this many rows on (fewer: too few points per cell)
_AUTO_MIN_IVF = 20_000
#: queries timed one at a time per setting tried by ``"auto"``
_AUTO_TIMED = 100

Kind = Literal["hnsw", "ivf", "pq", "ivfpq", "flat", "auto"]


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigError(
            "the approximate index needs FAISS; install it with pip install 'palate[ann]' "
            "(or use ExactIndex)"
        ) from exc
    return faiss


def _default_nlist(n: int) -> int:
    # FAISS wants at least 39 training points per cell
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


class FaissIndex(VectorIndexBase):
    """Approximate nearest-neighbour search on FAISS: HNSW graphs, an inverted file (IVF),
    scans of 4-bit product-quantised codes re-ranked exactly (PQ, IVF-PQ), the flat scan, or
    ``"auto"``: the cheapest of these that meets ``target_recall``.

    At build time the index searches a sample of queries both ways and stores in
    ``metadata_`` the recall@k (mean over the sample of the share of the k returned rows that
    are as good as the exact k-th best, so that ties count; see :func:`recall_against_exact`)
    and the plain id overlap ``|ANN top-k ∩ exact top-k| / k``. With ``target_recall`` it also
    records ``meets_target`` and logs a warning when the index falls short.
    Exclusions are served by over-fetching: first ``k + min(len(exclude), k)`` neighbours,
    then 4x as many for the queries left short, up to ``k + len(exclude)`` (HNSW widens its
    beam to match); a query with more than ``max_overfetch`` exclusions, or one still short,
    is answered by the exact scan instead, so it always gets ``k`` results.

    Parameters
    ----------
    kind : {"hnsw", "ivf", "pq", "ivfpq", "flat", "auto"}
        - ``"pq"``: every row's 4-bit codes are scanned with SIMD table lookups (FAISS
          "fast scan"), then the best ``refine_factor × k`` are scored exactly on the stored
          vectors. Builds in seconds; keeps recall high on vectors without low-dimensional
          structure (e.g. 64-dim factors), where graphs need very wide beams.
        - ``"ivfpq"``: the same codes in an inverted file (``IVF{nlist},PQ{pq_m}x4fs``):
          only the ``nprobe`` cells nearest the query are scanned. Fast where the vectors
          form clusters; on vectors without clusters it needs most cells.
        - ``"flat"``: FAISS's exact scan (recall 1; the reference the others are measured
          against).
        - ``"auto"``: builds the flat scan, ``"pq"`` (``pq_m`` = dim / 2 and = dim) and
          ``"ivfpq"`` settings in turn, measures each one's recall on the recall sample and
          its median time per query (one at a time), and keeps the fastest that reaches
          ``target_recall`` — so the choice follows the catalogue: the flat scan for small
          ones, quantised scans for large ones. The trials are in
          ``metadata_["auto_trials"]``, the choice in ``metadata_["setting"]``. HNSW is not
          tried (building a graph over millions of rows takes minutes).
        - ``"hnsw"``, ``"ivf"``: FAISS's graph and inverted file over the float vectors.
    metric : {"inner_product", "l2"}
    hnsw_m : int
        Graph degree M of HNSW (memory ∝ M; higher: better recall, slower build).
    ef_construction, ef_search : int
        Beam widths of HNSW when building and searching (efSearch trades speed for recall).
    nlist : int, optional
        IVF cells; default ``4 √n`` (at most n / 39, as FAISS wants 39 points per cell).
    nprobe : int
        IVF cells visited per query.
    recall_sample : int
        Queries used to measure recall at build time (0: do not measure; ``"auto"`` needs
        them).
    recall_k : int
        k of the recall measurement.
    max_overfetch : int
        Most exclusions served by over-fetching; beyond, the exact scan answers.
    pq_m : int, optional
        Sub-quantizers of ``"pq"`` / ``"ivfpq"`` (must divide the dimension); default one
        per dimension. Fewer: a faster scan, coarser candidates.
    refine_factor : int
        ``"pq"`` and ``"ivfpq"`` re-rank ``refine_factor × k`` candidates exactly (plus the
        rows a query excludes).
    target_recall : float, optional
        The recall@``recall_k`` the index should reach; required by ``"auto"`` (default
        0.99 there).
    mips_to_l2 : bool
        Answer inner-product queries with a Euclidean index (``"hnsw"``, ``"ivf"``): every row
        gets one more coordinate ``√(M² − ‖x‖²)`` (``M`` the largest norm) and every query a
        0, so that ``‖q̃ − x̃‖² = ‖q‖² + M² − 2 q·x`` orders rows exactly as ``q · x`` does.
        It can help when norms vary widely; on vectors of similar norms it measured worse
        (BENCHMARKS.md).
    seed : int
        Seeds the training samples and the recall sample.

    Examples
    --------
    >>> index = FaissIndex("auto", target_recall=0.99).build(vectors)  # doctest: +SKIP
    >>> index.metadata_["setting"], index.meets_target  # doctest: +SKIP
    ({'kind': 'pq', 'pq_m': 32, 'refine_factor': 200, ...}, True)
    """

    kind = "faiss"
    KINDS: ClassVar[tuple[str, ...]] = ("hnsw", "ivf", "pq", "ivfpq", "flat", "auto")

    def __init__(
        self,
        kind: Kind = "hnsw",
        metric: Metric = "inner_product",
        *,
        hnsw_m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        nlist: int | None = None,
        nprobe: int = 16,
        recall_sample: int = 1000,
        recall_k: int = 10,
        max_overfetch: int = 2048,
        mips_to_l2: bool = False,
        pq_m: int | None = None,
        refine_factor: int = 10,
        target_recall: float | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(metric)
        if kind not in self.KINDS:
            raise ConfigError(
                f"kind must be one of {', '.join(map(repr, self.KINDS))}, got {kind!r}"
            )
        for name, value, low in (
            ("hnsw_m", hnsw_m, 2),
            ("ef_construction", ef_construction, 1),
            ("ef_search", ef_search, 1),
            ("nprobe", nprobe, 1),
            ("recall_sample", recall_sample, 0),
            ("recall_k", recall_k, 1),
            ("max_overfetch", max_overfetch, 0),
            ("refine_factor", refine_factor, 1),
        ):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        if nlist is not None and (not isinstance(nlist, (int, np.integer)) or nlist < 1):
            raise ConfigError(f"nlist must be a positive integer or None, got {nlist!r}")
        if not isinstance(mips_to_l2, bool):
            raise ConfigError(f"mips_to_l2 must be True or False, got {mips_to_l2!r}")
        if pq_m is not None and (
            not isinstance(pq_m, (int, np.integer)) or isinstance(pq_m, bool) or pq_m < 1
        ):
            raise ConfigError(f"pq_m must be a positive integer or None, got {pq_m!r}")
        if kind in ("pq", "ivfpq", "flat", "auto") and mips_to_l2:
            raise ConfigError(
                f"mips_to_l2 applies to 'hnsw' and 'ivf'; {kind!r} re-ranks exactly"
            )
        if kind == "auto" and target_recall is None:
            target_recall = 0.99
        if target_recall is not None and (
            isinstance(target_recall, bool)
            or not isinstance(target_recall, (int, float))
            or not 0.0 < float(target_recall) <= 1.0
        ):
            raise ConfigError(f"target_recall must be in (0, 1], got {target_recall!r}")
        if kind == "auto" and recall_sample < 1:
            raise ConfigError(
                "kind='auto' measures recall to choose its setting; give recall_sample >= 1 "
                "(e.g. 1000)"
            )
        self.requested_kind: str = kind
        self.index_kind: str = kind
        self.hnsw_m = int(hnsw_m)
        self.ef_construction = int(ef_construction)
        self.ef_search = int(ef_search)
        self.nlist = None if nlist is None else int(nlist)
        self.nprobe = int(nprobe)
        self.recall_sample = int(recall_sample)
        self.recall_k = int(recall_k)
        self.max_overfetch = int(max_overfetch)
        self.mips_to_l2 = bool(mips_to_l2)
        self.pq_m = None if pq_m is None else int(pq_m)
        self.refine_factor = int(refine_factor)
        self.target_recall = None if target_recall is None else float(target_recall)
        self.seed = int(seed)
        self._index: Any = None
        self._exact: ExactIndex | None = None
        self._max_norm2 = 0.0

    @property
    def is_exact(self) -> bool:
        return False

    def params(self) -> dict[str, Any]:
        return {
            "kind": self.requested_kind,
            "metric": self.metric,
            "hnsw_m": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "recall_sample": self.recall_sample,
            "recall_k": self.recall_k,
            "max_overfetch": self.max_overfetch,
            "mips_to_l2": self.mips_to_l2,
            "pq_m": self.pq_m,
            "refine_factor": self.refine_factor,
            "target_recall": self.target_recall,
            "seed": self.seed,
        }

    def setting(self) -> dict[str, Any]:
        """The concrete setting searched with (for ``"auto"``: the one it picked): the kind
        and the parameters that kind uses among ``pq_m``, ``refine_factor``, ``nlist``,
        ``nprobe``."""
        used = {
            "pq": ("pq_m", "refine_factor"),
            "ivfpq": ("pq_m", "refine_factor", "nlist", "nprobe"),
            "ivf": ("nlist", "nprobe"),
        }.get(self.index_kind, ())
        return {"kind": self.index_kind, **{name: getattr(self, name) for name in used}}

    def _faiss_metric(self) -> int:
        faiss = _faiss()
        inner = self.metric == "inner_product" and not self._transformed
        return int(faiss.METRIC_INNER_PRODUCT if inner else faiss.METRIC_L2)

    @property
    def _transformed(self) -> bool:
        return self.metric == "inner_product" and self.mips_to_l2

    @property
    def _quantised(self) -> bool:
        return self.index_kind in ("pq", "ivfpq")

    def _augment(self, x: np.ndarray, rows: bool) -> np.ndarray:
        """Rows: ``[x, √(M² − ‖x‖²)]``; queries: ``[q, 0]`` (see ``mips_to_l2``)."""
        if rows:
            norms = np.einsum("ij,ij->i", x, x, dtype=np.float64)
            extra = np.sqrt(np.maximum(self._max_norm2 - norms, 0.0))
        else:
            extra = np.zeros(len(x))
        return np.ascontiguousarray(np.hstack([x, extra[:, None].astype(np.float32)]))

    # ------------------------------------------------------------------ build
    def build(self, vectors: Any, sample_queries: Any = None) -> FaissIndex:
        """Index the rows of ``vectors`` and measure recall against the exact scan.

        Parameters
        ----------
        vectors : ndarray, shape (n, dim)
        sample_queries : ndarray, shape (m, dim), optional
            Queries like those the index will serve (e.g. user vectors), from which
            ``recall_sample`` are drawn; default: rows of ``vectors``.
        """
        x = _as_vectors(vectors)
        n, d = x.shape
        rng = np.random.default_rng(self.seed)
        self.vectors_ = x
        self._exact = ExactIndex(self.metric)
        self._exact.vectors_ = x
        self._exact._prepare()
        self._max_norm2 = float(np.einsum("ij,ij->i", x, x).max()) if self._transformed else 0.0
        self.metadata_ = {"n": n, "dim": d, "mips_max_norm2": self._max_norm2}
        start = time.perf_counter()
        if self.requested_kind == "auto":
            self._build_auto(x, sample_queries, rng)
        else:
            self._index = self._build_kind(x, rng)
            self.metadata_.update(self._measure_recall(sample_queries, rng))
        self.metadata_["build_seconds"] = time.perf_counter() - start
        self.metadata_["setting"] = self.setting()
        self._check_target()
        logger.info("built %s index over %d vectors: %s", self.index_kind, n, self.metadata_)
        return self

    def _build_kind(self, x: np.ndarray, rng: np.random.Generator) -> Any:
        """A FAISS index of the current ``index_kind`` over ``x``."""
        faiss = _faiss()
        n, d = x.shape
        stored = self._augment(x, rows=True) if self._transformed else x
        kind = self.index_kind
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(stored.shape[1], self.hnsw_m, self._faiss_metric())
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
            index.add(stored)
            return index
        if kind == "flat":
            index = faiss.IndexFlat(d, self._faiss_metric())
            index.add(x)
            return index
        if kind in ("pq", "ivfpq"):
            pq_m = self.pq_m or d
            if d % pq_m:
                raise ConfigError(f"pq_m must divide the dimension {d}, got {pq_m}")
            self.pq_m = pq_m
            if kind == "pq":
                index = faiss.index_factory(d, f"PQ{pq_m}x4fs", self._faiss_metric())
                sample = 100_000
            else:
                nlist = self.nlist = self.nlist or _default_nlist(n)
                index = faiss.index_factory(d, f"IVF{nlist},PQ{pq_m}x4fs", self._faiss_metric())
                sample = max(100_000, 64 * nlist)
            index.train(x if n <= sample else x[rng.choice(n, sample, replace=False)])
            index.add(x)
            if kind == "ivfpq":
                faiss.extract_index_ivf(index).nprobe = min(self.nprobe, nlist)
            return index
        # "ivf": float vectors in cells
        nlist = self.nlist or _default_nlist(n)
        d_stored = stored.shape[1]
        if self._transformed or self.metric == "l2":
            quantizer = faiss.IndexFlatL2(d_stored)
        else:
            quantizer = faiss.IndexFlatIP(d_stored)
        index = faiss.IndexIVFFlat(quantizer, d_stored, nlist, self._faiss_metric())
        train = stored if n <= 64 * nlist else stored[rng.choice(n, 64 * nlist, replace=False)]
        index.train(train)
        index.add(stored)
        index.nprobe = min(self.nprobe, nlist)
        self.nlist = nlist
        return index

    def _recall_queries(self, sample_queries: Any, rng: np.random.Generator) -> np.ndarray:
        pool = self.vectors_ if sample_queries is None else _as_vectors(sample_queries)
        assert pool is not None
        if pool.shape[1] != self.dim:
            raise ConfigError(
                f"sample_queries have {pool.shape[1]} dimensions, the vectors {self.dim}"
            )
        m = min(self.recall_sample, len(pool))
        return pool[rng.choice(len(pool), m, replace=False)]

    def _recall_of(self, queries: np.ndarray, exact: Neighbors) -> dict[str, Any]:
        k = exact.indices.shape[1]
        approximate = self.search(queries, k)
        overlap = [
            len(np.intersect1d(a[a >= 0], e[e >= 0]))
            for a, e in zip(approximate.indices, exact.indices, strict=True)
        ]
        assert self.vectors_ is not None
        return {
            f"recall_at_{self.recall_k}": recall_against_exact(
                queries, self.vectors_, approximate.indices, exact, self.metric
            ),
            f"id_overlap_at_{self.recall_k}": float(np.mean(overlap) / k),
            "recall_sample": len(queries),
        }

    def _measure_recall(self, sample_queries: Any, rng: np.random.Generator) -> dict[str, Any]:
        if self.recall_sample == 0:
            return {f"recall_at_{self.recall_k}": None, "recall_sample": 0}
        queries = self._recall_queries(sample_queries, rng)
        k = min(self.recall_k, len(self))
        exact = self._exact.search(queries, k)  # type: ignore[union-attr]
        return self._recall_of(queries, exact)

    def _time_per_query(self, queries: np.ndarray, k: int) -> float:
        """Median milliseconds of one query at a time (after one untimed search), on one
        FAISS thread as a request is served (the build's thread count is restored)."""
        faiss = _faiss()
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            self.search(queries[:1], k)
            times = []
            for q in queries[:_AUTO_TIMED]:
                start = time.perf_counter()
                self.search(q[None, :], k)
                times.append(time.perf_counter() - start)
        finally:
            faiss.omp_set_num_threads(threads)
        return float(np.median(times) * 1e3)

    def _build_auto(self, x: np.ndarray, sample_queries: Any, rng: np.random.Generator) -> None:
        """Try settings cheapest-first within each family, keep the fastest meeting the
        target (the flat scan always does)."""
        n, d = x.shape
        target = self.target_recall
        assert target is not None
        queries = self._recall_queries(sample_queries, rng)
        k = min(self.recall_k, n)
        exact = self._exact.search(queries, k)  # type: ignore[union-attr]
        key = f"recall_at_{self.recall_k}"
        trials: list[dict[str, Any]] = []
        built: dict[tuple[str, int | None], Any] = {}
        given = {name: getattr(self, name) for name in SETTING_KEYS if name != "kind"}

        def trial(**setting: Any) -> dict[str, Any]:
            for name, value in setting.items():
                setattr(self, "index_kind" if name == "kind" else name, value)
            family = (self.index_kind, setting.get("pq_m"))
            if family not in built:
                started = time.perf_counter()
                built[family] = self._build_kind(x, rng)
                build_seconds = time.perf_counter() - started
            else:
                build_seconds = 0.0
            self._index = built[family]
            self._attach_search_settings()
            result = {**self.setting(), **self._recall_of(queries, exact)}
            result["p50_ms"] = self._time_per_query(queries, k)
            result["build_seconds"] = build_seconds
            trials.append(result)
            return result

        trial(kind="flat", pq_m=None, nlist=None)
        best = trials[-1]
        pq_ms = sorted({m for m in (d // 2, d) if m >= 1 and d % m == 0 and m % 2 == 0})
        refine_met: int | None = None
        if n >= _AUTO_MIN_QUANTISED:
            for pq_m in pq_ms:
                for factor in _AUTO_REFINE:
                    if factor * k > n:
                        break
                    result = trial(kind="pq", pq_m=pq_m, refine_factor=factor, nlist=None)
                    if result[key] >= target:
                        refine_met = factor if refine_met is None else refine_met
                        break
                    if result["p50_ms"] > best["p50_ms"]:
                        break  # slower than the flat scan and still short
        if n >= _AUTO_MIN_IVF and pq_ms:
            nlist = _default_nlist(n)
            for nprobe in _AUTO_NPROBE:
                if nprobe > nlist:
                    break
                result = trial(
                    kind="ivfpq", pq_m=pq_ms[0], refine_factor=refine_met or _AUTO_REFINE[-2],
                    nlist=nlist, nprobe=nprobe,
                )
                fastest = min(
                    (t["p50_ms"] for t in trials if t[key] >= target), default=math.inf
                )
                if result[key] >= target or result["p50_ms"] > fastest:
                    break
        meeting = [t for t in trials if t[key] >= target]
        chosen = min(meeting, key=lambda t: t["p50_ms"]) if meeting else max(
            trials, key=lambda t: t[key]
        )
        for name, value in given.items():  # what the chosen setting does not use
            setattr(self, name, value)
        for name in SETTING_KEYS:
            if name in chosen:
                setattr(self, "index_kind" if name == "kind" else name, chosen[name])
        # the very index that was measured (4-bit codes are small: every family is kept
        # until the choice is made)
        self._index = built[(self.index_kind, self.pq_m if self._quantised else None)]
        built.clear()
        self._attach_search_settings()
        self.metadata_.update(
            {
                key: chosen[key],
                f"id_overlap_at_{self.recall_k}": chosen[f"id_overlap_at_{self.recall_k}"],
                "recall_sample": chosen["recall_sample"],
                "auto_trials": trials,
            }
        )

    def _check_target(self) -> None:
        if self.target_recall is None:
            return
        self.metadata_["target_recall"] = self.target_recall
        recall = self.measured_recall
        self.metadata_["meets_target"] = None if recall is None else recall >= self.target_recall
        if recall is not None and recall < self.target_recall:
            logger.warning(
                "the %s index reaches recall@%d %.4f, below its target %.4f; raise "
                "refine_factor / nprobe / ef_search, or use kind='auto'",
                self.index_kind, self.recall_k, recall, self.target_recall,
            )

    @property
    def measured_recall(self) -> float | None:
        """Recall@``recall_k`` against the exact scan, measured when the index was built."""
        value = self.metadata_.get(f"recall_at_{self.recall_k}")
        return None if value is None else float(value)

    @property
    def meets_target(self) -> bool | None:
        """Whether the measured recall reaches ``target_recall`` (None: no target, or recall
        not measured)."""
        value = self.metadata_.get("meets_target")
        return None if value is None else bool(value)

    def memory_bytes(self) -> int:
        """Bytes held: the stored float vectors plus FAISS's serialised index (codes, graph,
        centroids)."""
        self._check_built()
        assert self.vectors_ is not None
        return int(self.vectors_.nbytes + len(_faiss().serialize_index(self._index)))

    # ------------------------------------------------------------------ search
    def search(self, queries: Any, k: int, exclude: Exclude = None) -> Neighbors:
        """The (approximately) ``k`` best rows per query; see :meth:`ExactIndex.search`."""
        q = self._queries(queries)
        k = check_k(k)
        n = len(self)
        lists = exclusion_lists(exclude, len(q), n)
        counts = np.zeros(len(q), dtype=np.int64) if lists is None else np.array(
            [len(e) for e in lists], dtype=np.int64
        )
        exact_rows = np.flatnonzero(counts > self.max_overfetch)
        ann_rows = np.flatnonzero(counts <= self.max_overfetch)
        out_idx = np.full((len(q), k), -1, dtype=np.int64)
        out_val = np.full((len(q), k), np.nan, dtype=np.float32)
        short: list[np.ndarray] = []
        pending = ann_rows
        # every (query, excluded row) pair as one sorted key query * n + row, or one list
        # shared by every query (the similar items of one user's recent items)
        excluded_keys = shared = None
        if lists is not None and counts.sum():
            if all(e is lists[0] for e in lists):
                shared = lists[0]
            else:
                excluded_keys = np.concatenate(
                    [r * n + lists[r] for r in range(len(q)) if len(lists[r])]
                )
        # Over-fetch adaptively: first room for k excluded rows among the neighbours (most
        # of a heavy user's items are nowhere near the query), then 4x wider, up to
        # k + all of them; rows still short go to the exact scan.
        fetch = min(n, k + min(int(counts[pending].max(initial=0)), k))
        while len(pending):
            raw_val, raw_idx = self._faiss_search(q[pending], fetch, k)
            keep = raw_idx >= 0
            if shared is not None:
                keep &= not_in(raw_idx.reshape(-1), shared).reshape(raw_idx.shape)
            elif excluded_keys is not None:
                keys = pending[:, None] * n + np.maximum(raw_idx, 0)
                keep &= not_in(keys.reshape(-1), excluded_keys).reshape(keys.shape)
            found = keep.sum(axis=1)
            done = found >= np.minimum(k, n - counts[pending])
            if done.any():
                rows = pending[done]
                # the kept entries of each row first, in their order
                order = np.argsort(~keep[done], axis=1, kind="stable")[:, :k]
                idx = np.take_along_axis(raw_idx[done], order, axis=1)
                val = np.take_along_axis(raw_val[done], order, axis=1)
                valid = np.take_along_axis(keep[done], order, axis=1)
                width = idx.shape[1]
                out_idx[rows, :width] = np.where(valid, idx, -1)
                out_val[rows, :width] = np.where(valid, val, np.nan)
            left = pending[~done]
            can_widen = fetch < np.minimum(n, k + counts[left])
            short.append(left[~can_widen])
            pending = left[can_widen]
            if len(pending):
                fetch = min(n, 4 * fetch, k + int(counts[pending].max()))
        if short:
            exact_rows = np.concatenate([exact_rows, *short])
        if len(exact_rows):
            sub = None if lists is None else [lists[r] for r in exact_rows]
            result = self._exact._search(q[exact_rows], k, sub)  # type: ignore[union-attr]
            out_idx[exact_rows], out_val[exact_rows] = result.indices, result.values
        return Neighbors(out_idx, out_val)

    def _refined(self, q: np.ndarray, fetch: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``fetch`` of ``refine_factor × k + (fetch − k)`` quantised-scan candidates
        (room for the excluded rows besides the re-ranking depth), by exact score (FAISS's
        conventions: inner product descending, squared distance ascending)."""
        x = self.vectors_
        assert x is not None
        n = len(x)
        wide = min(n, max(fetch, self.refine_factor * k + fetch - k))
        _, found = self._index.search(q, wide)
        found = np.asarray(found, dtype=np.int64)
        out_val = np.full((len(q), fetch), np.nan, dtype=np.float32)
        out_idx = np.full((len(q), fetch), -1, dtype=np.int64)
        for r in range(len(q)):
            rows = found[r][found[r] >= 0]
            if self.metric == "l2":
                diff = x[rows] - q[r]
                key = -np.einsum("ij,ij->i", diff, diff)
            else:
                key = x[rows] @ q[r]
            top = fetch
            if len(rows) > top:
                part = np.argpartition(-key, top - 1)[:top]
                rows, key = rows[part], key[part]
            order = np.argsort(-key, kind="stable")
            out_idx[r, : len(order)] = rows[order]
            out_val[r, : len(order)] = -key[order] if self.metric == "l2" else key[order]
        return out_val, out_idx

    def _faiss_search(
        self, q: np.ndarray, fetch: int, k: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        if self._quantised:
            return self._refined(q, fetch, fetch if k is None else k)
        query = self._augment(q, rows=False) if self._transformed else q
        if self.index_kind == "hnsw":
            params = faiss.SearchParametersHNSW()
            params.efSearch = max(self.ef_search, fetch)
            values, indices = self._index.search(query, fetch, params=params)
        else:
            values, indices = self._index.search(query, fetch)
        values = np.asarray(values, dtype=np.float64)
        if self._transformed:  # q·x = (‖q‖² + M² − ‖q̃ − x̃‖²) / 2
            norms = np.einsum("ij,ij->i", q, q, dtype=np.float64)
            values = (norms[:, None] + self._max_norm2 - values) / 2.0
        return values.astype(np.float32), np.asarray(indices, dtype=np.int64)

    # ------------------------------------------------------------------ files
    def _save_extra(self, target: Path) -> None:
        _faiss().write_index(self._index, str(target / FAISS_FILE))

    def _load_extra(self, source: Path) -> None:
        self._index = _faiss().read_index(str(source / FAISS_FILE))
        self._attach()

    def to_bytes(self) -> np.ndarray:
        """The FAISS index serialised by FAISS, as a uint8 array (for model files)."""
        self._check_built()
        return np.asarray(_faiss().serialize_index(self._index), dtype=np.uint8)

    def restore(self, vectors: np.ndarray, data: np.ndarray, metadata: dict[str, Any]) -> None:
        """Rebuild from :meth:`to_bytes` output and the indexed vectors."""
        self.vectors_ = _as_vectors(vectors)
        self._index = _faiss().deserialize_index(np.asarray(data, dtype=np.uint8))
        self.metadata_ = dict(metadata)
        self._attach()

    def _attach(self) -> None:
        """The recorded setting and the search settings on the FAISS index, and the exact
        scan beside it."""
        self._max_norm2 = float(self.metadata_.get("mips_max_norm2", 0.0))
        setting = self.metadata_.get("setting")
        if isinstance(setting, dict):
            if setting.get("kind") not in self.KINDS or setting.get("kind") == "auto":
                raise ConfigError(f"the index records an unknown setting {setting!r}")
            for name in SETTING_KEYS:
                if name in setting:
                    setattr(self, "index_kind" if name == "kind" else name, setting[name])
        elif self.requested_kind == "auto":
            raise ConfigError("an 'auto' index without its recorded setting; build it again")
        self._attach_search_settings()
        self._exact = ExactIndex(self.metric)
        self._exact.vectors_ = self.vectors_
        self._exact._prepare()

    def _attach_search_settings(self) -> None:
        if self.index_kind == "hnsw":
            self._index.hnsw.efSearch = self.ef_search
        elif self.index_kind == "ivf":
            self._index.nprobe = self.nprobe
        elif self.index_kind == "ivfpq":
            _faiss().extract_index_ivf(self._index).nprobe = self.nprobe


__all__ = ["FaissIndex", "SETTING_KEYS"]
