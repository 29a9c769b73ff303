"""``policy-engine check``'s batch options end to end: the real CLI (in process
through ``main``, or in a subprocess where stdin, a terminal or Ctrl-C matter)
and the real boto3 client against
:class:`~policy_engine_rekognition.testing.FakeRekognition`.

Each test asserts what the fake received (how many calls, for which images,
when, how many at once) as well as what the CLI wrote, so that unwiring
``--record``, ``--cache``, ``--rate``, ``--concurrency``, stdin ``-``, the
progress line, Ctrl-C or the summary lines fails a test here.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import re
import signal
import subprocess
import sys
import termios
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from policy_engine.cli import main
from policy_engine_rekognition.testing import ANY, FakeRekognition

JPEG_MAGIC = b"\xff\xd8\xff\xe0"
RULES = "rules:\n  - {id: violence, match: {parent: Violence}, review_at: 60, block_at: 90}\n"
# the labels each scripted image gets, and the decision they lead to
SCRIPTED: Mapping[str, tuple[tuple[str, str, float] | None, str]] = {
    "fight.jpg": (("Weapon Violence", "Violence", 95.0), "block"),
    "scuffle.jpg": (("Violence", "", 70.0), "review"),
    "cat.jpg": (None, "allow"),
}
SUMMARY = re.compile(
    r"^(?P<state>checked|interrupted after) (?P<images>\d+) image\(s\) in [\d.]+s: (?P<parts>.*)$",
    re.M,
)
CALLS = re.compile(
    r"^detector calls: (?P<made>\d+) made, (?P<saved>\d+) saved "
    r"\((?P<cached>\d+) from the cache, (?P<duplicates>\d+) duplicate image\(s\), "
    r"(?P<skipped>\d+) skipped by the cascade\)$",
    re.M,
)


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]

    def summary(self) -> dict[str, int]:
        """The counts of the two summary lines on stderr (each must appear once)."""
        (line,) = SUMMARY.finditer(self.err)
        (calls,) = CALLS.finditer(self.err)
        counts = {v: int(n) for n, v in re.findall(r"(\d+) ([a-z ]+?)(?:,|$)", line["parts"])}
        counts["images"] = int(line["images"])
        counts.update({k: int(v) for k, v in calls.groupdict().items()})
        return counts


@pytest.fixture(autouse=True)
def every_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POLICY_ENGINE_PLUGINS", raising=False)


def check(*args: str | os.PathLike[str]) -> Run:
    """``policy-engine check ARGS`` in this process (so it reaches any fake)."""
    out, err = io.StringIO(), io.StringIO()
    code = main(["check", *(str(arg) for arg in args)], out, err)
    return Run(code, out.getvalue(), err.getvalue())


def cli_command(*args: str | os.PathLike[str]) -> list[str]:
    """``policy-engine check ARGS`` as a subprocess command."""
    return [sys.executable, "-m", "policy_engine", "check", *(str(arg) for arg in args)]


def write_policy(folder: Path, fake: FakeRekognition, extra: str = "") -> Path:
    settings = f"{{endpoint_url: '{fake.endpoint_url}', retry_mode: standard, max_attempts: 1}}"
    text = (
        f"version: 1\nname: batch-test\n{extra}"
        f"detectors:\n  rekognition-moderation: {settings}\n{RULES}"
    )
    path = folder / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def write_images(folder: Path, *names: str, same_as: Path | None = None) -> list[Path]:
    """JPEG-looking files, each with bytes of its own (or those of ``same_as``)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / name
        data = same_as.read_bytes() if same_as else JPEG_MAGIC + name.encode()
        path.write_bytes(data)
        paths.append(path)
    return paths


def script(fake: FakeRekognition, folder: Path) -> dict[str, str]:
    """Write SCRIPTED's images, script the fake's answers; the expected decisions by input."""
    expected = {}
    for path in write_images(folder, *SCRIPTED):
        label, decision = SCRIPTED[path.name]
        labels = (
            []
            if label is None
            else [dict(zip(("Name", "ParentName", "Confidence"), label, strict=True))]
        )
        fake.respond(
            path.read_bytes(), {"ModerationLabels": labels, "ModerationModelVersion": "7.0"}
        )
        expected[str(path)] = decision
    return expected


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_summary_matches(run: Run, records: list[dict[str, Any]]) -> dict[str, int]:
    """The summary's counts per decision are those of the records; returns the summary."""
    summary = run.summary()
    counted = Counter(r["decision"] for r in records if "decision" in r)
    assert {v: summary[v] for v in ("allow", "review", "block")} == {
        v: counted[v] for v in ("allow", "review", "block")
    }, run
    assert summary["images"] == len(records), run
    return summary


def decisions(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Each input's decision, reasons and labels (what a cache hit must reproduce)."""
    return {r["input"]: (r["decision"], r["reasons"], r["labels"]) for r in records}


# --- --record, --cache, --cost-per-call, the summary ---------------------------------------


def test_record_then_cache_decides_the_same_without_a_call(
    fake: FakeRekognition, tmp_path: Path
) -> None:
    policy = write_policy(tmp_path, fake)
    expected = script(fake, tmp_path / "imgs")
    rec = tmp_path / "rec"

    first = check(
        "--policy", policy, tmp_path / "imgs", "--record", rec, "--cost-per-call", "0.001"
    )

    assert first.code == 0, first
    recorded = first.records()
    assert {r["input"]: r["decision"] for r in recorded} == expected
    assert all(r["errors"] == [] and "duplicate" not in r for r in recorded), recorded
    assert sorted(c.image_sha256 or "" for c in fake.calls) == sorted(r["sha256"] for r in recorded)
    assert_summary_matches(first, recorded)
    assert (
        "detector calls: 3 made, 0 saved (0 from the cache, 0 duplicate image(s), "
        "0 skipped by the cascade)\n" in first.err
    )
    assert (
        "estimated cost: 3 call(s) x 0.001 = 0.003; the cascade saved 0 call(s) = 0\n" in first.err
    ), first
    # one recording per image, under its SHA-256, holding the raw response
    # (beside the lock file that concurrent writers share)
    assert sorted(p.name for p in rec.iterdir() if p.name != ".policy-engine.lock") == sorted(
        f"{r['sha256']}.json" for r in recorded
    )
    fight = tmp_path / "imgs" / "fight.jpg"
    (entry,) = json.loads((rec / f"{sha256_of(fight)}.json").read_text())["recordings"]
    assert entry["detector"] == "rekognition-moderation"
    assert entry["response"]["ModerationLabels"][0]["Name"] == "Weapon Violence"

    fake.reset()  # forgets the scripted answers too: only the cache can decide as before
    second = check(
        "--policy", policy, tmp_path / "imgs", "--cache", rec, "--cost-per-call", "0.001"
    )

    assert second.code == 0, second
    assert fake.call_count() == 0
    cached = second.records()
    assert decisions(cached) == decisions(recorded)
    assert all(r["detectors"]["rekognition-moderation"]["from_cache"] for r in cached), cached
    assert_summary_matches(second, cached)
    assert (
        "detector calls: 0 made, 3 saved (3 from the cache, 0 duplicate image(s), "
        "0 skipped by the cascade)\n" in second.err
    )
    assert (
        "estimated cost: 0 call(s) x 0.001 = 0; the cascade saved 0 call(s) = 0\n" in second.err
    ), second


def test_identical_images_are_sent_once_and_marked_duplicate(
    fake: FakeRekognition, tmp_path: Path
) -> None:
    policy = write_policy(tmp_path, fake)
    expected = script(fake, tmp_path / "imgs")
    fight, scuffle = (tmp_path / "imgs" / name for name in ("fight.jpg", "scuffle.jpg"))
    copies = write_images(tmp_path / "copies", "f1.jpg", "f2.png", same_as=fight)
    copies += write_images(tmp_path / "copies", "s1.jpg", same_as=scuffle)

    run = check("--policy", policy, tmp_path / "imgs", *copies, "--concurrency", "4")

    assert run.code == 0, run
    records = run.records()
    assert len(records) == 6
    # one call per distinct image, whichever copy came first
    assert Counter(c.image_sha256 for c in fake.calls) == Counter(
        sha256_of(tmp_path / "imgs" / name) for name in SCRIPTED
    )
    by_sha: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_sha.setdefault(record["sha256"], []).append(record)
    for group in by_sha.values():
        assert sum("duplicate" not in r for r in group) == 1, group
        assert all(r.get("duplicate", True) is True for r in group), group
        assert len({r["decision"] for r in group}) == 1, group
    expected.update({str(p): expected[str(fight)] for p in copies[:2]})
    expected[str(copies[2])] = expected[str(scuffle)]
    assert {r["input"]: r["decision"] for r in records} == expected
    assert_summary_matches(run, records)
    assert (
        "detector calls: 3 made, 3 saved (0 from the cache, 3 duplicate image(s), "
        "0 skipped by the cascade)\n" in run.err
    )
    assert "estimated cost" not in run.err  # only with --cost-per-call


# --- detector failures ---------------------------------------------------------------------


@pytest.mark.parametrize(("on_error", "verdict"), [(None, "review"), ("block", "block")])
def test_a_failing_detector_gives_on_error_and_exit_3_even_with_fail_on(
    fake: FakeRekognition, tmp_path: Path, on_error: str | None, verdict: str
) -> None:
    policy = write_policy(tmp_path, fake, f"on_error: {on_error}\n" if on_error else "")
    write_images(tmp_path / "imgs", *SCRIPTED)

    for fail_on in ((), ("--fail-on", "review"), ("--fail-on", "block")):
        fake.reset()
        fake.fail(ANY, "AccessDeniedException", message="not allowed here")
        run = check("--policy", policy, tmp_path / "imgs", *fail_on)

        assert run.code == 3, run
        records = run.records()
        assert len(records) == 3 and fake.call_count() == 3
        for record in records:
            assert record["decision"] == verdict, record
            (error,) = record["errors"]
            assert error["source"] == "rekognition-moderation", record
            assert error["code"] == "AccessDeniedException" and error["retryable"] is False
            assert "AccessDeniedException (not allowed here)" in error["error"], record
            assert [(r["rule"], r["error"]) for r in record["reasons"]] == [
                ("on_error", error["error"])
            ], record
        summary = assert_summary_matches(run, records)
        assert summary["with detector errors"] == 3 and summary["made"] == 3, run


def test_one_failing_image_makes_the_run_incomplete(fake: FakeRekognition, tmp_path: Path) -> None:
    policy = write_policy(tmp_path, fake)
    expected = script(fake, tmp_path / "imgs")
    cat = tmp_path / "imgs" / "cat.jpg"
    fake.fail(cat.read_bytes(), "AccessDeniedException")

    run = check("--policy", policy, tmp_path / "imgs")

    assert run.code == 3, run
    records = run.records()
    expected[str(cat)] = "review"  # on_error, where the labels would have allowed it
    assert {r["input"]: r["decision"] for r in records} == expected
    assert [r["input"] for r in records if r["errors"]] == [str(cat)]
    summary = assert_summary_matches(run, records)
    assert summary["with detector errors"] == 1, run


# --- --rate and --concurrency ----------------------------------------------------------------


def test_rate_keeps_every_second_within_the_quota_from_the_first_call(
    fake: FakeRekognition, tmp_path: Path
) -> None:
    quota = 10
    fake.tps = quota  # the fake throttles a call that would exceed it in a sliding second
    policy = write_policy(tmp_path, fake)
    write_images(tmp_path / "imgs", *(f"{i:02}.jpg" for i in range(15)))
    # 8 a second leaves each window of `quota` calls 0.25 s for a loaded machine's
    # jitter in arrivals; a first burst of the 4 workers would still overrun it
    rate = 8

    run = check("--policy", policy, tmp_path / "imgs", "--rate", rate, "--concurrency", "4")

    assert run.code == 0, run
    calls = fake.calls
    assert len(calls) == 15 and all(call.ok for call in calls), [c.outcome for c in calls]
    arrivals = sorted(call.timestamp for call in calls)
    # No closed one-second window holds more than `rate` calls, the first call
    # (which builds the client after taking its slot) included.
    for first, last in zip(arrivals, arrivals[quota:], strict=False):
        assert last - first > 1.0, arrivals


class InFlight(FakeRekognition):
    """A fake that counts the requests it is answering at once (``peak``).

    Each request waits, up to ``hold`` seconds, for ``gate`` requests to be in
    flight together, so that a client that may send ``gate`` at once is seen to
    do so whatever the machine's load. With ``stall_after``, the requests after
    that many wait (up to ``hold``) for :meth:`release` instead."""

    def __init__(
        self, *, gate: int = 1, hold: float, latency: float = 0.0, stall_after: int | None = None
    ) -> None:
        super().__init__(latency=latency)
        self.gate = gate
        self.hold = hold
        self.stall_after = stall_after
        self.received = 0
        self.in_flight = 0
        self.peak = 0
        self.released = False
        self._counting = threading.Condition()

    def _handle(self, headers: Mapping[str, str], raw_body: bytes) -> Any:
        with self._counting:
            self.received += 1
            stalled = self.stall_after is not None and self.received > self.stall_after
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self._counting.notify_all()
            self._counting.wait_for(
                lambda: self.released if stalled else self.in_flight >= self.gate,
                timeout=self.hold,
            )
        try:
            return super()._handle(headers, raw_body)
        finally:
            with self._counting:
                self.in_flight -= 1

    def wait_in_flight(self, count: int) -> bool:
        with self._counting:
            return self._counting.wait_for(lambda: self.in_flight >= count, timeout=self.hold)

    def release(self) -> None:
        with self._counting:
            self.released = True
            self._counting.notify_all()

    def stop(self) -> None:
        self.release()
        super().stop()


@pytest.mark.parametrize(
    ("concurrency", "images", "gate", "hold"),
    [
        # N at once, and never more (the default, 8, would send all six together)
        (3, 6, 3, 3.0),
        # one at a time: a second request would be waited for and counted
        (1, 3, 2, 0.3),
    ],
)
def test_concurrency_is_the_number_of_requests_in_flight(
    tmp_path: Path, concurrency: int, images: int, gate: int, hold: float
) -> None:
    with InFlight(gate=gate, hold=hold, latency=0.3 if concurrency > 1 else 0.0) as fake:
        policy = write_policy(tmp_path, fake)
        write_images(tmp_path / "imgs", *(f"{i}.jpg" for i in range(images)))

        run = check("--policy", policy, tmp_path / "imgs", "--concurrency", concurrency)

        assert run.code == 0, run
        assert fake.call_count() == images
        assert fake.peak == concurrency


# --- stdin, the progress line, Ctrl-C (subprocesses) -------------------------------------------


def run_piped(command: list[str], stdin: str = "", cwd: Path | None = None) -> Run:
    """Run ``command`` with every stream a pipe; output kept byte for byte ("\r" too)."""
    completed = subprocess.run(
        command, input=stdin.encode(), capture_output=True, cwd=cwd, timeout=60
    )
    return Run(completed.returncode, completed.stdout.decode(), completed.stderr.decode())


def test_stdin_lists_inputs_one_per_line(fake: FakeRekognition, tmp_path: Path) -> None:
    policy = write_policy(tmp_path, fake)
    expected = script(fake, tmp_path / "imgs")
    fight, scuffle, cat = (tmp_path / "imgs" / name for name in SCRIPTED)
    more = write_images(tmp_path / "more", "a.png", "b.jpg")
    # a blank line read as a path would be "": the working folder, and this image
    write_images(tmp_path / "cwd", "not-listed.jpg")
    # (names are taken exactly, spaces included: only the line ending goes)
    listing = f"{fight}\n\n{scuffle}\r\n\n{tmp_path / 'more'}\n"

    run = run_piped(cli_command("--policy", policy, cat, "-"), listing, cwd=tmp_path / "cwd")

    assert run.code == 0, run
    records = run.records()
    expected.update({str(p): "allow" for p in more})
    assert {r["input"]: r["decision"] for r in records} == expected
    assert fake.call_count() == 5
    assert_summary_matches(run, records)
    assert "\r" not in run.err  # a pipe gets no progress line


def run_with_terminal_stderr(command: list[str]) -> Run:
    """Run ``command`` with stderr a terminal (a pty that passes output unchanged)."""
    master, terminal = pty.openpty()
    try:
        attributes = termios.tcgetattr(terminal)
        attributes[1] &= ~termios.OPOST  # keep "\n" as written (no "\r\n")
        termios.tcsetattr(terminal, termios.TCSANOW, attributes)
        with subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal
        ) as process:
            os.close(terminal)
            terminal = -1
            chunks = []
            while chunk := _read_terminal(master):
                chunks.append(chunk)
            out = process.communicate(timeout=60)[0].decode()
    finally:
        os.close(master)
        if terminal != -1:
            os.close(terminal)
    return Run(process.returncode, out, b"".join(chunks).decode())


def _read_terminal(master: int) -> bytes:
    try:
        return os.read(master, 4096)
    except OSError:  # EIO: every writer closed the terminal
        return b""


def test_progress_line_only_when_stderr_is_a_terminal(
    fake: FakeRekognition, tmp_path: Path
) -> None:
    policy = write_policy(tmp_path, fake)
    script(fake, tmp_path / "imgs")
    command = cli_command("--policy", policy, tmp_path / "imgs", "--concurrency", "1")

    run = run_with_terminal_stderr(command)

    assert run.code == 0, run
    progress = re.findall(r"\rchecked (\d+) image\(s\), [\d.]+/s, (\d+) call\(s\)", run.err)
    # one line per image decided (calls may run ahead: the next image is under way)
    assert [images for images, _ in progress] == ["1", "2", "3"], run
    assert progress[-1][1] == "3", run
    # the progress line is ended before the summary
    assert re.search(r"call\(s\)\nchecked 3 image\(s\) in ", run.err), run
    assert_summary_matches(run, run.records())

    fake.reset()
    script(fake, tmp_path / "imgs")
    piped = run_piped(command)
    assert piped.code == 0, piped
    assert "\r" not in piped.err and "checked 3 image(s) in " in piped.err, piped


def _interruptible() -> None:
    # As a terminal's foreground job: a suite started in the background (SIGINT
    # ignored, which a child inherits) must not make the command ignore Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_check(tmp_path: Path, *args: str | os.PathLike[str]) -> subprocess.Popen[bytes]:
    """``policy-engine check ARGS`` in a subprocess writing to tmp_path/out.jsonl and err.txt,
    Ctrl-C (SIGINT) at its default, whatever the suite's own disposition."""
    with (tmp_path / "out.jsonl").open("w") as out, (tmp_path / "err.txt").open("w") as err:
        return subprocess.Popen(
            cli_command(*args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            preexec_fn=_interruptible,
        )


def finished(process: subprocess.Popen[bytes], tmp_path: Path) -> Run:
    try:
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    read = (tmp_path / name for name in ("out.jsonl", "err.txt"))
    return Run(code, *(path.read_text(encoding="utf-8") for path in read))


def wait_for_text(path: Path, text: str) -> None:
    deadline = time.monotonic() + 60
    while text not in path.read_text(encoding="utf-8"):
        assert time.monotonic() < deadline, f"no {text!r} in {path}"
        time.sleep(0.01)


@pytest.fixture
def interrupted_midway(tmp_path: Path) -> Iterator[tuple[InFlight, subprocess.Popen[bytes]]]:
    """A check of 40 images, two at a time, whose first image is decided and
    whose next two calls are held at the fake (until ``release``)."""
    with InFlight(stall_after=1, hold=30.0, latency=0.1) as fake:
        write_images(tmp_path / "imgs", *(f"{i:02}.jpg" for i in range(40)))
        policy = write_policy(tmp_path, fake)
        process = start_check(tmp_path, "--policy", policy, tmp_path / "imgs", "--concurrency", "2")
        try:
            wait_for_text(tmp_path / "out.jsonl", "\n")
            assert fake.wait_in_flight(2)
            process.send_signal(signal.SIGINT)
            time.sleep(0.5)  # the run looks for a stop every 0.1 s
            yield fake, process
        finally:
            fake.release()
            if process.poll() is None:
                process.kill()
                process.wait()


def test_ctrl_c_stops_reading_and_writes_the_calls_in_flight(
    interrupted_midway: tuple[InFlight, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    fake, process = interrupted_midway

    fake.release()
    run = finished(process, tmp_path)

    assert run.code == 130, run
    records = run.records()  # every line is JSON
    assert all(r["decision"] == "allow" and r["errors"] == [] for r in records), run
    # the two calls in flight were written; the images not sent were dropped
    assert 3 <= len(records) == fake.call_count() < 40, run
    summary = assert_summary_matches(run, records)
    assert summary["made"] == len(records), run
    assert re.search(rf"^interrupted after {len(records)} image\(s\) in ", run.err, re.M), run
    assert "stopping: writing the images already sent; Ctrl-C again to quit now" in run.err


def test_a_second_ctrl_c_quits_without_waiting_for_the_calls_in_flight(
    interrupted_midway: tuple[InFlight, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    fake, process = interrupted_midway

    process.send_signal(signal.SIGINT)
    wait_for_text(tmp_path / "err.txt", "detector calls:")  # while the two calls are held
    try:
        # it exits without waiting for them (which could take botocore's timeouts)
        assert process.wait(timeout=20) == 130
    finally:
        fake.release()
    run = finished(process, tmp_path)

    assert run.code == 130, run
    (record,) = run.records()
    assert record["decision"] == "allow" and record["errors"] == [], run
    assert_summary_matches(run, [record])
    assert re.search(r"^interrupted after 1 image\(s\) in ", run.err, re.M), run
    # the calls in flight are paid for, so counted; nothing more was sent
    assert "detector calls: 3 made, 0 saved" in run.err, run
    assert fake.received == 3


# ``check --output FILE --resume``: an interrupted run, resumed, ends with the
# records an uninterrupted one writes, and sends no image whose record (or,
# with ``--record``, whose answer) it already has. Interrupted for real: a
# subprocess stopped by SIGINT or killed by SIGKILL mid-run against the fake.

RESUME_IMAGES = 24
TIMING_FIELDS = {"seconds", "elapsed", "latency", "duration_ms", "request_id"}


def _untimed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def record_set(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return sorted(json.dumps(_untimed(json.loads(line)), sort_keys=True) for line in lines)


def lines_in(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_run_resumed_gives_the_records_of_an_uninterrupted_one(
    fake: FakeRekognition, tmp_path: Path, how: signal.Signals
) -> None:
    policy = write_policy(tmp_path, fake)
    images = tmp_path / "imgs"
    write_images(images, *(f"{i:02d}.jpg" for i in range(RESUME_IMAGES)))
    whole = check("--policy", policy, images, "--output", tmp_path / "whole.jsonl")
    assert whole.code == 0, whole
    fake.reset()

    fake.latency = 0.2  # 2.4 s for the run: a loaded machine still stops it midway
    out, record = tmp_path / "out.jsonl", tmp_path / "rec"
    command = cli_command(
        "--policy", policy, images, "--concurrency", "2", "--output", out, "--record", record
    )
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_interruptible
    )
    try:
        deadline = time.monotonic() + 30
        while lines_in(out) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(how)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    written = lines_in(out)
    assert 4 <= written < RESUME_IMAGES  # stopped midway
    time.sleep(0.6)  # the killed run's calls in flight reach the fake and end
    fake.latency = 0.0
    done = {json.loads(line)["sha256"] for line in out.read_text().splitlines()[:written]}
    answered = {path.stem for path in record.glob("*.json")}  # done, or paid for in flight
    fake.reset()

    resumed = check("--policy", policy, images, "--output", out, "--record", record, "--resume")

    assert resumed.code == 0, resumed
    assert f"{written} record(s) there, {written} input(s) skipped" in resumed.err, resumed.err
    assert record_set(out) == record_set(tmp_path / "whole.jsonl")
    # nothing answered before is asked again: its record was written, or its answer recorded
    sent = [call.image for call in fake.calls]
    assert done <= answered and not answered & set(sent)
    assert len(sent) == len(set(sent)) == RESUME_IMAGES - len(answered)


def test_a_torn_last_line_is_cut_off_and_its_input_checked_again(
    fake: FakeRekognition, tmp_path: Path
) -> None:
    policy = write_policy(tmp_path, fake)
    images = tmp_path / "imgs"
    write_images(images, "a.jpg", "b.jpg", "c.jpg")
    out = tmp_path / "out.jsonl"
    assert check("--policy", policy, images, "--output", out).code == 0
    whole = record_set(out)
    first, *_ = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(first + b'{"input": "torn')  # killed while writing the second
    fake.reset()

    resumed = check("--policy", policy, images, "--output", out, "--resume")

    assert resumed.code == 0, resumed
    assert "1 record(s) there, 1 input(s) skipped" in resumed.err
    assert "torn last line (15 bytes) was cut off" in resumed.err
    assert record_set(out) == whole
    assert len(fake.calls) == 2


def test_resuming_under_another_policy_is_refused(fake: FakeRekognition, tmp_path: Path) -> None:
    policy = write_policy(tmp_path, fake)
    images = tmp_path / "imgs"
    write_images(images, "a.jpg", "b.jpg")
    out = tmp_path / "out.jsonl"
    assert check("--policy", policy, images, "--output", out).code == 0
    before = out.read_bytes()
    policy.write_text(policy.read_text().replace("block_at: 90", "block_at: 80"))
    fake.reset()

    refused = check("--policy", policy, images, "--output", out, "--resume")

    assert refused.code == 2
    assert "decided by a policy with digest" in refused.err and "new --output" in refused.err
    assert out.read_bytes() == before and not fake.calls


def test_resume_needs_an_output_file_of_json_lines(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nname: p\ndetectors: {}\nrules: []\n")
    assert "give it" in check("--policy", policy, tmp_path, "--resume").err
    output = tmp_path / "o"
    text = check("--policy", policy, tmp_path, "--resume", "--output", output, "--format", "text")
    assert text.code == 2 and "JSON Lines" in text.err
