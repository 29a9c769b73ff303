"""Checking many images: expanding inputs, one result per image, in order."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policy_engine.decision import Decision
from policy_engine.engine import Engine
from policy_engine.image import Image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
"""What a folder contributes; a file named explicitly is always checked."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One input's outcome: a decision, or why the input could not be read."""

    input: str
    sha256: str | None = None
    decision: Decision | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"input": self.input, "sha256": self.sha256}
        if self.decision is not None:
            record.update(self.decision.to_dict())
        if self.error is not None:
            record["error"] = self.error
        return record


@dataclass(frozen=True, slots=True)
class InputPath:
    path: str
    problem: str | None = None


def expand_inputs(paths: Iterable[str]) -> Iterator[InputPath]:
    """Files as given; folders recursively (image suffixes only, hidden entries skipped,
    sorted so that runs are repeatable); a path that does not exist as a problem."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, folders, files in os.walk(path):
                folders[:] = sorted(f for f in folders if not f.startswith("."))
                for name in sorted(files):
                    if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                        yield InputPath(str(Path(root) / name))
        elif path.exists():
            yield InputPath(raw)
        else:
            yield InputPath(raw, "no such file or folder")


def check_paths(engine: Engine, paths: Iterable[str]) -> Iterator[CheckResult]:
    """Decide every image under ``paths``, yielding each result as soon as it is made.

    An input that cannot be read yields a result with ``error`` and the run goes
    on; a detector failure is part of the decision (the policy's ``on_error``).
    """
    for item in expand_inputs(paths):
        if item.problem is not None:
            yield CheckResult(item.path, error=item.problem)
            continue
        try:
            data = Path(item.path).read_bytes()
        except OSError as exc:
            yield CheckResult(item.path, error=f"cannot read: {exc.strerror or exc}")
            continue
        image = Image(item.path, data)
        yield CheckResult(item.path, image.sha256, engine.check(image))
