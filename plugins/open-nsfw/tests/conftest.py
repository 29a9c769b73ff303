"""The real model (loaded once per test process), synthetic images drawn with
Pillow, and the plugin registered from its own pyproject.toml, so that these
tests run whether or not the distribution is installed."""

from __future__ import annotations

import io
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as Pillow
from PIL import ImageDraw

from policy_engine import DetectContext, DetectorRegistry, Image
from policy_engine.entry_points import EntryPoint
from policy_engine.plugins import ENTRY_POINT_GROUP
from policy_engine_open_nsfw import OpenNsfwDetector

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
SKIN = (230, 180, 150)


def png(picture: Pillow.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def drawn(seed: int, size: tuple[int, int] = (96, 72)) -> bytes:
    """A distinct synthetic PNG for each ``seed``: coloured boxes on a background."""
    picture = Pillow.new("RGB", size, ((seed * 53) % 256, (seed * 97) % 256, (seed * 31) % 256))
    draw = ImageDraw.Draw(picture)
    for box in range(3):
        x, y = (seed * 7 + box * 23) % size[0], (seed * 11 + box * 17) % size[1]
        draw.rectangle([x, y, x + 30, y + 20], fill=((seed + box) * 71 % 256, 120, 200))
    return png(picture)


@pytest.fixture
def synthetic() -> Callable[[int], Image]:
    """``synthetic(seed)``: a distinct drawn PNG image for each seed."""
    return lambda seed: Image(name=f"drawn-{seed}.png", data=drawn(seed))


@pytest.fixture(scope="session")
def detector() -> OpenNsfwDetector:
    """One detector for the session: its model loads once per test process."""
    return OpenNsfwDetector()


@pytest.fixture
def context() -> Callable[..., DetectContext]:
    def make(settings: Mapping[str, Any] | None = None, concurrency: int = 1) -> DetectContext:
        return DetectContext(
            settings=settings or {},
            min_confidence=50.0,
            base_dir=".",
            parse_response=DetectorRegistry([]).parse_response,
            concurrency=concurrency,
        )

    return make


@pytest.fixture
def skin() -> Image:
    """A flat skin-toned image: the model gives it a middling score (about 25)."""
    return Image(name="skin.png", data=png(Pillow.new("RGB", (64, 48), SKIN)))


@pytest.fixture
def red() -> Image:
    return Image(name="red.png", data=png(Pillow.new("RGB", (64, 48), (255, 0, 0))))


def declared_entry_point() -> EntryPoint:
    declared = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["entry-points"]
    ((name, target),) = declared[ENTRY_POINT_GROUP].items()
    return EntryPoint(name, target)


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI's plugin discovery finds this plugin, installed or not."""
    from policy_engine import plugins

    found = plugins.installed_entry_points

    def with_ours(group: str) -> list[EntryPoint]:
        entry_points = list(found(group))
        ours = declared_entry_point()
        if group == ENTRY_POINT_GROUP and ours.name not in {e.name for e in entry_points}:
            entry_points.append(ours)
        return entry_points

    monkeypatch.setattr(plugins, "installed_entry_points", with_ours)
    yield
