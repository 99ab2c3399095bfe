"""The FastAPI application: recommendations, similar items, scores, title search, live ratings,
hot reload and the web page.

Run it with ``palate serve MODEL_DIR`` (uvicorn, bound to 127.0.0.1), or build it in Python::

    from palate.service import create_app
    app = create_app("models/cf", feedback_db="feedback.db")

Every error is JSON ``{"error": code, "message": ...}``; tracebacks go to the log, never to
the client.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from palate.errors import ConfigError, DataError, PalateError, UnknownIdError
from palate.service import schemas
from palate.service.engine import CapabilityError, LiveFeedback, ServedModel, UserResult
from palate.service.feedback import FeedbackStore, Rating, SQLiteFeedbackStore

logger = logging.getLogger(__name__)

#: Environment variable holding the token that /v1/admin/reload requires.
ADMIN_TOKEN_ENV = "PALATE_ADMIN_TOKEN"
#: Largest request body accepted, in bytes.
MAX_BODY_BYTES = 1_000_000

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ServiceError(Exception):
    """An error answered with a status code and a JSON message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Service:
    """The app's state: the served model (swapped atomically on reload) and live feedback."""

    def __init__(
        self,
        model_dir: Path,
        store: FeedbackStore,
        admin_token: str | None,
        follow_published: bool = False,
        index: str | None = None,
    ) -> None:
        self.store = store
        self.index = index
        self.admin_token = admin_token
        self._reload_lock = threading.Lock()
        self._failed_generation = 0
        published = self._published()
        served = None
        if follow_published and published is not None:
            # a worker process of `palate serve`: serve what the database says is served
            # (the command's model, or the latest reload if this worker was restarted since)
            try:
                served = ServedModel.load(published[1], generation=published[0], index=index)
            except PalateError as exc:
                logger.warning("cannot load the published model %s (%s)", published[1], exc)
        if served is not None:
            self.model_dir, self.served = Path(published[1]), served  # type: ignore[index]
        else:
            self.model_dir = model_dir
            self.served = ServedModel.load(model_dir, index=index)
            publish = getattr(store, "publish_model", None)
            if publish is not None:
                self.served.generation = publish(str(model_dir.resolve()))
        self.live = LiveFeedback(store)

    def _published(self) -> tuple[int, str] | None:
        read = getattr(self.store, "published_model", None)
        return read() if read is not None else None

    def refresh(self) -> ServedModel:
        """Catch up with the store: new ratings, and a model another worker swapped in."""
        if self.live.sync():
            published = self._published()
            if published and published[0] > self.served.generation:
                generation, model_dir = published
                if generation != self._failed_generation:
                    with self._reload_lock:
                        if generation > self.served.generation:
                            try:
                                fresh = ServedModel.load(
                                    model_dir, generation=generation, index=self.index
                                )
                            except Exception:
                                logger.exception("could not follow the reload to %s", model_dir)
                                self._failed_generation = generation
                            else:
                                self.served, self.model_dir = fresh, Path(model_dir)
        return self.served

    def reload(self, model_dir: Path | None) -> ServedModel:
        """Load ``model_dir`` (default: the current one, re-read), check it, then swap it in.

        Requests already running keep the model they started with; a model that fails to
        load or to answer is refused and the current one keeps serving.
        """
        target = self.model_dir if model_dir is None else model_dir
        with self._reload_lock:
            generation = self.served.generation + 1
            try:
                fresh = ServedModel.load(target, generation=generation, index=self.index)
                publish = getattr(self.store, "publish_model", None)
                if publish is not None:  # tell the other worker processes
                    fresh.generation = publish(str(Path(target).resolve()))
            except PalateError as exc:
                raise ServiceError(
                    422, "model_refused", f"the model at {target} was not loaded: {exc}"
                ) from exc
            except Exception as exc:  # any failure to load keeps the old model serving
                logger.exception("reloading %s failed", target)
                raise ServiceError(
                    422,
                    "model_refused",
                    f"the model at {target} was not loaded ({type(exc).__name__}); "
                    "the previous model keeps serving",
                ) from exc
            self.served = fresh  # one reference assignment: atomic for every reader
            self.model_dir = target
        logger.info("now serving %s (generation %d)", target, generation)
        return fresh


def create_app(
    model_dir: str | os.PathLike[str],
    feedback_db: str | os.PathLike[str] | FeedbackStore | None = None,
    *,
    admin_token: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    follow_published: bool = False,
    batch_requests: bool = True,
    index: str | None = None,
) -> FastAPI:
    """Build the service for a saved model directory.

    Parameters
    ----------
    model_dir : path
        A directory written by ``palate.save`` / ``palate train``.
    feedback_db : path or FeedbackStore, optional
        Where live ratings are stored: an SQLite file (default ``feedback.db`` inside the
        current directory) or any :class:`~palate.service.feedback.FeedbackStore`.
    admin_token : str, optional
        Token for ``POST /v1/admin/reload``; default: the ``PALATE_ADMIN_TOKEN`` environment
        variable. Without one, reloading is switched off (401).
    max_body_bytes : int
        Larger request bodies are refused with 413.
    follow_published : bool
        Serve the model the feedback database records as served (falling back to
        ``model_dir`` when it records none) instead of publishing ``model_dir``: how the
        worker processes of ``palate serve --workers N`` start, so that a reload (recorded
        there) reaches all of them, even one restarted later.
    batch_requests : bool
        Answer recommendation requests that arrive together with one model call (one matrix
        product for all their users). False computes each request on its own.

    Returns
    -------
    FastAPI
        ``app.state.service`` holds the :class:`Service`.
    index : {"pq", "hnsw"}, optional
        Answer known users' recommendations from an approximate vector index over the
        model's item vectors, built when the model loads (CF, implicit ALS and two-tower
        models; its measured recall is in ``GET /v1/model``). Default: score every item.
    """
    if feedback_db is None:
        feedback_db = Path("feedback.db")
    store: FeedbackStore
    if isinstance(feedback_db, (str, os.PathLike)):
        store = SQLiteFeedbackStore(Path(feedback_db))
    else:
        store = feedback_db
    token = admin_token if admin_token is not None else os.environ.get(ADMIN_TOKEN_ENV) or None
    service = Service(Path(model_dir), store, token, follow_published=follow_published,
                      index=index)

    app = FastAPI(
        title="palate",
        summary="Recommendations, similar items, live ratings and hot reload.",
        version=str(service.served.artifact.manifest.get("palate_version", "")),
    )
    app.state.service = service
    _install_error_handlers(app)
    app.add_middleware(_BodyLimit, max_bytes=max_body_bytes)  # type: ignore[arg-type]

    static = resources.files("palate.service") / "static"

    # ------------------------------------------------------------------ pages and health
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        served = service.refresh()
        return {
            "status": "ok",
            "model_kind": served.model_kind,
            "generation": served.generation,
            "pid": os.getpid(),
        }

    @app.get("/v1/model")
    def model_info() -> dict[str, Any]:
        served = service.refresh()
        return {**served.describe(), "feedback": {"users": service.live.n_users}}

    # ------------------------------------------------------------------ queries
    batcher = _Batcher(service, enabled=batch_requests)

    @app.post("/v1/recommendations", response_model=schemas.RecommendationsResponse)
    async def recommendations(body: schemas.RecommendationsRequest) -> Response:
        # Runs on the event loop: concurrent requests wait for the current model call to end
        # and are then answered together by one call (one matrix product for all users).
        generation, results = await batcher.submit(
            list(body.user_ids), body.k, body.exclude_seen, body.explain
        )
        document = {
            "model_generation": generation,
            "k": body.k,
            "results": [r.__dict__ for r in results],
        }
        return Response(orjson.dumps(document), media_type="application/json")

    @app.post("/v1/similar-items", response_model=schemas.SimilarItemsResponse)
    def similar_items(body: schemas.SimilarItemsRequest) -> dict[str, Any]:
        return {"results": service.refresh().similar(list(body.item_ids), body.k)}

    @app.post("/v1/scores", response_model=schemas.ScoresResponse)
    def scores(body: schemas.ScoresRequest) -> dict[str, Any]:
        served = service.refresh()
        pairs = [(p.user_id, p.item_id) for p in body.pairs]
        users = [served.user_id(u) for u, _ in pairs]
        return {"scores": served.scores(pairs, service.live.for_users(users))}

    @app.get("/v1/items", response_model=schemas.ItemsResponse)
    def items(
        query: str = Query(..., min_length=1, max_length=200, description="Part of a title."),
        limit: int = Query(20, ge=1, le=100),
    ) -> dict[str, Any]:
        served = service.refresh()
        found = served.catalog.search(query, limit=limit)
        if not found and not served.catalog.has_titles:
            try:
                item_id = served.item_id(query)
            except UnknownIdError:
                found = []
            else:
                found = [served.catalog.describe(item_id)]
        return {"query": query, "items": found}

    # ------------------------------------------------------------------ feedback
    @app.post("/v1/users/{user_id}/ratings", response_model=schemas.RatingsResponse)
    def add_ratings(user_id: str, body: schemas.RatingsRequest) -> dict[str, Any]:
        if not 1 <= len(user_id) <= schemas.MAX_ID_LENGTH:
            raise ServiceError(
                422, "invalid_id", f"user ids are 1 to {schemas.MAX_ID_LENGTH} characters"
            )
        served = service.refresh()
        user = served.user_id(user_id)
        seen: set[Any] = set()
        ratings = []
        for rating in body.ratings:
            item = served.item_id(rating.item_id)  # 404 naming the id when unknown
            if item in seen:
                raise ServiceError(
                    422, "duplicate_item", f"item {item!r} is rated twice in one request"
                )
            seen.add(item)
            problem = served.value_problem(rating.number)
            if problem:
                raise ServiceError(422, "invalid_rating", f"item {item!r}: {problem}")
            ratings.append(Rating(user, item, rating.number))
        stored = service.store.add(ratings)  # committed to disk before we answer
        service.live.sync(force=True)
        n_live = len(service.live.user(user))
        note = None
        if not served.can_fold_in:
            note = (
                f"stored; this {served.model_kind} model cannot fold ratings in, so they count "
                "after the next training run (palate data export-feedback)"
            )
        return {
            "user_id": user,
            "stored": [
                {"seq": s.seq, "item_id": s.item_id, "value": s.value, "created_at": s.created_at}
                for s in stored
            ],
            "folded_in": served.can_fold_in,
            "live_ratings": n_live,
            "note": note,
        }

    @app.get("/v1/users/{user_id}/ratings")
    def user_ratings(user_id: str) -> dict[str, Any]:
        served = service.refresh()
        user = served.user_id(user_id)
        live = service.live.user(user)
        return {
            "user_id": user,
            "ratings": [
                {**served.catalog.describe(i), "value": v} for i, v in live.items()
            ],
        }

    # ------------------------------------------------------------------ admin
    @app.post("/v1/admin/reload", response_model=schemas.ReloadResponse)
    def reload(request: Request, body: schemas.ReloadRequest | None = None) -> dict[str, Any]:
        _check_admin(service, request)
        target = Path(body.model_dir) if body and body.model_dir else None
        fresh = service.reload(target)
        return {"reloaded": True, "model": fresh.describe()}

    return app


def _check_admin(service: Service, request: Request) -> None:
    expected = service.admin_token
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not expected:
        raise ServiceError(
            401,
            "unauthorized",
            f"reloading is switched off: start the service with {ADMIN_TOKEN_ENV} set",
        )
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ServiceError(
            401, "unauthorized", "send the admin token as 'Authorization: Bearer <token>'"
        )


def _error(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(UnknownIdError)
    async def unknown_id(request: Request, exc: UnknownIdError) -> JSONResponse:
        return _error(404, "unknown_id", str(exc))

    @app.exception_handler(CapabilityError)
    async def capability(request: Request, exc: CapabilityError) -> JSONResponse:
        return _error(409, "not_supported", str(exc))

    @app.exception_handler(PalateError)
    async def palate_error(request: Request, exc: PalateError) -> JSONResponse:
        status = 422 if isinstance(exc, (DataError, ConfigError)) else 400
        return _error(status, "invalid_request", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"location": [str(p) for p in e.get("loc", ())], "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = details[0] if details else {"location": [], "message": "invalid request"}
        where = ".".join(first["location"][1:]) or "body"
        return _error(422, "invalid_request", f"{where}: {first['message']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        return _error(exc.status_code, code.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal_error", "internal error; see the service log")


@dataclass
class _Pending:
    users: list[Any]
    k: int
    exclude_seen: bool
    explain: bool
    future: asyncio.Future[tuple[int, list[UserResult]]]


class _Batcher:
    """Answers the recommendation requests that arrive together with one model call.

    While one batch is being computed (on the event loop: one BLAS thread per worker
    process), new requests queue up; the next batch takes all of them, grouped by
    ``(exclude_seen, explain)``, asks the model for the largest ``k`` of the group, and gives
    each request its first ``k`` items (top-k lists are sorted, so that is its own top-k).
    A lone request is answered at once.
    """

    def __init__(self, service: Service, enabled: bool = True) -> None:
        self.service = service
        self.enabled = enabled
        self.pending: list[_Pending] = []
        self.draining: asyncio.Task[None] | None = None

    async def submit(
        self, users: list[Any], k: int, exclude_seen: bool, explain: bool
    ) -> tuple[int, list[UserResult]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, list[UserResult]]] = loop.create_future()
        self.pending.append(_Pending(users, k, exclude_seen, explain, future))
        if self.draining is None:
            self.draining = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                await asyncio.sleep(0)  # requests already read from sockets join this batch
                batch, self.pending = self.pending, []
                if self.enabled:
                    self._run(batch)
                else:  # one model call per request (for comparison)
                    for member in batch:
                        self._run([member])
        finally:
            self.draining = None

    def _run(self, batch: list[_Pending]) -> None:
        service = self.service
        try:
            # one model for the whole batch, even if a reload lands meanwhile
            served = service.refresh()
        except Exception as exc:
            for member in batch:
                member.future.set_exception(exc)
            return
        groups: dict[tuple[bool, bool], list[_Pending]] = {}
        for member in batch:
            groups.setdefault((member.exclude_seen, member.explain), []).append(member)
        for (exclude_seen, explain), members in groups.items():
            try:
                typed = [[served.user_id(u) for u in m.users] for m in members]
                users = [u for part in typed for u in part]
                k = max(m.k for m in members)
                results = served.recommend(
                    users, k, exclude_seen, service.live.for_users(users), explain=explain
                )
            except Exception as exc:
                for member in members:
                    if not member.future.done():
                        member.future.set_exception(exc)
                continue
            start = 0
            for member, part in zip(members, typed, strict=True):
                mine = results[start : start + len(part)]
                start += len(part)
                if member.k < k:
                    for result in mine:
                        result.items = result.items[: member.k]
                if not member.future.done():
                    member.future.set_result((served.generation, mine))


class _BodyLimit:
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
    response = _error(413, "too_large", f"request bodies are limited to {limit} bytes")
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": response.body})


__all__ = ["ADMIN_TOKEN_ENV", "MAX_BODY_BYTES", "Service", "ServiceError", "create_app"]
