"""Download a MovieLens zip from GroupLens, verify it and unpack it into the cache.

The zip is streamed into a hidden temporary file beside the cache, hashed on the way,
checked against the digests pinned in :mod:`palate.data.movielens`, unpacked into a hidden
temporary directory and only then renamed to ``<cache>/<name>/``; the zip is deleted. A
failed, interrupted or tampered download therefore leaves nothing behind that a later call
could mistake for data.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from palate.data.movielens import MovieLensRelease, release
from palate.errors import DatasetNotFoundError

logger = logging.getLogger(__name__)

#: Where GroupLens publishes the zips; ``PALATE_MOVIELENS_URL`` overrides it (e.g. a mirror).
DEFAULT_BASE_URL = "https://files.grouplens.org/datasets/movielens"
BASE_URL_ENV = "PALATE_MOVIELENS_URL"
CACHE_ENV = "PALATE_CACHE"
DATA_ENV = "PALATE_DATA"

#: Called as ``progress(bytes_done, bytes_total_or_None)`` while a download runs.
ProgressCallback = Callable[[int, int | None], None]

_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """``$PALATE_CACHE``, else ``~/.cache/palate``.

    Examples
    --------
    >>> default_cache_dir().name  # doctest: +SKIP
    'palate'
    """
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "palate"


def movielens_base_url(override: str | None = None) -> str:
    """The base URL the zips are fetched from: ``override``, ``$PALATE_MOVIELENS_URL`` or
    GroupLens' own, without a trailing slash."""
    url = override or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return url.rstrip("/")


def placement_hint(name: str, cache_dir: Path | None = None) -> str:
    """One sentence saying where to put the files of ``name`` by hand."""
    entry = release(name)
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    return (
        f"put {', '.join(entry.files)} in {cache / name}/ (or {entry.filename} in {cache}/), "
        f"or pass --data PATH / set {DATA_ENV} to a directory holding {name}/ or {entry.filename}"
    )


def download_movielens(
    name: str,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    base_url: str | None = None,
    timeout: float = 60.0,
    progress: ProgressCallback | None = None,
) -> Path:
    """Fetch ``<base_url>/<name>.zip``, verify it and unpack it to ``<cache_dir>/<name>/``.

    Parameters
    ----------
    name : str
        A release from :func:`palate.data.movielens.available`.
    cache_dir : path-like, optional
        Default :func:`default_cache_dir`.
    base_url : str, optional
        Default ``$PALATE_MOVIELENS_URL`` or GroupLens' server (HTTPS).
    timeout : float
        Seconds to wait for the server on connect and on each read.
    progress : callable, optional
        ``progress(bytes_done, bytes_total)`` after every chunk (total may be ``None``).

    Returns
    -------
    Path
        The unpacked directory, ``<cache_dir>/<name>``.

    Raises
    ------
    DatasetNotFoundError
        The server cannot be reached or answers with an error, the zip does not match its
        pinned size, SHA-256 or MD5, or it lacks the release's files. Nothing is left in the
        cache, and the message says where to put the files by hand.

    Examples
    --------
    >>> download_movielens("ml-100k")  # doctest: +SKIP
    PosixPath('/home/me/.cache/palate/ml-100k')
    """
    entry = release(name)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = cache / name
    if target.exists():
        if (target / entry.ratings_file).is_file():
            return target
        raise DatasetNotFoundError(
            f"{target} exists but lacks {entry.ratings_file}; remove that directory so that "
            f"{name} can be downloaded into it, or {placement_hint(name, cache)}"
        )
    url = f"{movielens_base_url(base_url)}/{entry.filename}"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetNotFoundError(
            f"cannot create the cache directory {cache} ({exc}); set {CACHE_ENV} to a "
            f"writable directory, or {placement_hint(name, cache)}"
        ) from exc

    handle, part_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".zip.part", dir=cache)
    part = Path(part_name)
    try:
        with os.fdopen(handle, "wb") as sink:
            sha256, md5, size = _fetch(
                url, sink, timeout, progress, entry.size, placement_hint(name, cache)
            )
        _verify(entry, url, sha256, md5, size, cache)
        return _unpack(entry, part, target, cache)
    finally:
        part.unlink(missing_ok=True)


def _fetch(
    url: str,
    sink: object,
    timeout: float,
    progress: ProgressCallback | None,
    expected_size: int | None,
    hint: str,
) -> tuple[str, str, int]:
    """Stream ``url`` into ``sink``; return its SHA-256, MD5 and size.

    Any network failure becomes a :class:`DatasetNotFoundError` ending in ``hint``.
    """
    from palate.version import __version__

    name = url.rsplit("/", 1)[-1].removesuffix(".zip")
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    done = 0
    request = urllib.request.Request(url, headers={"User-Agent": f"palate/{__version__}"})
    logger.info("downloading %s", url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else expected_size
            while chunk := response.read(_CHUNK):
                sha256.update(chunk)
                md5.update(chunk)
                sink.write(chunk)  # type: ignore[attr-defined]
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except urllib.error.HTTPError as exc:
        raise DatasetNotFoundError(
            f"cannot download {name}: {url} answered HTTP {exc.code} {exc.reason}; {hint}"
        ) from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DatasetNotFoundError(
            f"cannot download {name} from {url} ({reason}); you may be offline: {hint}"
        ) from exc
    return sha256.hexdigest(), md5.hexdigest(), done


def _verify(
    entry: MovieLensRelease, url: str, sha256: str, md5: str, size: int, cache: Path
) -> None:
    checks = [("size", entry.size, size), ("SHA-256", entry.sha256, sha256),
              ("MD5", entry.md5, md5)]
    for label, expected, actual in checks:
        if expected is not None and str(expected).lower() != str(actual).lower():
            raise DatasetNotFoundError(
                f"the {entry.filename} downloaded from {url} has {label} {actual}, expected "
                f"{expected}: it is damaged or not GroupLens' file, so nothing was kept; "
                f"retry later or {placement_hint(entry.name, cache)}"
            )
    if entry.is_verified:
        logger.info("%s matches its pinned %s", entry.filename,
                    "SHA-256" if entry.sha256 else "MD5")
    else:
        logger.warning(
            "%s has no pinned digest (a rolling release); accepted unverified with SHA-256 %s",
            entry.filename, sha256,
        )


def _unpack(entry: MovieLensRelease, archive_path: Path, target: Path, cache: Path) -> Path:
    """Extract the zip into a hidden directory, then rename it to ``target``."""
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".unpack", dir=cache))
    try:
        try:
            with zipfile.ZipFile(archive_path) as archive:
                _extract(archive, staging)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
            raise DatasetNotFoundError(
                f"the downloaded {entry.filename} is not a readable zip ({exc}); nothing was "
                f"kept: {placement_hint(entry.name, cache)}"
            ) from exc
        missing = [f for f in entry.files if not (staging / f).is_file()]
        if missing:
            raise DatasetNotFoundError(
                f"the downloaded {entry.filename} lacks {', '.join(missing)}; nothing was kept: "
                f"{placement_hint(entry.name, cache)}"
            )
        try:
            staging.rename(target)
        except OSError:
            # Someone else finished the same download first: keep theirs if it is whole.
            if (target / entry.ratings_file).is_file():
                return target
            raise
        logger.info("unpacked %s into %s", entry.filename, target)
        return target
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _extract(archive: zipfile.ZipFile, destination: Path) -> None:
    """Extract every regular member, dropping the one top-level folder if all share it.

    Members with absolute paths or ``..`` are refused (a zip must not write outside
    ``destination``).
    """
    members = []
    for info in archive.infolist():
        parts = PurePosixPath(info.filename).parts
        if info.is_dir() or not parts or parts[0] == "__MACOSX":
            continue
        if info.filename.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            raise DatasetNotFoundError(
                f"the zip holds an unsafe member name {info.filename!r}; refusing to unpack it"
            )
        members.append((info, parts))
    tops = {parts[0] for _, parts in members}
    strip = 1 if len(tops) == 1 and all(len(parts) > 1 for _, parts in members) else 0
    for info, parts in members:
        out = destination.joinpath(*parts[strip:])
        out.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as source, open(out, "wb") as sink:
            shutil.copyfileobj(source, sink, _CHUNK)


__all__ = [
    "BASE_URL_ENV",
    "CACHE_ENV",
    "DATA_ENV",
    "DEFAULT_BASE_URL",
    "ProgressCallback",
    "default_cache_dir",
    "download_movielens",
    "movielens_base_url",
    "placement_hint",
]
