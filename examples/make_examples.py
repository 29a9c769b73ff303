"""Draw the example images: simple coloured shapes, byte-identical on every run.

    python examples/make_examples.py            # writes examples/images/
    python examples/make_examples.py --out DIR  # writes DIR instead

Pure standard library. Both encoders avoid anything whose output could differ
between machines: PNG pixel data goes into *stored* (uncompressed) deflate
blocks, since zlib and zlib-ng compress the same bytes differently; the JPEG
is drawn in flat 8x8 blocks, so each block is exactly one DC coefficient and
no floating-point DCT is involved. The recordings under ``recordings/`` are
named after each image's sha256, which this script prints.
"""

from __future__ import annotations

import argparse
import hashlib
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

Rgb = tuple[int, int, int]

SIZE = 96  # Rekognition refuses images under 80x80 pixels


@dataclass(slots=True)
class Canvas:
    """A palette image: ``pixels`` holds one palette index per pixel, row by row."""

    width: int
    height: int
    palette: Sequence[Rgb]
    pixels: bytearray

    @classmethod
    def filled(cls, palette: Sequence[Rgb], size: int = SIZE) -> Canvas:
        return cls(size, size, tuple(palette), bytearray(size * size))

    def rect(self, left: int, top: int, right: int, bottom: int, colour: int) -> None:
        """Fill the pixels with left <= x < right and top <= y < bottom."""
        for y in range(max(top, 0), min(bottom, self.height)):
            start = y * self.width
            self.pixels[start + max(left, 0) : start + min(right, self.width)] = bytes(
                [colour] * (min(right, self.width) - max(left, 0))
            )

    def ellipse(self, cx: int, cy: int, rx: int, ry: int, colour: int) -> None:
        # Integer arithmetic only: the same pixels on every machine.
        for y in range(max(cy - ry, 0), min(cy + ry + 1, self.height)):
            for x in range(max(cx - rx, 0), min(cx + rx + 1, self.width)):
                if (x - cx) ** 2 * ry * ry + (y - cy) ** 2 * rx * rx <= rx * rx * ry * ry:
                    self.pixels[y * self.width + x] = colour

    def rgb(self, x: int, y: int) -> Rgb:
        return self.palette[self.pixels[y * self.width + x]]


# --- PNG -------------------------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _stored_zlib(data: bytes) -> bytes:
    """A zlib stream of stored deflate blocks (RFC 1950/1951): no compressor involved."""
    out = bytearray(b"\x78\x01")
    blocks = [data[i : i + 65535] for i in range(0, len(data), 65535)] or [b""]
    for index, block in enumerate(blocks):
        final = 1 if index == len(blocks) - 1 else 0
        out += struct.pack("<BHH", final, len(block), len(block) ^ 0xFFFF) + block
    return bytes(out + struct.pack(">I", zlib.adler32(data)))


def encode_png(canvas: Canvas) -> bytes:
    """A palette PNG (colour type 3) at the smallest bit depth that holds the palette."""
    depth = next(d for d in (1, 2, 4, 8) if len(canvas.palette) <= 1 << d)
    per_byte = 8 // depth
    rows = bytearray()
    for y in range(canvas.height):
        rows.append(0)  # filter type None
        row = canvas.pixels[y * canvas.width : (y + 1) * canvas.width]
        for start in range(0, canvas.width, per_byte):
            byte = 0
            for offset in range(per_byte):
                index = row[start + offset] if start + offset < canvas.width else 0
                byte |= index << (8 - depth * (offset + 1))
            rows.append(byte)
    header = struct.pack(">IIBBBBB", canvas.width, canvas.height, depth, 3, 0, 0, 0)
    palette = b"".join(bytes(colour) for colour in canvas.palette)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"PLTE", palette)
        + _png_chunk(b"IDAT", _stored_zlib(bytes(rows)))
        + _png_chunk(b"IEND", b"")
    )


# --- JPEG (baseline, 4:4:4, one flat colour per 8x8 block) -------------------

# ITU T.81 Annex K.3 luminance DC table: code lengths 1..16, then the categories.
_DC_BITS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_VALUES = tuple(range(12))
# Every block's AC coefficients are zero, so the AC table needs only EOB (0x00).
_AC_BITS = (1,) + (0,) * 15
_AC_VALUES = (0x00,)
# Quantising DC by 8 makes a flat block's coefficient exactly (value - 128).
_QUANT = (8,) + (1,) * 63


def _huffman_codes(bits: Sequence[int], values: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Canonical JPEG codes (T.81 Annex C): symbol -> (code, length)."""
    codes: dict[int, tuple[int, int]] = {}
    code, symbols = 0, iter(values)
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[next(symbols)] = (code, length)
            code += 1
        code <<= 1
    return codes


class _BitWriter:
    def __init__(self) -> None:
        self.out = bytearray()
        self._bits = 0
        self._count = 0

    def write(self, value: int, length: int) -> None:
        self._bits = (self._bits << length) | (value & ((1 << length) - 1))
        self._count += length
        while self._count >= 8:
            self._count -= 8
            byte = (self._bits >> self._count) & 0xFF
            self.out.append(byte)
            if byte == 0xFF:
                self.out.append(0x00)  # byte stuffing
        self._bits &= (1 << self._count) - 1

    def flush(self) -> bytes:
        if self._count:
            self.write(0x7F, 8 - self._count)  # pad with one-bits
        return bytes(self.out)


def _ycbcr(colour: Rgb) -> tuple[int, int, int]:
    r, g, b = colour
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return _byte(y), _byte(cb), _byte(cr)


def _byte(value: float) -> int:
    return min(255, max(0, round(value)))


def _segment(marker: int, body: bytes) -> bytes:
    return struct.pack(">HH", marker, len(body) + 2) + body


def encode_jpeg(canvas: Canvas) -> bytes:
    """A baseline JPEG of a canvas whose 8x8 blocks are each one flat colour."""
    if canvas.width % 8 or canvas.height % 8:
        raise ValueError("the JPEG canvas must be a whole number of 8x8 blocks")
    dc_codes = _huffman_codes(_DC_BITS, _DC_VALUES)
    eob_code, eob_length = _huffman_codes(_AC_BITS, _AC_VALUES)[0x00]
    writer = _BitWriter()
    previous = [0, 0, 0]  # DC is coded as the difference from the last block's
    for top in range(0, canvas.height, 8):
        for left in range(0, canvas.width, 8):
            colour = canvas.rgb(left, top)
            block = {canvas.rgb(left + dx, top + dy) for dy in range(8) for dx in range(8)}
            if block != {colour}:
                raise ValueError(f"the 8x8 block at ({left}, {top}) is not one colour")
            for component, value in enumerate(_ycbcr(colour)):
                dc = value - 128
                diff = dc - previous[component]
                previous[component] = dc
                category = abs(diff).bit_length()
                code, length = dc_codes[category]
                writer.write(code, length)
                if category:
                    writer.write(diff if diff > 0 else diff + (1 << category) - 1, category)
                writer.write(eob_code, eob_length)
    zigzag_quant = bytes(_QUANT)  # all ACs equal, so zig-zag order changes nothing
    components = b"".join(bytes([ident, 0x11, 0]) for ident in (1, 2, 3))
    return b"".join(
        [
            b"\xff\xd8",
            _segment(0xFFE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _segment(0xFFDB, b"\x00" + zigzag_quant),
            _segment(0xFFC0, struct.pack(">BHHB", 8, canvas.height, canvas.width, 3) + components),
            _segment(0xFFC4, b"\x00" + bytes(_DC_BITS) + bytes(_DC_VALUES)),
            _segment(0xFFC4, b"\x10" + bytes(_AC_BITS) + bytes(_AC_VALUES)),
            _segment(0xFFDA, b"\x03" + b"\x01\x00\x02\x00\x03\x00" + b"\x00\x3f\x00"),
            writer.flush(),
            b"\xff\xd9",
        ]
    )


# --- The pictures --------------------------------------------------------------


def landscape() -> Canvas:
    sky, hill, grass, sun = (135, 196, 235), (46, 125, 50), (104, 170, 72), (250, 215, 60)
    canvas = Canvas.filled([sky, hill, grass, sun])
    canvas.ellipse(72, 22, 10, 10, 3)
    canvas.ellipse(30, 78, 46, 26, 1)
    canvas.rect(0, 76, SIZE, SIZE, 2)
    return canvas


def beach() -> Canvas:
    sky, sea, sand, swimsuit = (160, 214, 245), (30, 110, 180), (236, 210, 150), (220, 40, 90)
    canvas = Canvas.filled([sky, sea, sand, swimsuit])
    canvas.rect(0, 40, SIZE, 60, 1)
    canvas.rect(0, 60, SIZE, SIZE, 2)
    canvas.rect(40, 56, 56, 64, 3)  # top
    canvas.rect(42, 70, 54, 78, 3)  # bottoms
    return canvas


def cocktail_bar() -> Canvas:
    wall, counter, drink, cherry = (40, 24, 48), (110, 62, 30), (245, 140, 40), (200, 20, 40)
    canvas = Canvas.filled([wall, counter, drink, cherry])
    canvas.rect(0, 70, SIZE, SIZE, 1)
    for row in range(24):  # a cone-shaped glass, widest at the rim
        canvas.rect(48 - row, 30 + 24 - row, 48 + row, 31 + 24 - row, 2)
    canvas.rect(46, 54, 50, 70, 2)  # stem
    canvas.ellipse(60, 26, 4, 4, 3)
    return canvas


def party_smoking() -> Canvas:
    room, person, cigarette, smoke = (
        (90, 40, 130),
        (230, 180, 140),
        (250, 250, 245),
        (170, 170, 180),
    )
    canvas = Canvas.filled([room, person, cigarette, smoke])
    canvas.ellipse(40, 30, 12, 14, 1)
    canvas.rect(26, 46, 54, SIZE, 1)
    canvas.rect(50, 36, 70, 39, 2)
    for step, (x, y) in enumerate(((74, 30), (80, 22), (84, 12))):
        canvas.ellipse(x, y, 3 + step, 3 + step, 3)
    return canvas


def explicit() -> Canvas:
    backdrop, skin, shade, bar = (30, 30, 36), (225, 170, 140), (190, 130, 105), (0, 0, 0)
    canvas = Canvas.filled([backdrop, skin, shade, bar])
    canvas.ellipse(48, 56, 30, 34, 1)
    canvas.ellipse(48, 20, 12, 14, 1)
    canvas.ellipse(48, 70, 14, 10, 2)
    canvas.rect(14, 60, 82, 74, 3)  # the censor bar
    return canvas


def unrecorded() -> Canvas:
    grey, teal = (200, 200, 200), (0, 128, 128)
    canvas = Canvas.filled([grey, teal])
    canvas.rect(24, 24, 72, 72, 1)
    return canvas


def knife_fight() -> Canvas:
    # Every shape on the 8-pixel grid: the JPEG encoder needs flat 8x8 blocks.
    backdrop, blade, handle, blood = (50, 50, 56), (200, 205, 210), (100, 60, 30), (170, 20, 20)
    canvas = Canvas.filled([backdrop, blade, handle, blood])
    canvas.rect(16, 40, 64, 48, 1)
    canvas.rect(64, 32, 72, 56, 2)  # guard
    canvas.rect(72, 40, 88, 48, 2)
    canvas.rect(24, 56, 40, 64, 3)
    canvas.rect(40, 64, 48, 72, 3)
    return canvas


EXAMPLES: dict[str, tuple[Callable[[], Canvas], Callable[[Canvas], bytes]]] = {
    "beach.png": (beach, encode_png),
    "cocktail-bar.png": (cocktail_bar, encode_png),
    "explicit.png": (explicit, encode_png),
    "knife-fight.jpg": (knife_fight, encode_jpeg),
    "landscape.png": (landscape, encode_png),
    "party-smoking.png": (party_smoking, encode_png),
    "unrecorded.png": (unrecorded, encode_png),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "images", help="folder"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (draw, encode) in EXAMPLES.items():
        data = encode(draw())
        (args.out / name).write_bytes(data)
        print(f"{hashlib.sha256(data).hexdigest()}  {name}  ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
