"""The files of a model directory, encoded and decoded: safetensors arrays, Parquet
vocabularies and item tables, and the JSON values of the manifest.

Decoding trusts nothing: every array is checked against its manifest entry (dtype, shape,
booleans that hold only 0/1), every table against its expected columns and types, and Arrow
extension types (which may name their own deserialisers) are refused. Errors are
:class:`~palate.errors.ArtifactError` naming the model directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import safetensors.numpy as safetensors_numpy

from palate.data.vocabulary import Vocabulary
from palate.errors import ArtifactError, ConfigError, PalateError
from palate.models.base import ModelState

ARRAYS_FILE = "arrays.safetensors"
ITEMS_FILE = "items.parquet"
ID_COLUMN = "id"
_ID_TYPES = {"int64", "str"}


def encode_state(
    state: ModelState,
) -> tuple[dict[str, bytes], dict[str, Any], dict[str, Any]]:
    """The file contents for a state, and the manifest sections describing them."""
    tensors: dict[str, np.ndarray] = {}
    described: dict[str, Any] = {}
    for name, array in state.arrays.items():
        stored = array.astype(np.uint8) if array.dtype.kind == "b" else array
        stored = np.ascontiguousarray(stored, dtype=stored.dtype.newbyteorder("="))
        tensors[name] = stored
        described[name] = {
            "dtype": array.dtype.name,
            "stored_dtype": stored.dtype.name,
            "shape": list(array.shape),
        }
    files = {ARRAYS_FILE: safetensors_numpy.save(tensors)}
    arrays_section = {"file": ARRAYS_FILE, "tensors": described}

    vocabulary_section: dict[str, Any] = {}
    for name, vocabulary in state.vocabularies.items():
        file_name = f"vocab_{name}.parquet"
        files[file_name], id_type = encode_vocabulary(vocabulary, name)
        vocabulary_section[name] = {"file": file_name, "id_type": id_type, "size": len(vocabulary)}
    return files, arrays_section, vocabulary_section


def encode_vocabulary(vocabulary: Vocabulary, name: str) -> tuple[bytes, str]:
    ids = vocabulary.ids
    if vocabulary.is_integer:
        column, id_type = pa.array(ids, type=pa.int64()), "int64"
    else:
        try:
            column, id_type = pa.array(ids, type=pa.string()), "str"
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ArtifactError(
                f"vocabulary {name!r} holds ids that are neither integers nor strings ({exc}); "
                "use int or str ids"
            ) from exc
    return parquet_bytes(pa.table({ID_COLUMN: column})), id_type


def encode_item_table(frame: pd.DataFrame) -> tuple[bytes, dict[str, Any]]:
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(
            f"item_table must be a pandas DataFrame, got {type(frame).__name__}"
        )
    try:
        table = pa.Table.from_pandas(frame)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise ArtifactError(
            f"the item table cannot be stored as Parquet ({exc}); its columns must hold "
            "numbers, strings, booleans, dates or lists of those"
        ) from exc
    section = {"file": ITEMS_FILE, "rows": len(frame), "columns": [str(c) for c in frame.columns]}
    return parquet_bytes(table), section


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def json_checked(value: dict[str, Any], what: str) -> dict[str, Any]:
    """``value`` as plain JSON types; refuses what JSON cannot hold instead of guessing."""
    try:
        return json.loads(json.dumps(value, allow_nan=False, default=_json_default))
    except (TypeError, ValueError) as exc:
        raise ArtifactError(
            f"{what} must be JSON-serialisable: numbers, strings, booleans, None, lists and "
            f"dicts, with None instead of NaN or infinity ({exc})"
        ) from exc


def corrupt(directory: Path, detail: str) -> ArtifactError:
    return ArtifactError(
        f"the model at {directory} is corrupt: {detail}; save the model again "
        "(or restore the directory from a copy)"
    )


def decode_arrays(data: bytes, section: dict[str, Any], directory: Path) -> dict[str, np.ndarray]:
    described = section.get("tensors")
    if not isinstance(described, dict):
        raise corrupt(directory, "the manifest's array list is malformed")
    try:
        stored = safetensors_numpy.load(data)
    except Exception as exc:  # safetensors raises its own error type
        raise corrupt(directory, f"{ARRAYS_FILE} cannot be decoded ({exc})") from exc
    if set(stored) != set(described):
        raise corrupt(
            directory,
            f"{ARRAYS_FILE} holds arrays {sorted(stored)} but the manifest lists "
            f"{sorted(described)}",
        )
    arrays: dict[str, np.ndarray] = {}
    for name, array in stored.items():
        info = described[name]
        if (
            not isinstance(info, dict)
            or info.get("stored_dtype") != array.dtype.name
            or info.get("shape") != list(array.shape)
        ):
            raise corrupt(directory, f"array {name!r} does not match its manifest entry")
        if info.get("dtype") == "bool":
            if array.size and array.max() > 1:
                raise corrupt(directory, f"boolean array {name!r} holds values other than 0/1")
            array = array.astype(bool)
        elif info.get("dtype") != array.dtype.name:
            raise corrupt(directory, f"array {name!r} does not match its manifest entry")
        if not array.flags.writeable:
            array = array.copy()
        arrays[name] = array
    return arrays


def decode_vocabulary(
    data: bytes, name: str, section: dict[str, Any], directory: Path
) -> Vocabulary:
    id_type, size = section.get("id_type"), section.get("size")
    if id_type not in _ID_TYPES or not isinstance(size, int):
        raise corrupt(directory, f"the manifest entry of vocabulary {name!r} is malformed")
    table = read_parquet(data, section["file"], directory)
    if table.column_names != [ID_COLUMN]:
        raise corrupt(directory, f"{section['file']} must have exactly one column {ID_COLUMN!r}")
    column = table.column(ID_COLUMN)
    expected = pa.types.is_int64 if id_type == "int64" else _is_string_type
    if not expected(column.type) or column.null_count or len(column) != size:
        raise corrupt(directory, f"{section['file']} does not match its manifest entry")
    if id_type == "int64":
        ids = column.to_numpy().astype(np.int64, copy=False)
    else:
        ids = np.array(column.to_pylist(), dtype=object)
    try:
        return Vocabulary(ids)
    except PalateError as exc:
        raise corrupt(directory, f"vocabulary {name!r}: {exc}") from exc


def _is_string_type(arrow_type: pa.DataType) -> bool:
    return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))


def read_parquet(data: bytes, name: str, directory: Path) -> pa.Table:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except Exception as exc:  # pyarrow raises several unrelated types
        raise corrupt(directory, f"{name} cannot be read as Parquet ({exc})") from exc
    for field in table.schema:
        # extension types may name their own deserialisers; plain Arrow types cannot
        if isinstance(field.type, pa.BaseExtensionType):
            raise corrupt(directory, f"{name} uses the Arrow extension type {field.type}")
    return table


def decode_item_table(data: bytes, directory: Path) -> pd.DataFrame:
    table = read_parquet(data, ITEMS_FILE, directory)
    try:
        frame = table.to_pandas()
    except Exception as exc:  # pyarrow raises several unrelated types
        raise corrupt(directory, f"{ITEMS_FILE} cannot be converted to pandas ({exc})") from exc
    # pyarrow gives list cells as NumPy arrays; hand back the lists that were saved
    for position, field in enumerate(table.schema):
        if field.name in frame.columns and (
            pa.types.is_list(field.type) or pa.types.is_large_list(field.type)
        ):
            frame[field.name] = pd.Series(
                table.column(position).to_pylist(), index=frame.index, dtype=object
            )
    return frame


__all__ = [
    "ARRAYS_FILE",
    "ID_COLUMN",
    "ITEMS_FILE",
    "corrupt",
    "decode_arrays",
    "decode_item_table",
    "decode_vocabulary",
    "encode_item_table",
    "encode_state",
    "encode_vocabulary",
    "json_checked",
    "parquet_bytes",
    "read_parquet",
]
