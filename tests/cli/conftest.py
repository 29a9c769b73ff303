"""Helpers for the CLI tests: run the real ``policy-engine`` console script in a
subprocess, write policies, labels files, images and recordings under tmp_path.

The test modules run with ``--import-mode=importlib``, so the helpers are handed
out as fixtures rather than imported.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

MAIN = Path(__file__).resolve().parents[2]
PACKAGED_SCHEMAS = MAIN / "policy_engine" / "schemas"

# AWS's documented example response of DetectModerationLabels.
AWS_MODERATION_EXAMPLE: dict[str, Any] = {
    "ModerationLabels": [
        {"Confidence": 97.29618072509766, "Name": "Weapon Violence", "ParentName": "Violence"},
        {"Confidence": 97.29618072509766, "Name": "Violence", "ParentName": ""},
    ],
    "ModerationModelVersion": "3.0",
}

DIAGNOSTIC_LINE = re.compile(
    r"^(?P<file>.+):(?P<line>\d+):(?P<column>\d+): "
    r"(?P<severity>error|warning)\[(?P<code>[a-z0-9-]+)\]: (?P<message>.+)$"
)


@dataclass(frozen=True, repr=False)
class Result:
    code: int
    out: str
    err: str
    args: tuple[str, ...]

    def json(self) -> Any:
        return json.loads(self.out)

    def jsonl(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]

    def diagnostics(self, stream: str = "err") -> list[dict[str, Any]]:
        """Every ``file:line:col: severity[code]: message`` line of a stream."""
        text = self.err if stream == "err" else self.out
        found = []
        for line in text.splitlines():
            match = DIAGNOSTIC_LINE.match(line)
            if match:
                record: dict[str, Any] = match.groupdict()
                record["line"] = int(record["line"])
                record["column"] = int(record["column"])
                found.append(record)
        return found

    def __repr__(self) -> str:  # shown by pytest on a failed assertion
        return (
            f"$ {' '.join(self.args)}\n[exit {self.code}]\n"
            f"--stdout--\n{self.out}\n--stderr--\n{self.err}"
        )


def cli_env(extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The environment for a CLI run: no plugin restriction, fake AWS settings
    so that nothing could ever reach a real account, no instance metadata."""
    env = dict(os.environ)
    env.pop("POLICY_ENGINE_PLUGINS", None)
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONIOENCODING": "utf-8",
        }
    )
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_cli(
    *args: str | os.PathLike[str],
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str | None] | None = None,
    module: bool = False,
    process: bool = False,
    timeout: float = 60,
    stdin: bytes = b"",
) -> Result:
    """Run ``policy-engine ARGS``: in this process by default, through
    :func:`policy_engine.cli.main` with its own streams, working folder and
    environment (a subprocess per case cost most of the suite's time); in a
    real process with ``process=True`` (the console script) or ``module=True``
    (``python -m policy_engine``), for what only a process shows: start-up,
    imports, signals, the streams the interpreter sets up."""
    if module or process:
        return _run_process(*args, cwd=cwd, env=env, module=module, timeout=timeout)
    return _run_in_process(*args, cwd=cwd, env=env, stdin=stdin)


def _run_process(
    *args: str | os.PathLike[str],
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str | None] | None,
    module: bool,
    timeout: float,
) -> Result:
    command = [sys.executable, "-m", "policy_engine"] if module else ["policy-engine"]
    command += [str(arg) for arg in args]
    completed = subprocess.run(
        command,
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr, tuple(command))


def _run_in_process(
    *args: str | os.PathLike[str],
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str | None] | None,
    stdin: bytes = b"",
) -> Result:
    """What the console script does (streams that escape bytes that are not
    Unicode, an empty stdin, exit with main's code), without a new interpreter."""
    from policy_engine.cli import main

    command = ("policy-engine", *(str(arg) for arg in args))
    streams = {name: io.BytesIO() for name in ("out", "err")}
    out, err = (
        io.TextIOWrapper(streams[name], encoding="utf-8", errors="backslashreplace")
        for name in ("out", "err")
    )
    saved_environ, saved_cwd = dict(os.environ), os.getcwd()
    saved_streams = (sys.stdin, sys.stdout, sys.stderr)
    try:
        os.environ.clear()
        os.environ.update(cli_env(env))
        if cwd is not None:
            os.chdir(cwd)
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
        sys.stdout, sys.stderr = out, err
        try:
            code = main(list(command[1:]))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out.flush()
        err.flush()
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_environ)
    text = {name: stream.getvalue().decode("utf-8") for name, stream in streams.items()}
    return Result(code, text["out"], text["err"], command)


def run_python(code: str, *flags: str, cwd: str | os.PathLike[str] | None = None) -> Result:
    """Run ``python FLAGS -c CODE`` with the CLI environment."""
    command = [sys.executable, *flags, "-c", code]
    completed = subprocess.run(
        command, cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=60
    )
    return Result(completed.returncode, completed.stdout, completed.stderr, tuple(command))


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_json(path: Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2))


def write_image(path: Path, data: bytes) -> Path:
    """An "image": the stub detector never looks at pixels, only at the hash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def png(payload: bytes, width: int = 100, height: int = 100) -> bytes:
    """A PNG that Rekognition's pre-call checks accept (signature and IHDR of a
    ``width`` x ``height`` image), told apart by ``payload`` in a chunk of its
    own: for tests whose policy names a Rekognition detector while the stub
    replays (a replay refuses what a live run would)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"teSt", payload)
        + chunk(b"IEND", b"")
    )


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record(recordings: Path, image: Path, response: Any) -> Path:
    """Store ``response`` as the recording of ``image`` (``<sha256>.json``)."""
    return write_json(recordings / f"{sha256_of(image)}.json", response)


def moderation(*labels: tuple[str, str, float], version: str = "7.0") -> dict[str, Any]:
    """A DetectModerationLabels response from (name, parent, confidence) triples."""
    return {
        "ModerationLabels": [
            {"Name": name, "ParentName": parent, "Confidence": confidence}
            for name, parent, confidence in labels
        ],
        "ModerationModelVersion": version,
    }


def custom(*labels: tuple[str, float]) -> dict[str, Any]:
    """A DetectCustomLabels response from (name, confidence) pairs."""
    return {
        "CustomLabels": [{"Name": name, "Confidence": confidence} for name, confidence in labels]
    }


def load_schema(name: str) -> dict[str, Any]:
    return json.loads((PACKAGED_SCHEMAS / name).read_text(encoding="utf-8"))


def decision_errors(record: Any) -> list[str]:
    """Why ``record`` does not validate against the decision schema (empty when it does)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(load_schema("decision.schema.json"))
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(record)]


VIOLENCE_POLICY = """\
version: 1
name: violence-test
rules:
  - id: violence
    match: {parent: Violence}
    block_at: 90
"""


class Helpers:
    """Everything above, as one fixture."""

    run = staticmethod(run_cli)
    cli_env = staticmethod(cli_env)
    python = staticmethod(run_python)
    write_text = staticmethod(write_text)
    write_json = staticmethod(write_json)
    write_image = staticmethod(write_image)
    png = staticmethod(png)
    sha256_of = staticmethod(sha256_of)
    record = staticmethod(record)
    moderation = staticmethod(moderation)
    custom = staticmethod(custom)
    load_schema = staticmethod(load_schema)
    decision_errors = staticmethod(decision_errors)
    AWS_MODERATION_EXAMPLE = AWS_MODERATION_EXAMPLE
    VIOLENCE_POLICY = VIOLENCE_POLICY
    MAIN = MAIN
    PACKAGED_SCHEMAS = PACKAGED_SCHEMAS


@pytest.fixture
def h() -> type[Helpers]:
    return Helpers


@pytest.fixture
def cli() -> Callable[..., Result]:
    return run_cli


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[Path]:
    """A working folder unrelated to the policy's, to prove paths do not depend on cwd."""
    folder = tmp_path / "elsewhere" / "deeper"
    folder.mkdir(parents=True)
    yield folder


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many chunks from a small corpus, so the order of results is put to the test."""
    from policy_engine.cli import ordered_pool

    monkeypatch.setattr(ordered_pool, "CHUNK_ITEMS", 7)
