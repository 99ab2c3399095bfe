"""Shared helpers for the benchmarks: environment notes, timing, tables and result files."""

from __future__ import annotations

import datetime as dt
import importlib
import io
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_ML100K = Path.home() / ".cache" / "palate" / "ml-100k"

# (import name, distribution name) of every library whose version a result should record.
LIBRARIES: tuple[tuple[str, str], ...] = (
    ("palate", "palate"),
    ("numpy", "numpy"),
    ("scipy", "scipy"),
    ("pandas", "pandas"),
    ("torch", "torch"),
    ("numba", "numba"),
    ("sklearn", "scikit-learn"),
    ("surprise", "scikit-surprise"),
    ("cornac", "cornac"),
    ("lightfm", "lightfm"),
)


def library_versions() -> dict[str, str | None]:
    """Version of each library in :data:`LIBRARIES` (``None`` when it does not import)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for module_name, dist_name in LIBRARIES:
        try:
            module = importlib.import_module(module_name)
        except Exception:  # noqa: BLE001 - any import failure means "not available"
            versions[dist_name] = None
            continue
        versions[dist_name] = str(getattr(module, "__version__", "unknown"))
    return versions


def git_commit() -> str | None:
    """The repository's HEAD commit, with ``+dirty`` when tracked files have changes."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=BENCH_DIR, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "../src"],
                               cwd=BENCH_DIR).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or what platform knows elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_note() -> dict[str, Any]:
    """Where a benchmark ran: cores, CPU, memory, OS, and the thread counts in use."""
    note: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
    }
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        note["memory_gib"] = round(pages / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        note["memory_gib"] = None
    note["load_average_1_5_15"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    try:
        import torch

        note["torch_threads"] = torch.get_num_threads()
    except Exception:  # noqa: BLE001
        note["torch_threads"] = None
    return note


def command_line() -> str:
    """The command line that started this process, ready to paste into a shell."""
    return " ".join(shlex.quote(arg) for arg in [Path(sys.executable).name, *sys.argv])


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` leaves the elapsed seconds in ``t[0]``."""
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation; ``(nan, nan)`` for no values."""
    if not values:
        return float("nan"), float("nan")
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std())


def rmse(truth: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(truth) - np.asarray(pred)) ** 2)))


def mae(truth: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(truth) - np.asarray(pred))))


def parse_list(text: str | None) -> list[str] | None:
    """``"a,b"`` -> ``["a", "b"]``; ``None`` or empty -> ``None``."""
    if not text:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a table with Rich when it is installed, as aligned plain text otherwise."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) for i, c in enumerate(columns)]
        print(title)
        print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=True)))
        for row in rows:
            print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
        return
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    Console(width=160).print(table)


def finish(path: Path, payload: dict[str, Any]) -> int:
    """Record the load average at the end, write the result file and say where it went."""
    payload["load_average_at_end"] = list(os.getloadavg())
    print(f"wrote {write_json(path, payload)}")
    return 0


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON (NaN written as null), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_finite(payload), indent=2, sort_keys=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value


def palate_model(name: str, **params: Any) -> Any:
    """A new palate model by its name in palate's model registry (``"cf"``, ``"ials"``,
    ``"ease"``, ``"two-tower"``, ``"popularity"``) with these constructor arguments."""
    from palate.models.registry import model_class

    return model_class(name)(**params)


def try_import(loader: Callable[[], Any], what: str) -> tuple[Any, str | None]:
    """Call ``loader``; on ImportError/AttributeError return ``(None, reason)`` instead."""
    try:
        return loader(), None
    except (ImportError, AttributeError) as exc:
        return None, f"{what} is not available ({type(exc).__name__}: {exc})"


def available_runners(
    registry: dict[str, Any], names: list[str]
) -> tuple[list[Any], dict[str, str]]:
    """The runners (objects with ``make`` and ``description``) whose model can be built here,
    and why the others were skipped."""
    runners: list[Any] = []
    skipped: dict[str, str] = {}
    for name in names:
        runner = registry[name]
        _, reason = try_import(runner.make, runner.description)
        if reason is None:
            runners.append(runner)
        else:
            skipped[name] = reason
            print(f"skipping {name}: {reason}", file=sys.stderr)
    return runners, skipped


# ----------------------------------------------------------------------------- MovieLens files
def load_ratings(data_dir: Path) -> pd.DataFrame:
    """``u.data`` in file order as a DataFrame with columns user, item, rating, timestamp."""
    path = data_dir / "u.data"
    if not path.is_file():
        sys.exit(
            f"error: {path} not found. Rebuild MovieLens 100K with\n"
            f"  ../shared/data/get-ml-100k {data_dir}\n(or `make -C bench data`)."
        )
    return pd.read_csv(
        path,
        sep="\t",
        header=None,
        names=["user", "item", "rating", "timestamp"],
        dtype={"user": np.int64, "item": np.int64, "rating": np.float64, "timestamp": np.int64},
    )


def load_ml1m(data_dir: Path) -> pd.DataFrame:
    """``ratings.dat`` of MovieLens 1M in file order (user::item::rating::timestamp)."""
    path = data_dir / "ratings.dat"
    if not path.is_file():
        sys.exit(
            f"error: {path} not found. Rebuild MovieLens 1M with\n"
            f"  ../shared/data/get-ml-1m {data_dir}"
        )
    text = path.read_text(encoding="latin-1").replace("::", "\t")
    return pd.read_csv(
        io.StringIO(text),
        sep="\t",
        header=None,
        names=["user", "item", "rating", "timestamp"],
        dtype={"user": np.int64, "item": np.int64, "rating": np.float64, "timestamp": np.int64},
    )
