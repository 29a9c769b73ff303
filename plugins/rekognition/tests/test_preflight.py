"""No credentials, no region or no such profile: ``check`` stops before the
first image with one line and exit 2, a ``Moderator`` fails at construction,
and nothing is sent. A call is counted only when a request was sent. The
real boto3 chain against FakeRekognition; fake credentials are removed per
test (conftest hides this machine's AWS set-up and instance metadata)."""

from __future__ import annotations

import hashlib
import io
import json
import socket
from pathlib import Path
from typing import Any

import pytest

import policy_engine_rekognition.plugin
from policy_engine import Image, Moderator, parse_policy
from policy_engine.cli import main
from policy_engine.engine import Engine
from policy_engine.errors import DetectorUnavailableError
from policy_engine.plugins import DetectorRegistry, make_plugin_manager
from policy_engine_rekognition.images import S3_MAX_BYTES
from policy_engine_rekognition.moderation import ModerationDetector
from policy_engine_rekognition.testing import FakeRekognition

JPEG = b"\xff\xd8\xff\xe0 an upload"
RULES = "rules:\n  - {id: violence, match: {parent: Violence}, review_at: 60, block_at: 90}\n"


def policy_text(settings: str) -> str:
    return f"version: 1\nname: preflight\ndetectors:\n  rekognition-moderation: {settings}\n{RULES}"


def fake_settings(fake: FakeRekognition, extra: str = "") -> str:
    return f"{{endpoint_url: '{fake.endpoint_url}', max_attempts: 1{extra}}}"


def without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")


def without_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")


def registry() -> DetectorRegistry:
    plugins = make_plugin_manager(load_entry_points=False)
    plugins.register(policy_engine_rekognition.plugin, name="rekognition")
    return DetectorRegistry.from_plugin_manager(plugins)


def check(*args: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["check", *(str(arg) for arg in args)], out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def every_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POLICY_ENGINE_PLUGINS", raising=False)


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (folder / name).write_bytes(JPEG + name.encode())
    return folder


# --- check: one line, exit 2, no record, no request -------------------------------------------


@pytest.mark.parametrize(
    ("unset", "extra", "advice"),
    [
        (without_credentials, "", "AWS_PROFILE"),
        (without_region, "", "AWS_DEFAULT_REGION"),
        (None, ", profile: nobody", "nobody"),
    ],
)
def test_check_stops_before_the_first_image_with_one_line(
    fake: FakeRekognition,
    tmp_path: Path,
    images: Path,
    monkeypatch: pytest.MonkeyPatch,
    unset: Any,
    extra: str,
    advice: str,
) -> None:
    if unset is not None:
        unset(monkeypatch)
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(fake_settings(fake, extra)), encoding="utf-8")

    exit_code, out, err = check("--policy", policy, "--record", tmp_path / "rec", images)

    assert exit_code == 2, err
    assert out == ""  # no record
    (line,) = err.splitlines()
    assert line.startswith("policy-engine: detector 'rekognition-moderation' cannot be called: ")
    assert line.endswith("; no image was checked") and advice in line, line
    assert fake.call_count() == 0
    assert not (tmp_path / "rec").exists()


def test_replay_needs_no_credentials(
    tmp_path: Path, images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_credentials(monkeypatch)
    without_region(monkeypatch)
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    for image in images.iterdir():
        digest = hashlib.sha256(image.read_bytes()).hexdigest()
        (recordings / f"{digest}.json").write_text(json.dumps({"ModerationLabels": []}))
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text("{}"), encoding="utf-8")

    exit_code, out, err = check("--policy", policy, "--replay", recordings, images)

    assert exit_code == 0, err
    assert [json.loads(line)["decision"] for line in out.splitlines()] == ["allow", "allow"]


# --- the embedding API ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unset", "code"), [(without_credentials, "no-credentials"), (without_region, "no-region")]
)
def test_a_moderator_without_credentials_or_region_fails_at_construction(
    fake: FakeRekognition, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unset: Any, code: str
) -> None:
    unset(monkeypatch)
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(fake_settings(fake)), encoding="utf-8")

    with pytest.raises(DetectorUnavailableError) as raised:
        Moderator(
            policy, registry=registry(), plugin_manager=make_plugin_manager(load_entry_points=False)
        )

    assert (raised.value.code, raised.value.detector) == (code, "rekognition-moderation")
    assert fake.call_count() == 0


def test_preflight_sends_nothing_and_finds_a_profile_in_the_config_files(
    fake: FakeRekognition, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_credentials(monkeypatch)
    without_region(monkeypatch)
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text("[profile uploads]\nregion = eu-west-1\n")
    credentials.write_text("[uploads]\naws_access_key_id = x\naws_secret_access_key = y\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    policy = parse_policy(
        policy_text(fake_settings(fake, ", profile: uploads")), registry=registry()
    )

    Engine(policy, registry()).preflight()

    assert fake.call_count() == 0


def test_an_injected_client_factory_is_trusted(
    monkeypatch: pytest.MonkeyPatch, context: Any
) -> None:
    without_credentials(monkeypatch)
    detector = ModerationDetector(client_factory=lambda settings: object())  # type: ignore[arg-type,return-value]
    detector.preflight(context(detector, {}))


# --- only requests that were sent are counted --------------------------------------------------


def refused_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize(
    ("unset", "settings", "code"),
    [
        (without_credentials, None, "no-credentials"),
        (without_region, None, "no-region"),
        (None, "{endpoint_url: 'REFUSED', max_attempts: 1}", "connection-error"),
    ],
)
def test_calls_that_never_left_the_machine_are_not_counted(
    fake: FakeRekognition,
    monkeypatch: pytest.MonkeyPatch,
    unset: Any,
    settings: str | None,
    code: str,
) -> None:
    if unset is not None:
        unset(monkeypatch)
    text = settings.replace("REFUSED", refused_url()) if settings else fake_settings(fake)
    engine = Engine(parse_policy(policy_text(text), registry=registry()), registry())

    decisions = [engine.check(Image(f"upload-{n}", JPEG + bytes([n]))) for n in range(3)]

    assert {(d.verdict.value, f.code) for d in decisions for f in d.failures} == {("review", code)}
    assert engine.counter.calls == 0 and fake.call_count() == 0


def test_an_image_refused_by_detect_itself_is_not_counted(fake: FakeRekognition) -> None:
    # with `convert: true` the limits are checked in detect (which converts), not precheck
    text = policy_text(fake_settings(fake, ", convert: true, screen_s3: false"))
    engine = Engine(parse_policy(text, registry=registry()), registry())
    too_large = Image("s3://photos/big.jpg", uri="s3://photos/big.jpg", size=S3_MAX_BYTES + 1)

    decision = engine.check(too_large)
    engine.check(Image("s3://photos/ok.jpg", uri="s3://photos/ok.jpg", size=S3_MAX_BYTES))

    assert [f.code for f in decision.failures] == ["image-too-large"]
    assert (engine.counter.calls, fake.call_count()) == (1, 1)


def test_a_mistyped_region_stops_check_before_the_first_image(
    tmp_path: Path, images: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text("{region: us-eastt-1, max_attempts: 1}"), encoding="utf-8")

    exit_code, out, err = check("--policy", policy, images)

    assert exit_code == 2, err
    assert out == ""
    assert "us-eastt-1" in err and "did you mean us-east-1" in err, err


def test_a_region_is_not_doubted_where_the_endpoint_is_given(
    fake: FakeRekognition, tmp_path: Path, images: Path
) -> None:
    fake.set_default({"ModerationLabels": []})
    policy = tmp_path / "policy.yaml"
    settings = f"{{region: somewhere-new-1, endpoint_url: '{fake.endpoint_url}', max_attempts: 1}}"
    policy.write_text(policy_text(settings), encoding="utf-8")

    exit_code, _, err = check("--policy", policy, images)

    assert exit_code == 0, err
