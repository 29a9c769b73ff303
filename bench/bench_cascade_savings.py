"""Rekognition calls saved by the lossless cascade, on a synthetic corpus
where a stated share of uploads are re-uploads of banked images and a stated
share are blocked by the on-device classifier.

    python bench/bench_cascade_savings.py [--images 200] [--banked 0.2] [--classified 0.1]
        [--latency 0.1] [--concurrency 8] [--repeats 2]

Needs the core and the hash-match, open-nsfw and rekognition plugins
installed (their entry points). Everything runs on this machine: the
project's fake Rekognition answers DetectModerationLabels on 127.0.0.1
after ``--latency`` seconds, through boto3's real HTTP stack.

The corpus (JPEGs, 256x256, drawn with Pillow):

- ``--banked`` of the uploads are re-uploads of images a reviewer removed:
  the originals are hashed into a bank with ``policy-engine bank add``, and
  the uploads are JPEG re-encodes of them, every third also rotated or
  mirrored, so that only PDQ (not SHA-256) can match them;
- ``--classified`` are flat skin tones, which open_nsfw scores 11 to 31
  (coloured shapes score under 1). A synthetic corpus holds no nudity, so the
  bench policy lowers open-nsfw's ``block_at`` to 8, between the two, and
  ``min_confidence`` to 5 (general-ugc's 50 would drop those scores; its
  rules all start at 50 or more, so no Rekognition label decides otherwise);
- the rest are coloured shapes. The fake answers each image as Rekognition
  would be scripted to: the skin tones as explicit nudity at 97, half the
  re-uploads as graphic violence at 95 (the other half as nothing: a human
  removed them), and of the rest 5% explicit nudity, 10% weapons at 88
  (a review) and nothing for the others.

The policy is ``policies/general-ugc.yaml`` extended with ``hash-match`` and
``open-nsfw`` (as ``policies/open-nsfw-then-rekognition.yaml`` does), run by
``policy-engine check`` twice in fresh processes: once with
``cascade: {skip: false}`` (every detector called for every image: the
baseline) and once with the cascade on (the default), ``--repeats`` times
each, interleaved; the wall time is each kind's best. Printed: Rekognition
calls each run made (counted by the fake), images skipped by the cascade,
the decisions by verdict, the run's wall time, and the ratios. Exits 1 when
any image's decision differs between the runs (the cascade is lossless only
if none does) or when the cascade saves fewer calls than the images the
local detectors block.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policy_engine_rekognition.testing import FakeRekognition
from policy_engine_rekognition.testing.environment import fake_aws_environment

ROOT = Path(__file__).resolve().parent.parent
SIDE = 256
SKIN_TONE = (225, 175, 145)
CLASSIFIER_BLOCK_AT = 8

POLICY = """version: 1
name: bench-cascade-savings
extends: general-ugc.yaml
min_confidence: 5  # keeps open-nsfw's scores of skin tones (11 to 31): see the docstring
{cascade}detectors:
  hash-match: {{banks: [removed.txt]}}
  open-nsfw: {{}}
  rekognition-moderation: {{endpoint_url: "{endpoint}", region: us-east-1}}
rules:
  - id: known-image
    match: {{parent: Known Image}}
    block_at: 69
  - id: open-nsfw-blocks
    match: {{parent: Sexual Content, source: open-nsfw}}
    block_at: {block_at}
"""

LOCAL = ("hash-match", "open-nsfw")
NOTHING: dict[str, Any] = {"ModerationLabels": [], "ModerationModelVersion": "7.0"}


def labels(*chain: str, confidence: float) -> dict[str, Any]:
    """A DetectModerationLabels answer for the label path ``chain`` (top level
    first), each ancestor reported as a label of its own, as Rekognition does."""
    found = [
        {"Name": name, "ParentName": parent, "Confidence": confidence, "TaxonomyLevel": level}
        for level, (parent, name) in enumerate(zip(("", *chain), chain, strict=False), start=1)
    ]
    return {"ModerationLabels": found, "ModerationModelVersion": "7.0"}


EXPLICIT = labels("Explicit", "Explicit Nudity", "Exposed Female Nipple", confidence=97.0)
GRAPHIC = labels("Violence", "Graphic Violence", "Blood & Gore", confidence=95.0)
WEAPONS = labels("Violence", "Weapons", confidence=88.0)


@dataclass(frozen=True)
class Upload:
    path: Path
    kind: str  # "re-upload", "skin", or "other"
    answer: dict[str, Any]


def jpeg(picture: Any) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=88)
    return out.getvalue()


def shapes(rng: random.Random) -> Any:
    """Overlapping coloured boxes and ellipses, distinct for each draw and busy
    enough for PDQ to hash well (quality 80 to 100; a few flat boxes score under
    the floor of 50, and would only ever match as exact copies)."""
    from PIL import Image, ImageDraw

    def colour() -> tuple[int, int, int]:
        return (rng.randrange(256), rng.randrange(256), rng.randrange(256))

    picture = Image.new("RGB", (SIDE, SIDE), colour())
    draw = ImageDraw.Draw(picture)
    for _ in range(24):
        x, y = rng.randrange(-40, SIDE), rng.randrange(-40, SIDE)
        box = [x, y, x + rng.randrange(20, 110), y + rng.randrange(20, 110)]
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, colour())
    return picture


def skin(rng: random.Random) -> Any:
    from PIL import Image

    tone = tuple(max(0, min(255, value + rng.randrange(-20, 10))) for value in SKIN_TONE)
    return Image.new("RGB", (SIDE, SIDE), tone)


def make_corpus(folder: Path, count: int, banked: float, classified: float) -> list[Upload]:
    """Uploads in ``folder/uploads`` and the removed originals in ``folder/removed``."""
    from PIL import Image

    rng = random.Random(14)
    (folder / "uploads").mkdir(parents=True)
    (folder / "removed").mkdir()
    reuploads, skins = round(count * banked), round(count * classified)
    turns = [None, Image.Transpose.ROTATE_90, Image.Transpose.FLIP_LEFT_RIGHT]
    uploads = []
    for index in range(count):
        if index < reuploads:
            original = shapes(rng)
            original.save(folder / "removed" / f"removed-{index:05d}.png")
            turn = turns[index % 3]
            picture = original if turn is None else original.transpose(turn)
            kind, answer = "re-upload", GRAPHIC if index % 2 else NOTHING
        elif index < reuploads + skins:
            picture, kind, answer = skin(rng), "skin", EXPLICIT
        else:
            picture, kind = shapes(rng), "other"
            draw = rng.random()
            answer = EXPLICIT if draw < 0.05 else WEAPONS if draw < 0.15 else NOTHING
        path = folder / "uploads" / f"upload-{index:05d}.jpg"
        path.write_bytes(jpeg(picture))
        uploads.append(Upload(path, kind, answer))
    return uploads


def environment(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(fake_aws_environment(scratch))
    return env


def policy_engine(
    *args: str, env: dict[str, str], exits: tuple[int, ...] = (0,)
) -> subprocess.CompletedProcess[str]:
    """``python -m policy_engine ARGS``; leave the benchmark if it exits otherwise."""
    done = subprocess.run(
        [sys.executable, "-m", "policy_engine", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode not in exits:
        sys.exit(f"policy-engine {args[0]} failed (exit {done.returncode}):\n{done.stderr}")
    return done


@dataclass(frozen=True)
class Run:
    name: str
    calls: int
    seconds: float
    decisions: dict[str, str]
    blocked_locally: frozenset[str]
    """Images a hash match or the classifier alone blocks (a reason of theirs)."""
    skipped: int
    summary: str


def run_check(
    folder: Path, fake: FakeRekognition, *, skip: bool, concurrency: int, env: dict[str, str]
) -> Run:
    policy = folder / ("cascade.yaml" if skip else "full.yaml")
    cascade = "" if skip else "cascade: {skip: false}\n"
    policy.write_text(
        POLICY.format(cascade=cascade, endpoint=fake.endpoint_url, block_at=CLASSIFIER_BLOCK_AT),
        encoding="utf-8",
    )
    before = fake.call_count()
    started = time.perf_counter()
    done = policy_engine(
        "check",
        *("--policy", str(policy), "--concurrency", str(concurrency)),
        *("--cost-per-call", "0.001", str(folder / "uploads")),
        env=env,
        exits=(0, 1),
    )
    seconds = time.perf_counter() - started
    records = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    decisions = {record["input"]: record["decision"] for record in records}
    blocked_locally = frozenset(
        record["input"]
        for record in records
        if any(
            reason["verdict"] == "block" and reason.get("source") in LOCAL
            for reason in record["reasons"]
        )
    )
    skipped = sum(1 for record in records if record.get("skipped"))
    # the summary's lines on detector calls and their cost (progress comes before them)
    wanted = ("detector calls", "estimated cost")
    summary = " / ".join(line for line in done.stderr.splitlines() if line.startswith(wanted))
    name = "cascade" if skip else "every detector"
    calls = fake.call_count() - before
    return Run(name, calls, seconds, decisions, blocked_locally, skipped, summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--banked", type=float, default=0.2, help="share of re-uploads")
    parser.add_argument("--classified", type=float, default=0.1, help="share of skin tones")
    parser.add_argument("--latency", type=float, default=0.1, help="the fake's seconds a call")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, interleaved")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="bench-cascade-"))
    try:
        uploads = make_corpus(scratch, args.images, args.banked, args.classified)
        shutil.copy(ROOT / "policies" / "general-ugc.yaml", scratch / "general-ugc.yaml")
        env = environment(scratch)
        removed = sorted(str(path) for path in (scratch / "removed").iterdir())
        policy_engine("bank", "add", str(scratch / "removed.txt"), *removed, env=env)
        kinds = Counter(upload.kind for upload in uploads)
        print(
            f"{args.images} uploads: {kinds['re-upload']} re-uploads of banked images, "
            f"{kinds['skin']} skin tones, {kinds['other']} others; "
            f"fake latency {args.latency * 1000:.0f} ms, --concurrency {args.concurrency}"
        )
        with FakeRekognition(latency=args.latency) as fake:
            for upload in uploads:
                fake.respond(upload.path.read_bytes(), upload.answer)
            runs: dict[bool, list[Run]] = {False: [], True: []}
            for _ in range(max(1, args.repeats)):
                for skip in (False, True):
                    run = run_check(scratch, fake, skip=skip, concurrency=args.concurrency, env=env)
                    runs[skip].append(run)
        full, cascade = (min(runs[skip], key=lambda run: run.seconds) for skip in (False, True))
        return report(uploads, full, cascade, runs[False] + runs[True])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def report(uploads: list[Upload], full: Run, cascade: Run, every_run: list[Run]) -> int:
    """Print the best-timed run of each kind; fail if any run's decisions differ
    from the first full run's or a cascade run saved other than expected."""
    print(f"\n{'run':<16}{'Rekognition calls':>19}{'skipped':>9}{'wall s':>8}  decisions")
    for run in (full, cascade):
        verdicts = Counter(run.decisions.values())
        shown = ", ".join(f"{verdicts[v]} {v}" for v in ("block", "review", "allow"))
        print(f"{run.name:<16}{run.calls:>19}{run.skipped:>9}{run.seconds:>8.1f}  {shown}")
        print(f"{'':<16}summary: {run.summary}")
    differ = sorted(
        {
            name
            for run in every_run
            for name in full.decisions.keys() | run.decisions.keys()
            if full.decisions.get(name) != run.decisions.get(name)
        }
    )
    kind_of = {str(upload.path): upload.kind for upload in uploads}
    kinds = Counter(upload.kind for upload in uploads)
    local = Counter(kind_of[name] for name in full.blocked_locally)
    print(
        f"\nblocked by a local detector (in the run calling every detector): "
        f"{local['re-upload']} of {kinds['re-upload']} re-uploads (hash-match), "
        f"{local['skin']} of {kinds['skin']} skin tones and {local['other']} others (open-nsfw)"
    )
    saved = full.calls - cascade.calls
    print(
        f"calls saved: {saved} of {full.calls} ({saved / max(full.calls, 1):.0%}); "
        f"cascade/full calls {cascade.calls / max(full.calls, 1):.2f}x, "
        f"wall {cascade.seconds / full.seconds:.2f}x"
    )
    print(f"decisions compared: {len(full.decisions)}, differing: {len(differ)}")
    failed = False
    if differ or len(full.decisions) != len(uploads):
        print(f"FAIL: decisions differ or are missing: {differ[:10]}")
        failed = True
    # Rekognition can raise any decision below block, so exactly those calls are saved
    expected = len(full.blocked_locally)
    savings = {(run.calls, run.skipped) for run in every_run if run.name == cascade.name}
    if savings != {(full.calls - expected, expected)}:
        print(f"FAIL: saved {saved} calls, not the {expected} of images blocked locally")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
