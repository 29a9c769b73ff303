"""The baseline ``check`` is measured against: a plain boto3 thread pool.

    python bench/boto3_pool.py ENDPOINT FOLDER [--concurrency 16]

Sends every file of FOLDER (sorted) to DetectModerationLabels at ENDPOINT,
``--concurrency`` at a time through one client whose connection pool fits
them, configured as the benchmark's policy configures ``check``'s (retry
mode ``adaptive``, 3 attempts: like for like), and prints one JSON line per
answer as it comes (as ``check`` does), so that ``bench_batch.py`` times both
the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import boto3
import botocore.config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint")
    parser.add_argument("folder")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    client = boto3.client(
        "rekognition",
        endpoint_url=args.endpoint,
        config=botocore.config.Config(
            max_pool_connections=args.concurrency,
            retries={"mode": "adaptive", "max_attempts": 3},
        ),
    )
    paths = sorted(Path(args.folder).iterdir())

    def one(path: Path) -> dict[str, Any]:
        answer = client.detect_moderation_labels(
            Image={"Bytes": path.read_bytes()}, MinConfidence=50
        )
        return {"input": str(path), "labels": len(answer["ModerationLabels"])}

    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        for future in as_completed([pool.submit(one, path) for path in paths]):
            sys.stdout.write(json.dumps(future.result()) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
