"""Where the service keeps the ratings and events people send: a small interface and SQLite.

The service writes every rating to a :class:`FeedbackStore` *before* it answers, and reads
them back to fold them into the user's vector. :class:`SQLiteFeedbackStore` is the default:
one file, table ``ratings(user_id, item_id, value, created_at)``, in WAL mode with
``synchronous=FULL`` so a commit is on disk (the write-ahead log fsynced) before the call
returns — an acknowledged rating survives the process being killed and the machine losing
power. One connection writes (SQLite allows a single writer; the lock serialises threads,
SQLite's own lock serialises processes), and readers never block it (WAL).

Another database (e.g. PostgreSQL) plugs in by implementing the :class:`FeedbackStore`
protocol.

Examples
--------
>>> store = SQLiteFeedbackStore("feedback.db")                 # doctest: +SKIP
>>> store.add([Rating("ann", 1, 4.5)])                          # doctest: +SKIP
>>> store.to_interactions(rating_scale=(0.5, 5.0))              # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from palate.data.interactions import Interactions
from palate.errors import ConfigError, DataError, PalateError

logger = logging.getLogger(__name__)

Id = int | str


class StoreUnavailableError(PalateError):
    """The feedback database cannot take writes now (removed, replaced, locked, failing).

    The service answers 503 with the message; the underlying SQLite error is in the log.
    """


@dataclass(frozen=True)
class Rating:
    """One piece of feedback: ``value`` given by ``user_id`` to ``item_id``.

    ``created_at`` is seconds since the epoch (UTC); the store fills it in when None.
    """

    user_id: Id
    item_id: Id
    value: float
    created_at: float | None = None


@dataclass(frozen=True)
class StoredRating:
    """A rating as stored: ``seq`` orders ratings (later ones replace earlier ones)."""

    seq: int
    user_id: Id
    item_id: Id
    value: float
    created_at: float


@runtime_checkable
class FeedbackStore(Protocol):
    """What the service needs from a feedback database."""

    def add(self, ratings: Sequence[Rating]) -> list[StoredRating]:
        """Store ``ratings`` durably, all or nothing; return them with their sequence numbers."""
        ...

    def since(self, seq: int) -> list[StoredRating]:
        """Every rating with a sequence number above ``seq``, in order."""
        ...

    def changed(self) -> bool:
        """Whether anything may have been written (by anyone) since the last call."""
        ...

    def count(self) -> int:
        """Number of stored ratings."""
        ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    NOT NULL,
    item_id    NOT NULL,
    value      REAL NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ratings_user ON ratings (user_id, seq);
CREATE TABLE IF NOT EXISTS served_models (
    origin     TEXT PRIMARY KEY,
    generation INTEGER NOT NULL,
    model_dir  TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""


class SQLiteFeedbackStore:
    """Ratings in an SQLite file (WAL mode, one writer, concurrent readers).

    Parameters
    ----------
    path : str or Path
        The database file (created with its table when missing). ``":memory:"`` is refused:
        a store is there to outlive the process.
    synchronous : {"FULL", "NORMAL"}
        ``FULL`` (default) fsyncs the write-ahead log at every commit, so acknowledged
        ratings survive a power loss too; ``NORMAL`` survives the process being killed but
        may lose the last commits on power loss.
    busy_timeout : float
        Seconds to wait for another process's write lock before a write fails with
        :class:`StoreUnavailableError` (the service answers 503).

    Notes
    -----
    ``user_id`` and ``item_id`` keep their type (SQLite stores integers as INTEGER and
    strings as TEXT in the same column), so integer ids come back as integers. A rating
    never overwrites another: the latest ``seq`` for a (user, item) pair is the one that
    counts, and the full history stays for auditing.

    Every write first checks that the file at ``path`` is still the one opened (same device
    and inode): a database removed (with its directory, say) or replaced while the service
    runs would otherwise take writes into an unlinked file and lose them. Such a store refuses
    writes from then on (:meth:`problem` says why) until the process opens it again.
    """

    def __init__(
        self, path: str | Path, *, synchronous: str = "FULL", busy_timeout: float = 2.0
    ) -> None:
        if str(path) == ":memory:":
            raise ConfigError("the feedback store needs a file path, not ':memory:'")
        if synchronous not in ("FULL", "NORMAL"):
            raise ConfigError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        self.path = Path(path).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the directory of {self.path}: {exc}") from exc
        self.busy_timeout = float(busy_timeout)
        # re-entrant: add() holds it while it commits the queued writes through _write()
        self._write_lock = threading.RLock()
        self._read_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queued: list[_QueuedWrite] = []
        self._writer = self._connect(synchronous, busy_timeout)
        with self._write_lock:
            try:
                self._writer.executescript(_SCHEMA)
            except sqlite3.Error as exc:
                self._writer.close()
                raise ConfigError(
                    f"cannot set up the feedback database {self.path}: {exc}"
                ) from exc
        self._reader = self._connect(synchronous, busy_timeout)
        self._data_version: int | None = None
        self._identity = self._file_identity()
        self._problem: str | None = None

    # ------------------------------------------------------------------ the file itself
    def _file_identity(self) -> tuple[int, int] | None:
        try:
            status = os.stat(self.path)
        except OSError:
            return None
        return (status.st_dev, status.st_ino)

    def problem(self) -> str | None:
        """Why this store cannot take writes now, or None when it can.

        The file removed or replaced since it was opened stays a problem (the open
        connections still point at the old file) until the process opens the store again.
        """
        if self._problem is None:
            identity = self._file_identity()
            if identity is None:
                self._problem = (
                    "the feedback database file was removed while the service was running; "
                    "ratings cannot be stored until the service is restarted"
                )
            elif identity != self._identity:
                self._problem = (
                    "the feedback database file was replaced while the service was running; "
                    "ratings cannot be stored until the service is restarted"
                )
            if self._problem is not None:
                logger.error("%s (%s)", self._problem, self.path)
        return self._problem

    def _check_writable(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise StoreUnavailableError(problem)

    def _failed(self, exc: sqlite3.Error, doing: str) -> StoreUnavailableError:
        """The error to raise for ``exc``: named for people, the original in the log."""
        busy = getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED") or (
            "locked" in str(exc)
        )
        if busy:
            logger.warning("feedback database %s busy while %s: %s", self.path, doing, exc)
            return StoreUnavailableError(
                f"the feedback database is locked by another process (waited "
                f"{self.busy_timeout:g} s) while {doing}; try again"
            )
        logger.error("feedback database %s failed while %s", self.path, doing, exc_info=exc)
        return StoreUnavailableError(f"the feedback database failed while {doing} ({exc})")

    def _write(self, statements: Any, doing: str) -> Any:
        """Run ``statements(cursor)`` in one immediate transaction; errors become 503s."""
        with self._write_lock:
            self._check_writable()
            cursor = self._writer.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                result = statements(cursor)
                cursor.execute("COMMIT")
            except BaseException as exc:
                if self._writer.in_transaction:  # SQLite may have rolled back already
                    try:
                        cursor.execute("ROLLBACK")
                    except sqlite3.Error:
                        logger.exception("rolling back the feedback database failed")
                if isinstance(exc, sqlite3.Error):
                    raise self._failed(exc, doing) from exc
                raise
        return result

    def _connect(self, synchronous: str, busy_timeout: float) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
            )
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the feedback database {self.path}: {exc}") from exc
        if str(mode).lower() != "wal":
            raise ConfigError(
                f"{self.path} cannot use write-ahead logging (journal mode {mode}); put the "
                "feedback database on a local file system"
            )
        connection.execute(f"PRAGMA synchronous={synchronous}")
        return connection

    # ------------------------------------------------------------------ writing
    def add(self, ratings: Sequence[Rating]) -> list[StoredRating]:
        """Insert ``ratings`` in one transaction, committed to disk before returning."""
        now = time.time()
        rows = [
            (
                _plain(r.user_id),
                _plain(r.item_id),
                float(r.value),
                now if r.created_at is None else float(r.created_at),
            )
            for r in ratings
        ]
        if not rows:
            return []
        mine = _QueuedWrite(rows)
        with self._queue_lock:
            self._queued.append(mine)
        # Group commit: whoever holds the write lock commits every write queued so far in one
        # transaction (one fsync for all of them); a writer whose rows went in with another's
        # finds them done when it gets the lock. Nobody is answered before its commit.
        with self._write_lock:
            if not mine.done:
                with self._queue_lock:
                    batch, self._queued = self._queued, []
                try:
                    self._write(lambda cursor: _insert(cursor, batch), "storing ratings")
                except BaseException as exc:
                    for queued in batch:
                        queued.error = exc
                    raise
                finally:
                    for queued in batch:
                        queued.done = True
        if mine.error is not None:
            raise mine.error
        return [StoredRating(mine.first + n, *row) for n, row in enumerate(rows)]

    # ------------------------------------------------------------------ the served model
    def publish_model(self, model_dir: str, origin: str | None = None) -> int:
        """Record that ``model_dir`` is now served; returns its generation (1, 2, ...).

        ``origin`` (default: ``model_dir``) names the server: the model directory it was
        started with. Every worker process of that server sees the change at its next request
        and loads the same model, so a reload reaches all of them; servers started with other
        model directories on the same database keep their own record and never follow it.
        """
        origin = str(model_dir) if origin is None else str(origin)

        def record(cursor: sqlite3.Cursor) -> int:
            row = cursor.execute(
                "SELECT generation FROM served_models WHERE origin = ?", (origin,)
            ).fetchone()
            generation = (row[0] if row else 0) + 1
            cursor.execute(
                "INSERT OR REPLACE INTO served_models VALUES (?, ?, ?, ?)",
                (origin, generation, str(model_dir), time.time()),
            )
            return int(generation)

        return int(self._write(record, "recording the served model"))

    def published_models(self) -> dict[str, tuple[int, str]]:
        """``{origin: (generation, model_dir)}`` of every server that published here."""
        rows = self._read(
            "SELECT origin, generation, model_dir FROM served_models", (), "reading models"
        )
        return {str(o): (int(g), str(d)) for o, g, d in rows}

    def published_model(self, origin: str | None = None) -> tuple[int, str] | None:
        """(generation, model_dir) last published by ``origin`` (default: by anyone), or None."""
        if origin is None:
            rows = self._read(
                "SELECT generation, model_dir FROM served_models ORDER BY updated_at DESC LIMIT 1",
                (),
                "reading the served model",
            )
        else:
            rows = self._read(
                "SELECT generation, model_dir FROM served_models WHERE origin = ?",
                (str(origin),),
                "reading the served model",
            )
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    def _read(self, sql: str, parameters: tuple[Any, ...], doing: str) -> list[Any]:
        with self._read_lock:
            try:
                return self._reader.execute(sql, parameters).fetchall()
            except sqlite3.Error as exc:
                raise self._failed(exc, doing) from exc

    # ------------------------------------------------------------------ reading
    def since(self, seq: int) -> list[StoredRating]:
        rows = self._read(
            "SELECT seq, user_id, item_id, value, created_at FROM ratings WHERE seq > ? "
            "ORDER BY seq",
            (int(seq),),
            "reading ratings",
        )
        return [StoredRating(*row) for row in rows]

    def changed(self) -> bool:
        """Cheap check (``PRAGMA data_version``) for commits since the last call."""
        version = self._read("PRAGMA data_version", (), "checking for changes")[0][0]
        changed = version != self._data_version
        self._data_version = version
        return changed

    def count(self) -> int:
        with self._read_lock:
            return int(self._reader.execute("SELECT COUNT(*) FROM ratings").fetchone()[0])

    def to_frame(self) -> pd.DataFrame:
        """The latest rating of every (user, item) pair: user_id, item_id, rating, timestamp."""
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT user_id, item_id, value, created_at FROM ratings r WHERE seq = "
                "(SELECT MAX(seq) FROM ratings WHERE user_id = r.user_id "
                "AND item_id = r.item_id) ORDER BY seq"
            ).fetchall()
        frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
        for column in ("user_id", "item_id"):
            frame[column] = _typed_column(frame[column])
        frame["timestamp"] = frame["timestamp"].astype(np.int64)
        return frame

    def to_interactions(self, **kwargs: Any) -> Interactions:
        """The stored feedback as :class:`~palate.Interactions` for the next training run.

        Keyword arguments go to :meth:`Interactions.from_pandas` (``kind``,
        ``rating_scale``); the latest rating of each (user, item) pair is used.
        """
        kwargs.setdefault("timestamp_col", "timestamp")
        frame = self.to_frame()
        if frame.empty:
            raise DataError(f"the feedback database {self.path} holds no ratings yet")
        return Interactions.from_pandas(frame, **kwargs)

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            self._writer.close()
            self._reader.close()

    def __enter__(self) -> SQLiteFeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(eq=False)
class _QueuedWrite:
    """One add() call's rows, waiting for (or done by) a group commit."""

    rows: list[tuple[Any, Any, float, float]]
    first: int = 0
    done: bool = False
    error: BaseException | None = None


def _insert(cursor: sqlite3.Cursor, batch: list[_QueuedWrite]) -> None:
    """Insert every queued write's rows, in order; each learns its first ``seq`` (its rows
    get consecutive ones: nothing else writes inside the transaction)."""
    for queued in batch:
        for n, row in enumerate(queued.rows):
            cursor.execute(
                "INSERT INTO ratings (user_id, item_id, value, created_at) VALUES (?, ?, ?, ?)",
                row,
            )
            if n == 0:
                assert cursor.lastrowid is not None
                queued.first = cursor.lastrowid


def merge_feedback(base: Interactions, feedback: pd.DataFrame) -> Interactions:
    """Training data for the next run: ``base`` with the collected feedback merged in.

    Parameters
    ----------
    base : Interactions
        The data the served model was trained on.
    feedback : DataFrame
        :meth:`SQLiteFeedbackStore.to_frame` (user_id, item_id, rating, timestamp).

    Returns
    -------
    Interactions
        Of ``base``'s kind and scale. A (user, item) pair in both keeps the feedback value.
        When the feedback has string user ids and ``base`` integer ones (e.g. web visitors
        beside MovieLens users), every user id becomes a string.
    """
    old = base.to_pandas()
    new = feedback.rename(columns={"rating": "value"})[["user_id", "item_id", "value"]].copy()
    with_time = "timestamp" in old.columns and "timestamp" in feedback.columns
    if with_time:
        new["timestamp"] = feedback["timestamp"].to_numpy()
        if old["timestamp"].dtype.kind == "M":
            new["timestamp"] = pd.to_datetime(new["timestamp"], unit="s")
    else:
        old = old.drop(columns=["timestamp"], errors="ignore")
    if base.users.is_integer and new["user_id"].dtype.kind not in "iu":
        old["user_id"] = old["user_id"].astype(str)
        new["user_id"] = new["user_id"].astype(str)
    if base.items.is_integer and new["item_id"].dtype.kind not in "iu":
        raise DataError("the feedback rates items by string ids but the data uses integers")
    frame = pd.concat([old, new], ignore_index=True)
    frame = frame.drop_duplicates(["user_id", "item_id"], keep="last")
    return Interactions.from_pandas(
        frame,
        value_col="value",
        timestamp_col="timestamp" if with_time else None,
        kind=base.kind,
        rating_scale=base.rating_scale,
    )


def latest_by_user(ratings: Iterable[StoredRating]) -> dict[Id, dict[Id, float]]:
    """``{user_id: {item_id: value}}``, later ratings replacing earlier ones."""
    out: dict[Id, dict[Id, float]] = {}
    for r in sorted(ratings, key=lambda r: r.seq):
        out.setdefault(r.user_id, {})[r.item_id] = r.value
    return out


def _plain(value: Any) -> Id:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DataError(f"ids must be int or str, got {type(value).__name__}")
    return value


def _typed_column(column: pd.Series) -> pd.Series:
    """int64 when every id is an integer, else strings."""
    if len(column) and all(isinstance(v, int) for v in column):
        return column.astype(np.int64)
    return column.astype(str)


__all__ = [
    "FeedbackStore",
    "Rating",
    "SQLiteFeedbackStore",
    "StoreUnavailableError",
    "StoredRating",
    "latest_by_user",
    "merge_feedback",
]
