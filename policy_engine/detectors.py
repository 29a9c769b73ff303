"""What a detector plugin implements, and what it returns.

A detector turns an image into labels. Plugins subclass :class:`Detector` and
register an instance through the ``policy_engine_register_detectors`` hook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from policy_engine.image import Image
from policy_engine.labels import Label
from policy_engine.taxonomy import Taxonomy

_EMPTY: Mapping[str, Any] = MappingProxyType({})

DEFAULT_REMOTE_COST = 1.0
"""The cost of a remote detector that does not declare one (a local one's is 0)."""


@dataclass(frozen=True, slots=True)
class DetectorResult:
    """The labels one detector found in one image.

    ``metadata`` is what the record carries about the call itself (model
    version, content types, adapter, human-loop output); ``raw`` is the
    response as received, for recording; neither is evaluated.
    """

    source: str
    labels: tuple[Label, ...]
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    raw: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    def __reduce__(self) -> tuple[type[DetectorResult], tuple[Any, ...]]:
        # A mappingproxy does not pickle: rebuild from plain data, as Label does.
        raw = dict(self.raw) if self.raw is not None else None
        return (DetectorResult, (self.source, self.labels, dict(self.metadata), raw))


@dataclass(frozen=True, slots=True)
class DetectContext:
    """What the engine hands a detector for one call.

    ``settings`` are the detector's entry under the policy's ``detectors:``
    (already validated against :attr:`Detector.settings_schema`), with
    relative paths left as written; ``base_dir`` is the policy file's folder,
    against which a detector resolves such paths. ``parse_response`` turns a
    raw response of any installed detector into a :class:`DetectorResult`
    (a replaying detector uses it). ``concurrency`` is how many images the
    run checks at once: a detector sizes its connection pool to it.
    """

    settings: Mapping[str, Any]
    min_confidence: float
    base_dir: str
    parse_response: Callable[[Mapping[str, Any]], DetectorResult]
    concurrency: int = 1


@dataclass(frozen=True, slots=True)
class SettingsFinding:
    """A likely mistake in a detector's settings that the settings schema cannot
    see (a region its service does not have, say): reported by the linter as a
    warning with ``code`` at the setting, ``path`` being relative to the
    detector's entry under ``detectors:`` (e.g. ``("region",)``)."""

    path: tuple[str | int, ...]
    code: str
    message: str


class Detector:
    """Base class of detectors. Override what your detector supports.

    Class attributes:

    ``name``
        The detector's name, unique among installed plugins; labels it
        produces carry it as their ``source``.
    ``settings_schema``
        A JSON Schema (draft 2020-12) for the detector's settings in a
        policy's ``detectors:`` map, checked when the policy loads.
    ``remote``
        Whether ``detect`` calls a service (paid, rate-limited): the engine
        then applies the run's rate limit, counts the call, and may answer
        from a ``--cache`` instead. A local detector sets it to False.
    ``transport_settings``
        Settings that change how a remote detector reaches its service, not
        what it answers (region, profile, endpoint, retries, timeouts).
        Recordings and the cache are keyed without them, so changing one
        still finds what was recorded. Unlisted settings all count.
    ``cost``
        What one call costs relative to the other detectors, for the
        lossless cascade (:mod:`policy_engine.cascade`), which calls cheaper
        detectors first and skips a detector whose answer can no longer
        change a decision. None (the default) means 0 for a local detector
        and :data:`DEFAULT_REMOTE_COST` (1) for a remote one; a policy may
        override it (``cascade: {costs: ...}``).
    ``reports_other_sources``
        Whether this detector's labels may carry another detector's name as
        their ``source`` (the stub replaying a recorded Rekognition
        response). The cascade then bounds what it may report over every
        rule, whatever its ``source:``; otherwise a label of another source
        from this detector is an invalid result.
    """

    name: ClassVar[str] = ""
    remote: ClassVar[bool] = True
    cost: ClassVar[float | None] = None
    reports_other_sources: ClassVar[bool] = False
    transport_settings: ClassVar[frozenset[str]] = frozenset()
    settings_schema: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"type": "object", "additionalProperties": False}
    )

    def lint_settings(self, settings: Mapping[str, Any]) -> Sequence[SettingsFinding]:
        """Warnings about this detector's ``settings`` (an entry under a policy's
        ``detectors:``, as written) beyond what :attr:`settings_schema` checks.
        Called when a policy loads, so it must be quick and must not call out;
        an exception is ignored. Register each code in the core's table of
        codes (:data:`policy_engine.diagnostics.DIAGNOSTIC_CODES`) so that reports
        describe it, or pick a code it already has."""
        return ()

    def taxonomies(self) -> tuple[Taxonomy, ...]:
        """Every taxonomy this detector may use (for linting and name checks)."""
        return ()

    def taxonomy(self, model_version: str | None) -> Taxonomy | None:
        """The taxonomy that applies to labels from ``model_version``, if any."""
        return None

    def taxonomy_migration(
        self, old: Taxonomy, new: Taxonomy
    ) -> Mapping[str, tuple[str, ...]] | None:
        """What names of the ``old`` taxonomy become in the ``new`` one: old name
        (as spelt in ``old``) to the new name or names, for ``policy-engine
        migrate`` and the linter's ``model-6-name`` suggestions. Names left out
        carry over where ``new`` knows them. None: no mapping between the two."""
        return None

    def recognizes(self, raw: Mapping[str, Any]) -> bool:
        """Whether ``raw`` looks like a response of this detector (by its keys)."""
        return False

    def parse(self, raw: Mapping[str, Any]) -> DetectorResult:
        """Turn a raw response into labels, or raise
        :class:`~policy_engine.errors.InvalidDetectorResult` naming the bad field."""
        raise NotImplementedError(f"detector {self.name!r} does not parse raw responses")

    def from_stored(self, raw: Mapping[str, Any], context: DetectContext) -> DetectorResult:
        """What ``detect`` would have returned for ``raw``, a response recorded
        earlier under the same settings (a ``--cache`` hit), without calling.
        By default :meth:`parse`; override to add what the settings tell, such
        as the model the call named."""
        return self.parse(raw)

    def preflight(self, context: DetectContext) -> None:
        """Check, without sending a request, that this detector can be called at
        all (credentials and a region found, say); raise
        :class:`~policy_engine.errors.DetectorError` with a clear message and a
        stable ``code`` if not. The engine calls it once, before the first
        image (:meth:`Engine.preflight <policy_engine.engine.Engine.preflight>`),
        so that a run stops with one error instead of failing every image. By
        default it checks nothing."""

    def identify(self, image: Image, context: DetectContext) -> Image:
        """``image``, known by its URI only, with what identifies its bytes filled
        in (``version``, and a URI naming the exact object version this detector
        will read), for a detector that reads images in place. The engine calls
        it before it looks the image up in a cache or records its answer, and
        keys both by the image returned: an image that is still not
        :attr:`~policy_engine.image.Image.identified` is neither answered from a
        cache nor recorded, as the object behind a URI may change. It may make a
        request (a HEAD); an exception leaves the image unidentified. By default
        the image as it is."""
        return image

    def prepare(self, context: DetectContext) -> None:
        """Get ready to call (build clients, open sessions) before the first
        rate-limited call, outside the rate limit; a failure here is ignored
        and left for ``detect`` to report."""

    def max_image_bytes(self, settings: Mapping[str, Any]) -> int | None:
        """The most bytes of one image this detector takes with ``settings``, or
        None for no limit of its own. A local file is read no further than the
        largest limit among a policy's detectors (plus one byte, to tell a
        larger file), so that a huge file or ``/dev/zero`` is never read whole."""
        return None

    def precheck(self, image: Image, context: DetectContext) -> None:
        """Raise :class:`~policy_engine.errors.DetectorError` for an image this
        detector would refuse without calling out (format, size). The engine
        calls it before every call, local detectors' too, and before taking a
        rate-limit slot or counting a call, so a bad image costs neither;
        ``detect`` may check again. It must not call out: the engine also
        runs it when the detector is replayed (``check --replay``), so that a
        replay refuses what a live run would."""

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        """Look at ``image``. Raise :class:`~policy_engine.errors.DetectorError`
        for a failure the user should read; any other exception is caught by
        the engine and reported as this detector's error too."""
        raise NotImplementedError(f"detector {self.name!r} cannot detect")


def taxonomies_of(detector: Detector) -> tuple[Taxonomy, ...]:
    """``detector.taxonomies()``, or none where the plugin fails: a plugin's
    optional extra never breaks loading (its names then cannot be checked)."""
    try:
        return tuple(detector.taxonomies())
    except Exception:
        return ()


def current_taxonomy(detector: Detector) -> Taxonomy | None:
    """``detector.taxonomy(None)``, or None where the plugin fails."""
    try:
        return detector.taxonomy(None)
    except Exception:
        return None


def detector_cost(detector: Detector) -> float:
    """``detector.cost``, or its default: 0 for a local detector, 1 for a remote one."""
    cost = detector.cost
    if cost is None:
        return DEFAULT_REMOTE_COST if detector.remote else 0.0
    return float(cost)
