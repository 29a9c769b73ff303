"""Images per second and peak memory of ``check`` with the open-nsfw detector
(Yahoo's open_nsfw on the CPU), one image per model run against micro-batched runs.

    python bench/bench_open_nsfw.py [--images 48] [--repeats 3] [--batch 4]

Needs the core and policy-engine-open-nsfw installed (its entry point). Draws
``--images`` distinct synthetic 640x480 JPEGs (Pillow) into a temporary
folder, then checks them all with ``policy-engine check`` in a fresh process
per run, records to /dev/null, in three modes measured in the same run:

- ``single``: ``--concurrency 1``: one image per model run (the baseline);
- ``concurrent``: ``--concurrency 8`` with ``batch_size: 1``: eight threads,
  still one image per model run (what batching is compared with at the same
  concurrency);
- ``batched``: ``--concurrency 8`` with ``batch_size: --batch``: concurrent
  images scored together in one model run.

Each mode's best of ``--repeats`` (images per second over the whole run,
start-up and model load included; CPU seconds, user and system, per image,
which other processes' load changes far less than the wall clock; and the
run's peak RSS) is printed, with the ratio of each to ``single``. ONNX
Runtime uses every CPU the process may (2 here) unless the policy says
``threads``.

Then the model alone (no decoding, no engine), in this process: images per
second and CPU per image of one session run on batches of 1, 2, 4 and 8
preprocessed images, best of ``--repeats`` runs of about a second each, and
the ratio to batch 1.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_batch_memory import PROBE  # runs check and prints its peak RSS

POLICY = """version: 1
name: bench-open-nsfw
min_confidence: 0
detectors:
  open-nsfw: {{batch_size: {batch}}}
rules:
  - {{id: sexual-content, match: {{parent: Sexual Content}}, block_at: 90}}
"""


def draw_images(folder: Path, count: int) -> list[Path]:
    from PIL import Image, ImageDraw

    rng = random.Random(14)
    paths = []
    for index in range(count):
        picture = Image.new("RGB", (640, 480), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(picture)
        for _ in range(12):
            x, y = rng.randrange(600), rng.randrange(440)
            box = [x, y, x + rng.randrange(20, 300), y + rng.randrange(20, 300)]
            draw.ellipse(box, fill=tuple(rng.randrange(256) for _ in range(3)))
        out = io.BytesIO()
        picture.save(out, format="JPEG", quality=90)
        path = folder / f"{index:04d}.jpg"
        path.write_bytes(out.getvalue())
        paths.append(path)
    return paths


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(policy: Path, images: list[Path], concurrency: int) -> tuple[float, int, float]:
    """(images per second, peak RSS in KiB, CPU seconds per image) of one ``check``."""
    command = [sys.executable, "-c", PROBE, "check", "--policy", str(policy)]
    command += ["--concurrency", str(concurrency), "--output", os.devnull]
    command += [str(p) for p in images]
    started, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed, cpu = time.perf_counter() - started, children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"check failed ({done.returncode}):\n{done.stderr}")
    rss = int(done.stderr.strip().splitlines()[-1])
    return len(images) / elapsed, rss, cpu / len(images)


def model_alone(repeats: int) -> None:
    from policy_engine import Image
    from policy_engine_open_nsfw.images import model_input
    from policy_engine_open_nsfw.model import shared_model
    from policy_engine_open_nsfw.settings import available_cpus

    with tempfile.TemporaryDirectory() as scratch:
        drawn = draw_images(Path(scratch), 8)
        inputs = [model_input(Image(name=p.name, data=p.read_bytes())) for p in drawn]
    model = shared_model(available_cpus())
    rates, cpus = {}, {}
    for size in (1, 2, 4, 8):
        batch = inputs[:size]
        model.scores(batch)  # warm
        rates[size], cpus[size] = 0.0, float("inf")
        for _ in range(repeats):
            started, cpu, scored = time.perf_counter(), time.process_time(), 0
            while time.perf_counter() - started < 1.0:
                model.scores(batch)
                scored += size
            rates[size] = max(rates[size], scored / (time.perf_counter() - started))
            cpus[size] = min(cpus[size], (time.process_time() - cpu) / scored)
    print(f"model alone, {model.threads} thread(s), best of {repeats}, load {os.getloadavg()}")
    for size, rate in rates.items():
        print(
            f"  batch {size}: {rate:6.1f} images/s ({rate / rates[1]:.2f}x batch 1), "
            f"CPU {1000 * cpus[size]:4.0f} ms/image ({cpus[size] / cpus[1]:.2f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        images = draw_images(folder, args.images)
        modes = {"single": (1, 1), "concurrent": (1, 8), "batched": (args.batch, 8)}
        policies = {}
        for mode, (batch, _) in modes.items():
            policies[mode] = folder / f"{mode}.yaml"
            policies[mode].write_text(POLICY.format(batch=batch), encoding="utf-8")
        best: dict[str, tuple[float, int, float]] = {}
        for _ in range(args.repeats):  # interleaved, so load changes hit every mode
            for mode, (_, concurrency) in modes.items():
                measured = run(policies[mode], images, concurrency)
                kept = best.get(mode, measured)
                best[mode] = (
                    max(measured[0], kept[0]),
                    min(measured[1], kept[1]),
                    min(measured[2], kept[2]),
                )
    print(f"{args.images} images of 640x480, best of {args.repeats}, load {os.getloadavg()}")
    base_rate, base_rss, base_cpu = best["single"]
    for mode, (batch, concurrency) in modes.items():
        rate, rss, cpu = best[mode]
        print(
            f"{mode:>10}: concurrency {concurrency}, batch_size {batch}: "
            f"{rate:6.1f} images/s ({rate / base_rate:.2f}x single), "
            f"CPU {1000 * cpu:5.0f} ms/image ({cpu / base_cpu:.2f}x), "
            f"peak RSS {rss / 1024:.0f} MiB ({rss / base_rss:.2f}x)"
        )
    model_alone(args.repeats)


if __name__ == "__main__":
    main()
