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
from palate.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

Id = int | str


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
CREATE TABLE IF NOT EXISTS served_model (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
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
        Seconds to wait for another process's write lock before failing.

    Notes
    -----
    ``user_id`` and ``item_id`` keep their type (SQLite stores integers as INTEGER and
    strings as TEXT in the same column), so integer ids come back as integers. A rating
    never overwrites another: the latest ``seq`` for a (user, item) pair is the one that
    counts, and the full history stays for auditing.
    """

    def __init__(
        self, path: str | Path, *, synchronous: str = "FULL", busy_timeout: float = 10.0
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
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._writer = self._connect(synchronous, busy_timeout)
        with self._write_lock:
            self._writer.executescript(_SCHEMA)
        self._reader = self._connect(synchronous, busy_timeout)
        self._data_version: int | None = None

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
        with self._write_lock:
            cursor = self._writer.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                first = None
                for row in rows:
                    cursor.execute(
                        "INSERT INTO ratings (user_id, item_id, value, created_at) "
                        "VALUES (?, ?, ?, ?)",
                        row,
                    )
                    if first is None:
                        first = cursor.lastrowid
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        assert first is not None
        return [StoredRating(first + n, *row) for n, row in enumerate(rows)]

    # ------------------------------------------------------------------ the served model
    def publish_model(self, model_dir: str) -> int:
        """Record that ``model_dir`` is now served; returns its generation (1, 2, ...).

        Every worker process serving from this database sees the change at its next request
        and loads the same model, so a reload reaches all of them.
        """
        with self._write_lock:
            cursor = self._writer.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                row = cursor.execute("SELECT generation FROM served_model WHERE id = 1").fetchone()
                generation = (row[0] if row else 0) + 1
                cursor.execute(
                    "INSERT OR REPLACE INTO served_model VALUES (1, ?, ?, ?)",
                    (generation, str(model_dir), time.time()),
                )
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        return int(generation)

    def published_model(self) -> tuple[int, str] | None:
        """(generation, model_dir) last published, or None."""
        with self._read_lock:
            row = self._reader.execute(
                "SELECT generation, model_dir FROM served_model WHERE id = 1"
            ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    # ------------------------------------------------------------------ reading
    def since(self, seq: int) -> list[StoredRating]:
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT seq, user_id, item_id, value, created_at FROM ratings WHERE seq > ? "
                "ORDER BY seq",
                (int(seq),),
            ).fetchall()
        return [StoredRating(*row) for row in rows]

    def changed(self) -> bool:
        """Cheap check (``PRAGMA data_version``) for commits since the last call."""
        with self._read_lock:
            version = self._reader.execute("PRAGMA data_version").fetchone()[0]
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
    "StoredRating",
    "latest_by_user",
    "merge_feedback",
]
