"""Indexes by name, and index directories read back: ``make_index`` and ``load_index``
over the exact index and the FAISS kinds."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from palate.errors import ArtifactError, ConfigError
from palate.retrieval.faiss_index import FaissIndex
from palate.retrieval.index import (
    INDEX_FILE,
    INDEX_FORMAT,
    INDEX_FORMAT_VERSION,
    VECTORS_FILE,
    ExactIndex,
    VectorIndexBase,
    _as_vectors,
)


def make_index(params: dict[str, Any]) -> VectorIndexBase:
    """An unbuilt index from ``{"kind": "exact" | "flat" | "pq" | "ivfpq" | "ivf" | "hnsw" |
    "auto", ...parameters}`` (every kind but ``"exact"`` is a
    :class:`~palate.retrieval.faiss_index.FaissIndex`)."""
    params = dict(params)
    kind = params.pop("kind", "exact")
    if kind == "exact":
        return ExactIndex(**params)
    if kind in FaissIndex.KINDS:
        return FaissIndex(kind, **params)
    raise ConfigError(
        f"index kind must be 'exact' or one of {', '.join(map(repr, FaissIndex.KINDS))}, "
        f"got {kind!r}"
    )


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
    kinds: dict[str, type[VectorIndexBase]] = {"exact": ExactIndex, "faiss": FaissIndex}
    cls = kinds.get(document.get("kind", ""))
    if cls is None:
        raise ArtifactError(f"{source} names an unknown index kind {document.get('kind')!r}")
    params = dict(document.get("params", {}))
    try:
        if cls is FaissIndex:
            index: VectorIndexBase = FaissIndex(params.pop("kind"), **params)
        else:
            index = ExactIndex(**params)
        vectors = np.load(source / VECTORS_FILE, allow_pickle=False)
    except (OSError, ValueError, TypeError, KeyError, ConfigError) as exc:
        raise ArtifactError(
            f"the index at {source} is corrupt ({exc}); build and save it again"
        ) from exc
    index.vectors_ = _as_vectors(vectors)
    index.metadata_ = dict(document.get("metadata", {}))
    index._load_extra(source)
    return index


__all__ = ["load_index", "make_index"]
