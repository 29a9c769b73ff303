"""The plugin's errors: typed, with a stable code, and located where they can be."""

from __future__ import annotations

from pathlib import Path

from policy_engine import DetectorError


class BankError(DetectorError):
    """A bank (or a hash list being imported) that cannot be read: a missing
    file, a malformed line, two banks of one name. ``path`` and ``line`` say
    where, when known; the message starts with them (``bank.txt:3: ...``)."""

    code = "bad-bank"

    def __init__(self, message: str, *, path: Path | None = None, line: int | None = None) -> None:
        where = "" if path is None else f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}", sent=False)
        self.path = path
        self.line = line


class UndecodableImage(DetectorError):
    """Image bytes that Pillow cannot decode: PDQ cannot hash them."""

    code = "undecodable-image"

    def __init__(self, message: str) -> None:
        super().__init__(message, sent=False)
