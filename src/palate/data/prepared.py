"""Read data prepared on Spark (``palate.spark.write_prepared``) with no Spark at all.

Layout of a prepared-data directory::

    prepared.json                     format, kind, rating scale, sizes, splits, features
    users/, items/                    Parquet: idx (int32), id (int64 or string)
    interactions/split=<name>/        Parquet: user_idx, item_idx (int32), value (float32)
                                      [, timestamp (int64)]
    user_features/, item_features/    Parquet: user_idx / item_idx, then feature columns

Indices are the vocabularies' indices, so what Spark trained and what is read here agree
index for index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from palate.data.interactions import Interactions
from palate.data.vocabulary import Vocabulary
from palate.errors import DataError

FORMAT_NAME = "palate-prepared"
FORMAT_VERSION = 1
MANIFEST_FILE = "prepared.json"


@dataclass(frozen=True, eq=False)
class PreparedData:
    """Interactions per split, with the vocabularies and features Spark computed.

    Attributes
    ----------
    splits : dict of str -> Interactions
        e.g. ``{"train": ..., "test": ...}``, all with the same vocabularies.
    user_features, item_features : DataFrame or None
        Indexed by ``user_idx`` / ``item_idx`` (rows in index order).
    manifest : dict
    """

    splits: dict[str, Interactions]
    user_features: pd.DataFrame | None = None
    item_features: pd.DataFrame | None = None
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def train(self) -> Interactions:
        return self.splits["train"]

    @property
    def test(self) -> Interactions | None:
        return self.splits.get("test")


def is_prepared(path: str | PathLike[str]) -> bool:
    """Whether ``path`` is a directory written by ``palate.spark.write_prepared``."""
    return (Path(path) / MANIFEST_FILE).is_file()


def read_prepared(path: str | PathLike[str]) -> PreparedData:
    """Load a prepared-data directory.

    Raises
    ------
    DataError
        Not a prepared-data directory, a newer format, or files that disagree with the
        manifest.
    """
    root = Path(path)
    try:
        manifest = json.loads((root / MANIFEST_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(
            f"{root} has no {MANIFEST_FILE}; write it with palate.spark.write_prepared"
        ) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {root / MANIFEST_FILE}: {exc}") from exc
    if manifest.get("format") != FORMAT_NAME:
        raise DataError(f"{root} is not a palate prepared-data directory")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise DataError(
            f"{root} has prepared-data format {manifest['format_version']}, newer than this "
            f"palate reads ({FORMAT_VERSION}); upgrade palate"
        )
    users = _vocabulary(root / "users", manifest.get("n_users"))
    items = _vocabulary(root / "items", manifest.get("n_items"))
    scale = manifest.get("rating_scale")
    splits = {}
    for name in manifest.get("splits", {}):
        table = _read(root / "interactions" / f"split={name}")
        timestamps = (
            table["timestamp"].to_numpy(np.int64) if "timestamp" in table.columns else None
        )
        splits[name] = Interactions(
            users,
            items,
            table["user_idx"].to_numpy(np.int32),
            table["item_idx"].to_numpy(np.int32),
            table["value"].to_numpy(np.float32),
            timestamps,
            kind=manifest.get("kind", "explicit"),
            rating_scale=tuple(scale) if scale else None,
        )
    features = {}
    for name, key in (("user_features", "user_idx"), ("item_features", "item_idx")):
        if (root / name).exists():
            frame = _read(root / name)
            features[name] = frame.sort_values(key, kind="stable").set_index(key)
    return PreparedData(
        splits, features.get("user_features"), features.get("item_features"), manifest
    )


def _read(path: Path) -> pd.DataFrame:
    try:
        return ds.dataset(str(path), format="parquet").to_table().to_pandas()
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path} as Parquet: {exc}") from exc


def _vocabulary(path: Path, size: Any) -> Vocabulary:
    frame = _read(path).sort_values("idx", kind="stable")
    if not np.array_equal(frame["idx"].to_numpy(), np.arange(len(frame))) or (
        size is not None and len(frame) != int(size)
    ):
        raise DataError(f"{path} does not number its ids 0 .. n-1 as the manifest says")
    return Vocabulary(frame["id"].to_numpy())


__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "MANIFEST_FILE", "PreparedData", "is_prepared",
           "read_prepared"]
