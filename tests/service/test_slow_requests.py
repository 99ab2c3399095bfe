"""Model work runs aside from the event loop: a slow request has a time budget, keeps
/healthz answering, and does not hold up shutdown; reloads have their own limit."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from palate.service.engine import ServedModel

from .conftest import ADMIN_TOKEN, ClientFactory
from .test_api import assert_error

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Blocker:
    """A stand-in for slow model work: runs until released (or a 30 s guard), says whether
    it is running, and records what happened meanwhile."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.running = threading.Event()
        self.finished = threading.Event()

    def __call__(self, result: Callable[[], Any] = lambda: None) -> Any:
        self.running.set()
        try:
            self.release.wait(timeout=30)
            return result()
        finally:
            self.running.clear()
            self.finished.set()


def test_a_slow_recommendation_neither_blocks_health_nor_outlives_its_budget(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client("cf", request_timeout=0.5)
    served = client.app.state.service.served  # type: ignore[attr-defined]
    blocker = Blocker()
    real = served.recommend
    monkeypatch.setattr(served, "recommend", lambda *a, **k: blocker(lambda: real(*a, **k)))
    health_while_running: list[bool] = []

    async def health_after_start(http: httpx.AsyncClient) -> httpx.Response:
        while not blocker.running.is_set() and not blocker.finished.is_set():
            await asyncio.sleep(0.01)
        response = await http.get("/healthz")
        health_while_running.append(blocker.running.is_set())
        return response

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            slow = http.post("/v1/recommendations", json={"user_ids": [1], "k": 5})
            answers = await asyncio.gather(slow, health_after_start(http))
        blocker.release.set()
        return list(answers)

    slow, health = asyncio.run(run())
    assert health.status_code == 200 and health_while_running == [True]
    body = assert_error(slow, 503, "did not finish within 0.5 s")
    assert body["error"] == "timeout"


def test_a_slow_thread_pool_route_is_answered_at_its_budget(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routes run in the thread pool (similar items) get their 503 at the deadline, not when
    the stuck work ends."""
    client = make_client("cf", request_timeout=0.5)
    served = client.app.state.service.served  # type: ignore[attr-defined]
    blocker = Blocker()
    real = served.similar
    monkeypatch.setattr(served, "similar", lambda *a, **k: blocker(lambda: real(*a, **k)))

    async def run() -> tuple[httpx.Response, bool]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            answer = await http.post("/v1/similar-items", json={"item_ids": [1], "k": 3})
        still_running = blocker.running.is_set()
        blocker.release.set()
        return answer, still_running

    answer, still_running = asyncio.run(run())
    assert still_running  # answered while the work was still stuck
    assert_error(answer, 503, "did not finish within 0.5 s")


def test_a_slow_reload_runs_aside_and_is_refused_when_out_of_time(
    make_client: ClientFactory, model_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client("cf", reload_timeout=0.5)
    blocker = Blocker()
    real_load = ServedModel.load.__func__  # type: ignore[attr-defined]

    def slow_load(cls: type, *args: Any, **kwargs: Any) -> ServedModel:
        return blocker(lambda: real_load(cls, *args, **kwargs))

    monkeypatch.setattr(ServedModel, "load", classmethod(slow_load))
    health_while_running: list[bool] = []

    async def health_after_start(http: httpx.AsyncClient) -> httpx.Response:
        while not blocker.running.is_set() and not blocker.finished.is_set():
            await asyncio.sleep(0.01)
        response = await http.get("/healthz")
        health_while_running.append(blocker.running.is_set())
        again = await http.post("/v1/admin/reload", headers=AUTH)
        assert_error(again, 409, "another reload")
        return response

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            reload = http.post(
                "/v1/admin/reload", headers=AUTH,
                json={"model_dir": str(model_dirs["popularity"])},
            )
            answers = await asyncio.gather(reload, health_after_start(http))
        blocker.release.set()
        return list(answers)

    reload, health = asyncio.run(run())
    assert health.status_code == 200 and health_while_running == [True]
    assert_error(reload, 503, "did not load within 0.5 s", "previous model keeps serving")
    assert blocker.finished.wait(30)
    # the model that loaded too late is dropped, and reloading works again
    assert client.get("/v1/model").json()["model_kind"] == "collaborative"
    monkeypatch.undo()
    ok = client.post("/v1/admin/reload", headers=AUTH,
                     json={"model_dir": str(model_dirs["popularity"])})
    assert ok.status_code == 200, ok.text


_STUCK_SERVER = """
import pathlib, socket, sys, time
import uvicorn
from palate.service import create_app

app = create_app(sys.argv[1], feedback_db=sys.argv[2], request_timeout=1.0)
app.state.service.served.recommend = lambda *a, **k: time.sleep(3600)
# bind port 0 and say which port the system gave: no port is released and taken back
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
pathlib.Path(sys.argv[3]).write_text(str(sock.getsockname()[1]))
uvicorn.run(app, fd=sock.fileno(), log_level="warning", timeout_graceful_shutdown=2)
"""


def test_a_request_stuck_in_the_model_gets_a_503_and_does_not_hold_up_shutdown(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    import signal
    import subprocess
    import sys
    import time

    port_file = tmp_path / "port"
    script = tmp_path / "stuck.py"
    script.write_text(_STUCK_SERVER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(script), str(model_dirs["cf"]), str(tmp_path / "f.db"),
             str(port_file)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    url = ""
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            if not url:
                if not port_file.is_file() or not port_file.read_text():
                    time.sleep(0.1)
                    continue
                url = f"http://127.0.0.1:{int(port_file.read_text())}"
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        stuck = httpx.post(url + "/v1/recommendations", json={"user_ids": [1]}, timeout=20)
        assert_error(stuck, 503, "did not finish within 1 s")
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)  # hang guard: a model thread must not keep it alive
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
