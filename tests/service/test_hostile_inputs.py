"""Requests an attacker or a careless client sends: paths, FIFOs, Host headers, methods,
loose types, control characters; and the error responses the schema declares."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from .conftest import ADMIN_TOKEN, ClientFactory
from .test_api import assert_error

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_no_file_system_paths_in_answers(
    client: TestClient, model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    assert str(model_dirs["cf"]) not in client.get("/v1/model").text
    broken = tmp_path / "broken"
    shutil.copytree(model_dirs["cf"], broken)
    (broken / "arrays.safetensors").write_bytes(b"garbage")
    manifest_broken = tmp_path / "no-manifest"
    shutil.copytree(model_dirs["cf"], manifest_broken)
    (manifest_broken / "manifest.json").unlink()
    for target in (broken, manifest_broken, tmp_path / "missing"):
        response = client.post("/v1/admin/reload", headers=AUTH, json={"model_dir": str(target)})
        assert_error(response, 422, "not loaded")
        assert str(tmp_path) not in response.text and "/tmp" not in response.text
    ok = client.post("/v1/admin/reload", headers=AUTH)
    assert ok.status_code == 200 and str(model_dirs["cf"]) not in ok.text


def test_reload_refuses_a_fifo_in_the_model_directory(
    client: TestClient, model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    target = tmp_path / "fifo"
    shutil.copytree(model_dirs["cf"], target)
    (target / "manifest.json").unlink()
    os.mkfifo(target / "manifest.json")
    answers: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: answers.append(client.post(
            "/v1/admin/reload", headers=AUTH, json={"model_dir": str(target)})),
        daemon=True,
    )
    thread.start()
    thread.join(timeout=30)  # hang guard: opening the FIFO blocks until someone writes
    if not answers:
        with open(target / "manifest.json", "w") as fifo:  # let the stuck reader go
            fifo.write("{}")
    assert answers, "the reload hung on the FIFO"
    assert_error(answers[0], 422, "manifest.json", "not a regular file")
    assert client.post("/v1/admin/reload", headers=AUTH).status_code == 200  # lock released


def test_unknown_host_headers_are_refused(make_client: ClientFactory) -> None:
    client = make_client("cf")
    for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8000", "localhost.evil.example"):
        body = assert_error(client.get("/healthz", headers={"Host": host}), 400, "Host header")
        assert body["error"] == "invalid_host"
    named = make_client("cf", allowed_hosts=["api.example.com", "*.internal"])
    assert named.get("/healthz", headers={"Host": "api.example.com"}).status_code == 200
    assert named.get("/healthz", headers={"Host": "a.b.internal"}).status_code == 200
    assert named.get("/healthz", headers={"Host": "localhost"}).status_code == 400
    bound = make_client("cf", host="10.1.2.3")
    assert bound.get("/healthz", headers={"Host": "10.1.2.3:8000"}).status_code == 200


def test_serve_takes_allowed_hosts(tmp_path: Path, model_dirs: dict[str, Path]) -> None:
    from .server import running_server

    with running_server(
        model_dirs["cf"], tmp_path / "f.db", tmp_path / "server.log",
        extra=("--allowed-host", "api.example.com", "--allowed-host", "127.0.0.1"),
    ) as server:
        ok = httpx.get(server.url + "/healthz", headers={"Host": "api.example.com"})
        refused = httpx.get(server.url + "/healthz", headers={"Host": "evil.example"})
    assert ok.status_code == 200
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_host"


def test_serve_refuses_a_bad_host_pattern(model_dirs: dict[str, Path], tmp_path: Path) -> None:
    from .test_cli_service import invoke

    result = invoke(["serve", model_dirs["cf"], "--feedback-db", tmp_path / "f.db",
                     "--allowed-host", "a*.example.com"])
    assert result.exit_code == 1 and "a*.example.com" in result.stderr


def test_openapi_declares_every_error_response(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    error_ref = "#/components/schemas/ErrorResponse"
    expected = {
        ("get", "/healthz"): set(),
        ("get", "/v1/model"): set(),
        ("post", "/v1/recommendations"): set(),
        ("post", "/v1/similar-items"): {"404", "409"},
        ("post", "/v1/scores"): {"404"},
        ("get", "/v1/items"): set(),
        ("post", "/v1/users/{user_id}/ratings"): {"401", "403", "404", "409", "429"},
        ("get", "/v1/users/{user_id}/ratings"): {"401", "403"},
        ("post", "/v1/admin/reload"): {"401", "409"},
    }
    for (method, path), extra in expected.items():
        responses = schema["paths"][path][method]["responses"]
        errors = {status for status in responses if status >= "400"}
        assert errors == {"400", "413", "422", "500", "503"} | extra, (method, path)
        for status in errors:
            content = responses[status]["content"]["application/json"]["schema"]
            assert content == {"$ref": error_ref}, (method, path, status)


def test_method_not_allowed_names_the_allowed_methods(client: TestClient) -> None:
    response = client.get("/v1/recommendations")
    body = assert_error(response, 405)
    assert body["error"] == "method_not_allowed" and response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/v1/recommendations", {"user_ids": [1], "k": 135.0}, "k"),
        ("/v1/recommendations", {"user_ids": [1], "explain": "yes"}, "explain"),
        ("/v1/recommendations", {"user_ids": [1], "explain": 1}, "explain"),
        ("/v1/recommendations", {"user_ids": [1], "exclude_seen": "false"}, "exclude_seen"),
        ("/v1/similar-items", {"item_ids": [1], "k": 3.0}, "k"),
        ("/v1/scores", {"pairs": [{"user_id": 1.0, "item_id": 1}]}, "pairs"),
    ],
)
def test_types_are_strict(client: TestClient, path: str, body: dict, fragment: str) -> None:
    assert_error(client.post(path, json=body), 422, fragment)


@pytest.mark.parametrize("query", ["\x00", "item\x00", "\x1b[2J", "\x7f", "\x85"])
def test_control_characters_in_a_title_query_are_refused(client: TestClient, query: str) -> None:
    assert_error(client.get("/v1/items", params={"query": query}), 422, "query")


def test_title_queries_still_find_titles(client: TestClient) -> None:
    found = client.get("/v1/items", params={"query": "Item 1", "limit": 3}).json()["items"]
    assert [i["item_id"] for i in found] == [1, 10, 11]
