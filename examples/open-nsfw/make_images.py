"""Draw the open-nsfw example's synthetic images into images/ (or --out DIR).

Nothing here is real content. ``abstract-skin-tones.png`` is blurred ellipses in
skin tones, their places found by a random search for shapes the model scores
high (about 97): it shows that open_nsfw reacts to large skin-toned areas, not
to what a picture shows. ``flat-skin-tone.png`` is one flat colour (about 25).
Needs Pillow, which the open-nsfw plugin depends on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

TONES = [
    (224, 172, 105),
    (241, 194, 125),
    (255, 219, 172),
    (198, 134, 66),
    (141, 85, 36),
    (232, 190, 172),
    (250, 200, 180),
]
# (x, y, width, height, tone) of each ellipse, drawn in order
ELLIPSES = [
    (6, 50, 85, 33, 4),
    (48, 87, 72, 91, 0),
    (3, 67, 33, 51, 2),
    (33, -15, 70, 25, 2),
    (25, 99, 92, 74, 2),
    (93, 61, 72, 38, 4),
    (61, -30, 5, 109, 3),
    (28, -16, 53, 96, 6),
]


def abstract_skin_tones() -> Image.Image:
    picture = Image.new("RGB", (128, 128), (90, 60, 50))
    draw = ImageDraw.Draw(picture)
    for x, y, width, height, tone in ELLIPSES:
        draw.ellipse([x, y, x + width, y + height], fill=TONES[tone])
    return picture.filter(ImageFilter.GaussianBlur(5))


def flat_skin_tone() -> Image.Image:
    return Image.new("RGB", (128, 96), (230, 180, 150))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "images")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    for name, draw in [
        ("abstract-skin-tones.png", abstract_skin_tones),
        ("flat-skin-tone.png", flat_skin_tone),
    ]:
        draw().save(out / name, format="PNG")
        print(out / name)


if __name__ == "__main__":
    main()
