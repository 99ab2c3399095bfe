"""The recommendation service: a FastAPI app over a saved model, live feedback and a web page.

``palate serve MODEL_DIR`` runs it; :func:`create_app` builds it in Python. The app needs the
``service`` extra (``pip install 'palate[service]'``); the feedback store needs only SQLite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from palate.service.feedback import (
    FeedbackStore,
    Rating,
    SQLiteFeedbackStore,
    StoredRating,
    merge_feedback,
)

if TYPE_CHECKING:
    from palate.service.app import ADMIN_TOKEN_ENV, create_app


def __getattr__(name: str) -> Any:
    # the app imports FastAPI; loaded on first use so the store works without the extra
    if name in ("create_app", "ADMIN_TOKEN_ENV"):
        from palate.service import app

        return getattr(app, name)
    raise AttributeError(f"module 'palate.service' has no attribute {name!r}")


__all__ = [
    "ADMIN_TOKEN_ENV",
    "FeedbackStore",
    "Rating",
    "SQLiteFeedbackStore",
    "StoredRating",
    "create_app",
    "merge_feedback",
]
