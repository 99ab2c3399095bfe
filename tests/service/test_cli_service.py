"""The service's commands: serve (argument errors), export-feedback, train --feedback."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from palate import load
from palate.cli import app
from palate.data.synthetic import SyntheticData
from palate.service.feedback import Rating, SQLiteFeedbackStore


def invoke(args: list[object]):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, [str(a) for a in args])


def feedback_db(path: Path) -> Path:
    with SQLiteFeedbackStore(path) as store:
        store.add([Rating("web-1", 3, 5.0), Rating("web-1", 4, 2.0), Rating(7, 3, 1.0)])
        store.add([Rating("web-1", 4, 4.0)])  # replaces the 2.0
    return path


def test_export_feedback(tmp_path: Path) -> None:
    db = feedback_db(tmp_path / "f.db")
    result = invoke(["data", "export-feedback", db, "--out", tmp_path / "fb.parquet", "--json"])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["feedback_ratings"] == 3 and facts["rows"] == 3
    frame = pd.read_parquet(tmp_path / "fb.parquet")
    got = sorted(zip(frame["user_id"], frame["item_id"], frame["rating"], strict=True))
    assert got == [("7", 3, 1.0), ("web-1", 3, 5.0), ("web-1", 4, 4.0)]


def test_export_feedback_merged_with_the_training_data(
    tmp_path: Path, synthetic: SyntheticData
) -> None:
    ratings = synthetic.ratings.to_pandas().rename(columns={"value": "rating"})
    ratings.to_csv(tmp_path / "ratings.csv", index=False)
    db = feedback_db(tmp_path / "f.db")
    out = tmp_path / "merged.csv"
    result = invoke(
        ["data", "export-feedback", db, "--out", out, "--with", tmp_path / "ratings.csv"]
    )
    assert result.exit_code == 0, result.output
    merged = pd.read_csv(out, dtype={"user_id": str})
    assert len(merged) == len(ratings) + 2 + int(
        not ((ratings.user_id == 7) & (ratings.item_id == 3)).any()
    )
    row = merged[(merged.user_id == "7") & (merged.item_id == 3)]
    assert row["rating"].tolist() == [1.0]  # the feedback wins over the training rating


def test_export_feedback_errors(tmp_path: Path) -> None:
    result = invoke(
        ["data", "export-feedback", tmp_path / "none.db", "--out", tmp_path / "x.parquet"]
    )
    assert result.exit_code == 1 and "no feedback database" in result.stderr
    SQLiteFeedbackStore(tmp_path / "empty.db").close()
    result = invoke(
        ["data", "export-feedback", tmp_path / "empty.db", "--out", tmp_path / "x.parquet"]
    )
    assert result.exit_code == 1 and "no ratings" in result.stderr


def test_train_with_feedback(tmp_path: Path, synthetic: SyntheticData) -> None:
    ratings = synthetic.ratings.to_pandas().rename(columns={"value": "rating"})
    ratings.to_csv(tmp_path / "ratings.csv", index=False)
    db = feedback_db(tmp_path / "f.db")
    out = tmp_path / "model"
    result = invoke(
        [
            "train",
            "--data",
            tmp_path / "ratings.csv",
            "--model",
            "cf",
            "--feedback",
            db,
            "--out",
            out,
            "--epochs",
            "2",
            "--embedding-size",
            "2",
            "--validation-fraction",
            "0",
        ]
    )
    assert result.exit_code == 0, result.output
    model = load(out)
    assert "web-1" in model.users_  # the web visitor is now a trained user
    assert set(model.seen_items("web-1").tolist()) == {3, 4}


def test_serve_refuses_a_missing_model(tmp_path: Path) -> None:
    result = invoke(["serve", tmp_path / "nothing"])
    assert result.exit_code == 1
    assert "error:" in result.stderr


def test_serve_refuses_a_policy_file_the_model_cannot_check(
    tmp_path: Path, model_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    policies = tmp_path / "policies.toml"
    policies.write_text('min_ratings = 21\n\n[[policies]]\ncolumn = "studio"\nop = "=="\n'
                        'value = "A24"\n')
    result = invoke(["serve", model_dirs["cf"], "--policy-file", policies,
                     "--feedback-db", tmp_path / "f.db"])
    assert result.exit_code == 1
    assert "studio" in result.stderr and "Traceback" not in result.output


def test_the_workers_read_the_policy_file(
    tmp_path: Path, model_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from palate.cli import serve as serve_module

    policies = tmp_path / "policies.toml"
    policies.write_text("min_ratings = 21\n")
    monkeypatch.setenv(serve_module._MODEL_ENV, str(model_dirs["cf"]))
    monkeypatch.setenv(serve_module._FEEDBACK_ENV, str(tmp_path / "f.db"))
    monkeypatch.setenv(serve_module._POLICY_ENV, str(policies))
    app = serve_module.app_from_environment()
    try:
        with TestClient(app, base_url="http://localhost") as client:
            assert client.get("/v1/model").json()["filters"]["min_ratings"] == 21
    finally:
        app.state.service.store.close()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--api-key-file", "short 7\n", "at least 16 characters"),
     ("--write-rate", "often", "600/minute")],
)
def test_serve_refuses_bad_access_settings(
    tmp_path: Path, model_dirs: dict[str, Path], option: str, value: str, message: str
) -> None:
    setting: object = value
    if option == "--api-key-file":
        setting = tmp_path / "keys.txt"
        setting.write_text(value)
    result = invoke(["serve", model_dirs["cf"], option, setting,
                     "--feedback-db", tmp_path / "f.db"])
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output


def test_the_workers_read_the_access_settings(
    tmp_path: Path, model_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from palate.cli import serve as serve_module

    keys = tmp_path / "keys.txt"
    keys.write_text("a-long-enough-key-000 7\n")
    monkeypatch.setenv(serve_module._MODEL_ENV, str(model_dirs["cf"]))
    monkeypatch.setenv(serve_module._FEEDBACK_ENV, str(tmp_path / "f.db"))
    monkeypatch.setenv(serve_module._API_KEYS_ENV, str(keys))
    monkeypatch.setenv(serve_module._WRITE_RATE_ENV, "off")
    app = serve_module.app_from_environment()
    try:
        with TestClient(app, base_url="http://localhost") as client:
            feedback = client.get("/v1/model").json()["feedback"]
            assert feedback["api_keys"] is True and feedback["write_rate"] is None
            assert client.get("/v1/users/7/ratings").status_code == 401
    finally:
        app.state.service.store.close()
    monkeypatch.delenv(serve_module._WRITE_RATE_ENV)
    assert serve_module._write_rate(None) == "600/minute"


def test_workers_get_a_health_check_timeout_that_fits_the_model_load(
    tmp_path: Path, model_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn's default (5 s) killed workers still loading a model; palate serve sets more."""
    import uvicorn

    from palate.cli import serve as serve_module

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append(k))
    for name in (serve_module._MODEL_ENV, serve_module._FEEDBACK_ENV):
        monkeypatch.setenv(name, "")  # restored afterwards: serve sets them for its workers
    for workers in ("1", "2"):
        result = invoke(["serve", model_dirs["cf"], "--workers", workers,
                         "--feedback-db", tmp_path / "f.db"])
        assert result.exit_code == 0, result.output
    assert "timeout_worker_healthcheck" not in calls[0]
    assert calls[1]["timeout_worker_healthcheck"] == serve_module.HEALTHCHECK_SECONDS
    assert calls[1]["workers"] == 2
