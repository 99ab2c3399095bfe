"""Load the real `palate serve` on 127.0.0.1 with wrk, beside the same stack returning a constant.

A synthetic collaborative-filtering model with a 100k-item catalogue (random factors, 20 seen
items per user, titles) is built once. Each server runs with ``--workers`` processes (one BLAS
thread each). wrk runs for a fixed duration with a fixed number of connections:

- ``POST /v1/recommendations`` (k=10, exclude_seen, one random known user per request) with
  one connection (latency) and 64 connections (throughput);
- ``POST /v1/users/{id}/ratings`` with 64 connections: acknowledged writes per second, then
  the feedback database is counted to check every acknowledged write is there.

    python bench/serve_load.py --duration 10 --workers 2
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, command_line, finish, machine_note, now_iso, print_table  # noqa: E402

N_ITEMS, N_USERS, DIM, SEEN = 100_000, 10_000, 32, 20
#: the "palate-small" server: the same model with 1,000 items, where scoring costs little, so
#: its gap to the constant server is the service's own work (validation, batching, JSON)
SMALL_ITEMS = 1_000
CACHE = RESULTS_DIR / "cache" / "serve_model_100k"

RECOMMEND_LUA = """
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body = '{"user_ids": [' .. math.random(0, %d) .. '], "k": 10, "exclude_seen": true}'
  return wrk.format(nil, "/v1/recommendations", nil, body)
end
"""

RATINGS_LUA = """
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local path = "/v1/users/load-" .. math.random(0, 1000000) .. "/ratings"
  local body = '{"ratings": [{"item_id": ' .. math.random(0, %d) .. ', "rating": 4}]}'
  return wrk.format(nil, path, nil, body)
end
"""


def build_model(path: Path, n_items: int = N_ITEMS) -> Path:
    """A fitted-looking CollaborativeFiltering with random factors, saved with titles."""
    if (path / "manifest.json").exists():
        return path
    import pandas as pd

    from palate import CollaborativeFiltering, Vocabulary, save
    from palate.models.base import ModelState

    rng = np.random.default_rng(0)
    seen = np.stack([rng.choice(n_items, SEEN, replace=False) for _ in range(N_USERS)])
    seen.sort(axis=1)
    config = CollaborativeFiltering(embedding_size=DIM).get_params()
    state = ModelState(
        config=config,
        arrays={
            "item_factors": rng.normal(0, 0.3, (n_items, DIM)).astype(np.float32),
            "user_factors": rng.normal(0, 0.3, (N_USERS, DIM)).astype(np.float32),
            "user_bias": rng.normal(0, 0.1, N_USERS).astype(np.float32),
            "item_bias": rng.normal(0, 0.1, n_items).astype(np.float32),
            "item_means": rng.uniform(2.5, 4.5, n_items).astype(np.float32),
            "fallback_scores": rng.uniform(2.5, 4.5, n_items).astype(np.float32),
            "seen_indptr": np.arange(0, N_USERS * SEEN + 1, SEEN, dtype=np.int64),
            "seen_indices": seen.reshape(-1).astype(np.int32),
        },
        vocabularies={
            "users": Vocabulary(np.arange(N_USERS)),
            "items": Vocabulary(np.arange(n_items)),
        },
        extra={
            "global_mean": 3.5,
            "rating_scale": [0.5, 5.0],
            "history": [],
            "count_floors": [1.0, 1.0],
        },
    )
    model = CollaborativeFiltering.from_state(state)
    items = pd.DataFrame(
        {
            "item_id": np.arange(n_items),
            "title": [f"Item {i}" for i in range(n_items)],
            "genres": [["Drama"]] * n_items,
        }
    )
    return save(model, path, item_table=items, overwrite=True)


def start(command: list[str], port: int, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    import httpx

    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wrk(url: str, script: str, connections: int, duration: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        handle.name,
        url,
    ]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    os.unlink(handle.name)
    return parse_wrk(text)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(text: str) -> dict[str, Any]:
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    percentiles = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", text, re.M)}
    return {
        "requests": requests,
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),  # type: ignore[union-attr]
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(int(x) for x in socket.groups()) if socket else 0),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "p50_ms": percentiles.get("50"),
        "p99_ms": percentiles.get("99"),
    }


def run_server(
    kind: str, model: Path, workers: int, duration: int, port: int, work: Path
) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    db = work / f"{kind}.db"
    if kind.startswith("palate"):
        command = [
            sys.executable,
            "-c",
            "from palate.cli.main import main; main()",
            "serve",
            str(model),
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--feedback-db",
            str(db),
            "--log-level",
            "warning",
            "--no-batch" if kind == "palate-unbatched" else "--batch",
            # the write path is measured at full speed, not at a client's limit
            "--write-rate",
            "off",
        ]
        if kind.startswith("palate-") and kind.split("-", 1)[1] in ("pq", "hnsw", "auto"):
            command += ["--index", kind.split("-", 1)[1]]
    else:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "serve_constant:app",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
            "--app-dir",
            str(Path(__file__).resolve().parent),
        ]
    process = start(command, port, work / f"{kind}.log", env)
    url = f"http://127.0.0.1:{port}"
    try:
        wrk(url, RECOMMEND_LUA % (N_USERS - 1), 8, 2)  # warm up every worker
        index = None
        if kind.startswith("palate"):
            import json
            import urllib.request

            with urllib.request.urlopen(f"{url}/v1/model") as response:
                index = json.load(response).get("index")
        out = {
            "recommend_1": wrk(url, RECOMMEND_LUA % (N_USERS - 1), 1, duration),
            "recommend_64": wrk(url, RECOMMEND_LUA % (N_USERS - 1), 64, duration),
        }
        if kind in ("constant", "palate"):  # the write path is the same in every palate server
            out["ratings_64"] = wrk(url, RATINGS_LUA % (N_ITEMS - 1), 64, duration)
        if index is not None:
            out["index"] = index
            print(f"{kind}: serving index {index}", flush=True)
    finally:
        stop(process)
    if kind == "palate":
        with sqlite3.connect(db) as connection:
            stored = connection.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]
        acknowledged = out["ratings_64"]["requests"] - out["ratings_64"]["non_2xx"]
        # wrk counts only completed responses; a write may land after wrk stopped reading
        out["ratings_64"]["stored_rows"] = stored
        out["ratings_64"]["acknowledged"] = acknowledged
        out["ratings_64"]["all_acknowledged_stored"] = stored >= acknowledged
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--servers",
        default="constant,palate,palate-pq,palate-small",
        help="which servers to load, in order (palate-unbatched: palate serve --no-batch; "
        "palate-pq / -hnsw / -auto: palate serve --index pq / hnsw / auto; palate-small: the same "
        f"model with {SMALL_ITEMS:,} items, the service's own cost)",
    )
    args = parser.parse_args()
    servers = args.servers.split(",")
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    model = build_model(CACHE)
    small = RESULTS_DIR / "cache" / f"serve_model_{SMALL_ITEMS}"
    if "palate-small" in servers:
        build_model(small, SMALL_ITEMS)
    work = Path(tempfile.mkdtemp(prefix="palate-serve-load-"))
    results = {
        name: run_server(
            name, small if name == "palate-small" else model, args.workers, args.duration,
            args.port, work,
        )
        for name in servers
    }
    constant = results.get("constant")
    if constant is not None:  # the targets are ratios to the constant server, same run
        for name, result in results.items():
            if name == "constant":
                continue
            result["vs_constant"] = {
                "recommend_64_throughput": result["recommend_64"]["requests_per_s"]
                / constant["recommend_64"]["requests_per_s"],
                "recommend_1_p99_extra_ms": result["recommend_1"]["p99_ms"]
                - constant["recommend_1"]["p99_ms"],
            }
    rows = []
    for label, key, metric in [
        ("recommend, 1 connection: p99 ms", "recommend_1", "p99_ms"),
        ("recommend, 1 connection: p50 ms", "recommend_1", "p50_ms"),
        ("recommend, 64 connections: req/s", "recommend_64", "requests_per_s"),
        ("recommend, 64 connections: p99 ms", "recommend_64", "p99_ms"),
        ("recommend, 64 connections: errors", "recommend_64", "errors"),
        ("ratings, 64 connections: writes/s", "ratings_64", "requests_per_s"),
        ("ratings, 64 connections: p99 ms", "ratings_64", "p99_ms"),
        ("ratings, 64 connections: errors", "ratings_64", "errors"),
    ]:
        rows.append(
            [label]
            + [
                f"{results[name][key][metric]:,.2f}" if key in results[name] else "-"
                for name in servers
            ]
        )
    if constant is not None:
        rows.append(["recommend, 64 connections: × constant"] + [
            "1" if name == "constant" else
            f"{results[name]['vs_constant']['recommend_64_throughput']:.2f}" for name in servers])
        rows.append(["recommend, 1 connection: p99 − constant's, ms"] + [
            "0" if name == "constant" else
            f"{results[name]['vs_constant']['recommend_1_p99_extra_ms']:+.2f}" for name in servers])
    print_table(
        f"palate serve, {N_ITEMS:,} items, {args.workers} workers, wrk {args.duration}s",
        ["measure", *servers],
        rows,
    )
    if "palate" in results:
        r = results["palate"]["ratings_64"]
        print(
            f"ratings: {r['acknowledged']} acknowledged, {r['stored_rows']} rows stored, "
            f"all acknowledged stored: {r['all_acknowledged_stored']}"
        )
    shutil.rmtree(work, ignore_errors=True)
    return finish(
        RESULTS_DIR / f"serve_load_w{args.workers}.json",
        {
            "benchmark": "serve_load",
            "date": now_iso(),
            "command": command_line(),
            "machine": machine_note(),
            "n_items": N_ITEMS,
            "n_users": N_USERS,
            "embedding_size": DIM,
            "workers": args.workers,
            "duration_s": args.duration,
            "results": results,
        },
    )


if __name__ == "__main__":
    raise SystemExit(main())
