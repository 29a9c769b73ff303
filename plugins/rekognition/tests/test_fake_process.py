"""``python -m policy_engine_rekognition.testing``: the fake as a process, as
tests in another language run it. Real subprocesses, a real boto3 client, the
README's script file and shell sample as written."""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policy_engine_rekognition.testing import (
    FakeRekognition,
    ScriptError,
    parse_script,
    read_script,
)

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## Running the fake as a server"
KNIFE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"knife" * 8
OTHER_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"other" * 8
MODULE = "policy_engine_rekognition.testing"
STARTUP_SECONDS = 30  # generous: a loaded 2-core machine starts Python slowly


def readme_block(language: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :].split("\n## ", 2)[0]
    (block,) = re.findall(rf"```{language}\n(.*?)```", section, re.S)
    return str(block)


class Server:
    """A running ``python -m policy_engine_rekognition.testing``."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", MODULE, *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], STARTUP_SECONDS)
        self.endpoint = self.process.stdout.readline().rstrip("\n") if ready else ""

    def terminate(self, signum: int = signal.SIGTERM) -> tuple[int, str, str]:
        """Send ``signum``; the exit status, the rest of stdout, and stderr."""
        self.process.send_signal(signum)
        out, err = self.process.communicate(timeout=STARTUP_SECONDS)
        return self.process.returncode, out, err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(*args, cwd=tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


def client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session(region_name="us-east-1").client(
        "rekognition",
        endpoint_url=endpoint,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def error_code(call: Any) -> str:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def test_the_readme_script_scripts_a_real_server_that_stops_cleanly_on_sigterm(
    tmp_path: Path, server_factory: Any
) -> None:
    (tmp_path / "fake.json").write_text(readme_block("json"), encoding="utf-8")
    (tmp_path / "knife.jpg").write_bytes(KNIFE_JPEG)
    server = server_factory("--port", "0", "--script", "fake.json")

    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.endpoint), server.endpoint
    rekognition = client(server.endpoint)
    knife = rekognition.detect_moderation_labels(Image={"Bytes": KNIFE_JPEG})
    assert [label["Name"] for label in knife["ModerationLabels"]] == [
        "Weapon Violence",
        "Graphic Violence",
        "Violence",
    ]
    other = rekognition.detect_moderation_labels(Image={"Bytes": OTHER_JPEG})
    assert other["ModerationLabels"] == []  # set_default
    s3 = {"S3Object": {"Bucket": "uploads", "Name": "secret.jpg"}}
    assert error_code(lambda: rekognition.detect_moderation_labels(Image=s3)) == (
        "AccessDeniedException"
    )
    flaky = {"S3Object": {"Bucket": "uploads", "Name": "flaky.jpg"}}
    assert error_code(lambda: rekognition.detect_moderation_labels(Image=flaky)) == (
        "InternalServerError"
    )
    assert rekognition.detect_moderation_labels(Image=flaky)["ModerationLabels"] == []  # times: 1

    status, rest, err = server.terminate(signal.SIGTERM)
    assert (status, rest, err) == (0, "", "")


def test_sigint_stops_the_server_with_exit_0_and_no_traceback(server_factory: Any) -> None:
    server = server_factory("--port", "0")
    assert server.endpoint.startswith("http://127.0.0.1:")

    assert server.terminate(signal.SIGINT) == (0, "", "")


def test_tps_throttles_calls_over_the_limit(server_factory: Any) -> None:
    from botocore.exceptions import ClientError

    server = server_factory("--port", "0", "--tps", "1", "--throttle-status", "500")
    rekognition = client(server.endpoint)

    answers: list[tuple[str, int]] = []
    for _ in range(4):  # within the second of the first (four, in case one is slow)
        try:
            rekognition.detect_moderation_labels(Image={"Bytes": KNIFE_JPEG})
            answers.append(("ok", 200))
        except ClientError as exc:
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            answers.append((exc.response["Error"]["Code"], status))

    assert answers[0] == ("ok", 200)
    assert ("ThrottlingException", 500) in answers[1:]
    assert server.terminate()[0] == 0


def test_a_bad_script_exits_2_with_every_mistake_located(
    tmp_path: Path, server_factory: Any
) -> None:
    script = {
        "respond": [
            {"image": "s3://uploads/a.jpg", "response": {"ModerationLabels": []}},
            {"image": "not-a-sha", "response": {"ModerationLabels": []}},
            {"image_file": "missing.jpg", "response": {"ModerationLabels": []}},
        ],
        "fail": {"code": "AccessDeniedException", "status": 200},
        "throtle": {"times": 2},
    }
    (tmp_path / "bad.json").write_text(json.dumps(script), encoding="utf-8")
    server = server_factory("--port", "0", "--script", "bad.json")

    assert server.endpoint == ""  # never listened
    status, out, err = server.process.wait(timeout=STARTUP_SECONDS), *server.process.communicate()
    assert (status, out) == (2, "")
    lines = err.splitlines()
    assert len(lines) == 4, err
    assert "bad.json: respond[1]: image must be" in lines[0]
    assert "bad.json: respond[2]: image_file: cannot read" in lines[1]
    assert "missing.jpg" in lines[1]
    assert "bad.json: fail: status must be an HTTP error status (400 to 599), got 200" in lines[2]
    assert "bad.json: unknown key 'throtle' (did you mean 'throttle'?)" in lines[3]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "arguments",
    [["--latency", "-1"], ["--tps", "0"], ["--port", "70000"], ["--script", "nowhere.json"]],
)
def test_wrong_arguments_exit_2_without_a_traceback(
    server_factory: Any, arguments: list[str]
) -> None:
    server = server_factory(*arguments)
    status, out, err = server.process.wait(timeout=STARTUP_SECONDS), *server.process.communicate()
    assert (status, out) == (2, "")
    assert err and "Traceback" not in err


def test_a_taken_port_exits_1(server_factory: Any) -> None:
    with FakeRekognition() as fake:
        port = fake.endpoint_url.rsplit(":", 1)[1]
        server = server_factory("--port", port)
        status, out, err = (
            server.process.wait(timeout=STARTUP_SECONDS),
            *server.process.communicate(),
        )
    assert (status, out) == (1, "")
    assert f"cannot listen on 127.0.0.1 port {port}" in err


@pytest.mark.skipif(
    shutil.which("aws") is None or shutil.which("bash") is None, reason="no aws CLI"
)
def test_the_readme_shell_sample_runs_the_aws_cli_against_the_fake(tmp_path: Path) -> None:
    (tmp_path / "fake.json").write_text(readme_block("json"), encoding="utf-8")
    (tmp_path / "knife.jpg").write_bytes(KNIFE_JPEG)
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }

    run = subprocess.run(
        ["bash", "-c", readme_block("sh")],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["ModerationLabels"][0]["Name"] == "Weapon Violence"


# --- the script format, in process -------------------------------------------------


def test_script_calls_are_made_in_the_order_written() -> None:
    from botocore.exceptions import ClientError

    throttle_first = parse_script(
        '{"throttle": {"times": 1}, "fail": {"code": "AccessDeniedException", "times": 1}}'
    )
    fail_first = parse_script(
        '{"fail": {"code": "AccessDeniedException", "times": 1}, "throttle": {"times": 1}}'
    )
    outcomes = []
    for script in (throttle_first, fail_first):
        with FakeRekognition() as fake:
            script.apply(fake)
            rekognition = client(fake.endpoint_url)
            for _ in range(2):
                with pytest.raises(ClientError):
                    rekognition.detect_moderation_labels(Image={"Bytes": KNIFE_JPEG})
            outcomes.append([call.outcome for call in fake.calls])

    assert outcomes == [
        ["ThrottlingException", "AccessDeniedException"],
        ["AccessDeniedException", "ThrottlingException"],
    ]


def test_a_script_names_images_by_sha256_s3_uri_or_file(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "knife.jpg").write_bytes(KNIFE_JPEG)
    sha = hashlib.sha256(OTHER_JPEG).hexdigest().upper()  # any case
    script_file = tmp_path / "script.json"
    script_file.write_text(
        json.dumps(
            {
                "respond": [
                    {
                        "image_file": "images/knife.jpg",
                        "response": {"CustomLabels": [{"Name": "a"}]},
                    },
                    {"image": sha, "response": {"CustomLabels": [{"Name": "b"}]}},
                    {
                        "image": "s3://uploads/c.jpg?versionId=2",
                        "response": {"CustomLabels": [{"Name": "c"}]},
                    },
                ],
            }
        ),
        encoding="utf-8",
    )
    arn = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1"
    images = [
        {"Bytes": KNIFE_JPEG},
        {"Bytes": OTHER_JPEG},
        {"S3Object": {"Bucket": "uploads", "Name": "c.jpg", "Version": "2"}},
        {"S3Object": {"Bucket": "uploads", "Name": "c.jpg"}},  # another object: the default
    ]

    with FakeRekognition() as fake:
        read_script(script_file).apply(fake)
        rekognition = client(fake.endpoint_url)
        names = [
            [label["Name"] for label in answer["CustomLabels"]]
            for answer in (
                rekognition.detect_custom_labels(ProjectVersionArn=arn, Image=image)
                for image in images
            )
        ]

    assert names == [["a"], ["b"], ["c"], []]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "<script>:1:2: not valid JSON: "),
        ("[]", "<script>: a script is a JSON object whose keys are set_default, respond"),
        ('{"respond": {"response": {}}}', "respond: respond needs image"),
        ('{"respond": {"image": "s3://b/k"}}', "respond: respond needs response"),
        (
            '{"set_default": {"respons": {}}}',
            "unknown argument 'respons' (did you mean 'response'?)",
        ),
        (
            '{"set_default": {"response": []}}',
            "set_default: response must be an object, got a list",
        ),
        ('{"set_default": {"response": {}}}', "cannot tell the operation from the response"),
        ('{"fail": {"code": 5}}', "fail: code must be a string, got a number"),
        ('{"fail": {"times": 0}}', "times must be None (always) or a positive integer, got 0"),
        ('{"fail": [1]}', "fail[0]: expected an object of arguments"),
        ('{"throttle": {"operation": "DetectFaces"}}', "operation must be one of"),
        ('{"throttle": {"image": "s3://b/k", "image_file": "k"}}', "image or image_file, not both"),
    ],
)
def test_script_mistakes_are_reported_where_they_are(text: str, message: str) -> None:
    with pytest.raises(ScriptError) as caught:
        parse_script(text)
    assert message in str(caught.value)
