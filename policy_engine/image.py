"""The image a detector looks at."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SIGNATURES = (
    ("JPEG", b"\xff\xd8\xff"),
    ("PNG", PNG_SIGNATURE),
    ("GIF", b"GIF87a"),
    ("GIF", b"GIF89a"),
    ("BMP", b"BM"),
    ("TIFF", b"II*\x00"),
    ("TIFF", b"MM\x00*"),
    ("PDF", b"%PDF"),
)
_HEIF_BRANDS = (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif")


def sniff_format(data: bytes) -> str | None:
    """The file format ``data``'s magic bytes name (``"JPEG"``, ``"PNG"``,
    ``"GIF"``, ``"WebP"``, ``"HEIF/AVIF"``, ``"PDF"``...), or None if unknown:
    to tell a user what they gave, never to trust it as valid."""
    for name, signature in _SIGNATURES:
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[4:12] in _HEIF_BRANDS:
        return "HEIF/AVIF"
    return None


def hides_its_default_image(data: bytes) -> bool:
    """Whether ``data`` is an animated PNG whose default image (its IDAT, what
    a decoder without APNG support shows) may not be what a browser shows:
    one whose default image is not part of the animation (every APNG-aware
    viewer shows the animation instead, so a service that decodes only the
    default image can be shown a decoy), or one whose animation chunks are
    malformed (decoders disagree on what it shows). Read from the chunks alone
    (no decoding); a file cut before its first IDAT is not (a decoder refuses
    it anyway)."""
    return default_image_verdict(data) in (HIDDEN, AMBIGUOUS)


def default_image_verdict(data: bytes) -> str | None:
    """:data:`SHOWN`, :data:`HIDDEN` or :data:`AMBIGUOUS` for a PNG's bytes;
    None for any other file, or a PNG cut before its first IDAT."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    return DefaultImageScan().read(data, 0).verdict


SHOWN = "shown"
"""The default image is what every viewer shows first: a still PNG, or an
APNG whose first frame it is."""
HIDDEN = "hidden"
"""A well-formed APNG whose default image is not part of its animation."""
AMBIGUOUS = "ambiguous"
"""Malformed animation chunks before the first IDAT (a second acTL, a frame
count out of range, an fcTL a decoder would skip): decoders disagree, so no
one frame is what every viewer shows."""

_MAX_FRAMES = 2**31 - 1


@dataclass(frozen=True, slots=True)
class DefaultImageScan:
    """How far a PNG's chunks have been read towards its first IDAT, for a
    caller that reads the file in pieces (an S3 object by ranges): ``verdict``
    is None until the chunks read tell (APNG spec: an acTL chunk before the
    IDAT makes it animated; a valid fcTL for frame 0 before the IDAT makes the
    default image its first frame)."""

    next_chunk: int = len(PNG_SIGNATURE)
    """The file offset of the next chunk to read (its header, then its data)."""
    size: bytes = b""
    """IHDR's width and height, as stored."""
    animated: bool = False
    first_frame: bool = False
    doubtful: bool = False
    verdict: str | None = None

    def read(self, data: bytes, at: int) -> DefaultImageScan:
        """The scan after the chunks in ``data``, the file's bytes from offset
        ``at`` on. A chunk whose data the scan needs (IHDR, acTL, fcTL) and
        ``data`` does not hold in full is left for the next read."""
        if self.verdict is not None:
            return self
        position, size = self.next_chunk, self.size
        animated, first_frame, doubtful = self.animated, self.first_frame, self.doubtful
        while at <= position and position + 8 <= at + len(data):
            start = position - at
            length = int.from_bytes(data[start : start + 4], "big")
            kind = data[start + 4 : start + 8]
            if kind == b"IDAT":
                verdict = (
                    AMBIGUOUS if doubtful else HIDDEN if animated and not first_frame else SHOWN
                )
                return DefaultImageScan(position, size, animated, first_frame, doubtful, verdict)
            if kind in (b"IHDR", b"acTL", b"fcTL"):
                body = data[start + 8 : start + 8 + min(length, 26)]
                if len(body) < min(length, 26):
                    break  # its data is in the next read
                if kind == b"IHDR":
                    size = body[:8]
                elif kind == b"acTL":
                    frames = int.from_bytes(body[:4], "big") if length == 8 else 0
                    doubtful = doubtful or animated or not 0 < frames <= _MAX_FRAMES
                    animated = True
                else:  # fcTL: frame 0's, at the origin, the image's size
                    valid = (
                        length == 26
                        and animated
                        and not first_frame
                        and body[0:4] == b"\0\0\0\0"
                        and body[4:12] == size
                        and body[12:20] == bytes(8)
                    )
                    doubtful = doubtful or not valid
                    first_frame = first_frame or valid
            position += 12 + length  # length, type, data, CRC
        return DefaultImageScan(position, size, animated, first_frame, doubtful, None)


DEFAULT_MAX_IMAGE_BYTES = 64 * 1024 * 1024
"""The most bytes read from one local image file when no detector of the
policy says less (see :meth:`policy_engine.detectors.Detector.max_image_bytes`)."""


@dataclass(frozen=True, slots=True)
class Image:
    """An image, by its bytes or by a URI a detector can read itself.

    ``name`` is what the user knows it by (a path, a URI, an upload id).
    ``data`` holds the bytes; it is None for an object a detector reads in
    place (``uri``, e.g. ``s3://bucket/key?versionId=...``, sent to Rekognition
    as an S3Object, never downloaded). ``size`` is the byte count where known
    without reading, and ``version`` what identifies the object's content
    when its bytes are not at hand (an S3 ETag).
    """

    name: str
    data: bytes | None = field(default=None, repr=False)
    uri: str | None = None
    size: int | None = None
    version: str | None = None
    sha256: str | None = field(init=False, default=None)
    """Hex SHA-256 of the bytes; None when only a ``uri`` is known."""

    def __post_init__(self) -> None:
        if self.data is None and self.uri is None:
            raise ValueError(f"image {self.name!r} needs its bytes or a URI")
        if self.data is not None:
            object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())
            object.__setattr__(self, "size", len(self.data))

    @property
    def identified(self) -> bool:
        """Whether :attr:`key` names these bytes and no others: the bytes are at
        hand, or a ``version`` says which they are. A URI alone does not: the
        object behind it may be overwritten, so a cache must never answer for
        it (see :meth:`Detector.identify <policy_engine.detectors.Detector.identify>`)."""
        return self.data is not None or self.version is not None

    @property
    def key(self) -> str:
        """What recordings and de-duplication know the image by: the SHA-256 of its
        bytes, or, for an image known by URI only, a SHA-256 of URI and version."""
        if self.sha256 is not None:
            return self.sha256
        identity = f"{self.uri}\n{self.version or ''}"
        return hashlib.sha256(identity.encode("utf-8")).hexdigest()
