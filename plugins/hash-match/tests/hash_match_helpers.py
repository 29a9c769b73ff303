"""Synthetic pictures for the hash-match tests (imported by name: the
conftest puts this folder on sys.path, as the aws-lambda tests do)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage


def picture(seed: int, size: tuple[int, int] = (96, 64)) -> PILImage.Image:
    """A picture with structure (smooth blobs and edges), different for each seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    pixels = np.zeros((size[1], size[0], 3))
    for _ in range(6):
        cx, cy, r = rng.uniform(0, size[0]), rng.uniform(0, size[1]), rng.uniform(6, 30)
        colour = rng.uniform(0, 255, 3)
        pixels[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = colour
    return PILImage.fromarray(pixels.astype(np.uint8), "RGB")


def encoded(image: PILImage.Image, format: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=format)
    return out.getvalue()


@dataclass(frozen=True)
class Pictures:
    folder: Path

    def save(self, name: str, image: PILImage.Image, format: str = "PNG") -> Path:
        path = self.folder / name
        path.write_bytes(encoded(image, format))
        return path
