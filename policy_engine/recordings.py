"""The store of recorded detector responses, one JSON file per image.

``<folder>/<image key>.json`` (the key is the SHA-256 of the image bytes)
holds either what a person wrote by hand, one raw response or a list of
them, or what ``--record`` writes::

    {"format": "policy-engine-recording/1",
     "recordings": [{"detector": "rekognition-moderation",
                     "settings": "sha256:...",
                     "response": {...raw response...}}]}

``settings`` digests the detector's name, its settings and the policy's
``min_confidence`` (which changes what the detector is asked for), so a
cached response is reused only for the same question. The ``stub`` detector
replays every response of a file; ``--cache`` reuses only an exact match.

Many processes may record into one folder at once: each write reads, merges
and replaces the file under an exclusive lock on ``<folder>/.policy-engine.lock``
(``flock`` on POSIX, ``msvcrt.locking`` on Windows), and the new file is
renamed into place, so a reader sees the old file or the new one, never half.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from policy_engine.errors import InvalidDetectorResult, RecordingWriteError
from policy_engine.json_types import json_type_name, plain
from policy_engine.log_fields import fields
from policy_engine.model import plain_number

RECORDING_FORMAT = "policy-engine-recording/1"
LOCK_FILE = ".policy-engine.lock"
"""The file in a recordings folder that writers lock (kept: removing it would race)."""

logger = logging.getLogger(__name__)

_FILE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def settings_digest(detector: str, settings: Mapping[str, Any], min_confidence: float) -> str:
    """What a recorded response was asked with, as ``sha256:<hex>``."""
    canonical = json.dumps(
        {
            "detector": detector,
            "settings": plain(settings),
            "min_confidence": plain_number(min_confidence),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class RecordedResponse:
    """One response in a recording file; ``detector`` and ``settings`` are None
    for a hand-written bare response."""

    response: Mapping[str, Any]
    detector: str | None = None
    settings: str | None = None


def read_recording(path: Path) -> tuple[RecordedResponse, ...]:
    """Every response in a recording file, whichever of its forms it has.

    Raises :class:`InvalidDetectorResult` naming the file for anything else.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidDetectorResult(f"cannot read recording {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidDetectorResult(
            f"recording {path} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from exc
    return recorded_responses(data, f"recording {path}")


def recorded_responses(data: Any, where: str) -> tuple[RecordedResponse, ...]:
    """The responses in parsed recording JSON: what ``--record`` writes, one raw
    response, or a list of them. Raises :class:`InvalidDetectorResult` starting
    with ``where`` for anything else."""
    if isinstance(data, dict) and data.get("format") == RECORDING_FORMAT:
        entries = data.get("recordings")
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("response"), dict) for e in entries
        ):
            raise InvalidDetectorResult(
                f"{where}: 'recordings' must be a list of objects with a 'response'"
            )
        return tuple(
            RecordedResponse(e["response"], e.get("detector"), e.get("settings")) for e in entries
        )
    responses = data if isinstance(data, list) else [data]
    for index, response in enumerate(responses):
        if not isinstance(response, dict):
            at = f"[{index}] " if isinstance(data, list) else ""
            raise InvalidDetectorResult(
                f"{where}: {at}a response must be a JSON object, not {json_type_name(response)}"
            )
    return tuple(RecordedResponse(response) for response in responses)


class ResponseStore(Protocol):
    """Where ``--record`` writes and ``--cache`` reads: a folder
    (:class:`RecordingStore`), or any other place, e.g. an S3 prefix, that
    keeps the same documents under the same keys."""

    def lookup(self, key: str, detector: str, settings: str) -> Mapping[str, Any] | None:
        """The response recorded for exactly this image key, detector and settings."""
        ...

    def record(self, key: str, detector: str, settings: str, response: Mapping[str, Any]) -> None:
        """Keep ``response`` for this image key, detector and settings."""
        ...


def find_response(
    entries: Iterable[RecordedResponse], detector: str, settings: str
) -> Mapping[str, Any] | None:
    """The response for exactly ``detector`` and ``settings`` among ``entries``."""
    for entry in entries:
        if entry.detector == detector and entry.settings == settings:
            return entry.response
    return None


def recording_document(
    existing: Iterable[RecordedResponse],
    detector: str,
    settings: str,
    response: Mapping[str, Any],
) -> dict[str, Any]:
    """The document to store: ``existing`` entries of other detectors or settings
    kept (hand-written bare responses dropped), this one added or replaced.

    Raises :class:`RecordingWriteError` naming the place of a value in
    ``response`` that JSON cannot hold (NaN, infinity, bytes, an object): a
    recording is strict JSON, which any reader can read back."""
    kept = [
        {"detector": old.detector, "settings": old.settings, "response": plain(old.response)}
        for old in existing
        if old.detector is not None and (old.detector, old.settings) != (detector, settings)
    ]
    entry = {"detector": detector, "settings": settings, "response": _json_value(response)}
    return {"format": RECORDING_FORMAT, "recordings": [*kept, entry]}


def _json_value(value: Any, at: str = "response", depth: int = 0) -> Any:
    """``value`` as plain JSON data, or :class:`RecordingWriteError` saying where not."""
    if depth > 100:
        raise RecordingWriteError(f"{at} is nested too deep")
    if isinstance(value, Mapping):
        return {str(k): _json_value(v, f"{at}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v, f"{at}[{i}]", depth + 1) for i, v in enumerate(value)]
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    what = repr(value) if isinstance(value, float) else f"a {type(value).__name__}"
    place = at.encode("ascii", "backslashreplace").decode("ascii")  # a key may be any string
    raise RecordingWriteError(f"{place} is {what}, which JSON cannot hold")


class RecordingStore:
    """A folder of recordings, safe to read and write from many threads and many
    processes at once (see the module for how)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()

    def check_writable(self) -> None:
        """Make the folder (and its lock file) now, so that a folder that cannot
        be written is said once, before anything is paid for; raises ``OSError``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / LOCK_FILE).open("a"):
            pass

    def path_for(self, key: str) -> Path:
        """``<folder>/<key>.json``; ``key`` (an image key) must be a plain file name."""
        if not _FILE_KEY.fullmatch(key) or ".." in key:
            raise ValueError(f"{key!r} is not an image key (a file name of letters and digits)")
        return self.folder / f"{key}.json"

    def responses(self, key: str) -> tuple[RecordedResponse, ...] | None:
        """Everything recorded for the image, or None when there is no file."""
        path = self.path_for(key)
        if not path.exists():
            return None
        return read_recording(path)

    def lookup(self, key: str, detector: str, settings: str) -> Mapping[str, Any] | None:
        """The response recorded for exactly this detector and settings, if any."""
        try:
            found = self.responses(key)
        except InvalidDetectorResult:
            return None  # an unreadable cache entry is a miss, never a failure
        return find_response(found or (), detector, settings)

    def record(self, key: str, detector: str, settings: str, response: Mapping[str, Any]) -> None:
        """Add (or replace) the response for this detector and settings, keeping the
        file's other entries, whoever wrote them: the file is read, merged and
        replaced under the folder's lock, and renamed into place whole.

        Raises :class:`RecordingWriteError`, with the file left as it was, for a
        response JSON cannot hold (NaN, an object) and for a file that exists but
        cannot be read; a lone surrogate is kept, as a ``\\uXXXX`` escape."""
        path = self.path_for(key)
        where = f"cannot record the {detector} response in {path}"
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with _exclusive(self.folder / LOCK_FILE):
                existing = _entries_to_keep(path, where)
                try:
                    document = recording_document(existing, detector, settings, response)
                    # ASCII JSON: any string Python holds is kept, and the file is UTF-8
                    text = json.dumps(document, indent=1, sort_keys=True)
                except (RecordingWriteError, TypeError, ValueError, RecursionError) as exc:
                    raise RecordingWriteError(f"{where}: {exc}") from exc
                _replace(path, text + "\n", self.folder, key)


def _entries_to_keep(path: Path, where: str) -> tuple[RecordedResponse, ...]:
    """What the file holds now. A file that cannot be read at all fails the write
    (it may hold answers); one whose content is not a recording is replaced."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise RecordingWriteError(f"{where}: cannot read it: {exc.strerror or exc}") from exc
    try:
        return recorded_responses(json.loads(data), f"recording {path}")
    except (UnicodeDecodeError, json.JSONDecodeError, InvalidDetectorResult) as exc:
        logger.warning(
            "replacing %s, which is not a recording: %s",
            path,
            exc,
            extra=fields("recording-replaced", path=str(path)),
        )
        return ()


def _replace(path: Path, text: str, folder: Path, key: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created if missing) across processes."""
    with open(lock_path, "a+b") as handle:
        _lock_file(handle)
        try:
            yield
        finally:
            _unlock_file(handle)


if sys.platform == "win32":
    import msvcrt

    def _lock_file(handle: IO[bytes]) -> None:
        handle.seek(0)
        while True:  # LK_LOCK gives up after about 10 seconds: wait on, as flock does
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                return
            except OSError:
                continue

    def _unlock_file(handle: IO[bytes]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_file(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)

    def _unlock_file(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
