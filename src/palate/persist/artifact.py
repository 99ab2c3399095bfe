"""Model files: a directory with a JSON manifest, safetensors arrays and Parquet tables.

Layout of a saved model (format ``"palate-model"``, version 1)::

    model/
      manifest.json          format, versions, model kind, config, data fingerprint, metrics,
                             and the SHA-256 and byte size of every other file
      arrays.safetensors     the model's numeric arrays (booleans stored as uint8)
      vocab_<name>.parquet   one per vocabulary: a single column ``id`` (int64 or string)
      items.parquet          optional item metadata (titles, genre lists, years ...)

Loading never unpickles: the manifest is JSON, arrays are safetensors, tables are Parquet
read with pyarrow, and the model class comes from an allow-list of model kinds
(:mod:`palate.persist.registry`), never from the file. Every file is checked against its
recorded size and SHA-256 before it is decoded, so truncated, edited or swapped files are
refused with :class:`~palate.errors.ArtifactError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from palate.data.vocabulary import Vocabulary
from palate.errors import ArtifactError, ConfigError, PalateError
from palate.models.base import Model, ModelState
from palate.persist import atomic, formats
from palate.persist.formats import ARRAYS_FILE, ITEMS_FILE
from palate.persist.registry import is_registered, resolve_model_class

logger = logging.getLogger(__name__)

FORMAT_NAME = "palate-model"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"

_MAX_MANIFEST_BYTES = 16 * 2**20
_VOCABULARY_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}$")

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Artifact:
    """A loaded model directory.

    Attributes
    ----------
    model : Model
        The rebuilt model, with ``data_fingerprint_`` set from the manifest.
    manifest : dict
        The parsed ``manifest.json`` (config, metrics, data fingerprint, palate version ...).
    item_table : DataFrame or None
        The item metadata saved with the model (list columns come back as Python lists).
    path : Path
        The directory it was loaded from.
    """

    model: Model
    manifest: dict[str, Any]
    item_table: pd.DataFrame | None
    path: Path


# ---------------------------------------------------------------------------------- save


def save(
    model: Model,
    path: PathLike,
    *,
    overwrite: bool = False,
    metrics: dict[str, Any] | None = None,
    item_table: pd.DataFrame | None = None,
    data_fingerprint: str | None = None,
    training_data: dict[str, Any] | None = None,
) -> Path:
    """Save a fitted model as a directory that :func:`load` can read back.

    Everything is written into a hidden temporary sibling of ``path``, fsynced, and then
    renamed into place, so ``path`` never holds half a model, even after a crash.

    Parameters
    ----------
    model : Model
        A fitted palate model whose ``model_kind`` is registered (see
        :func:`palate.persist.register_model_kind`).
    path : str or path-like
        The directory to create. Missing parent directories are created. An existing empty
        directory is used as if it were absent.
    overwrite : bool
        Replace an existing palate model directory at ``path``. The old model stays in place
        until the new one is complete. A file, or a non-empty directory that is not a palate
        model, is never replaced.
    metrics : dict, optional
        JSON-serialisable evaluation results to record in the manifest (e.g.
        ``{"ndcg@10": 0.31}``); NaN and infinity are refused (use None).
    item_table : DataFrame, optional
        Item metadata to ship with the model, e.g. columns ``item_id``, ``title``,
        ``genres`` (lists of str), ``year``; saved as ``items.parquet``.
    data_fingerprint : str, optional
        Identifies the training data (e.g. ``Interactions.fingerprint()``). Defaults to the
        model's ``data_fingerprint_`` attribute when it has one.
    training_data : dict, optional
        JSON-serialisable description of the data the model was fitted on, recorded as the
        manifest's ``training_data`` (``palate train`` writes the dataset's name, the kind
        and counts of the events, and the threshold ratings were turned into positives at).

    Returns
    -------
    Path
        The model directory.

    Raises
    ------
    ArtifactError
        If ``path`` exists and ``overwrite`` is False, if ``path`` is something that must not
        be replaced, or if writing fails (any previous model at ``path`` is then intact).

    Examples
    --------
    >>> model = Popularity().fit(data)  # doctest: +SKIP
    >>> save(model, "models/popularity", metrics={"recall@10": 0.12})  # doctest: +SKIP
    PosixPath('models/popularity')
    """
    if not isinstance(model, Model):
        raise ConfigError(
            f"save expects a palate model, got {type(model).__name__}; pass a fitted model "
            "such as palate.models.Popularity"
        )
    target = Path(path).expanduser()
    kind = model.model_kind
    if not is_registered(kind):
        raise ArtifactError(
            f"model kind {kind!r} of {type(model).__name__} is not registered, so it could not "
            "be loaded again; call palate.persist.register_model_kind(kind, 'module:Class') first"
        )
    existing = _existing_target(target)
    if existing == "model" and not overwrite:
        raise ArtifactError(
            f"a model already exists at {target}; pass overwrite=True to replace it "
            "or choose another path"
        )
    if data_fingerprint is None:
        data_fingerprint = getattr(model, "data_fingerprint_", None)
    if data_fingerprint is not None and not isinstance(data_fingerprint, str):
        raise ConfigError(
            f"data_fingerprint must be a string, got {type(data_fingerprint).__name__}; "
            "use Interactions.fingerprint()"
        )
    if metrics is not None and not isinstance(metrics, dict):
        raise ConfigError(f"metrics must be a dict of name -> value, got {type(metrics).__name__}")
    if training_data is not None and not isinstance(training_data, dict):
        raise ConfigError(
            f"training_data must be a dict, got {type(training_data).__name__}"
        )

    try:
        files = _encode_model(model, metrics, item_table, data_fingerprint, training_data)
    except PalateError:
        raise
    except Exception as exc:  # a model's to_state, safetensors or pyarrow failed
        raise ArtifactError(
            f"could not save the model to {target} ({type(exc).__name__}: {exc}); "
            "nothing at that path was changed"
        ) from exc

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtifactError(f"cannot create the directory {target.parent}: {exc}") from exc
    staging = atomic.sibling_name(target, "tmp")
    try:
        staging.mkdir()
        for name, data in files.items():  # the manifest comes last
            atomic.write_file(staging / name, data)
        atomic.fsync_directory(staging)
        # check again: the path may have changed while the files were written
        if _existing_target(target) is None:
            atomic.publish_new(staging, target)
        else:
            atomic.replace_existing(staging, target, may_delete=_is_model_or_empty)
    except FileExistsError as exc:
        atomic.remove_quietly(staging)
        raise ArtifactError(
            f"{target} appeared while the model was being saved; pass overwrite=True to "
            "replace it or choose another path"
        ) from exc
    except BaseException as exc:
        atomic.remove_quietly(staging)
        if isinstance(exc, PalateError) or not isinstance(exc, Exception):
            raise
        raise ArtifactError(
            f"could not save the model to {target} ({type(exc).__name__}: {exc}); "
            "nothing at that path was changed"
        ) from exc
    logger.info("saved %s model to %s", kind, target)
    return target


def _encode_model(
    model: Model,
    metrics: dict[str, Any] | None,
    item_table: pd.DataFrame | None,
    data_fingerprint: str | None,
    training_data: dict[str, Any] | None = None,
) -> dict[str, bytes]:
    """Every file of the model directory, by name, with ``manifest.json`` last.

    The manifest is written last so that a directory without one is recognisably incomplete.
    """
    state = model.to_state()
    _check_state(state, type(model).__name__)
    files, arrays_section, vocabulary_section = formats.encode_state(state)
    item_section: dict[str, Any] | None = None
    if item_table is not None:
        files[ITEMS_FILE], item_section = formats.encode_item_table(item_table)
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "palate_version": _palate_version(),
        "model_kind": model.model_kind,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "config": formats.json_checked(state.config, "the model config"),
        "extra": formats.json_checked(state.extra, "the model's extra state"),
        "data_fingerprint": data_fingerprint,
        "metrics": formats.json_checked(metrics or {}, "metrics"),
        "training_data": (
            None if training_data is None else formats.json_checked(training_data, "training_data")
        ),
        "arrays": arrays_section,
        "vocabularies": vocabulary_section,
        "item_table": item_section,
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in files.items()
        },
    }
    text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"
    files[MANIFEST_FILE] = text.encode("utf-8")
    return files


def _palate_version() -> str:
    from palate.version import __version__

    return __version__


def _existing_target(target: Path) -> str | None:
    """What is at ``target``: None (nothing), "empty" (empty directory) or "model".

    Anything that save must never replace raises :class:`ArtifactError`.
    """
    if target.is_symlink():
        raise ArtifactError(
            f"{target} is a symbolic link; save to the directory it points to, "
            "or remove the link first"
        )
    if not target.exists():
        return None
    if not target.is_dir():
        raise ArtifactError(
            f"{target} is a file, not a model directory; choose another path "
            "(palate never replaces other files)"
        )
    if _is_model_directory(target):
        return "model"
    if _is_empty_directory(target):
        return "empty"
    raise ArtifactError(
        f"{target} is a non-empty directory that does not hold a palate model; choose another "
        "path (palate never replaces other directories)"
    )


def _is_empty_directory(path: Path) -> bool:
    try:
        return path.is_dir() and not path.is_symlink() and next(path.iterdir(), None) is None
    except OSError:
        return False


def _is_model_directory(path: Path) -> bool:
    """Whether ``path`` holds a manifest.json of the palate model format (any version)."""
    manifest = path / MANIFEST_FILE
    try:
        if not manifest.is_file() or manifest.stat().st_size > _MAX_MANIFEST_BYTES:
            return False
        content = json.loads(manifest.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and content.get("format") == FORMAT_NAME


def _is_model_or_empty(path: Path) -> bool:
    return _is_model_directory(path) or _is_empty_directory(path)


def _check_state(state: object, model_name: str) -> None:
    """Refuse a ModelState that model files cannot hold (a bug in the model's ``_state``)."""
    fix = (
        f"{model_name}.to_state() must return a ModelState of JSON config, numeric arrays "
        "and Vocabularies"
    )
    if not isinstance(state, ModelState):
        raise ArtifactError(f"{fix}; got {type(state).__name__}")
    if not isinstance(state.config, dict) or not isinstance(state.extra, dict):
        raise ArtifactError(f"{fix}; config and extra must be dicts")
    if not isinstance(state.arrays, dict) or not isinstance(state.vocabularies, dict):
        raise ArtifactError(f"{fix}; arrays and vocabularies must be dicts")
    for name, array in state.arrays.items():
        if not isinstance(name, str) or not name:
            raise ArtifactError(f"{fix}; array names must be non-empty strings, got {name!r}")
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
            kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
            raise ArtifactError(
                f"{fix}; array {name!r} is {kind}, but only bool, integer and float arrays "
                "can be saved"
            )
    for name, vocabulary in state.vocabularies.items():
        if not isinstance(name, str) or not _VOCABULARY_NAME.match(name):
            raise ArtifactError(
                f"{fix}; vocabulary name {name!r} must be 1-64 letters, digits or '_'"
            )
        if not isinstance(vocabulary, Vocabulary):
            raise ArtifactError(f"{fix}; vocabulary {name!r} is {type(vocabulary).__name__}")


# ---------------------------------------------------------------------------------- load


def read_manifest(path: PathLike) -> dict[str, Any]:
    """Read and check the manifest of a model directory, without loading the model.

    The manifest is JSON; nothing else is read. Checks the format name, the format version and
    the types of the manifest's fields, but not the other files (:func:`load` does that).

    Parameters
    ----------
    path : str or path-like
        A model directory written by :func:`save`.

    Returns
    -------
    dict
        The manifest: ``format``, ``format_version``, ``palate_version``, ``model_kind``,
        ``created_at``, ``config``, ``extra``, ``data_fingerprint``, ``metrics``, ``arrays``,
        ``vocabularies``, ``item_table``, ``files``.

    Raises
    ------
    ArtifactError
        If there is no model directory at ``path``, or its manifest is missing, not JSON, of
        another format, or of a newer format version than this palate reads.
    """
    directory = Path(path).expanduser()
    if not directory.exists():
        raise ArtifactError(
            f"no model directory at {directory}; check the path (models are written with "
            "palate.save(model, path))"
        )
    if not directory.is_dir():
        raise ArtifactError(f"{directory} is a file; a palate model is a directory")
    manifest_path = directory / MANIFEST_FILE
    try:
        size = manifest_path.stat().st_size
        if size > _MAX_MANIFEST_BYTES:
            raise ArtifactError(
                f"{manifest_path} is {size} bytes, too large for a palate manifest; the model "
                "directory is corrupt, save the model again"
            )
        raw = manifest_path.read_bytes()
    except FileNotFoundError as exc:
        raise ArtifactError(
            f"{directory} has no {MANIFEST_FILE}, so it is not a palate model directory (or "
            "saving it was interrupted); save the model again"
        ) from exc
    except OSError as exc:
        raise ArtifactError(f"cannot read {manifest_path}: {exc}") from exc
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ArtifactError(
            f"{manifest_path} is not valid JSON ({exc}); the model directory is corrupt, "
            "save the model again"
        ) from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{manifest_path} is not a JSON object; save the model again")
    if manifest.get("format") != FORMAT_NAME:
        raise ArtifactError(
            f"{directory} is not a palate model (manifest format {manifest.get('format')!r}, "
            f"expected {FORMAT_NAME!r})"
        )
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ArtifactError(
            f"{manifest_path} has an invalid format_version {version!r}; save the model again"
        )
    if version > FORMAT_VERSION:
        raise ArtifactError(
            f"the model at {directory} was written by a newer palate "
            f"({manifest.get('palate_version', 'unknown version')}, model format {version}; "
            f"this palate reads format {FORMAT_VERSION} and older); upgrade palate"
        )
    _check_manifest_fields(manifest, manifest_path)
    return manifest


_MANIFEST_FIELDS: dict[str, tuple[type, ...]] = {
    "model_kind": (str,),
    "config": (dict,),
    "extra": (dict,),
    "metrics": (dict,),
    "data_fingerprint": (str, type(None)),
    "arrays": (dict,),
    "vocabularies": (dict,),
    "item_table": (dict, type(None)),
    "files": (dict,),
}


#: Fields that manifests written by older palate versions lack.
_OPTIONAL_MANIFEST_FIELDS: dict[str, tuple[type, ...]] = {
    "training_data": (dict, type(None)),
}


def _check_manifest_fields(manifest: dict[str, Any], manifest_path: Path) -> None:
    for key, types in _OPTIONAL_MANIFEST_FIELDS.items():
        if not isinstance(manifest.get(key), types):
            raise ArtifactError(
                f"{manifest_path} has a malformed {key!r} field; the model directory is "
                "corrupt, save the model again"
            )
    for key, types in _MANIFEST_FIELDS.items():
        if key not in manifest or not isinstance(manifest[key], types):
            raise ArtifactError(
                f"{manifest_path} has a missing or malformed {key!r} field; the model directory "
                "is corrupt, save the model again"
            )


def load(path: PathLike) -> Model:
    """Load a model saved with :func:`save`.

    Parameters
    ----------
    path : str or path-like
        A model directory.

    Returns
    -------
    Model
        The model, ready to ``recommend`` / ``predict``, with ``data_fingerprint_`` set from
        the manifest.

    Raises
    ------
    ArtifactError
        If the directory is missing, of an unknown or newer format, names a model kind that is
        not allowed, or any file is missing, truncated, edited or swapped.

    Examples
    --------
    >>> model = load("models/popularity")  # doctest: +SKIP
    >>> model.recommend([1, 2], k=5).item_ids.shape  # doctest: +SKIP
    (2, 5)
    """
    return _load(path, with_item_table=False).model


def load_artifact(path: PathLike) -> Artifact:
    """Load a model directory with its manifest and item table (for the CLI and service).

    Parameters
    ----------
    path : str or path-like
        A model directory.

    Returns
    -------
    Artifact
        ``model``, ``manifest``, ``item_table`` (DataFrame or None) and ``path``.

    Raises
    ------
    ArtifactError
        As :func:`load`.
    """
    return _load(path, with_item_table=True)


def _load(path: PathLike, *, with_item_table: bool) -> Artifact:
    directory = Path(path).expanduser()
    manifest = read_manifest(directory)
    kind = manifest["model_kind"]
    model_class = resolve_model_class(kind)
    contents = _read_verified_files(directory, manifest)

    arrays_section = _section(manifest["arrays"], "arrays", directory)
    arrays_file = _referenced_file(arrays_section, manifest, directory)
    arrays = formats.decode_arrays(contents[arrays_file], arrays_section, directory)
    vocabularies: dict[str, Vocabulary] = {}
    for name, entry in manifest["vocabularies"].items():
        section = _section(entry, f"vocabularies.{name}", directory)
        vocabulary_file = _referenced_file(section, manifest, directory)
        vocabularies[name] = formats.decode_vocabulary(
            contents[vocabulary_file], name, section, directory
        )
    item_table: pd.DataFrame | None = None
    if manifest["item_table"] is not None:
        section = _section(manifest["item_table"], "item_table", directory)
        items_file = _referenced_file(section, manifest, directory)
        if with_item_table:
            item_table = formats.decode_item_table(contents[items_file], directory)

    state = ModelState(
        config=manifest["config"],
        arrays=arrays,
        vocabularies=vocabularies,
        extra=manifest["extra"],
    )
    try:
        model = model_class.from_state(state)
        if not isinstance(model, model_class):
            raise TypeError(f"from_state returned {type(model).__name__}")
        model.data_fingerprint_ = manifest["data_fingerprint"]
    except Exception as exc:
        raise ArtifactError(
            f"could not rebuild the {kind} model from {directory} "
            f"({type(exc).__name__}: {exc}); the files are intact but inconsistent with this "
            f"palate's {model_class.__name__}, save the model again with this palate"
        ) from exc
    logger.info("loaded %s model from %s", kind, directory)
    return Artifact(model=model, manifest=manifest, item_table=item_table, path=directory)


def _section(entry: Any, where: str, directory: Path) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise formats.corrupt(directory, f"the manifest's {where!r} entry is malformed")
    return entry


def _referenced_file(section: dict[str, Any], manifest: dict[str, Any], directory: Path) -> str:
    name = section.get("file")
    if not isinstance(name, str) or name not in manifest["files"]:
        raise formats.corrupt(directory, f"the manifest refers to {name!r}, which it does not list")
    return name


def _read_verified_files(directory: Path, manifest: dict[str, Any]) -> dict[str, bytes]:
    """Every file the manifest lists, checked against its recorded size and SHA-256."""
    contents: dict[str, bytes] = {}
    for name, record in manifest["files"].items():
        if not isinstance(name, str) or not _FILE_NAME.match(name) or name == MANIFEST_FILE:
            raise formats.corrupt(directory, f"the manifest lists an invalid file name {name!r}")
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("bytes"), int)
            or not isinstance(record.get("sha256"), str)
        ):
            raise formats.corrupt(directory, f"the manifest entry for {name} is malformed")
        expected_size, expected_digest = record["bytes"], record["sha256"]
        file_path = directory / name
        try:
            with open(file_path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size != expected_size:
                    raise formats.corrupt(
                        directory,
                        f"{name} is {size} bytes but was saved with {expected_size} "
                        "(truncated or replaced)",
                    )
                data = handle.read()
        except FileNotFoundError as exc:
            raise formats.corrupt(directory, f"{name} is missing") from exc
        except OSError as exc:
            raise ArtifactError(f"cannot read {file_path}: {exc}") from exc
        if len(data) != expected_size:
            raise formats.corrupt(directory, f"{name} changed while it was being read")
        if hashlib.sha256(data).hexdigest() != expected_digest:
            raise formats.corrupt(
                directory, f"the SHA-256 of {name} does not match the manifest (edited or swapped)"
            )
        contents[name] = data
    return contents


__all__ = [
    "ARRAYS_FILE",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ITEMS_FILE",
    "MANIFEST_FILE",
    "Artifact",
    "load",
    "load_artifact",
    "read_manifest",
    "save",
]
