"""Vector indexes: exact (blocked matrix product + partial sort) and approximate (FAISS).

Both answer ``search(queries, k, exclude=...)`` with the ``k`` best rows of the indexed matrix
per query, by inner product (largest ``q · x`` first) or by squared Euclidean distance
(smallest ``‖q − x‖²`` first). Rows listed in ``exclude`` for a query (the items a user has
already seen) are never returned, and a query still gets ``k`` results when enough rows remain,
however many rows it excludes.

Index files are a directory: ``index.json`` (kind, metric, parameters, measured recall) and the
vectors as ``vectors.npy`` (read with ``allow_pickle=False``); the FAISS index adds
``index.faiss`` in FAISS's own format. Nothing is unpickled.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias

import numpy as np
import scipy.sparse as sp

from palate.errors import ArtifactError, ConfigError, DataError, NotFittedError

logger = logging.getLogger(__name__)

Metric = Literal["inner_product", "l2"]
METRICS = ("inner_product", "l2")
INDEX_FILE = "index.json"
VECTORS_FILE = "vectors.npy"
FAISS_FILE = "index.faiss"
INDEX_FORMAT = "palate-index"
INDEX_FORMAT_VERSION = 1
#: scores computed per step of the exact scan (the block of rows shrinks as queries grow)
_SCORES_PER_STEP = 2**22
#: up to this many queries, the exact scan keeps a threshold per query instead of a partial
#: sort of every block
_ROW_LOOP_QUERIES = 8

#: What ``exclude`` may be: a (n_queries, n_rows) sparse matrix whose stored entries are the
#: excluded rows, or one integer array of row positions per query (None: nothing excluded).
Exclude: TypeAlias = sp.csr_matrix | Sequence[np.ndarray | Sequence[int] | None] | None


@dataclass(frozen=True)
class Neighbors:
    """Search results for a batch of queries.

    Attributes
    ----------
    indices : ndarray of int64, shape (n_queries, k)
        Row positions in the indexed matrix, best first; -1 where fewer than ``k`` rows remain.
    values : ndarray of float32, shape (n_queries, k)
        ``q · x`` (metric ``"inner_product"``, descending) or ``‖q − x‖²`` (metric ``"l2"``,
        ascending); NaN where ``indices`` is -1.
    """

    indices: np.ndarray
    values: np.ndarray


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ConfigError(f"metric must be 'inner_product' or 'l2', got {metric!r}")


def _as_vectors(vectors: Any, what: str = "vectors") -> np.ndarray:
    array = np.asarray(vectors)
    if array.ndim != 2 or array.shape[1] < 1:
        raise DataError(f"{what} must be a 2-D array (n, dim), got shape {array.shape}")
    if array.dtype.kind not in "iuf":
        raise DataError(f"{what} must be numeric, got {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.all(np.isfinite(array)):
        raise DataError(f"{what} hold NaN or infinity; clean them before indexing")
    return array


def not_in(values: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """Bool mask: which of ``values`` are not in ``excluded`` (int arrays, any order, repeats
    allowed). A sort and a binary search: for the few hundred ids of one request about 10x
    faster than ``np.isin``, whose set-up dominates at that size."""
    if not len(excluded) or not len(values):
        return np.ones(len(values), dtype=bool)
    ordered = np.sort(excluded)
    position = np.minimum(np.searchsorted(ordered, values), len(ordered) - 1)
    return ordered[position] != values


def exclusion_lists(exclude: Exclude, n_queries: int, n_rows: int) -> list[np.ndarray] | None:
    """``exclude`` as one sorted unique int64 array of row positions per query.

    Positions outside ``[0, n_rows)`` are dropped (they cannot be returned anyway).
    """
    if exclude is None:
        return None
    if sp.issparse(exclude):
        csr = sp.csr_matrix(exclude)
        if csr.shape[0] != n_queries:
            raise DataError(
                f"exclude has {csr.shape[0]} rows for {n_queries} queries; give one row per query"
            )
        lists = [
            np.asarray(csr.indices[csr.indptr[r] : csr.indptr[r + 1]], dtype=np.int64)
            for r in range(n_queries)
        ]
    else:
        if len(exclude) != n_queries:
            raise DataError(
                f"exclude has {len(exclude)} entries for {n_queries} queries; give one list "
                "of row positions per query (an empty one where nothing is excluded)"
            )
        lists = [
            np.empty(0, np.int64) if e is None else np.asarray(e, dtype=np.int64).reshape(-1)
            for e in exclude
        ]
    out = []
    for rows in lists:
        rows = np.unique(rows)
        out.append(rows[(rows >= 0) & (rows < n_rows)])
    return out


def _finish(
    indices: np.ndarray, keys: np.ndarray, k: int, metric: str, query_norms: np.ndarray | None
) -> Neighbors:
    """Sort candidates by key (larger is better), keep k, turn keys into the metric's values."""
    n = len(indices)
    order = np.argsort(-keys, axis=1, kind="stable")[:, :k]
    idx = np.take_along_axis(indices, order, axis=1)
    val = np.take_along_axis(keys, order, axis=1).astype(np.float64)
    if metric == "l2" and query_norms is not None:
        val = np.maximum(query_norms[:, None] - val, 0.0)  # ‖q‖² − (2 q·x − ‖x‖²)
    out_idx = np.full((n, k), -1, dtype=np.int64)
    out_val = np.full((n, k), np.nan, dtype=np.float32)
    width = idx.shape[1]
    valid = np.isfinite(np.take_along_axis(keys, order, axis=1)) & (idx >= 0)
    out_idx[:, :width] = np.where(valid, idx, -1)
    out_val[:, :width] = np.where(valid, val, np.nan)
    return Neighbors(out_idx, out_val)


class VectorIndexBase:
    """What the exact and approximate indexes share: the metric, vectors, files."""

    kind: ClassVar[str] = "index"

    def __init__(self, metric: Metric = "inner_product") -> None:
        _check_metric(metric)
        self.metric: Metric = metric
        self.vectors_: np.ndarray | None = None
        self.metadata_: dict[str, Any] = {}

    @property
    def is_exact(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def is_built(self) -> bool:
        return self.vectors_ is not None

    def __len__(self) -> int:
        return 0 if self.vectors_ is None else len(self.vectors_)

    @property
    def dim(self) -> int:
        self._check_built()
        return int(self.vectors_.shape[1])  # type: ignore[union-attr]

    def _check_built(self) -> None:
        if self.vectors_ is None:
            raise NotFittedError(
                f"this {type(self).__name__} holds no vectors yet; call .build(vectors) first"
            )

    def _queries(self, queries: Any) -> np.ndarray:
        self._check_built()
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q[None, :]
        q = _as_vectors(q, "queries")
        if q.shape[1] != self.dim:
            raise DataError(
                f"queries have {q.shape[1]} dimensions but the index holds {self.dim}-dim vectors"
            )
        return q

    def params(self) -> dict[str, Any]:
        return {"metric": self.metric}

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index as a directory (``index.json``, ``vectors.npy``, ...)."""
        self._check_built()
        target = Path(path).expanduser()
        target.mkdir(parents=True, exist_ok=True)
        assert self.vectors_ is not None
        np.save(target / VECTORS_FILE, self.vectors_, allow_pickle=False)
        self._save_extra(target)
        document = {
            "format": INDEX_FORMAT,
            "format_version": INDEX_FORMAT_VERSION,
            "kind": self.kind,
            "params": self.params(),
            "metadata": self.metadata_,
        }
        (target / INDEX_FILE).write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
        return target

    def _save_extra(self, target: Path) -> None:
        pass

    def _load_extra(self, source: Path) -> None:
        pass


class ExactIndex(VectorIndexBase):
    """Exact k-nearest-neighbour search by a blocked matrix product and a partial sort.

    For a query ``q`` the index returns the rows ``x`` with the largest ``q · x`` (metric
    ``"inner_product"``) or the smallest ``‖q − x‖² = ‖q‖² − 2 q·x + ‖x‖²`` (metric ``"l2"``,
    ``‖x‖²`` precomputed). The rows are scanned in blocks small enough for the block of scores
    to stay in cache; each block keeps its best ``k`` with ``argpartition`` and only scores
    above the current k-th best are looked at, so memory stays ``O(n_queries · block)``.

    Parameters
    ----------
    metric : {"inner_product", "l2"}
    block_size : int
        Rows scanned per step for one query (divided among the queries of a batch).

    Examples
    --------
    >>> index = ExactIndex("l2").build(np.eye(3, dtype=np.float32))
    >>> index.search(np.array([[1.0, 0.1, 0.0]]), k=2).indices
    array([[0, 1]])
    """

    kind = "exact"

    def __init__(self, metric: Metric = "inner_product", block_size: int = 32768) -> None:
        super().__init__(metric)
        if not isinstance(block_size, (int, np.integer)) or block_size < 1:
            raise ConfigError(f"block_size must be a positive integer, got {block_size!r}")
        self.block_size = int(block_size)
        self._half_norms: np.ndarray | None = None

    @property
    def is_exact(self) -> bool:
        return True

    def params(self) -> dict[str, Any]:
        return {"metric": self.metric, "block_size": self.block_size}

    def build(self, vectors: Any) -> ExactIndex:
        """Index the rows of ``vectors`` (n, dim); returns self."""
        self.vectors_ = _as_vectors(vectors)
        self._prepare()
        self.metadata_ = {"n": len(self.vectors_), "dim": self.dim, "recall_at_10": 1.0}
        return self

    def _prepare(self) -> None:
        x = self.vectors_
        assert x is not None
        if self.metric == "l2":
            # maximise q·x − ‖x‖²/2, i.e. minimise ‖q − x‖²
            self._half_norms = 0.5 * np.einsum("ij,ij->i", x, x, dtype=np.float32)
        else:
            self._half_norms = None

    def search(self, queries: Any, k: int, exclude: Exclude = None) -> Neighbors:
        """The ``k`` best rows per query.

        Parameters
        ----------
        queries : ndarray, shape (n_queries, dim) or (dim,)
        k : int
        exclude : csr_matrix (n_queries, n_rows) or list of int arrays, optional
            Rows never returned for that query.

        Returns
        -------
        Neighbors
            ``indices`` and ``values``, shape (n_queries, k).
        """
        q = self._queries(queries)
        k = _check_k(k)
        lists = exclusion_lists(exclude, len(q), len(self))
        return self._search(q, k, lists)

    def _search(self, q: np.ndarray, k: int, lists: list[np.ndarray] | None) -> Neighbors:
        x = self.vectors_
        assert x is not None
        n_q, n = len(q), len(x)
        kk = min(k, n)
        block = min(self.block_size, max(1024, _SCORES_PER_STEP // max(n_q, 1)))
        best_idx = np.full((n_q, kk), -1, dtype=np.int64)
        best_key = np.full((n_q, kk), -np.inf, dtype=np.float32)
        # exclusions as (query, row) pairs sorted by row, sliced per block
        ex_query = ex_row = None
        if lists is not None and any(len(e) for e in lists):
            ex_query = np.repeat(np.arange(n_q), [len(e) for e in lists])
            ex_row = np.concatenate(lists)
            order = np.argsort(ex_row, kind="stable")
            ex_query, ex_row = ex_query[order], ex_row[order]
        scratch = np.empty((n_q, min(block, n)), dtype=np.float32)
        for start in range(0, n, block):
            end = min(start + block, n)
            keys = scratch[:, : end - start]
            np.matmul(q, x[start:end].T, out=keys)
            if self._half_norms is not None:
                keys -= self._half_norms[start:end]
            if ex_row is not None:
                lo, hi = np.searchsorted(ex_row, (start, end))
                keys[ex_query[lo:hi], ex_row[lo:hi] - start] = -np.inf  # type: ignore[index]
            if n_q <= _ROW_LOOP_QUERIES:
                # few queries: only scores above the current k-th best can enter
                for r in range(n_q):
                    hits = np.flatnonzero(keys[r] > best_key[r, 0])
                    if not len(hits):
                        continue
                    merged_idx = np.concatenate([best_idx[r], hits + start])
                    merged_key = np.concatenate([best_key[r], keys[r, hits]])
                    top = np.argpartition(merged_key, len(merged_key) - kk)[-kk:]
                    order = np.argsort(merged_key[top], kind="stable")  # k-th best first
                    best_idx[r] = merged_idx[top[order]]
                    best_key[r] = merged_key[top[order]]
                continue
            width = end - start
            if width > kk:
                part = np.argpartition(keys, width - kk, axis=1)[:, width - kk :]
                part_key = np.take_along_axis(keys, part, axis=1)
            else:
                part = np.broadcast_to(np.arange(width), (n_q, width))
                part_key = keys.copy()
            cand_idx = np.concatenate([best_idx, part + start], axis=1)
            cand_key = np.concatenate([best_key, part_key], axis=1)
            keep = np.argpartition(cand_key, cand_key.shape[1] - kk, axis=1)[:, -kk:]
            best_idx = np.take_along_axis(cand_idx, keep, axis=1)
            best_key = np.take_along_axis(cand_key, keep, axis=1)
            # the k-th best first, as the row loop keeps it
            first = np.argsort(best_key, axis=1, kind="stable")
            best_idx = np.take_along_axis(best_idx, first, axis=1)
            best_key = np.take_along_axis(best_key, first, axis=1)
        norms = np.einsum("ij,ij->i", q, q) if self.metric == "l2" else None
        # keys were q·x − ‖x‖²/2; the distance is ‖q‖² − 2·key
        if norms is not None:
            best_key = 2.0 * best_key
        return _finish(best_idx, best_key, k, self.metric, norms)

    def _load_extra(self, source: Path) -> None:
        self._prepare()


def recall_against_exact(
    queries: np.ndarray, vectors: np.ndarray, found: np.ndarray, exact: Neighbors, metric: str
) -> float:
    """Recall@k of approximate results, counting ties: a returned row is a hit when its exact
    key is at least as good as the exact k-th best (``q · x >= v_k``, or
    ``‖q − x‖² <= v_k``), so rows tied with the k-th count whichever of them is returned.

    ``recall@k = mean_q |{returned rows as good as the k-th}| / k``
    """
    k = found.shape[1]
    hits = []
    for q, rows, best in zip(queries, found, exact.values, strict=True):
        rows = rows[rows >= 0]
        valid = best[np.isfinite(best)]
        if not len(valid):
            continue
        x = vectors[rows].astype(np.float64)
        q64 = q.astype(np.float64)
        kth = float(valid[-1])
        tolerance = 1e-5 * (1.0 + abs(kth))
        if metric == "inner_product":
            good = x @ q64 >= kth - tolerance
        else:
            good = ((x - q64) ** 2).sum(axis=1) <= kth + tolerance
        hits.append(min(int(good.sum()), len(valid)) / min(k, len(valid)))
    return float(np.mean(hits)) if hits else 1.0


def _check_k(k: Any) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigError(
            "the approximate index needs FAISS; install it with pip install 'palate[ann]' "
            "(or use ExactIndex)"
        ) from exc
    return faiss


class FaissIndex(VectorIndexBase):
    """Approximate nearest-neighbour search on FAISS: HNSW graphs, an inverted file (IVF), or
    a scan of 4-bit product-quantised codes re-ranked exactly (PQ).

    At build time the index searches a sample of queries both ways and stores in
    ``metadata_`` the recall@k (mean over the sample of the share of the k returned rows that
    are as good as the exact k-th best, so that ties count; see :func:`recall_against_exact`)
    and the plain id overlap ``|ANN top-k ∩ exact top-k| / k``.
    Exclusions are served by over-fetching: first ``k + min(len(exclude), k)`` neighbours,
    then 4x as many for the queries left short, up to ``k + len(exclude)`` (HNSW widens its
    beam to match); a query with more than ``max_overfetch`` exclusions, or one still short,
    is answered by the exact scan instead, so it always gets ``k`` results.

    Parameters
    ----------
    kind : {"hnsw", "ivf", "pq"}
        ``"pq"`` builds in seconds and keeps recall high on vectors without low-dimensional
        structure (e.g. 64-dim factors), where graphs need very wide beams: every row's
        4-bit codes are scanned with SIMD table lookups (FAISS "fast scan"), then the best
        ``refine_factor × k`` are scored exactly on the stored vectors.
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
        Queries used to measure recall at build time (0: do not measure).
    recall_k : int
        k of the recall measurement.
    max_overfetch : int
        Most exclusions served by over-fetching; beyond, the exact scan answers.
    pq_m : int, optional
        Sub-quantizers of ``"pq"`` (must divide the dimension); default one per dimension.
        Fewer: a faster scan, coarser candidates.
    refine_factor : int
        ``"pq"`` re-ranks ``refine_factor × k`` candidates exactly.
    mips_to_l2 : bool
        Answer inner-product queries with a Euclidean index: every row gets one more
        coordinate ``√(M² − ‖x‖²)`` (``M`` the largest norm) and every query a 0, so that
        ``‖q̃ − x̃‖² = ‖q‖² + M² − 2 q·x`` orders rows exactly as ``q · x`` does. It can help
        when norms vary widely; on vectors of similar norms it measured worse (BENCHMARKS.md).
    seed : int
        Seeds the IVF training sample and the recall sample.

    Examples
    --------
    >>> index = FaissIndex("hnsw", ef_search=64).build(vectors)  # doctest: +SKIP
    >>> index.metadata_["recall_at_10"]  # doctest: +SKIP
    0.997
    """

    kind = "faiss"
    KINDS: ClassVar[tuple[str, ...]] = ("hnsw", "ivf", "pq")

    def __init__(
        self,
        kind: Literal["hnsw", "ivf", "pq"] = "hnsw",
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
        seed: int = 0,
    ) -> None:
        super().__init__(metric)
        if kind not in self.KINDS:
            raise ConfigError(f"kind must be 'hnsw', 'ivf' or 'pq', got {kind!r}")
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
        self.index_kind = kind
        self.hnsw_m = int(hnsw_m)
        self.ef_construction = int(ef_construction)
        self.ef_search = int(ef_search)
        self.nlist = None if nlist is None else int(nlist)
        self.nprobe = int(nprobe)
        self.recall_sample = int(recall_sample)
        self.recall_k = int(recall_k)
        self.max_overfetch = int(max_overfetch)
        if not isinstance(mips_to_l2, bool):
            raise ConfigError(f"mips_to_l2 must be True or False, got {mips_to_l2!r}")
        self.mips_to_l2 = bool(mips_to_l2)
        if pq_m is not None and (
            not isinstance(pq_m, (int, np.integer)) or isinstance(pq_m, bool) or pq_m < 1
        ):
            raise ConfigError(f"pq_m must be a positive integer or None, got {pq_m!r}")
        if kind == "pq" and mips_to_l2:
            raise ConfigError("mips_to_l2 applies to 'hnsw' and 'ivf'; 'pq' re-ranks exactly")
        self.pq_m = None if pq_m is None else int(pq_m)
        self.refine_factor = int(refine_factor)
        self.seed = int(seed)
        self._index: Any = None
        self._exact: ExactIndex | None = None
        self._max_norm2 = 0.0

    @property
    def is_exact(self) -> bool:
        return False

    def params(self) -> dict[str, Any]:
        return {
            "kind": self.index_kind,
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
            "seed": self.seed,
        }

    def _faiss_metric(self) -> int:
        faiss = _faiss()
        inner = self.metric == "inner_product" and not self._transformed
        return int(faiss.METRIC_INNER_PRODUCT if inner else faiss.METRIC_L2)

    @property
    def _transformed(self) -> bool:
        return self.metric == "inner_product" and self.mips_to_l2

    def _augment(self, x: np.ndarray, rows: bool) -> np.ndarray:
        """Rows: ``[x, √(M² − ‖x‖²)]``; queries: ``[q, 0]`` (see ``mips_to_l2``)."""
        if rows:
            norms = np.einsum("ij,ij->i", x, x, dtype=np.float64)
            extra = np.sqrt(np.maximum(self._max_norm2 - norms, 0.0))
        else:
            extra = np.zeros(len(x))
        return np.ascontiguousarray(np.hstack([x, extra[:, None].astype(np.float32)]))

    def build(self, vectors: Any, sample_queries: Any = None) -> FaissIndex:
        """Index the rows of ``vectors`` and measure recall against the exact scan.

        Parameters
        ----------
        vectors : ndarray, shape (n, dim)
        sample_queries : ndarray, shape (m, dim), optional
            Queries like those the index will serve (e.g. user vectors), from which
            ``recall_sample`` are drawn; default: rows of ``vectors``.
        """
        faiss = _faiss()
        x = _as_vectors(vectors)
        n, d = x.shape
        rng = np.random.default_rng(self.seed)
        self._max_norm2 = float(np.einsum("ij,ij->i", x, x).max()) if self._transformed else 0.0
        stored = self._augment(x, rows=True) if self._transformed else x
        if self.index_kind == "hnsw":
            index = faiss.IndexHNSWFlat(stored.shape[1], self.hnsw_m, self._faiss_metric())
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
            index.add(stored)
        elif self.index_kind == "pq":
            # 4-bit codes scanned with SIMD lookups ("fast scan"), the best
            # refine_factor × k then re-ranked exactly on the stored vectors
            pq_m = self.pq_m or d
            if d % pq_m:
                raise ConfigError(f"pq_m must divide the dimension {d}, got {pq_m}")
            index = faiss.index_factory(d, f"PQ{pq_m}x4fs", self._faiss_metric())
            index.train(x if n <= 100_000 else x[rng.choice(n, 100_000, replace=False)])
            index.add(x)
            self.pq_m = pq_m
        else:
            # FAISS wants at least 39 training points per cell
            nlist = self.nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
            quantizer = (
                faiss.IndexFlatIP(d) if self.metric == "inner_product" else faiss.IndexFlatL2(d)
            )
            d_stored = stored.shape[1]
            if self._transformed:
                quantizer = faiss.IndexFlatL2(d_stored)
            index = faiss.IndexIVFFlat(quantizer, d_stored, nlist, self._faiss_metric())
            train = stored if n <= 64 * nlist else stored[rng.choice(n, 64 * nlist, replace=False)]
            index.train(train)
            index.add(stored)
            index.nprobe = min(self.nprobe, nlist)
            self.nlist = nlist
        self._index = index
        self.vectors_ = x
        self._exact = ExactIndex(self.metric)
        self._exact.vectors_ = x
        self._exact._prepare()
        self.metadata_ = {"n": n, "dim": d, "mips_max_norm2": self._max_norm2}
        self.metadata_.update(self._measure_recall(sample_queries, rng))
        logger.info("built %s index over %d vectors: %s", self.index_kind, n, self.metadata_)
        return self

    def _measure_recall(self, sample_queries: Any, rng: np.random.Generator) -> dict[str, Any]:
        key = f"recall_at_{self.recall_k}"
        if self.recall_sample == 0:
            return {key: None, "recall_sample": 0}
        pool = self.vectors_ if sample_queries is None else _as_vectors(sample_queries)
        assert pool is not None
        m = min(self.recall_sample, len(pool))
        queries = pool[rng.choice(len(pool), m, replace=False)]
        k = min(self.recall_k, len(self))
        approximate = self.search(queries, k)
        exact = self._exact.search(queries, k)  # type: ignore[union-attr]
        overlap = [
            len(np.intersect1d(a[a >= 0], e[e >= 0]))
            for a, e in zip(approximate.indices, exact.indices, strict=True)
        ]
        return {
            key: recall_against_exact(
                queries, self.vectors_, approximate.indices, exact, self.metric  # type: ignore[arg-type]
            ),
            f"id_overlap_at_{self.recall_k}": float(np.mean(overlap) / k),
            "recall_sample": m,
        }

    @property
    def measured_recall(self) -> float | None:
        """Recall@``recall_k`` against the exact scan, measured when the index was built."""
        value = self.metadata_.get(f"recall_at_{self.recall_k}")
        return None if value is None else float(value)

    def search(self, queries: Any, k: int, exclude: Exclude = None) -> Neighbors:
        """The (approximately) ``k`` best rows per query; see :meth:`ExactIndex.search`."""
        q = self._queries(queries)
        k = _check_k(k)
        n = len(self)
        lists = exclusion_lists(exclude, len(q), n)
        counts = np.zeros(len(q), dtype=np.int64) if lists is None else np.array(
            [len(e) for e in lists], dtype=np.int64
        )
        exact_rows = np.flatnonzero(counts > self.max_overfetch)
        ann_rows = np.flatnonzero(counts <= self.max_overfetch)
        out_idx = np.full((len(q), k), -1, dtype=np.int64)
        out_val = np.full((len(q), k), np.nan, dtype=np.float32)
        short: list[int] = []
        pending = ann_rows
        # Over-fetch adaptively: first room for k excluded rows among the neighbours (most
        # of a heavy user's items are nowhere near the query), then 4x wider, up to
        # k + all of them; rows still short go to the exact scan.
        fetch = min(n, k + min(int(counts[pending].max(initial=0)), k))
        while len(pending):
            raw_val, raw_idx = self._faiss_search(q[pending], fetch)
            retry: list[int] = []
            for j, r in enumerate(pending):
                idx, val = raw_idx[j], raw_val[j]
                keep = idx >= 0
                if lists is not None and len(lists[r]):
                    keep &= not_in(idx, lists[r])
                idx, val = idx[keep][:k], val[keep][:k]
                if len(idx) < min(k, n - int(counts[r])):
                    (retry if fetch < min(n, k + int(counts[r])) else short).append(int(r))
                    continue
                out_idx[r, : len(idx)] = idx
                out_val[r, : len(idx)] = val
            pending = np.asarray(retry, dtype=np.int64)
            if len(pending):
                fetch = min(n, 4 * fetch, k + int(counts[pending].max()))
        if short:
            exact_rows = np.concatenate([exact_rows, np.asarray(short, dtype=np.int64)])
        if len(exact_rows):
            sub = None if lists is None else [lists[r] for r in exact_rows]
            result = self._exact._search(q[exact_rows], k, sub)  # type: ignore[union-attr]
            out_idx[exact_rows], out_val[exact_rows] = result.indices, result.values
        return Neighbors(out_idx, out_val)

    def _refined(self, q: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``fetch`` of ``refine_factor × fetch`` quantised-scan candidates, by exact
        score (FAISS's conventions: inner product descending, squared distance ascending)."""
        x = self.vectors_
        assert x is not None
        n = len(x)
        wide = min(n, fetch * self.refine_factor)
        _, found = self._index.search(q, wide)
        found = np.asarray(found, dtype=np.int64)
        out_val = np.full((len(q), fetch), np.nan, dtype=np.float32)
        out_idx = np.full((len(q), fetch), -1, dtype=np.int64)
        for r in range(len(q)):
            rows = found[r][found[r] >= 0]
            if self.metric == "l2":
                diff = x[rows] - q[r]
                exact = np.einsum("ij,ij->i", diff, diff)
                order = np.argsort(exact, kind="stable")[:fetch]
            else:
                exact = x[rows] @ q[r]
                order = np.argsort(-exact, kind="stable")[:fetch]
            out_idx[r, : len(order)] = rows[order]
            out_val[r, : len(order)] = exact[order]
        return out_val, out_idx

    def _faiss_search(self, q: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        query = self._augment(q, rows=False) if self._transformed else q
        if self.index_kind == "hnsw":
            params = faiss.SearchParametersHNSW()
            params.efSearch = max(self.ef_search, fetch)
            values, indices = self._index.search(query, fetch, params=params)
        elif self.index_kind == "pq":
            return self._refined(q, fetch)
        else:
            values, indices = self._index.search(query, fetch)
        values = np.asarray(values, dtype=np.float64)
        if self._transformed:  # q·x = (‖q‖² + M² − ‖q̃ − x̃‖²) / 2
            norms = np.einsum("ij,ij->i", q, q, dtype=np.float64)
            values = (norms[:, None] + self._max_norm2 - values) / 2.0
        return values.astype(np.float32), np.asarray(indices, dtype=np.int64)

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
        """Search settings on the FAISS index, and the exact scan beside it."""
        self._max_norm2 = float(self.metadata_.get("mips_max_norm2", 0.0))
        if self.index_kind == "hnsw":
            self._index.hnsw.efSearch = self.ef_search
        elif self.index_kind == "ivf":
            self._index.nprobe = self.nprobe
        self._exact = ExactIndex(self.metric)
        self._exact.vectors_ = self.vectors_
        self._exact._prepare()


_INDEX_KINDS: dict[str, type[VectorIndexBase]] = {"exact": ExactIndex, "faiss": FaissIndex}


def make_index(params: dict[str, Any]) -> VectorIndexBase:
    """An unbuilt index from ``{"kind": "exact" | "hnsw" | "ivf" | "pq", ...parameters}``."""
    params = dict(params)
    kind = params.pop("kind", "exact")
    if kind == "exact":
        return ExactIndex(**params)
    if kind in FaissIndex.KINDS:
        return FaissIndex(kind, **params)
    raise ConfigError(f"index kind must be 'exact', 'hnsw', 'ivf' or 'pq', got {kind!r}")


def load_index(path: str | os.PathLike[str]) -> VectorIndexBase:
    """Read an index directory written by ``index.save(path)``.

    Raises
    ------
    ArtifactError
        If the directory is missing, of another format, or names an unknown index kind.
    """
    source = Path(path).expanduser()
    try:
        document = json.loads((source / INDEX_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(
            f"no readable {INDEX_FILE} in {source} ({exc}); write the index with index.save(path)"
        ) from exc
    if not isinstance(document, dict) or document.get("format") != INDEX_FORMAT:
        raise ArtifactError(f"{source} does not hold a palate vector index")
    if document.get("format_version", 0) > INDEX_FORMAT_VERSION:
        raise ArtifactError(f"the index at {source} was written by a newer palate; upgrade palate")
    cls = _INDEX_KINDS.get(document.get("kind", ""))
    if cls is None:
        raise ArtifactError(f"{source} names an unknown index kind {document.get('kind')!r}")
    params = dict(document.get("params", {}))
    try:
        if cls is FaissIndex:
            index: VectorIndexBase = FaissIndex(params.pop("kind"), **params)
        else:
            index = ExactIndex(**params)
        vectors = np.load(source / VECTORS_FILE, allow_pickle=False)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ArtifactError(
            f"the index at {source} is corrupt ({exc}); build and save it again"
        ) from exc
    index.vectors_ = _as_vectors(vectors)
    index.metadata_ = dict(document.get("metadata", {}))
    index._load_extra(source)
    return index


__all__ = [
    "METRICS",
    "ExactIndex",
    "FaissIndex",
    "Metric",
    "Neighbors",
    "VectorIndexBase",
    "exclusion_lists",
    "recall_against_exact",
    "load_index",
    "make_index",
]
