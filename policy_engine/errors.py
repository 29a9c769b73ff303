"""Every exception this package raises on purpose, in one place.

Each is a :class:`PolicyEngineError` with a stable ``code`` (a class
attribute; a few take a more precise one per instance), registered with the
diagnostic codes in :data:`policy_engine.diagnostics.DIAGNOSTIC_CODES`, so a
caller reports ``exc.code`` whatever the type. Policy errors (the policy is
wrong) are kept apart from run errors (running it failed), as users act on
them differently (as Cloud Custodian does)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from policy_engine.diagnostics import Diagnostic


class PolicyEngineError(Exception):
    """Base of every error this package raises on purpose."""

    code: str = "policy-engine-error"


class DiagnosedError(PolicyEngineError):
    """An error that carries positioned diagnostics (``diagnostics``), every one found."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))


class PolicyLoadError(DiagnosedError):
    """A policy did not load; ``diagnostics`` holds every error found, sorted by position."""

    code = "policy-does-not-load"


class ShadowPolicyError(PolicyLoadError):
    """The candidate (shadow) policy does not load; ``diagnostics`` say why."""

    code = "shadow-does-not-load"

    def __init__(self, path: str, diagnostics: Sequence[Diagnostic]) -> None:
        super().__init__(diagnostics)
        self.path = path
        details = "\n".join(d.render() for d in self.diagnostics)
        self.args = (f"the shadow (candidate) policy {path} does not load:\n{details}",)


class PolicySetLoadError(PolicyLoadError):
    """A policy set (POLICY_SPEC section 10) did not load: its own errors and
    those of the policies it routes to, every one found, sorted by position."""

    code = "policy-set-does-not-load"


class ContextError(PolicyEngineError):
    """A check's context cannot be resolved against a policy set (section 10):
    ``dimension`` has no value and no default, or a value not in its list.
    Nothing is routed by guess."""

    code = "invalid-context"

    def __init__(self, dimension: str, message: str) -> None:
        super().__init__(message)
        self.dimension = dimension


class SetComparisonError(PolicyEngineError):
    """Two policy sets (or two contexts of one) cannot be compared combination by
    combination: a dimension both sets declare has different values, or a context
    names an unknown dimension or value."""

    code = "sets-not-comparable"


class SourceError(DiagnosedError):
    """The text is not a policy (or tests) document at all; carries its diagnostics."""

    code = "not-a-document"


class NestingTooDeepError(PolicyEngineError):
    """A YAML document nests lists and maps deeper than the composer takes
    (:data:`policy_engine.yaml_compose.MAX_NESTING_DEPTH`)."""

    code = "yaml-depth"


class TestsLoadError(DiagnosedError):
    """A tests file did not load; ``diagnostics`` holds every error found."""

    __test__ = False  # not a pytest test class
    code = "tests-do-not-load"


class NoDetectorsError(PolicyEngineError):
    """The policy names no detectors, so there is nothing to run over an image."""

    code = "no-detectors"


class PolicyDetectorsError(PolicyEngineError):
    """The policy's detectors do not fit the installed plugins: settings their
    schemas refuse, rules that are one match under a detector's aliases, names
    no taxonomy knows. ``diagnostics`` holds the loader's positioned findings."""

    code = "detector-settings"

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__(message)


class PluginError(PolicyEngineError):
    """A plugin is broken: it failed to load or to register, or it clashes with another."""

    code = "plugin-error"


class DuplicateDetectorError(PluginError):
    """Two plugins register a detector under the same name."""

    code = "duplicate-detector"

    def __init__(self, detector: str, first_plugin: str, second_plugin: str) -> None:
        self.detector = detector
        self.plugins = (first_plugin, second_plugin)
        super().__init__(
            f"detector {detector!r} is registered by both plugin {first_plugin!r} "
            f"and plugin {second_plugin!r}; uninstall one, or restrict loading with "
            f"POLICY_ENGINE_PLUGINS"
        )


class UnknownPluginError(PluginError):
    """``POLICY_ENGINE_PLUGINS`` names a plugin that is not installed: loading
    the others alone would run without a detector the setting asks for."""

    code = "unknown-plugin"

    def __init__(self, variable: str, missing: Sequence[str], installed: Sequence[str]) -> None:
        self.variable = variable
        self.missing = tuple(missing)
        names = ", ".join(repr(name) for name in self.missing)
        super().__init__(
            f"{variable} names {names}, which no installed plugin is called "
            f"(installed: {', '.join(installed) or 'none'}); install it, or fix {variable}"
        )


class UnknownDetectorError(PolicyEngineError):
    """No installed plugin provides the named detector."""

    code = "unknown-detector"


class DetectorError(PolicyEngineError):
    """A detector failed for one image. The engine turns it into the policy's
    ``on_error`` verdict (POLICY_SPEC section 6).

    ``retryable`` says whether the same call may succeed later (throttling, a
    timeout); ``code`` is a stable machine-readable name for the failure.
    ``sent`` is False when no request left the machine (an image refused
    before the call, no credentials or region, a request the SDK refused to
    send): the engine then does not count a call.
    """

    code: str = "detector-error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool = False,
        sent: bool = True,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.retryable = retryable
        self.sent = sent


class DetectorUnavailableError(PolicyEngineError):
    """A configured detector cannot be called at all (no credentials, no region,
    a profile that does not exist), found by :meth:`Engine.preflight
    <policy_engine.engine.Engine.preflight>` before the first image, so that a
    run stops with one error instead of failing every image. ``detector`` names
    it; ``code`` is the detector's stable code for the cause (``no-credentials``,
    ``no-region``, ``profile-not-found``, ...)."""

    code = "detector-unavailable"

    def __init__(self, detector: str, message: str, *, code: str) -> None:
        self.detector = detector
        self.code = code
        super().__init__(f"detector {detector!r} cannot be called: {message}")


class InvalidDetectorResult(DetectorError):
    """A detector's response is malformed (a missing field, a confidence that is
    not a finite number in [0, 100], ...). ``field`` locates the offending value,
    e.g. ``ModerationLabels[2].Confidence``."""

    code = "invalid-result"

    def __init__(self, message: str, *, field: str = "") -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class NoRecordingError(DetectorError):
    """A replaying detector has nothing recorded for an image."""

    code = "no-recording"


class UnrecognisedResponseError(PolicyEngineError):
    """A raw response that no installed detector recognises, or that several do."""

    code = "unrecognised-response"


class RunStopped(PolicyEngineError):
    """A batch run was stopped (its ``stop`` set) before this call went out:
    nothing was sent, and the image has no decision."""

    code = "stopped"


class ResumeError(PolicyEngineError):
    """``check --resume`` cannot continue its output: a record made by another
    policy, or a complete line that is no record. Nothing was changed."""

    code = "resume-refused"


class InputFileError(PolicyEngineError, OSError):
    """A local file refused before it was read whole: not a regular file (a FIFO
    would block, a device never end), or larger than what may be read. An
    :class:`OSError`, as any other file that cannot be read; ``code`` is
    ``not-a-regular-file`` or ``file-too-large``."""

    code = "not-a-regular-file"

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class RecordingWriteError(PolicyEngineError):
    """A response could not be recorded; nothing already recorded was changed."""

    code = "recording-write-failed"
