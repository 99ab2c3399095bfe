"""The FastAPI application: recommendations, similar items, scores, title search, live ratings,
hot reload and the web page.

Run it with ``palate serve MODEL_DIR`` (uvicorn, bound to 127.0.0.1), or build it in Python::

    from palate.service import create_app
    app = create_app("models/cf", feedback_db="feedback.db")

Every error is JSON ``{"error": code, "message": ...}``; tracebacks and file system paths go
to the log, never to the client.

Model work (recommendations, reloads, following another worker's reload) runs in worker
threads, never on the event loop, so one slow request does not stop the others (or
``/healthz``). Each request has a time budget (``request_timeout``, 10 s by default): past it,
the answer is a 503 ``timeout`` error.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import stat
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import orjson
from fastapi import Body, FastAPI, Query, Request, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from palate.errors import ConfigError, PalateError, UnknownIdError
from palate.ranking.filters import ItemFilter
from palate.service import schemas
from palate.service.access import ApiKeys, WriteLimiter, client_key
from palate.service.engine import LiveFeedback, ServedModel
from palate.service.feedback import (
    FeedbackStore,
    Rating,
    SQLiteFeedbackStore,
    StoreUnavailableError,
)
from palate.service.middleware import (
    BodyLimit,
    ServiceError,
    TimeBudget,
    TrustedHosts,
    check_allowed_hosts,
    default_hosts,
    install_error_handlers,
    retrieve,
)
from palate.service.workers import Batcher, DaemonPool

logger = logging.getLogger(__name__)

#: Environment variable holding the token that /v1/admin/reload requires.
ADMIN_TOKEN_ENV = "PALATE_ADMIN_TOKEN"
#: Largest request body accepted, in bytes.
MAX_BODY_BYTES = 1_000_000
#: Seconds a request may take before it is answered with a 503 ``timeout`` error.
REQUEST_TIMEOUT = 10.0
#: Seconds a reload may take (loading the model, building its index) before it is refused.
RELOAD_TIMEOUT = 300.0
#: Most items one user may have live ratings for (409 past it).
MAX_LIVE_RATINGS = 10_000
#: Most rating writes (POST requests) per client per window, unless configured.
WRITE_RATE = "600/minute"
#: Most entries in a model directory that a (re)load looks at before reading it.
_MAX_MODEL_FILES = 10_000

T = TypeVar("T")



def check_model_dir(path: str | os.PathLike[str]) -> None:
    """Refuse a model directory that holds anything but regular files and directories.

    Reading a FIFO (say, a ``manifest.json`` that is one) blocks until someone writes to it,
    and a device may never end: both are refused here, before anything is opened. Symbolic
    links count as what they point to. The messages name files relative to the directory.

    Raises
    ------
    ConfigError
        ``path`` is not a directory, or holds something else than files and directories.
    """
    root = Path(path).expanduser()
    try:
        mode = os.stat(root).st_mode
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"there is no readable model directory there ({reason})") from exc
    if not stat.S_ISDIR(mode):
        raise ConfigError("the model path is not a directory")
    seen = 0
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            seen += 1
            if seen > _MAX_MODEL_FILES:
                raise ConfigError(
                    f"the model directory holds over {_MAX_MODEL_FILES} entries; "
                    "it is not a saved model"
                )
            entry = Path(folder) / name
            try:
                mode = os.stat(entry).st_mode
            except OSError:
                continue  # a dangling link: the loader names it if the model needs it
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise ConfigError(
                    f"{entry.relative_to(root)} in the model directory is not a regular file "
                    "(a FIFO, socket or device); refusing to read it"
                )


def _without_paths(message: str, *paths: str | os.PathLike[str] | None) -> str:
    """``message`` with each of ``paths`` (and its resolved forms) written as ``<model_dir>``."""
    forms: set[str] = set()
    for path in paths:
        if path is None:
            continue
        candidate = Path(path)
        forms.update({str(path), str(candidate.expanduser())})
        try:
            forms.add(str(candidate.expanduser().resolve()))
        except (OSError, RuntimeError):
            pass
    for form in sorted((f for f in forms if f not in ("", ".")), key=len, reverse=True):
        message = message.replace(form, "<model_dir>")
    return message


def _load(
    model_dir: str | os.PathLike[str],
    generation: int,
    index: str | None,
    item_filter: ItemFilter | None = None,
) -> ServedModel:
    """:meth:`ServedModel.load` after :func:`check_model_dir`."""
    check_model_dir(model_dir)
    return ServedModel.load(
        Path(model_dir), generation=generation, index=index, item_filter=item_filter
    )


class Service:
    """The app's state: the served model (swapped atomically on reload) and live feedback.

    ``origin`` (the resolved ``model_dir`` the service was started with) names this server in
    the feedback database: the worker processes of one ``palate serve`` share it and follow
    each other's reloads; a server started with another model directory on the same database
    has another origin, and neither follows the other (the log says so).
    """

    def __init__(
        self,
        model_dir: Path,
        store: FeedbackStore,
        admin_token: str | None,
        follow_published: bool = False,
        index: str | None = None,
        item_filter: ItemFilter | None = None,
    ) -> None:
        self.store = store
        self.index = index
        self.item_filter = item_filter
        self.admin_token = admin_token
        self.origin = str(Path(model_dir).expanduser().resolve())
        self._reload_lock = threading.Lock()
        self._failed_generation = 0
        self._others: dict[str, tuple[int, str]] = {}
        published = self._published()
        served = None
        if follow_published and published is not None:
            # a worker process of `palate serve`: serve what the database says this server
            # serves (the command's model, or the latest reload if this worker was restarted)
            try:
                served = _load(published[1], published[0], index, item_filter)
            except PalateError as exc:
                logger.warning("cannot load the published model %s (%s)", published[1], exc)
        if served is not None:
            self.model_dir, self.served = Path(published[1]), served  # type: ignore[index]
        else:
            self.model_dir = model_dir
            self.served = _load(model_dir, 0, index, item_filter)
            publish = getattr(store, "publish_model", None)
            if publish is not None:
                self.served.generation = publish(self.origin, origin=self.origin)
        self.live = LiveFeedback(store)

    def _published_all(self) -> dict[str, tuple[int, str]]:
        read = getattr(self.store, "published_models", None)
        return read() if read is not None else {}

    def _published(self) -> tuple[int, str] | None:
        published = self._published_all()
        self._note_others(published)
        return published.get(self.origin)

    def _note_others(self, published: dict[str, tuple[int, str]]) -> None:
        """Log the servers of other model directories that publish to the same database."""
        for origin, record in published.items():
            if origin != self.origin and self._others.get(origin) != record:
                logger.warning(
                    "the feedback database is shared with a server started with another model "
                    "directory (%s, now serving %s, generation %d); this server (started with "
                    "%s) does not follow its reloads",
                    origin, record[1], record[0], self.origin,
                )
        self._others = {o: r for o, r in published.items() if o != self.origin}

    def store_problem(self) -> str | None:
        """Why the feedback store cannot take writes, or None."""
        problem = getattr(self.store, "problem", None)
        return problem() if problem is not None else None

    def refresh(self) -> ServedModel:
        """Catch up with the store: new ratings, and a model another worker swapped in.

        Blocks on no reload: while one runs (here or in this worker's other threads), the
        current model answers.
        """
        try:
            changed = self.live.sync()
        except StoreUnavailableError as exc:  # reading failed: serve what we have
            logger.warning("cannot read the feedback database: %s", exc)
            return self.served
        if not changed:
            return self.served
        try:
            published = self._published()
        except StoreUnavailableError as exc:
            logger.warning("cannot read the served model: %s", exc)
            return self.served
        if not published or published[0] <= self.served.generation:
            return self.served
        generation, model_dir = published
        if generation == self._failed_generation or not self._reload_lock.acquire(
            blocking=False
        ):
            return self.served
        try:
            if generation > self.served.generation:
                logger.info("following the reload to %s (generation %d)", model_dir, generation)
                try:
                    fresh = _load(model_dir, generation, self.index, self.item_filter)
                except Exception:
                    logger.exception("could not follow the reload to %s", model_dir)
                    self._failed_generation = generation
                else:
                    self.served, self.model_dir = fresh, Path(model_dir)
        finally:
            self._reload_lock.release()
        return self.served

    def reload(
        self, model_dir: Path | None, abandoned: threading.Event | None = None
    ) -> ServedModel:
        """Load ``model_dir`` (default: the current one, re-read), check it, then swap it in.

        Requests already running keep the model they started with; a model that fails to
        load or to answer is refused and the current one keeps serving. One reload at a time:
        another one meanwhile is refused (409). When ``abandoned`` is set before the model
        has loaded (the caller stopped waiting), the model is dropped, not swapped in.
        """
        target = self.model_dir if model_dir is None else model_dir
        if not self._reload_lock.acquire(blocking=False):
            raise ServiceError(
                409, "reload_in_progress",
                "another reload is still loading a model; try again when it has finished",
            )
        try:
            generation = self.served.generation + 1
            try:
                fresh = _load(target, generation, self.index, self.item_filter)
                if abandoned is not None and abandoned.is_set():
                    logger.warning("the reload of %s finished after its time ran out; "
                                   "the model is dropped", target)
                    raise ServiceError(503, "timeout", "the reload ran out of time")
                publish = getattr(self.store, "publish_model", None)
                if publish is not None:  # tell the other worker processes
                    fresh.generation = publish(
                        str(Path(target).expanduser().resolve()), origin=self.origin
                    )
            except (ServiceError, StoreUnavailableError):
                raise
            except PalateError as exc:
                logger.warning("reloading %s refused: %s", target, exc)
                raise ServiceError(
                    422,
                    "model_refused",
                    f"the model was not loaded: {_without_paths(str(exc), target)}; "
                    "the previous model keeps serving",
                ) from exc
            except Exception as exc:  # any failure to load keeps the old model serving
                logger.exception("reloading %s failed", target)
                raise ServiceError(
                    422,
                    "model_refused",
                    f"the model was not loaded ({type(exc).__name__}); "
                    "the previous model keeps serving",
                ) from exc
            self.served = fresh  # one reference assignment: atomic for every reader
            self.model_dir = target
        finally:
            self._reload_lock.release()
        logger.info("now serving %s (generation %d)", target, fresh.generation)
        return fresh


#: Error responses every route may give (declared in the OpenAPI schema).
_COMMON_ERRORS: dict[int, str] = {
    400: "The Host header names no host this service answers to.",
    413: "The request body is too large.",
    422: "The request is invalid (the message says where).",
    500: "An unexpected error (details in the service log).",
    503: "The request ran out of time, or the feedback database cannot be used now.",
}


#: Error responses of some routes.
_ROUTE_ERRORS: dict[int, str] = {
    401: "The admin token or API key is missing or wrong, or reloading is switched off.",
    403: "The API key does not grant access to this user.",
    404: "An unknown user or item.",
    409: "The served model cannot do this, a user's live ratings are at their limit, or "
    "another reload is running.",
    429: "Too many rating writes from this client; wait the Retry-After seconds.",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the common errors and ``statuses``, as ErrorResponse."""
    texts = {**_COMMON_ERRORS, **{status: _ROUTE_ERRORS[status] for status in statuses}}
    return {
        status: {"model": schemas.ErrorResponse, "description": text}
        for status, text in sorted(texts.items())
    }


def create_app(
    model_dir: str | os.PathLike[str],
    feedback_db: str | os.PathLike[str] | FeedbackStore | None = None,
    *,
    admin_token: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    follow_published: bool = False,
    batch_requests: bool = True,
    index: str | None = None,
    request_timeout: float | None = REQUEST_TIMEOUT,
    reload_timeout: float = RELOAD_TIMEOUT,
    max_live_ratings: int = MAX_LIVE_RATINGS,
    host: str = "127.0.0.1",
    allowed_hosts: Sequence[str] | None = None,
    item_filter: ItemFilter | str | os.PathLike[str] | None = None,
    api_keys: ApiKeys | str | os.PathLike[str] | None = None,
    write_rate: str | None = WRITE_RATE,
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
        Serve the model the feedback database records as served by this server (the servers
        started with this ``model_dir``), falling back to ``model_dir`` when it records none,
        instead of publishing ``model_dir``: how the worker processes of
        ``palate serve --workers N`` start, so that a reload (recorded there) reaches all of
        them, even one restarted later.
    batch_requests : bool
        Answer recommendation requests that arrive together with one model call (one matrix
        product for all their users). False computes each request on its own.
    index : {"pq", "hnsw", "auto"}, optional
        Answer known users' recommendations from an approximate vector index over the
        model's item vectors, built when the model loads (CF, implicit ALS and two-tower
        models; its measured recall is in ``GET /v1/model``; ``"auto"`` measures the index
        settings and keeps the fastest that reaches recall@10 0.99). Default: score every
        item.
    request_timeout : float or None
        Seconds a request may take; past them it is answered with a 503 ``timeout`` error
        (the work it started runs to its end in its worker thread). None: no limit. Reloads
        have their own limit.
    reload_timeout : float
        Seconds a reload may take to load the model (and build its index) before it is
        answered with a 503 ``timeout`` error; the previous model keeps serving.
    max_live_ratings : int
        Most items one user may have live ratings for; a request that would go past it is
        refused with 409 and nothing of it is stored.
    host : str
        The address the server binds to; accepted in the ``Host`` header.
    allowed_hosts : sequence of str, optional
        Host names accepted in the ``Host`` header (``*.example.com`` patterns, or ``*`` for
        any); others get 400, which keeps web pages of other sites from reaching the service
        through DNS rebinding. Default: ``host`` and the local names (localhost, 127.0.0.1,
        ::1).
    item_filter : ItemFilter or path of a TOML file, optional
        The operator's filter, applied to every recommendation and similar-items list
        (``palate serve --policy-file``): ``min_ratings = 21`` (leave out items with fewer
        training events; the curriculum's lab keeps films with more than 20 ratings) and
        ``[[policies]]`` tables of ``column``, ``op`` and ``value``. A request may add its own
        ``min_ratings`` and ``policies``, never remove these; ``GET /v1/model`` lists them.
    api_keys : ApiKeys or path of a key file, optional
        When given, reading and writing a user's live ratings needs an API key the file
        grants for that user (401 without a known key, 403 for another user's key); see
        :mod:`palate.service.access` for the file's format. Default: anyone may.
    write_rate : str or None
        Most rating writes per client (its API key, else its address) per window, like
        ``"600/minute"``; past it, 429 with ``Retry-After``. None: no limit.

    Returns
    -------
    FastAPI
        ``app.state.service`` holds the :class:`Service`.
    """
    hosts = check_allowed_hosts(allowed_hosts) if allowed_hosts else default_hosts(host)
    if feedback_db is None:
        feedback_db = Path("feedback.db")
    store: FeedbackStore
    if isinstance(feedback_db, (str, os.PathLike)):
        store = SQLiteFeedbackStore(Path(feedback_db))
    else:
        store = feedback_db
    token = admin_token if admin_token is not None else os.environ.get(ADMIN_TOKEN_ENV) or None
    if item_filter is not None and not isinstance(item_filter, ItemFilter):
        item_filter = ItemFilter.read(item_filter)
    keys = api_keys if api_keys is None or isinstance(api_keys, ApiKeys) else ApiKeys.read(
        api_keys
    )
    limiter = WriteLimiter(write_rate) if write_rate else None
    service = Service(Path(model_dir), store, token, follow_published=follow_published,
                      index=index, item_filter=item_filter)

    app = FastAPI(
        title="palate",
        summary="Recommendations, similar items, live ratings and hot reload.",
        version=str(service.served.artifact.manifest.get("palate_version", "")),
    )
    app.state.service = service
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(TrustedHosts, allowed_hosts=hosts)
    app.add_middleware(
        TimeBudget, seconds=request_timeout, exempt=("/v1/admin/reload",)
    )

    static = resources.files("palate.service") / "static"
    admin_threads = DaemonPool("palate-reload", size=2)

    # ------------------------------------------------------------------ pages and health
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/healthz", response_model=schemas.HealthResponse, responses=_errors())
    def healthz() -> dict[str, Any]:
        served = service.refresh()
        problem = service.store_problem()
        return {
            "status": "degraded" if problem else "ok",
            "reason": problem,
            "model_kind": served.model_kind,
            "generation": served.generation,
            "pid": os.getpid(),
        }

    @app.get("/v1/model", responses=_errors())
    def model_info() -> dict[str, Any]:
        served = service.refresh()
        return {
            **served.describe(),
            "feedback": {
                "users": service.live.n_users,
                "api_keys": keys is not None,
                "write_rate": limiter.rate if limiter is not None else None,
            },
        }

    # ------------------------------------------------------------------ queries
    batcher = Batcher(service, enabled=batch_requests)

    @app.post(
        "/v1/recommendations",
        response_model=schemas.RecommendationsResponse,
        responses=_errors(),
    )
    async def recommendations(body: schemas.RecommendationsRequest) -> Response:
        # Concurrent requests wait for the current model call (in a worker thread) to end and
        # are then answered together by one call (one matrix product for all users).
        generation, results = await batcher.submit(
            list(body.user_ids), body.k, body.exclude_seen, body.explain, body.item_filter()
        )
        document = {
            "model_generation": generation,
            "k": body.k,
            "results": [r.__dict__ for r in results],
        }
        return Response(orjson.dumps(document), media_type="application/json")

    @app.post(
        "/v1/similar-items",
        response_model=schemas.SimilarItemsResponse,
        responses=_errors(404, 409),
    )
    def similar_items(body: schemas.SimilarItemsRequest) -> dict[str, Any]:
        return {
            "results": service.refresh().similar(
                list(body.item_ids), body.k, body.item_filter()
            )
        }

    @app.post("/v1/scores", response_model=schemas.ScoresResponse, responses=_errors(404))
    def scores(body: schemas.ScoresRequest) -> dict[str, Any]:
        served = service.refresh()
        pairs = [(p.user_id, p.item_id) for p in body.pairs]
        users = [served.user_id(u) for u, _ in pairs]
        return {"scores": served.scores(pairs, service.live.for_users(users))}

    @app.get("/v1/items", response_model=schemas.ItemsResponse, responses=_errors())
    def items(
        query: str = Query(
            ...,
            min_length=1,
            max_length=200,
            pattern=schemas.PRINTABLE,
            description="Part of a title (no control characters).",
        ),
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
                found = [served.describe_item(item_id)]
        return {"query": query, "items": found}

    # ------------------------------------------------------------------ feedback
    @app.post(
        "/v1/users/{user_id}/ratings",
        response_model=schemas.RatingsResponse,
        responses=_errors(401, 403, 404, 409, 429),
    )
    def add_ratings(
        user_id: schemas.UserIdPath, body: schemas.RatingsRequest, request: Request
    ) -> dict[str, Any]:
        served = service.refresh()
        user = served.user_id(user_id)
        digest = keys.check(request.headers, user) if keys is not None else None
        if limiter is not None:
            address = request.client and request.client.host
            limiter.hit(client_key(request.headers, address, digest))
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
        already = service.live.user(user) if service.live.count(user) else {}
        total = len(already) + sum(1 for r in ratings if r.item_id not in already)
        if total > max_live_ratings:
            raise ServiceError(
                409,
                "too_many_ratings",
                f"user {user!r} would have live ratings for {total} items; at most "
                f"{max_live_ratings} are kept per user (rating an item again replaces its "
                "rating); nothing was stored",
            )
        stored = service.store.add(ratings)  # committed to disk before we answer
        service.live.sync(force=True)
        n_live = service.live.count(user)
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

    @app.get(
        "/v1/users/{user_id}/ratings",
        response_model=schemas.UserRatingsResponse,
        responses=_errors(401, 403),
    )
    def user_ratings(user_id: schemas.UserIdPath, request: Request) -> dict[str, Any]:
        served = service.refresh()
        user = served.user_id(user_id)
        if keys is not None:
            keys.check(request.headers, user)
        live = service.live.user(user)
        return {
            "user_id": user,
            "ratings": [{**served.describe_item(i), "value": v} for i, v in live.items()],
        }

    # ------------------------------------------------------------------ admin
    @app.post(
        "/v1/admin/reload",
        response_model=schemas.ReloadResponse,
        responses=_errors(401, 409),
    )
    async def reload(
        request: Request,
        body: schemas.ReloadRequest = Body(None),  # noqa: B008 - FastAPI's way
    ) -> Any:
        _check_admin(service, request)
        if body is None and (await request.body()).strip() == b"null":
            raise ServiceError(
                422, "invalid_request", "body: send a JSON object, or no body at all"
            )
        target = Path(body.model_dir) if body and body.model_dir else None
        abandoned = threading.Event()
        work = asyncio.ensure_future(admin_threads.run(service.reload, target, abandoned))
        try:
            fresh = await asyncio.wait_for(asyncio.shield(work), reload_timeout)
        except TimeoutError:
            abandoned.set()
            work.add_done_callback(retrieve)
            raise ServiceError(
                503,
                "timeout",
                f"the model did not load within {reload_timeout:g} s; the previous model keeps "
                "serving",
            ) from None
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


__all__ = [
    "ADMIN_TOKEN_ENV", "MAX_BODY_BYTES", "WRITE_RATE", "Service", "ServiceError", "create_app"
]
