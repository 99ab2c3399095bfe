"""Crash-safe directory publication: write aside, fsync, then rename into place.

A model directory is built in a temporary sibling (same file system, so renames are atomic)
and only then given its final name. Replacing an existing directory uses Linux's
``renameat2(RENAME_EXCHANGE)`` where available, which swaps the two names in one step, so the
target path always names a complete model even if the machine loses power. Elsewhere the old
directory is renamed aside and the new one renamed in: a crash between those two renames
leaves the old model intact under its aside name rather than half a model under the target.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM}


def write_file(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist), write ``data`` and fsync it."""
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_directory(path: Path) -> None:
    """Make renames and new entries in directory ``path`` durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _renameat2(source: Path, target: Path, flags: int) -> bool:
    """``renameat2(2)`` with ``flags``; False where the platform or file system lacks it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    c_int, c_path = ctypes.c_int, ctypes.c_char_p
    function.argtypes = [c_int, c_path, c_int, c_path, ctypes.c_uint]
    function.restype = ctypes.c_int
    if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(target))


def exchange(first: Path, second: Path) -> bool:
    """Atomically swap two existing paths; False where that is unsupported (nothing changed)."""
    return _renameat2(first, second, _RENAME_EXCHANGE)


def sibling_name(target: Path, tag: str) -> Path:
    """A fresh hidden path next to ``target``, e.g. ``.model.palate-tmp-1a2b3c4d``."""
    return target.with_name(f".{target.name}.palate-{tag}-{uuid.uuid4().hex[:8]}")


def publish_new(source: Path, target: Path) -> None:
    """Rename directory ``source`` to ``target``, which must not exist.

    Raises
    ------
    FileExistsError
        If ``target`` appeared meanwhile (it is left untouched).
    """
    if not _renameat2(source, target, _RENAME_NOREPLACE):
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "already exists", str(target))
        os.rename(source, target)
    fsync_directory(target.parent)


def replace_existing(source: Path, target: Path, *, may_delete: Callable[[Path], bool]) -> None:
    """Put directory ``source`` in place of directory ``target``, then delete the old one.

    Parameters
    ----------
    source : Path
        A complete directory next to ``target``.
    target : Path
        An existing directory.
    may_delete : callable
        Called on the old directory once it is out of the way; when it returns False the old
        directory is kept (and logged) instead of deleted.
    """
    if exchange(source, target):
        old = source
    else:
        old = sibling_name(target, "old")
        os.rename(target, old)
        try:
            os.rename(source, target)
        except BaseException:
            os.rename(old, target)
            raise
    fsync_directory(target.parent)
    if not may_delete(old):
        logger.warning("kept the replaced directory at %s: it is not a palate model", old)
        return
    try:
        shutil.rmtree(old)
    except OSError as exc:
        logger.warning("could not delete the replaced model at %s: %s", old, exc)


def remove_quietly(path: Path) -> None:
    """Delete a temporary directory, logging rather than raising if that fails."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("could not delete temporary directory %s: %s", path, exc)


__all__ = [
    "exchange",
    "fsync_directory",
    "publish_new",
    "remove_quietly",
    "replace_existing",
    "sibling_name",
    "write_file",
]
