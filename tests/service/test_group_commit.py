"""Concurrent rating writes share one transaction (one fsync), and each is answered only
after its own rows are committed, with its own sequence numbers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from palate.service.feedback import (
    Rating,
    SQLiteFeedbackStore,
    StoredRating,
    StoreUnavailableError,
)


def _wait_for(condition, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _queue_writers(store: SQLiteFeedbackStore, n: int) -> tuple[list[threading.Thread],
                                                                 dict[int, object]]:
    """``n`` writers started while the write lock is held: all of them queue."""
    results: dict[int, object] = {}

    def write(w: int) -> None:
        try:
            results[w] = store.add([Rating(f"user-{w}", item, float(w)) for item in range(w + 1)])
        except Exception as exc:  # noqa: BLE001 - handed to the test
            results[w] = exc

    threads = [threading.Thread(target=write, args=(w,)) for w in range(n)]
    for thread in threads:
        thread.start()
    _wait_for(lambda: len(store._queued) == n)
    return threads, results


def test_queued_writes_commit_together_with_their_own_seqs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SQLiteFeedbackStore(tmp_path / "f.db") as store:
        store.add([Rating("first", 1, 1.0)])
        transactions: list[str] = []
        real = store._write
        monkeypatch.setattr(store, "_write",
                            lambda work, doing: (transactions.append(doing), real(work, doing))[1])
        with store._write_lock:
            threads, results = _queue_writers(store, 5)
        for thread in threads:
            thread.join(timeout=30)
        assert transactions == ["storing ratings"]  # one commit for five writers
        stored = {s.seq: s for s in store.since(0)}
        assert len(stored) == 1 + sum(w + 1 for w in range(5))
        for w in range(5):
            mine = results[w]
            assert isinstance(mine, list) and len(mine) == w + 1
            for rating in mine:
                assert isinstance(rating, StoredRating)
                on_disk = stored[rating.seq]
                assert (on_disk.user_id, on_disk.item_id, on_disk.value) == (
                    rating.user_id, rating.item_id, rating.value) == (
                    f"user-{w}", rating.item_id, float(w))


def test_a_failed_group_commit_fails_every_writer_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SQLiteFeedbackStore(tmp_path / "f.db") as store:
        def broken(work, doing):  # type: ignore[no-untyped-def]
            raise StoreUnavailableError("the disk is full")

        with store._write_lock:
            threads, results = _queue_writers(store, 3)
            monkeypatch.setattr(store, "_write", broken)
        for thread in threads:
            thread.join(timeout=30)
        assert all(isinstance(r, StoreUnavailableError) for r in results.values())
        assert store.count() == 0 and store._queued == []
