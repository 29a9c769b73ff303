"""The ``stub`` detector: replay recordings, add fixed labels."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from policy_engine import (
    DetectContext,
    Detector,
    DetectorError,
    DetectorResult,
    Image,
    InvalidDetectorResult,
    Label,
    NoRecordingError,
)
from policy_engine.sets.content_types import CONTENT_TYPES_KEY
from policy_engine_stub.settings import MISSING_NO_LABELS, SETTINGS_SCHEMA, SOURCE, StubSettings


def recording_path(folder: Path, image: Image) -> Path:
    """Where the recording of ``image`` lives: the store ``--record`` writes too."""
    return folder / f"{image.key}.json"


class StubDetector(Detector):
    """Returns what was recorded for an image, plus fixed labels; never calls out."""

    name: ClassVar[str] = SOURCE
    settings_schema: ClassVar[Mapping[str, Any]] = SETTINGS_SCHEMA
    remote: ClassVar[bool] = False
    # a replayed recording keeps its labels' sources (rekognition-moderation, ...)
    reports_other_sources: ClassVar[bool] = True

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        settings = StubSettings.from_mapping(context.settings, base_dir=context.base_dir)
        recording: str | None = None
        replayed: tuple[DetectorResult, ...] = ()
        if settings.recordings is not None:
            path = _find_recording(settings.recordings, image, settings.missing)
            if path is not None:
                recording = path.name
                replayed = _replay(path, context)
        labels: list[Label] = [label for result in replayed for label in result.labels]
        labels.extend(settings.labels)
        metadata: dict[str, Any] = {
            "recording": recording,
            "replayed": tuple(result.source for result in replayed),
        }
        for result in replayed:
            metadata[result.source] = dict(result.metadata)
        content_types = _replayed_content_types(replayed)
        if content_types is not None:
            metadata[CONTENT_TYPES_KEY] = content_types
        return DetectorResult(source=SOURCE, labels=tuple(labels), metadata=metadata, raw=None)


def _replayed_content_types(replayed: tuple[DetectorResult, ...]) -> Any:
    """The content types the replayed responses reported, where the core reads
    them (a set routes on them): under the replayed detector's own name they
    would be invisible, and a replay would route unlike the live call. A
    malformed value is passed on as it is, for the core to treat as malformed."""
    found = [r.metadata[CONTENT_TYPES_KEY] for r in replayed if CONTENT_TYPES_KEY in r.metadata]
    malformed = [each for each in found if not isinstance(each, (list, tuple))]
    if malformed:
        return malformed[0]
    return [entry for each in found for entry in each] if found else None


def _find_recording(folder: Path, image: Image, missing: str) -> Path | None:
    """The recording of ``image``, or None when it has none and ``missing`` allows that."""
    # A missing folder is a wrong path, not "nothing recorded": never let
    # `missing: no-labels` turn a typo into every image allowed.
    if not folder.is_dir():
        raise DetectorError(
            f"recordings folder {folder} does not exist or is not a folder",
            code="no-recordings-folder",
        )
    path = recording_path(folder, image)
    if path.is_file():
        return path
    if missing == MISSING_NO_LABELS:
        return None
    raise NoRecordingError(
        f"no recording for image {image.name!r} (key {image.key}): "
        f"looked for {path.name} in {folder}"
    )


def _replay(path: Path, context: DetectContext) -> tuple[DetectorResult, ...]:
    """Parse every raw response in the recording at ``path`` with the detector
    that recognises it, so replayed labels keep their recorded source."""
    responses = _read_responses(path)
    results: list[DetectorResult] = []
    for index, raw in enumerate(responses):
        where = f"recording {path}"
        if len(responses) > 1:
            where += f", response {index}"
        try:
            result = context.parse_response(raw)
        except InvalidDetectorResult as exc:
            located = InvalidDetectorResult(f"{where}: {exc}")
            located.field = exc.field
            raise located from exc
        except DetectorError as exc:
            raise DetectorError(f"{where}: {exc}", code=exc.code) from exc
        except Exception as exc:  # e.g. no installed detector recognises the response
            raise DetectorError(f"{where}: {exc}", code="unreplayable-recording") from exc
        if any(earlier.source == result.source for earlier in results):
            raise InvalidDetectorResult(
                f"{where}: a second response from detector {result.source!r} "
                f"(a recording holds at most one per detector)"
            )
        results.append(result)
    return tuple(results)


def _read_responses(path: Path) -> list[Mapping[str, Any]]:
    # the store's format is the core's, shared with --record and --cache; imported
    # here, since registering the detector (every start) must not pay for it
    from policy_engine.recordings import read_recording

    return [entry.response for entry in read_recording(path)]
