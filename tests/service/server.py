"""Start ``palate serve`` as a real process on 127.0.0.1 for the tests that need one.

The server is started with ``--port 0``: it binds a port the system picks and names it in the
URL of its ``--json`` document, so no port is ever released and then taken back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import httpx

#: Seconds the server has to start (load the model, bind, answer /healthz).
START_TIMEOUT = 60.0


class Server:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process, self.log = process, log
        self.url = url.rstrip("/")
        self.port = httpx.URL(self.url).port

    def kill(self) -> None:
        """``kill -9``: no shutdown handlers, no flushing."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def _document(path: Path) -> dict[str, Any] | None:
    """The ``--json`` document once it is written whole, else None."""
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


@contextmanager
def running_server(
    model_dir: Path, feedback_db: Path, log: Path, token: str | None = None, workers: int = 1,
    extra: tuple[str, ...] = (),
) -> Iterator[Server]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    if token:
        env["PALATE_ADMIN_TOKEN"] = token
    command = [
        sys.executable,
        "-c",
        "from palate.cli.main import main; main()",
        "serve",
        str(model_dir),
        "--port",
        "0",
        "--json",
        "--feedback-db",
        str(feedback_db),
        "--log-level",
        "warning",
        "--workers",
        str(workers),
        *extra,
    ]
    started = log.with_name(log.name + ".json")  # stdout: the one JSON document, with the URL
    with open(log, "ab") as err, open(started, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env)

    def fail(what: str) -> NoReturn:
        raise RuntimeError(f"the server {what}: {log.read_text()[-2000:]}")

    try:
        deadline = time.monotonic() + START_TIMEOUT
        server: Server | None = None
        while True:
            if process.poll() is not None:
                fail("exited")
            if server is None and (document := _document(started)) is not None:
                server = Server(process, document["url"], log)
                assert server.port, f"palate serve --port 0 printed no port: {document['url']}"
            if server is not None:
                try:
                    if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
            if time.monotonic() > deadline:
                fail(f"did not start within {START_TIMEOUT:.0f} s")
            time.sleep(0.1)
        assert server is not None
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
