"""Model work off the event loop: daemon worker threads, and the batcher that answers the
recommendation requests arriving together with one model call."""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from palate.ranking.filters import ItemFilter
from palate.service.engine import UserResult

if TYPE_CHECKING:
    from palate.service.app import Service

logger = logging.getLogger(__name__)

T = TypeVar("T")

def numba_threads() -> int | None:
    """The calling thread's numba thread count, when numba is in use (it is per thread)."""
    numba = sys.modules.get("numba")
    if numba is None:
        return None
    try:
        return int(numba.get_num_threads())
    except Exception:  # pragma: no cover - no threading layer
        return None


class DaemonPool:
    """Up to ``size`` daemon threads that run blocking work for the event loop.

    Daemon threads never hold up the process's exit (a stuck model call does not keep a
    stopped server alive, as the default executor's threads would). Each thread runs with
    the numba thread count of the thread that made the pool (``palate serve`` limits it to
    one per worker process).
    """

    def __init__(self, name: str, size: int) -> None:
        self.name, self.size = name, size
        self._jobs: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...],
                                            asyncio.AbstractEventLoop,
                                            asyncio.Future[Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._numba = numba_threads()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._jobs.put((fn, args, loop, future))
            if self._idle == 0 and self._threads < self.size:
                self._threads += 1
                self._idle += 1
                threading.Thread(
                    target=self._work, name=f"{self.name}-{self._threads}", daemon=True
                ).start()
        return await future

    def _work(self) -> None:
        if self._numba is not None:
            try:
                sys.modules["numba"].set_num_threads(self._numba)
            except Exception:  # pragma: no cover - no threading layer
                pass
        while True:
            fn, args, loop, future = self._jobs.get()
            with self._lock:
                self._idle -= 1
            try:
                outcome: tuple[Any, BaseException | None] = (fn(*args), None)
            except BaseException as exc:  # handed to the awaiting coroutine
                outcome = (None, exc)
            with self._lock:
                self._idle += 1
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # the loop has closed: nobody waits any more
                pass


def _settle(future: asyncio.Future[Any], outcome: tuple[Any, BaseException | None]) -> None:
    if future.done():  # the caller gave up (time budget, disconnect)
        return
    result, error = outcome
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


# ---------------------------------------------------------------------- batching


@dataclass
class _Pending:
    users: list[Any]
    k: int
    exclude_seen: bool
    explain: bool
    item_filter: ItemFilter | None
    future: asyncio.Future[tuple[int, list[UserResult]]]


class Batcher:
    """Answers the recommendation requests that arrive together with one model call.

    The model call runs in a worker thread (one BLAS thread per worker process), never on
    the event loop; while it runs, new requests queue up; the next batch takes all of them
    (but those whose time ran out), grouped by ``(exclude_seen, explain, filters)``, asks the
    model for the largest ``k`` of the group, and gives each request its first ``k`` items
    (top-k lists are sorted, so that is its own top-k). A lone request is answered at once.
    """

    def __init__(self, service: Service, enabled: bool = True) -> None:
        self.service = service
        self.enabled = enabled
        self.pending: list[_Pending] = []
        self.draining: asyncio.Task[None] | None = None
        self.threads = DaemonPool("palate-model", size=1)

    async def submit(
        self,
        users: list[Any],
        k: int,
        exclude_seen: bool,
        explain: bool,
        item_filter: ItemFilter | None = None,
    ) -> tuple[int, list[UserResult]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, list[UserResult]]] = loop.create_future()
        self.pending.append(_Pending(users, k, exclude_seen, explain, item_filter, future))
        if self.draining is None:
            self.draining = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                await asyncio.sleep(0)  # requests already read from sockets join this batch
                batch, self.pending = self.pending, []
                batch = [m for m in batch if not m.future.done()]  # gave up meanwhile
                parts = [batch] if self.enabled else [[m] for m in batch]
                for part in parts:  # one model call per request when batching is off
                    if part:
                        await self._answer(part)
        finally:
            self.draining = None

    async def _answer(self, batch: list[_Pending]) -> None:
        try:
            outcomes = await self.threads.run(self._compute, batch)
        except Exception as exc:
            outcomes = [(None, exc)] * len(batch)
        for member, (result, error) in zip(batch, outcomes, strict=True):
            if member.future.done():
                continue
            if error is not None:
                member.future.set_exception(error)
            elif result is not None:
                member.future.set_result(result)

    def _compute(
        self, batch: list[_Pending]
    ) -> list[tuple[tuple[int, list[UserResult]] | None, Exception | None]]:
        """Every member's (answer, None) or (None, error); runs in the worker thread."""
        service = self.service
        try:
            # one model for the whole batch, even if a reload lands meanwhile
            served = service.refresh()
        except Exception as exc:
            return [(None, exc)] * len(batch)
        outcomes: dict[int, tuple[tuple[int, list[UserResult]] | None, Exception | None]] = {}
        groups: dict[tuple[bool, bool, ItemFilter | None], list[int]] = {}
        for n, member in enumerate(batch):
            key = (member.exclude_seen, member.explain, member.item_filter)
            groups.setdefault(key, []).append(n)
        for (exclude_seen, explain, item_filter), positions in groups.items():
            members = [batch[n] for n in positions]
            try:
                typed = [[served.user_id(u) for u in m.users] for m in members]
                users = [u for part in typed for u in part]
                k = max(m.k for m in members)
                results = served.recommend(
                    users,
                    k,
                    exclude_seen,
                    service.live.for_users(users),
                    explain=explain,
                    item_filter=item_filter,
                )
            except Exception as exc:
                for n in positions:
                    outcomes[n] = (None, exc)
                continue
            start = 0
            for n, member, part in zip(positions, members, typed, strict=True):
                mine = results[start : start + len(part)]
                start += len(part)
                if member.k < k:
                    for result in mine:
                        result.items = result.items[: member.k]
                outcomes[n] = ((served.generation, mine), None)
        return [outcomes[n] for n in range(len(batch))]


# ---------------------------------------------------------------------- middleware
