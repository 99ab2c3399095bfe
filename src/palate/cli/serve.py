"""``palate serve``: the HTTP service (uvicorn) over a saved model."""

from __future__ import annotations

import gc
import os
import socket
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from palate.cli._session import JsonOption, VerboseOption, session
from palate.errors import ConfigError

#: Environment variables that carry the settings into uvicorn's worker processes.
_MODEL_ENV = "PALATE_SERVE_MODEL_DIR"
_FEEDBACK_ENV = "PALATE_SERVE_FEEDBACK_DB"
_BATCH_ENV = "PALATE_SERVE_BATCH"
_INDEX_ENV = "PALATE_SERVE_INDEX"
_HOST_ENV = "PALATE_SERVE_HOST"
_ALLOWED_HOSTS_ENV = "PALATE_SERVE_ALLOWED_HOSTS"
_TIMEOUT_ENV = "PALATE_SERVE_REQUEST_TIMEOUT"
_POLICY_ENV = "PALATE_SERVE_POLICY_FILE"
_API_KEYS_ENV = "PALATE_SERVE_API_KEY_FILE"
_WRITE_RATE_ENV = "PALATE_SERVE_WRITE_RATE"
#: One thread per worker for NumPy's BLAS, OpenMP, numba and torch: scale by processes.
#: (numba reads its own setting once, at import; it is limited by a call instead.)
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class ServingIndexKind(StrEnum):
    pq = "pq"
    hnsw = "hnsw"
    auto = "auto"


def serve(
    model_dir: Annotated[
        Path, typer.Argument(metavar="MODEL_DIR", help="A model directory saved by `palate train`.")
    ],
    host: Annotated[
        str, typer.Option(help="Address to bind; 0.0.0.0 exposes the service to the network.")
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            min=0,
            max=65535,
            help="TCP port; 0 takes a free one, named in the URL that is printed.",
        ),
    ] = 8000,
    feedback_db: Annotated[
        Path,
        typer.Option(
            "--feedback-db", metavar="PATH", help="SQLite file where live ratings are stored."
        ),
    ] = Path("feedback.db"),
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (each with one BLAS thread).")
    ] = 1,
    batch: Annotated[
        bool,
        typer.Option(
            help="Answer recommendation requests that arrive together with one model call."
        ),
    ] = True,
    index: Annotated[
        ServingIndexKind | None,
        typer.Option(
            help="Answer recommendations from an approximate vector index over the model's "
            "item vectors, built at start (pq: seconds; hnsw: minutes at 1M items; auto: the "
            "fastest setting measured to reach recall@10 0.99, minutes at 1M items); "
            "default: score every item exactly.",
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            metavar="NAME",
            help="A host name clients may use in the Host header (repeat for several; "
            "*.example.com patterns; * for any). Default: the --host address and localhost "
            "names; other names get 400, which keeps other web sites out (DNS rebinding).",
        ),
    ] = None,
    request_timeout: Annotated[
        float,
        typer.Option(
            min=0.1, help="Seconds a request may take before it is answered with a 503 error."
        ),
    ] = 10.0,
    policy_file: Annotated[
        Path | None,
        typer.Option(
            "--policy-file",
            metavar="POLICIES.toml",
            help="Filters applied to every list: min_ratings = N (leave out items with fewer "
            "training events) and [[policies]] tables of column, op and value. Requests may "
            "add filters, never remove these; GET /v1/model lists them.",
        ),
    ] = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            "--api-key-file",
            metavar="KEYS",
            help="Guard reading and writing users' live ratings with API keys: one "
            "'KEY USER_ID' or 'KEY *' (any user) per line; KEY may be sha256:HEX. Clients "
            "send 'Authorization: Bearer KEY'. Default: anyone may.",
        ),
    ] = None,
    write_rate: Annotated[
        str,
        typer.Option(
            "--write-rate",
            metavar="N/PERIOD",
            help="Most rating writes per client (API key, else address) and worker, like "
            "600/minute or 20/second; past it, 429 with Retry-After. 'off': no limit.",
        ),
    ] = "600/minute",
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Serve recommendations, similar items, scores, live ratings and a web page over HTTP.

    Open http://127.0.0.1:8000/ for the web page and /docs for the API. Reloading a model
    (POST /v1/admin/reload) needs the token in the PALATE_ADMIN_TOKEN environment variable.
    """
    with session(json_output, verbose) as s:
        try:
            import uvicorn
        except ImportError as exc:  # pragma: no cover - the extra is installed in CI
            raise ConfigError(
                "the service needs its extra: pip install 'palate[service]'"
            ) from exc
        from palate.persist import read_manifest
        from palate.service.app import check_model_dir
        from palate.service.middleware import check_allowed_hosts

        if model_dir.exists():
            check_model_dir(model_dir)  # no FIFO or device to block on
        manifest = read_manifest(model_dir)  # fail fast, with palate's message, on a bad dir
        check_allowed_hosts(allowed_host or ())
        from palate.service.access import ApiKeys, WriteLimiter

        if api_key_file is not None:
            ApiKeys.read(api_key_file)  # fail here, with the line, not in every worker
        rate = None if write_rate.strip().lower() in ("off", "none", "0") else write_rate
        if rate is not None:
            WriteLimiter(rate)
        item_filter = None
        if policy_file is not None:
            from palate.persist import load_artifact
            from palate.ranking import FilteredModel, ItemFilter

            item_filter = ItemFilter.read(policy_file)
            artifact = load_artifact(model_dir)  # fail here, not in every worker
            FilteredModel(artifact.model, artifact.item_table, item_filter=item_filter)
        from palate.service.feedback import SQLiteFeedbackStore

        origin = str(model_dir.resolve())
        with SQLiteFeedbackStore(feedback_db) as store:  # the workers start from this model
            store.publish_model(origin, origin=origin)
        os.environ[_MODEL_ENV] = str(model_dir.resolve())
        os.environ[_FEEDBACK_ENV] = str(feedback_db.resolve())
        os.environ[_BATCH_ENV] = "1" if batch else "0"
        if index is None:
            os.environ.pop(_INDEX_ENV, None)
        else:
            os.environ[_INDEX_ENV] = index.value
        os.environ[_HOST_ENV] = host
        os.environ[_ALLOWED_HOSTS_ENV] = ",".join(allowed_host or ())
        os.environ[_TIMEOUT_ENV] = repr(float(request_timeout))
        if policy_file is None:
            os.environ.pop(_POLICY_ENV, None)
        else:
            os.environ[_POLICY_ENV] = str(policy_file.resolve())
        if api_key_file is None:
            os.environ.pop(_API_KEYS_ENV, None)
        else:
            os.environ[_API_KEYS_ENV] = str(api_key_file.resolve())
        os.environ[_WRITE_RATE_ENV] = rate or "off"
        for name in _THREAD_ENV:
            os.environ.setdefault(name, "1")
        # --port 0: bind here, so that the URL printed below names the port actually held,
        # and hand the socket to uvicorn
        listener = _free_port_socket(host) if port == 0 else None
        bind: dict[str, Any] = {"host": host, "port": port}
        if listener is not None:
            port = int(listener.getsockname()[1])
            bind = {"fd": listener.fileno()}
        url = f"http://{host}:{port}/"
        s.emit(
            {
                "url": url,
                "model_dir": str(model_dir),
                "model_kind": manifest.get("model_kind"),
                "feedback_db": str(feedback_db),
                "workers": workers,
                "index": None if index is None else index.value,
                "filters": None if item_filter is None else item_filter.to_config(),
                "api_keys": api_key_file is not None,
                "write_rate": rate,
            }
        )
        s.note(f"serving {manifest.get('model_kind')} model {model_dir} at {url} (docs: {url}docs)")
        uvicorn.run(
            "palate.cli.serve:app_from_environment",
            factory=True,
            **bind,
            workers=workers,
            log_level=log_level,
            access_log=verbose,
            # requests end within their time budget; don't wait longer on shutdown
            timeout_graceful_shutdown=max(1, int(request_timeout) + 2),
            **_healthcheck(workers, index),
        )


#: Seconds a worker process may go without answering uvicorn's health check: its model load
#: (and, with --index, the index build) happens meanwhile, and takes longer than uvicorn's
#: default 5 s on big models or a busy machine (a worker killed while loading restarts, loads
#: again, and is killed again).
HEALTHCHECK_SECONDS = 60
HEALTHCHECK_SECONDS_HNSW = 900  # --index hnsw / auto


def _healthcheck(workers: int, index: ServingIndexKind | None) -> dict[str, Any]:
    """uvicorn's worker health-check timeout for ``--workers N`` (N > 1)."""
    import inspect

    import uvicorn

    supported = inspect.signature(uvicorn.Config).parameters
    if workers < 2 or "timeout_worker_healthcheck" not in supported:
        return {}
    slow = (ServingIndexKind.hnsw, ServingIndexKind.auto)  # minutes to build at 1M items
    seconds = HEALTHCHECK_SECONDS_HNSW if index in slow else HEALTHCHECK_SECONDS
    return {"timeout_worker_healthcheck": seconds}


def _free_port_socket(host: str) -> socket.socket:
    """A TCP socket bound to a port the system picks on ``host`` (not yet listening)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.bind((host, 0))
    except OSError as exc:
        listener.close()
        raise ConfigError(f"cannot bind a port on {host}: {exc}") from exc
    listener.set_inheritable(True)
    return listener


def app_from_environment() -> Any:
    """The app for one uvicorn worker, configured by ``palate serve`` through the environment."""
    _one_thread()
    from palate.service import create_app

    model_dir = os.environ.get(_MODEL_ENV)
    if not model_dir:
        raise ConfigError(f"set {_MODEL_ENV} to a model directory (palate serve does)")
    allowed = [h for h in os.environ.get(_ALLOWED_HOSTS_ENV, "").split(",") if h]
    app = create_app(
        model_dir,
        feedback_db=os.environ.get(_FEEDBACK_ENV, "feedback.db"),
        follow_published=True,
        batch_requests=os.environ.get(_BATCH_ENV, "1") != "0",
        index=os.environ.get(_INDEX_ENV) or None,
        request_timeout=float(os.environ.get(_TIMEOUT_ENV) or 10.0),
        host=os.environ.get(_HOST_ENV, "127.0.0.1"),
        allowed_hosts=allowed or None,
        item_filter=os.environ.get(_POLICY_ENV) or None,
        api_keys=os.environ.get(_API_KEYS_ENV) or None,
        write_rate=_write_rate(os.environ.get(_WRITE_RATE_ENV)),
    )
    # The loaded model (id tables, titles: ~0.5M objects at 100k items) lives as long as the
    # process: moved out of the cycle collector's reach, a full collection no longer walks it
    # in the middle of a request.
    gc.collect()
    gc.freeze()
    return app


def _write_rate(setting: str | None) -> str | None:
    """The write limit a worker applies: the default when unset, None for 'off'."""
    from palate.service.app import WRITE_RATE

    if setting is None:
        return WRITE_RATE
    return None if setting == "off" else setting


def _one_thread() -> None:
    """Limit this process's thread pools to one thread (NumPy is already imported here)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the service extra
        pass
    else:
        threadpool_limits(1)
    torch = sys.modules.get("torch")  # only when something already imported it
    if torch is not None:
        torch.set_num_threads(1)
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a core dependency
        pass
    else:
        numba.set_num_threads(1)
