"""Every example in README.md runs as written.

- Python blocks run in order in one namespace (as a reader pastes the tour into one session),
  in a temporary directory.
- Shell blocks: every ``palate ...`` line runs through Typer's runner (the ``palate`` app
  in-process), in README order, in one temporary working directory; the few lines that cannot
  run here are listed in :data:`NOT_RUN` with the reason.
- TOML blocks are the pipeline configurations the shell lines read (``--pipeline
  pipeline.toml``), each also parsed and built into a pipeline on its own, and the service's
  policy files (``--policy-file policies.toml``: ``min_ratings`` and ``[[policies]]`` only),
  each read as one.

MovieLens releases come from ``$PALATE_DATA`` (``../shared/data``) or the cache, never from
the network: an example whose release has no local copy is skipped, saying how to get one.
"""

from __future__ import annotations

import re
import shlex
import textwrap
import tomllib
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import palate
from palate.cli.main import app
from palate.data.loaders import find_movielens
from palate.data.movielens import available
from palate.ranking import ItemFilter, read_pipeline_config

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHARED_DATA = ROOT.parent / "shared" / "data"

#: The shell lines that are not run, by their first words, and why.
NOT_RUN = {
    "make": "a Makefile target: it sets up .venv and runs this test suite or the demo (the demo "
    "runs here as `palate demo`)",
    "curl": "talks to a running `palate serve` over HTTP (tests/service covers the API)",
    "palate serve": "starts a server that runs until it is stopped (tests/service runs it "
    "in-process and as a real process)",
    "palate spark": "needs PySpark and a Java runtime (tests/spark, marker spark)",
}
#: What a person types at the prompts of the interactive commands.
TYPED = {
    # search "toy story", pick the first of the films listed, rate it 5, then an empty search
    "palate rate models/cf": "toy story\n1\n5\n\n",
    "palate rate models/textbook --min-ratings 21": "toy story\n1\n5\n\n",
}
#: The file name the shell lines give the README's TOML block.
PIPELINE_FILE = "pipeline.toml"
#: The keys of a policy file (the other TOML blocks are pipeline configurations).
POLICY_FILE_KEYS = {"min_ratings", "policies"}

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.S | re.M,
)
RELEASE_NAME = re.compile(r"\bml-[a-z0-9-]*[a-z0-9]\b")


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int  # where the block starts in README.md


def blocks(lang: str) -> list[Block]:
    text = README.read_text()
    return [
        Block(m["lang"], textwrap.dedent(m["body"]), text.count("\n", 0, m.start()) + 1)
        for m in FENCE.finditer(text)
        if m["lang"] == lang
    ]


def is_policy_file(block: Block) -> bool:
    return set(tomllib.loads(block.code)) <= POLICY_FILE_KEYS


def pipeline_blocks() -> list[Block]:
    return [b for b in blocks("toml") if not is_policy_file(b)]


def shell_lines() -> list[tuple[int, str]]:
    """(README line, command) of every command of the shell blocks, continuations joined."""
    out = []
    for block in blocks("bash"):
        joined = block.code.replace("\\\n", " ")
        for offset, line in enumerate(joined.splitlines()):
            words = shlex.split(line, comments=True)
            if words:
                out.append((block.line + 1 + offset, shlex.join(words)))
    return out


def why_not_run(command: str) -> str | None:
    words = shlex.split(command)
    program = "palate" if words[0].endswith("/palate") else words[0]
    for prefix, reason in NOT_RUN.items():
        if [program, *words[1:]][: len(prefix.split())] == prefix.split():
            return reason
    if program != "palate":
        raise AssertionError(f"README runs {program!r}: run it in this test or list it in NOT_RUN")
    return None


def missing_releases(text: str) -> list[str]:
    """The MovieLens releases ``text`` names that have no local copy."""
    known = set(available())
    return sorted(
        name for name in set(RELEASE_NAME.findall(text))
        if name in known and find_movielens(name) is None
    )


def skip_without_data(text: str) -> None:
    missing = missing_releases(text)
    if missing:
        pytest.skip(
            f"MovieLens {', '.join(missing)} has no local copy ($PALATE_DATA or the cache) and "
            "tests use no network; e.g. ../shared/data/get-ml-100k ~/.cache/palate/ml-100k"
        )


@pytest.fixture(scope="module")
def readme_environment() -> Iterator[None]:
    """The README's data names resolve to local copies; a download attempt fails at once."""
    with pytest.MonkeyPatch.context() as patch:
        if (SHARED_DATA / "ml-latest-small").is_dir():
            patch.setenv("PALATE_DATA", str(SHARED_DATA))
        patch.setenv("PALATE_MOVIELENS_URL", "http://127.0.0.1:9")
        patch.setenv("no_proxy", "*")
        patch.setenv("COLUMNS", "200")
        yield


# ---------------------------------------------------------------------------------- shape
def test_the_readme_has_the_examples_this_test_runs() -> None:
    assert len(blocks("python")) >= 3
    assert len(shell_lines()) >= 20
    tomls = pipeline_blocks()
    assert len(tomls) == 1, "give each TOML block its own file name in this test"
    assert any(f"--pipeline {PIPELINE_FILE}" in command for _, command in shell_lines())
    for _, command in shell_lines():
        why_not_run(command)  # every program is run or listed with a reason


@pytest.mark.parametrize(
    "block", [b for b in blocks("toml") if is_policy_file(b)], ids=lambda b: f"README.md:{b.line}"
)
def test_toml_examples_of_policy_files_read(block: Block, tmp_path: Path) -> None:
    path = tmp_path / "policies.toml"
    path.write_text(block.code)
    assert ItemFilter.read(path)


@pytest.mark.parametrize("block", pipeline_blocks(), ids=lambda b: f"README.md:{b.line}")
def test_toml_examples_are_pipeline_configurations(block: Block, tmp_path: Path) -> None:
    path = tmp_path / PIPELINE_FILE
    path.write_text(block.code)
    config = read_pipeline_config(path)
    assert isinstance(config.get("data"), str), "a pipeline configuration names its data"
    pipeline = palate.RetrieveThenRank.from_config(palate.CollaborativeFiltering(), config)
    assert pipeline.sources and pipeline.policies


# ---------------------------------------------------------------------------------- python
@pytest.mark.slow
def test_python_examples_run(
    readme_environment: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for block in blocks("python"):
        skip_without_data(block.code)
        code = compile(block.code, f"README.md:{block.line}", "exec")
        exec(code, namespace)  # noqa: S102 - the README's own examples


# ---------------------------------------------------------------------------------- shell
@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One working directory for all the shell lines: later lines use earlier models."""
    path = tmp_path_factory.mktemp("readme-shell")
    (path / PIPELINE_FILE).write_text(pipeline_blocks()[0].code)
    return path


def stand_in_for_serve(workspace: Path) -> None:
    """What `palate serve models/cf --feedback-db feedback.db` stores when people rate (the
    server itself is not started here): a MovieLens user's and a web visitor's ratings."""
    from palate.service.feedback import Rating, SQLiteFeedbackStore

    with SQLiteFeedbackStore(workspace / "feedback.db") as store:
        store.add([Rating(1, 2, 4.5), Rating("web-7", 1, 5.0), Rating("web-7", 260, 4.0)])


@pytest.mark.slow
@pytest.mark.parametrize(
    "command", [c for _, c in shell_lines()], ids=[f"README.md:{n}" for n, _ in shell_lines()]
)
def test_shell_examples_run(
    command: str, readme_environment: None, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = why_not_run(command)
    if reason:
        pytest.skip(f"not run: {reason}")
    words = shlex.split(command)
    used = command + (workspace / PIPELINE_FILE).read_text() * (PIPELINE_FILE in words)
    skip_without_data(used)
    monkeypatch.chdir(workspace)
    if "feedback.db" in words and not (workspace / "feedback.db").exists():
        stand_in_for_serve(workspace)
    typed = TYPED.get(shlex.join(["palate", *words[1:]]))
    result = CliRunner().invoke(app, words[1:], input=typed)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"{command} raised (a traceback, not one error line):\n{trace}")
    assert result.exit_code == 0, f"{command} exited {result.exit_code}:\n{result.output}"

