"""Find, fetch and load datasets by name or path: :func:`movielens`, :func:`load_interactions`."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

import pandas as pd

from palate.data.dataset import Dataset, MovieLensDataset
from palate.data.download import (
    DATA_ENV,
    ProgressCallback,
    default_cache_dir,
    download_movielens,
    placement_hint,
)
from palate.data.interactions import DuplicatePolicy, Interactions
from palate.data.movielens import (
    RATINGS_FILE,
    RELEASES,
    MovieLensFiles,
    MovieLensRelease,
    read_movielens,
    release,
)
from palate.data.prepared import is_prepared, read_prepared
from palate.errors import ConfigError, DataError, DatasetNotFoundError

logger = logging.getLogger(__name__)

DEFAULT_MOVIELENS = "ml-latest-small"

#: Column names :func:`load_interactions` accepts in plain ratings files: palate's own and
#: MovieLens' csv names.
RATING_FILE_COLUMNS: tuple[tuple[str, str], ...] = (("user_id", "item_id"), ("userId", "movieId"))


def data_dirs(cache_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where :func:`movielens` looks, in order: each entry of ``$PALATE_DATA``
    (``os.pathsep``-separated), then the cache directory."""
    roots = [Path(p).expanduser() for p in os.environ.get(DATA_ENV, "").split(os.pathsep) if p]
    roots.append(Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir())
    return roots


def _copies_in(root: Path, entry: MovieLensRelease) -> list[Path]:
    """The copies of ``entry`` directly under ``root``: ``<name>/``, ``<folder>/``, zip."""
    found = []
    for folder in dict.fromkeys((entry.name, entry.folder)):
        if (root / folder / entry.ratings_file).is_file():
            found.append(root / folder)
    if (root / entry.filename).is_file():
        found.append(root / entry.filename)
    return found


def find_movielens(name: str, cache_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The first local copy of release ``name`` in :func:`data_dirs`, or ``None``.

    Examples
    --------
    >>> find_movielens("ml-100k")  # doctest: +SKIP
    PosixPath('/home/me/.cache/palate/ml-100k')
    """
    entry = release(name)
    for root in data_dirs(cache_dir):
        copies = _copies_in(root, entry)
        if copies:
            return copies[0]
    return None


def _resolve_path(path: Path, name: str | None) -> Path:
    """The directory or zip under ``path`` that holds the copy to read."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"{path} does not exist; pass a MovieLens directory or zip (--data PATH)"
        )
    if any((path / ratings).is_file() for ratings in RATINGS_FILE.values()):
        return path
    entries = [release(name)] if name is not None else list(RELEASES.values())
    found = {entry.name: copies[0] for entry in entries if (copies := _copies_in(path, entry))}
    if len(found) == 1:
        return next(iter(found.values()))
    if len(found) > 1:
        raise ConfigError(
            f"{path} holds several MovieLens releases ({', '.join(found)}); "
            "pass name= to choose one"
        )
    wanted = f"{name}/ or {release(name).filename}" if name else "a MovieLens release"
    raise DatasetNotFoundError(
        f"{path} holds neither MovieLens files (u.data, ratings.dat or ratings.csv) nor "
        f"{wanted}; pass the directory the GroupLens zip unpacks to, or the zip"
    )


def _name_of(source: Path, files: MovieLensFiles) -> tuple[str, MovieLensRelease | None]:
    """Which release a copy is: by its directory or zip name, else by its layout."""
    stem = source.name.removesuffix(".zip") if source.is_file() else source.name
    for entry in RELEASES.values():
        if stem in (entry.name, entry.folder):
            return entry.name, entry
    layout = files.layout
    if layout == "100k":
        return "ml-100k", RELEASES["ml-100k"]
    if layout == "dat":
        name = "ml-1m" if files.has("users.dat") else "ml-10m"
        return name, RELEASES[name]
    return stem, None  # some csv release under another name


def movielens(
    name: str | None = None,
    path: str | os.PathLike[str] | None = None,
    download: bool = True,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    timeout: float = 60.0,
    progress: ProgressCallback | None = None,
) -> MovieLensDataset:
    """Load a MovieLens release: ratings, movies and (ml-100k, ml-1m) users.

    Parameters
    ----------
    name : str, optional
        A release from :func:`palate.data.movielens.available`. Default
        ``"ml-latest-small"``, or, when ``path`` is given, whatever the path holds (told by
        its name or its files).
    path : path-like, optional
        A directory holding the files directly, a directory holding ``<name>/`` or
        ``<name>.zip``, or the zip itself (read without unpacking).
    download : bool
        Without ``path`` and with no local copy, download the GroupLens zip (HTTPS,
        checked against pinned digests) into the cache. ``False`` raises instead.
    cache_dir : path-like, optional
        Default ``$PALATE_CACHE`` or ``~/.cache/palate``.
    base_url : str, optional
        Where the zips are fetched from; default ``$PALATE_MOVIELENS_URL`` or GroupLens.
    timeout : float
        Network timeout in seconds.
    progress : callable, optional
        ``progress(bytes_done, bytes_total)`` during a download.

    Returns
    -------
    MovieLensDataset

    Raises
    ------
    DatasetNotFoundError
        No copy and no download (offline, refused, or a digest mismatch); the message says
        which files to put in which directory.
    ConfigError
        ``name`` is not a known release.

    Notes
    -----
    Without ``path``, a copy is looked for in each directory of ``$PALATE_DATA``, then in
    the cache, as ``<dir>/<name>/`` (laid out as the zip unpacks, e.g.
    ``ml-100k/u.data``) or ``<dir>/<name>.zip``.

    Examples
    --------
    >>> data = movielens("ml-100k")  # doctest: +SKIP
    >>> data.ratings.shape, data.users.columns.tolist()[:3]  # doctest: +SKIP
    ((943, 1682), ['user_id', 'age', 'gender'])
    """
    entry = release(name) if name is not None else None
    if path is not None:
        source = _resolve_path(Path(path).expanduser(), name)
    else:
        entry = entry or release(DEFAULT_MOVIELENS)
        found = find_movielens(entry.name, cache_dir)
        if found is None:
            cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
            if not download:
                searched = ", ".join(str(d) for d in data_dirs(cache_dir))
                raise DatasetNotFoundError(
                    f"no local copy of {entry.name} (looked in {searched}) and download=False; "
                    f"{placement_hint(entry.name, cache)}"
                )
            found = download_movielens(
                entry.name, cache, base_url=base_url, timeout=timeout, progress=progress
            )
        source = found

    files = MovieLensFiles(source)
    inferred, inferred_entry = _name_of(source, files)
    if entry is None:
        dataset_name, entry = inferred, inferred_entry
    else:
        dataset_name = entry.name
        if files.layout != entry.layout:
            raise DataError(
                f"{source} holds MovieLens files of the {files.layout!r} layout, not {entry.name}"
                f"'s ({entry.ratings_file}); pass the right name= or path"
            )
    scale = entry.rating_scale if entry is not None else None
    tables = read_movielens(source, rating_scale=scale)
    return MovieLensDataset(dataset_name, tables.ratings, tables.items, tables.users, source)


def load_interactions(
    spec: str | os.PathLike[str],
    *,
    download: bool = True,
    kind: Literal["explicit", "binary"] | None = None,
    rating_scale: tuple[float, float] | None = None,
    duplicates: DuplicatePolicy = "error",
    cache_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    timeout: float = 60.0,
    progress: ProgressCallback | None = None,
) -> Dataset:
    """Load what ``--data NAME-OR-PATH`` names: a MovieLens release or a ratings file.

    Parameters
    ----------
    spec : str or path-like
        An existing path wins over a release name:

        - a ``.csv`` / ``.tsv`` / ``.parquet`` file (or a directory of Parquet files) with
          columns ``user_id, item_id[, rating][, timestamp]`` or MovieLens'
          ``userId, movieId, rating, timestamp``; without a ``rating`` column every row is a
          positive (binary) event;
        - a MovieLens directory or zip (see :func:`movielens`);
        - a directory written by ``palate.spark.write_prepared`` (its train split, with the
          vocabularies Spark built);
        - a release name from :func:`palate.data.movielens.available`, found locally or
          downloaded.
    download : bool
        For a release name: download it when no local copy exists.
    kind : {"explicit", "binary"}, optional
        For ratings files: default explicit when there is a rating column, else binary.
    rating_scale : (low, high), optional
        For ratings files: the declared scale (MovieLens releases know theirs).
    duplicates : {"error", "last", "first", "mean"}
        For ratings files: what to do with repeated (user, item) pairs.
    cache_dir, base_url, timeout, progress
        As in :func:`movielens`.

    Returns
    -------
    Dataset
        A :class:`MovieLensDataset` for MovieLens; for a ratings file, a :class:`Dataset`
        with ``items`` and ``users`` set to ``None``.

    Raises
    ------
    DatasetNotFoundError
        ``spec`` is neither an existing path nor a release name, or the release cannot be
        found or downloaded.
    DataError
        The file lacks the needed columns or holds bad values.

    Examples
    --------
    >>> load_interactions("ml-latest-small").ratings.shape  # doctest: +SKIP
    (610, 9724)
    >>> load_interactions("events.parquet").items is None  # doctest: +SKIP
    True
    """
    path = Path(spec).expanduser()
    if not path.exists():
        if str(spec) in RELEASES:
            return movielens(
                str(spec), download=download, cache_dir=cache_dir, base_url=base_url,
                timeout=timeout, progress=progress,
            )
        raise DatasetNotFoundError(
            f"{spec!r} is neither an existing file or directory nor a MovieLens release "
            f"({', '.join(RELEASES)}); pass --data with a path or one of those names"
        )
    suffix = path.suffix.lower()
    if path.is_dir() and is_prepared(path):
        prepared = read_prepared(path)
        logger.info("read the train split of prepared data %s", path)
        return Dataset(path.name, prepared.train, None, None, path)
    if path.is_dir() and is_parquet_dir(path):
        frame = _read_frame(path, "parquet")
    elif path.is_dir() or suffix == ".zip":
        return movielens(path=path)
    elif suffix in (".csv", ".tsv", ".txt"):
        frame = _read_frame(path, "tsv" if suffix == ".tsv" else "csv")
    elif suffix in (".parquet", ".pq"):
        frame = _read_frame(path, "parquet")
    else:
        raise DataError(
            f"cannot tell the format of {path}; use a .csv, .tsv or .parquet ratings file, or a "
            "MovieLens directory or zip"
        )
    ratings = _frame_to_interactions(frame, path, kind, rating_scale, duplicates)
    logger.info("read %d events from %s", len(ratings), path)
    return Dataset(path.stem if path.is_file() else path.name, ratings, None, None, path)


def is_parquet_dir(path: Path) -> bool:
    """Whether ``path`` is a directory of Parquet files (and not a MovieLens copy)."""
    has_movielens = any((path / f).is_file() for f in RATINGS_FILE.values())
    return not has_movielens and any(path.glob("*.parquet"))


def _read_frame(path: Path, fmt: str) -> pd.DataFrame:
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, sep="\t" if fmt == "tsv" else ",")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot parse {path} as {fmt}: {exc}") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    except Exception as exc:  # pyarrow raises several unrelated types
        raise DataError(f"cannot read {path} as {fmt}: {exc}") from exc


def _frame_to_interactions(
    frame: pd.DataFrame,
    path: Path,
    kind: Literal["explicit", "binary"] | None,
    rating_scale: tuple[float, float] | None,
    duplicates: DuplicatePolicy,
) -> Interactions:
    columns = set(frame.columns)
    for user_col, item_col in RATING_FILE_COLUMNS:
        if {user_col, item_col} <= columns:
            break
    else:
        accepted = " or ".join(f"{u},{i}[,rating][,timestamp]" for u, i in RATING_FILE_COLUMNS)
        raise DataError(
            f"{path} has columns {list(frame.columns)}; a ratings file needs {accepted} "
            "(rename the columns)"
        )
    value_col = "rating" if "rating" in columns else None
    if kind is None:
        kind = "explicit" if value_col is not None else "binary"
    return Interactions.from_pandas(
        frame,
        user_col=user_col,
        item_col=item_col,
        value_col=value_col,
        timestamp_col="timestamp" if "timestamp" in columns else None,
        kind=kind,
        rating_scale=rating_scale,
        duplicates=duplicates,
    )


__all__ = [
    "DEFAULT_MOVIELENS",
    "RATING_FILE_COLUMNS",
    "data_dirs",
    "find_movielens",
    "is_parquet_dir",
    "load_interactions",
    "movielens",
]
