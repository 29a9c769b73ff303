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
    a decoder without APNG support shows) is not part of the animation: every
    APNG-aware viewer (all current browsers) shows the animation frames
    instead, so a service that decodes only the default image can be shown a
    decoy. Read from the chunks alone (no decoding); a file cut before its
    first IDAT is not (a decoder refuses it anyway)."""
    return data.startswith(PNG_SIGNATURE) and DefaultImageScan().read(data, 0).hidden is True


@dataclass(frozen=True, slots=True)
class DefaultImageScan:
    """How far a PNG's chunk headers have been read towards its first IDAT,
    for a caller that reads the file in pieces (an S3 object by ranges).
    ``hidden`` is None until the chunks read tell: an ``acTL`` chunk (animated)
    before the first IDAT, with no ``fcTL`` before it (APNG spec: an fcTL
    before the IDAT makes the default image the first frame)."""

    next_chunk: int = len(PNG_SIGNATURE)
    """The file offset of the next chunk header to read."""
    animated: bool = False
    hidden: bool | None = None

    def read(self, data: bytes, at: int) -> DefaultImageScan:
        """The scan after the chunk headers in ``data``, the file's bytes from
        offset ``at`` on."""
        position, animated = self.next_chunk, self.animated
        while self.hidden is None and at <= position and position + 8 <= at + len(data):
            length = int.from_bytes(data[position - at : position - at + 4], "big")
            kind = data[position - at + 4 : position - at + 8]
            if kind == b"IDAT":
                return DefaultImageScan(position, animated, animated)
            if kind == b"fcTL":
                return DefaultImageScan(position, animated, False)
            animated = animated or kind == b"acTL"
            position += 12 + length  # length, type, data, CRC
        return DefaultImageScan(position, animated, self.hidden)


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
