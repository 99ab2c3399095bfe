"""The service's HTTP edges: JSON errors for every failure, the time budget of a request, the
Host check and the body-size limit (ASGI middleware), and the error responses each route
declares."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Match

from palate.errors import ConfigError, DataError, PalateError, UnknownIdError
from palate.service.engine import CapabilityError
from palate.service.feedback import (
    StoreUnavailableError,
)

logger = logging.getLogger(__name__)

#: Host names always accepted in the ``Host`` header (besides the address bound to).
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ServiceError(Exception):
    """An error answered with a status code and a JSON message."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers


def retrieve(task: asyncio.Future[Any]) -> None:
    """Done callback: fetch a dropped task's exception so asyncio does not log it as lost."""
    if not task.cancelled():
        task.exception()


def error(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message, headers=exc.headers)

    @app.exception_handler(UnknownIdError)
    async def unknown_id(request: Request, exc: UnknownIdError) -> JSONResponse:
        return error(404, "unknown_id", str(exc))

    @app.exception_handler(CapabilityError)
    async def capability(request: Request, exc: CapabilityError) -> JSONResponse:
        return error(409, "not_supported", str(exc))

    @app.exception_handler(StoreUnavailableError)
    async def store_unavailable(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        return error(503, "storage_unavailable", str(exc))

    @app.exception_handler(PalateError)
    async def palate_error(request: Request, exc: PalateError) -> JSONResponse:
        status = 422 if isinstance(exc, (DataError, ConfigError)) else 400
        return error(status, "invalid_request", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"location": [str(p) for p in e.get("loc", ())], "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = details[0] if details else {"location": [], "message": "invalid request"}
        where = ".".join(first["location"][1:]) or "body"
        return error(422, "invalid_request", f"{where}: {first['message']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # every method of the path, not only its first route's
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
        return error(
            exc.status_code, code.get(exc.status_code, "http_error"), str(exc.detail),
            headers=headers,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return error(500, "internal_error", "internal error; see the service log")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route of ``request``'s path answers."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


# ---------------------------------------------------------------------- worker threads


def check_allowed_hosts(hosts: Sequence[str]) -> list[str]:
    """``hosts`` lower-cased; ConfigError for a pattern other than ``*`` or ``*.domain``."""
    out = []
    for host in hosts:
        name = host.strip().lower()
        if not name or (name != "*" and "*" in name and not (
                name.startswith("*.") and "*" not in name[1:])):
            raise ConfigError(
                f"allowed host {host!r} is not a host name, a pattern like *.example.com, or *"
            )
        out.append(name.strip("[]"))
    return out


def default_hosts(host: str) -> list[str]:
    """The local names and ``host`` (unless it is a wildcard address such as 0.0.0.0)."""
    hosts = list(LOCAL_HOSTS)
    bound = host.strip("[]").lower()
    if bound and bound not in ("0.0.0.0", "::") and bound not in hosts:
        hosts.append(bound)
    return hosts


class TimeBudget:
    """Answer a request that runs past ``seconds`` with a 503 ``timeout`` error.

    When its time is up before its response has started, the request is cancelled where it
    waits and the client gets the 503 at once (work already handed to a worker thread
    finishes there, its answer dropped). Paths in ``exempt`` keep no budget.
    """

    def __init__(
        self, app: ASGIApp, seconds: float | None, exempt: Sequence[str] = ()
    ) -> None:
        self.app = app
        self.seconds = seconds
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds is None or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                budget.reschedule(None)  # its response is on its way: let it finish
            await send(message)

        # the deadline cancels the request where it waits (no task of its own per request)
        try:
            async with asyncio.timeout(self.seconds) as budget:
                await self.app(scope, receive, guarded_send)
            return
        except TimeoutError:
            if started:  # pragma: no cover - the deadline is off once the response starts
                raise
        logger.warning(
            "%s %s ran past its time budget of %g s: answered 503",
            scope.get("method"), scope.get("path"), self.seconds,
        )
        response = error(
            503,
            "timeout",
            f"the request did not finish within {self.seconds:g} s; try again later, or "
            "ask for less (fewer users or items, a smaller k, no explanations)",
        )
        await response(scope, receive, send)


class TrustedHosts(TrustedHostMiddleware):
    """Starlette's :class:`TrustedHostMiddleware`, answering refused hosts with a JSON 400."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = _host_name(Headers(scope=scope).get("host", ""))
        for pattern in self.allowed_hosts:
            if host == pattern or (pattern.startswith("*") and host.endswith(pattern[1:])):
                await self.app(scope, receive, send)
                return
        response = error(
            400,
            "invalid_host",
            "the Host header names no host this service answers to (start it with "
            "--allowed-host NAME to add one)",
        )
        await response(scope, receive, send)


def _host_name(header: str) -> str:
    """The host of a ``Host`` header, without its port: ``[::1]:80`` gives ``::1``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else ""
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` (413), declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes or declared < 0:
                    await _send_too_large(send, self.max_bytes)
                    return
        received = 0
        limit = self.max_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"request bodies are limited to {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


async def _send_too_large(send: Send, limit: int) -> None:
    response = error(413, "too_large", f"request bodies are limited to {limit} bytes")
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": response.body})
