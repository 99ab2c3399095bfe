"""Bounded work per request: explanations, similar items, replaying and capping live ratings."""

from __future__ import annotations

import threading

from palate.service.engine import LiveFeedback
from palate.service.feedback import StoredRating


class _ManyRows:
    """A feedback store holding ``n`` ratings of one user."""

    def __init__(self, n: int) -> None:
        self.rows = [StoredRating(s, "heavy", s, 1.0, 0.0) for s in range(1, n + 1)]

    def since(self, seq: int) -> list[StoredRating]:
        return self.rows[seq:]

    def changed(self) -> bool:
        return True


def test_replaying_many_ratings_of_one_user_takes_linear_time() -> None:
    store = _ManyRows(300_000)
    done: list[LiveFeedback] = []
    thread = threading.Thread(target=lambda: done.append(LiveFeedback(store)), daemon=True)
    thread.start()
    thread.join(timeout=20)  # hang guard: copying the user's dict per row takes minutes
    assert done, "replaying 300,000 ratings of one user did not finish"
    live = done[0]
    assert live.count("heavy") == 300_000
    assert live.for_users(["heavy"])["heavy"][0] == 300_000  # the version is the last seq
