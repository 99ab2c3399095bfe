"""Start ``palate serve`` as a real process on 127.0.0.1 for the tests that need one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log
        self.url = f"http://127.0.0.1:{port}"

    def kill(self) -> None:
        """``kill -9``: no shutdown handlers, no flushing."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@contextmanager
def running_server(
    model_dir: Path, feedback_db: Path, log: Path, token: str | None = None, workers: int = 1,
    extra: tuple[str, ...] = (),
) -> Iterator[Server]:
    port = free_port()
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
        str(port),
        "--feedback-db",
        str(feedback_db),
        "--log-level",
        "warning",
        "--workers",
        str(workers),
        *extra,
    ]
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = Server(process, port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
