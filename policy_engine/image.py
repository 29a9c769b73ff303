"""The image a detector looks at."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Image:
    """Image bytes with the name the user knows them by (a path, a URI, an upload id).

    ``sha256`` is the hex digest of the bytes: the key recordings are stored under.
    """

    name: str
    data: bytes = field(repr=False)
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())
