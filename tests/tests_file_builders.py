"""A small policy and tests files for the review tools' tests: written under a
test's tmp_path and run (importable from any test module, as policy_builders is)."""

from __future__ import annotations

from pathlib import Path

from policy_engine import DetectorRegistry
from policy_engine.review.runner import run_tests_file
from policy_engine.review.tests_file import load_tests_file

POLICY = """\
version: 1
name: violence-test
default: {review_at: 80}
rules:
  - id: graphic
    match: {parent: Graphic Violence}
    review_at: 60
    block_at: 90
  - id: top
    match: {name: Violence}
    review_at: 90
  - id: unused
    match: {name: Gambling}
    action: allow
"""

AWS_RESPONSE = {
    "ModerationLabels": [
        {"Confidence": 97.3, "Name": "Weapon Violence", "ParentName": "Graphic Violence"},
        {"Confidence": 97.3, "Name": "Violence", "ParentName": ""},
    ],
    "ModerationModelVersion": "7.0",
}


def write(tmp_path: Path, tests: str, policy: str = POLICY) -> Path:
    (tmp_path / "p.yaml").write_text(policy, encoding="utf-8")
    path = tmp_path / "p.tests.yaml"
    if "\nsource:" not in tests and not tests.startswith("source:"):
        # POLICY names no detectors: the file says where compact labels come from
        # (last, so that every line number the tests check stays the same)
        tests = tests.rstrip("\n") + "\nsource: rekognition-moderation\n"
    path.write_text(tests, encoding="utf-8")
    return path


def run(tmp_path: Path, tests: str, registry: DetectorRegistry) -> object:
    return run_tests_file(load_tests_file(write(tmp_path, tests), registry), registry)
