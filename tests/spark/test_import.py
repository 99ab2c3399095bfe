"""palate without Spark: importing palate never imports PySpark; palate.spark says what to
install when PySpark or Java is missing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_importing_palate_does_not_import_pyspark() -> None:
    out = _run("import sys, palate, palate.cli.main; print('pyspark' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_missing_pyspark_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['pyspark'] = None\n"
        "from palate.errors import MissingDependencyError, PalateError\n"
        "try:\n    import palate.spark\nexcept MissingDependencyError as e:\n"
        "    assert isinstance(e, PalateError) and isinstance(e, ImportError); print(e)\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert "pip install 'palate[spark]'" in out.stdout


def test_missing_java_is_named(tmp_path: object) -> None:
    pytest.importorskip("pyspark")
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)  # no java on it
    code = (
        "from palate.errors import MissingDependencyError\n"
        "try:\n    import palate.spark\nexcept MissingDependencyError as e:\n    print(e)\n"
    )
    out = _run(code, env)
    assert out.returncode == 0, out.stderr
    assert "Java" in out.stdout and "JAVA_HOME" in out.stdout
