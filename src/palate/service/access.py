"""Who may touch a user's live ratings, and how fast a client may write.

API keys (``palate serve --api-key-file KEYS``) guard reading and writing a user's live
ratings: a request to ``/v1/users/{user_id}/ratings`` then needs ``Authorization: Bearer KEY``
(or ``X-API-Key: KEY``) with a key the file grants for that user. The file has one key per
line, ``KEY USER_ID`` (the key works for that user only) or ``KEY *`` (for every user: a
back-end that writes on behalf of its users); ``#`` starts a comment. A key may be written as
``sha256:HEX`` (the SHA-256 of the key, hex), so the file need not hold the secret itself::

    # palate API keys
    3vQm0pX7cS9bYh2L4fWk8dJr   42
    sha256:b6505d8269eee1b36b90e6af3e22a41b0db2ee9d2d4b2cc7540325647479dd40   *

User ids are compared in the served model's canonical form: for a model with integer user
ids, ``42`` in the file is user 42 and ``042`` is the string id ``"042"`` — the same rule as
the URL's (``"007"`` is never user 7).

Write limits (``--write-rate 600/minute``, the default): each client (its API key when it sent
one, else its address) may send that many rating writes (POST requests) per window; past it
the answer is 429 with ``Retry-After``. Counters live in each worker process: with
``--workers N`` a client may write up to N times the rate, and clients behind one proxy share
one address.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from palate.errors import ConfigError
from palate.service.middleware import ServiceError

#: Shortest key accepted in a key file (characters): a guessable key guards nothing.
MIN_KEY_LENGTH = 16
#: Any user (the second field of a key line).
ANY_USER = "*"
_HASHED = "sha256:"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKeys:
    """Keys by SHA-256 digest: ``{digest: user id as written, or "*"}``."""

    grants: Mapping[str, str]

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ApiKeys:
        """Parse a key file; ConfigError naming the line for anything malformed."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the API key file {path}: {exc}") from exc
        grants: dict[str, str] = {}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            where = f"{path}, line {number}"
            if len(fields) != 2:
                raise ConfigError(
                    f"{where}: write 'KEY USER_ID' or 'KEY *' (two fields), got {len(fields)}"
                )
            key, user = fields
            if key.startswith(_HASHED):
                digest = key[len(_HASHED):].lower()
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    raise ConfigError(f"{where}: sha256: must be followed by 64 hex digits")
            elif len(key) < MIN_KEY_LENGTH:
                raise ConfigError(
                    f"{where}: a key has at least {MIN_KEY_LENGTH} characters; make one with "
                    "python -c 'import secrets; print(secrets.token_urlsafe(24))'"
                )
            else:
                digest = _digest(key)
            if digest in grants:
                raise ConfigError(f"{where}: this key is listed twice")
            grants[digest] = user
        if not grants:
            raise ConfigError(f"the API key file {path} lists no key")
        return cls(grants)

    def check(self, headers: Mapping[str, str], user: Any) -> str:
        """The key's digest when it may act for ``user``; 401 / 403 ServiceError otherwise.

        ``user`` is the canonical id (as the model stores it); it is compared as its decimal
        or string form with the file's field.
        """
        given = _key_from(headers)
        if not given:
            raise ServiceError(
                401,
                "unauthorized",
                "this service guards users' ratings with API keys: send "
                "'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        # looked up by SHA-256 digest: the secret is never compared character by character
        digest = _digest(given)
        granted = self.grants.get(digest)
        if granted is None:
            raise ServiceError(
                401, "unauthorized", "unknown API key", headers={"WWW-Authenticate": "Bearer"}
            )
        if granted != ANY_USER and granted != str(user):
            raise ServiceError(
                403, "forbidden", f"this API key does not grant access to user {user!r}"
            )
        return digest


def _key_from(headers: Mapping[str, str]) -> str:
    header = headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return headers.get("x-api-key", "").strip()


class WriteLimiter:
    """At most ``rate`` writes per client per window (a moving window, the ``limits`` package).

    ``rate`` is written like ``600/minute``, ``20/second`` or ``10000/hour``.
    """

    def __init__(self, rate: str) -> None:
        try:
            from limits import parse
            from limits.storage import MemoryStorage
            from limits.strategies import MovingWindowRateLimiter
        except ImportError as exc:  # pragma: no cover - part of the service extra
            raise ConfigError(
                "write limits need the service extra: pip install 'palate[service]'"
            ) from exc
        try:
            self.item = parse(rate)
        except ValueError as exc:
            raise ConfigError(
                f"write rate {rate!r} is not like '600/minute', '20/second' or '10000/hour'"
            ) from exc
        self.rate = rate
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, client: str) -> None:
        """Count one write for ``client``; 429 with Retry-After once it is past the rate."""
        if self._limiter.hit(self.item, client):
            return
        stats = self._limiter.get_window_stats(self.item, client)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise ServiceError(
            429,
            "rate_limited",
            f"at most {self.rate} rating writes per client; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )


def client_key(headers: Mapping[str, str], address: str | None, digest: str | None = None) -> str:
    """Who is writing, for the write limit: the API key's digest when sent (``digest`` when
    :meth:`ApiKeys.check` already computed it), else the address."""
    if digest is None:
        given = _key_from(headers)
        digest = _digest(given) if given else None
    return f"key:{digest}" if digest else f"addr:{address or 'unknown'}"


__all__ = ["ANY_USER", "MIN_KEY_LENGTH", "ApiKeys", "WriteLimiter", "client_key"]
