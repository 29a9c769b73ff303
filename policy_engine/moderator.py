"""The embedding API: one :class:`Moderator` per process, shared by every request.

>>> moderator = Moderator.from_policy_file("policies/general-ugc.yaml")  # doctest: +SKIP
>>> moderator.check(upload_bytes, context={"upload_id": "u-123"})      # doctest: +SKIP

A moderator serves one policy at a time, held as an immutable bundle
(:class:`ServingPolicy`: engine, shadow candidate, digest). A check reads the
bundle once, so it runs wholly under one policy; :meth:`Moderator.reload`
builds a new bundle and swaps it in with one assignment, and a policy that
fails to load leaves the old one serving. After every decision, the
``policy_engine_decision_made`` hook is called (the built-in audit log and
shadow logger are plugins of that hook, like any other); a hook's exception
is logged and never reaches the caller.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Concatenate, ParamSpec, TypeVar

import pluggy

from policy_engine.audit import AuditLog
from policy_engine.cascade import skipped_into
from policy_engine.compiler import CompiledPolicy
from policy_engine.decision import Decision
from policy_engine.diagnostics import Diagnostic, Position, error
from policy_engine.engine import DEFAULT_DETECTOR_TIMEOUT, Engine, with_skipped
from policy_engine.errors import PolicyEngineError, PolicyLoadError
from policy_engine.events import DecisionEvent, DetectorCall
from policy_engine.image import DEFAULT_MAX_IMAGE_BYTES, Image
from policy_engine.local_files import read_bounded
from policy_engine.log_fields import error_fields, fields
from policy_engine.model import Policy
from policy_engine.plugins import (
    AUDIT_LOG_PLUGIN,
    BLOCK_ENV,
    WRAPPED,
    DetectorRegistry,
    call_each,
    make_plugin_manager,
    register_builtin_plugins,
)
from policy_engine.policy_set import CompiledPolicySet, PolicySet, SetDecision
from policy_engine.ratelimit import RateLimiter
from policy_engine.recordings import RecordingStore, ResponseStore
from policy_engine.redaction import loggable
from policy_engine.shadow import load_candidate
from policy_engine.text import printable

logger = logging.getLogger("policy_engine.moderator")

DEFAULT_CONCURRENCY = 8
_P = ParamSpec("_P")
_R = TypeVar("_R")

ImageSource = Image | bytes | bytearray | memoryview | str | os.PathLike[str]
"""What :meth:`Moderator.check` accepts: an :class:`Image`, the image's bytes,
a path to an image file, or an ``s3://bucket/key`` URI (read in place by the
detector, never downloaded)."""

PathOrStore = str | os.PathLike[str] | ResponseStore


class _Same(Enum):
    SAME = "same"


SAME = _Same.SAME
"""``reload(shadow=SAME)`` (the default): reload the candidate from the same file."""


@dataclass(frozen=True, slots=True)
class ServingPolicy:
    """What a moderator decides with: swapped whole, never changed in place."""

    path: str
    engine: Engine
    digest: str
    shadow: CompiledPolicy | CompiledPolicySet | None = None
    shadow_path: str | None = None
    warnings: tuple[Diagnostic, ...] = ()
    """The linter's warnings about the policy."""

    @property
    def name(self) -> str:
        return self.engine.name

    @property
    def shadow_digest(self) -> str | None:
        return self.shadow.digest if self.shadow is not None else None


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What :meth:`Moderator.reload` did.

    ``ok`` is False when the new policy (or candidate) did not load: the old
    one keeps serving, and ``diagnostics`` (``file:line:col`` errors) and
    ``error`` say why. On success, ``diagnostics`` holds the linter's
    warnings, if any. ``digest`` is what serves now.
    """

    ok: bool
    path: str
    name: str
    digest: str
    previous_digest: str
    shadow_digest: str | None = None
    diagnostics: tuple[Diagnostic, ...] = ()
    error: str | None = None

    @property
    def changed(self) -> bool:
        """Whether a different policy serves now (same text reloaded: False)."""
        return self.digest != self.previous_digest

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "changed": self.changed,
            "path": self.path,
            "policy": {"name": self.name, "digest": self.digest},
            "previous_digest": self.previous_digest,
            "shadow_digest": self.shadow_digest,
            "diagnostics": [d.to_dict() for d in self.diagnostics],
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class _Options:
    """Everything a new engine is built with, the same on every reload."""

    registry: DetectorRegistry
    detectors: Mapping[str, Mapping[str, Any]] | None
    cache: ResponseStore | None
    record: ResponseStore | None
    rate_limit: RateLimiter | None
    concurrency: int
    detector_timeout: float | None


def _store(value: PathOrStore | None) -> ResponseStore | None:
    """A folder path becomes a :class:`RecordingStore`; a store is used as it is."""
    if value is None:
        return None
    if isinstance(value, str | os.PathLike):
        return RecordingStore(value)
    return value


def _load_engine(path: str, options: _Options) -> tuple[Engine, tuple[Diagnostic, ...]]:
    """The engine for the policy at ``path`` and the linter's warnings; raises
    :class:`PolicyLoadError` or another :class:`PolicyEngineError`."""
    from policy_engine.policy_set import PolicySetLoadResult, check_policy_or_set_file

    loaded: Policy | PolicySet
    result = check_policy_or_set_file(path, registry=options.registry)  # the file read once
    if isinstance(result, PolicySetLoadResult):  # the whole compiled set is one snapshot
        if result.policy_set is None or result.errors:
            raise PolicyLoadError(result.errors or result.diagnostics)
        loaded, warnings = result.policy_set, result.warnings
    else:
        if result.policy is None or result.errors:
            raise PolicyLoadError(result.errors or result.diagnostics)
        loaded, warnings = result.policy, result.warnings
    for diagnostic in warnings:  # a warning may mean a rule does not do what was meant
        logger.warning(
            "%s",
            diagnostic.render(),
            extra=fields(
                "policy-warning",
                code=diagnostic.code,
                file=diagnostic.file,
                line=diagnostic.line,
                column=diagnostic.column,
            ),
        )
    engine = Engine(
        loaded,
        options.registry,
        detectors=options.detectors,
        cache=options.cache,
        record=options.record,
        rate_limit=options.rate_limit,
        concurrency=options.concurrency,
        detector_timeout=options.detector_timeout,
    )
    # an upload flow fails at start-up (or a reload is refused), not on every upload
    engine.preflight()
    return engine, warnings


def _diagnostics_of(exc: Exception, path: str) -> tuple[Diagnostic, ...]:
    """What a failed reload reports: a policy's own diagnostics, else one
    diagnostic with the error's stable code (``load-failed`` for a bug)."""
    if isinstance(exc, PolicyLoadError):
        return exc.diagnostics
    if isinstance(exc, PolicyEngineError):
        return (error(exc.code, printable(str(exc)), path, Position()),)
    return (error("load-failed", printable(str(exc)), path, Position()),)


def _parameters_of(
    init: Callable[Concatenate[Any, _P], None],
) -> Callable[[Callable[..., _R]], Callable[Concatenate[Any, _P], _R]]:
    """Give a constructor's alternative name ``init``'s parameters, for type
    checkers and ``help()``, without listing them a second time."""

    def with_parameters(function: Callable[..., _R]) -> Callable[Concatenate[Any, _P], _R]:
        returns = inspect.signature(function).return_annotation
        signature = inspect.signature(init).replace(return_annotation=returns)
        function.__signature__ = signature  # type: ignore[attr-defined]
        return function

    return with_parameters


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Moderator:
    """Decides uploads under a policy file, with hot reload and decision hooks.

    Build it once (it loads, verifies and compiles the policy and sets up the
    detectors' clients) and share it across threads and requests. It checks
    then that every detector can be called at all (:meth:`Engine.preflight
    <policy_engine.engine.Engine.preflight>`: credentials and a region found,
    nothing sent) and raises
    :class:`~policy_engine.errors.DetectorUnavailableError` if one cannot, so
    that a service without credentials fails at start-up rather than sending
    every upload to ``on_error``; :meth:`reload` refuses such a policy.

    - ``registry``: the detectors (default: the installed plugins').
    - ``plugin_manager``: whose ``policy_engine_decision_made`` hooks are
      called (default: a manager with the installed plugins).
    - ``shadow``: a candidate policy file, decided on the same labels as the
      active policy (no extra detector call); disagreements are logged.
    - ``audit_log``: a path or stream for the JSON Lines audit log, or an
      :class:`~policy_engine.audit.AuditLog`.
    - ``plugins``: more objects with hook implementations to register.
    - ``detectors``: overrides the policy's ``detectors:`` (e.g.
      ``{"stub": {"recordings": "/abs/recordings"}}`` to replay, as
      ``check --replay`` does).
    - ``concurrency``: at most this many :meth:`acheck` calls run at once
      (their threads), and detectors size their connection pools for it.
    - ``rate``: detector calls per second, across all threads.
    - ``cache`` / ``record``: a recordings folder to answer from / to store to.
    - ``detector_timeout``: seconds one detector call may take before it fails
      with code ``timeout`` (the policy's ``on_error``); None: no limit.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        registry: DetectorRegistry | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
        shadow: str | os.PathLike[str] | None = None,
        audit_log: str | os.PathLike[str] | IO[str] | IO[bytes] | AuditLog | None = None,
        plugins: Iterable[object] = (),
        detectors: Mapping[str, Mapping[str, Any]] | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate: float | None = None,
        cache: PathOrStore | None = None,
        record: PathOrStore | None = None,
        detector_timeout: float | None = DEFAULT_DETECTOR_TIMEOUT,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        manager = plugin_manager if plugin_manager is not None else make_plugin_manager()
        if registry is None:
            registry = DetectorRegistry.from_plugin_manager(manager)
        self.plugin_manager = manager
        self.registry = registry
        self._options = _Options(
            registry=registry,
            detectors=detectors,
            cache=_store(cache),
            record=_store(record),
            rate_limit=RateLimiter(rate) if rate else None,
            concurrency=concurrency,
            detector_timeout=detector_timeout,
        )
        source = os.fspath(path)
        engine, warnings = _load_engine(source, self._options)
        candidate = shadow_path = None
        if shadow is not None:
            shadow_path = os.fspath(shadow)
            candidate = load_candidate(  # ShadowPolicyError: say so now
                shadow_path, registry, serving_set=engine.policy_set is not None
            )
        self._serving = ServingPolicy(
            source, engine, engine.digest, candidate, shadow_path, warnings
        )
        self._reload_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._closed = False
        self._owned_logs: list[AuditLog] = []
        if audit_log is not None and manager.is_blocked(AUDIT_LOG_PLUGIN):
            # configuration turned it off: say so, rather than open a log never written
            logger.warning(
                "audit_log=%r is ignored: the built-in plugin %r is blocked (%s)",
                audit_log,
                AUDIT_LOG_PLUGIN,
                BLOCK_ENV,
                extra=fields("audit-log-ignored", plugin=AUDIT_LOG_PLUGIN),
            )
            audit_log = None
        if audit_log is not None and not isinstance(audit_log, AuditLog):
            audit_log = AuditLog(audit_log)
            self._owned_logs.append(audit_log)
        self.audit_log = audit_log
        register_builtin_plugins(manager, audit_log=audit_log)
        for plugin in plugins:
            manager.register(plugin)
        manager.check_pending()

    @classmethod
    @_parameters_of(__init__)
    def from_policy_file(cls, *args: Any, **kwargs: Any) -> Moderator:
        """``Moderator(path, ...)``, by a name that says what it loads: the policy
        at ``path``, loaded, verified and compiled (see the class for the options).

        Raises :class:`~policy_engine.PolicyLoadError` (with ``diagnostics``)
        for a policy that does not load,
        :class:`~policy_engine.errors.ShadowPolicyError` for a candidate that
        does not, :class:`~policy_engine.errors.DetectorUnavailableError` (with
        a stable ``code``) for a detector that cannot be called at all (no
        credentials, no region), and another
        :class:`~policy_engine.PolicyEngineError` for detectors that do not fit
        the installed plugins."""
        return cls(*args, **kwargs)

    # -- what serves -----------------------------------------------------

    @property
    def serving(self) -> ServingPolicy:
        """The bundle serving now; read it once to see one consistent policy."""
        return self._serving

    @property
    def policy_name(self) -> str:
        return self._serving.name

    @property
    def policy_digest(self) -> str:
        return self._serving.digest

    @property
    def policy_path(self) -> str:
        return self._serving.path

    # -- checking --------------------------------------------------------

    def check(
        self,
        image: ImageSource,
        *,
        context: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> Decision:
        """Decide one image: an :class:`Image`, its bytes, a file path or an
        ``s3://`` URI. ``context`` (e.g. ``{"upload_id": ...}``) goes to the
        hooks and the audit log, never to the detectors. ``name`` is what the
        image is known by in events (default: the path or URI; ``<bytes>``).

        Raises ``OSError`` for a file that cannot be read and ``ValueError``
        for an unsupported input. A failing detector is part of the decision
        (the policy's ``on_error``), and a failing hook is logged."""
        decided = self.check_in(image, context=context, name=name)
        return decided.decision if isinstance(decided, SetDecision) else decided

    def check_in(
        self,
        image: ImageSource,
        *,
        context: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> Decision | SetDecision:
        """:meth:`check`, giving a set's whole
        :class:`~policy_engine.policy_set.SetDecision` (the routed policy's
        decision, the context, the route, the set) for a record that names them;
        a single policy's :class:`Decision` as :meth:`check` does."""
        serving = self._serving  # one read: this check uses one policy throughout
        return self._decide(
            serving, to_image(image, name, max_bytes=serving.engine.max_image_bytes), context
        )

    async def acheck(
        self,
        image: ImageSource,
        *,
        context: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> Decision:
        """:meth:`check` for asyncio: runs in this moderator's thread pool (at most
        ``concurrency`` at once), so the event loop never blocks on a detector."""
        decided = await self.acheck_in(image, context=context, name=name)
        return decided.decision if isinstance(decided, SetDecision) else decided

    async def acheck_in(
        self,
        image: ImageSource,
        *,
        context: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> Decision | SetDecision:
        """:meth:`check_in` for asyncio, in the same thread pool as :meth:`acheck`."""
        loop = asyncio.get_running_loop()
        call = functools.partial(self.check_in, image, context=context, name=name)
        return await loop.run_in_executor(self._pool(), contextvars.copy_context().run, call)

    def _pool(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._closed:
                raise RuntimeError("this Moderator is closed")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self._options.concurrency,
                    thread_name_prefix="policy-engine-moderator",
                )
            return self._executor

    def _decide(
        self, serving: ServingPolicy, image: Image, context: Mapping[str, Any] | None
    ) -> Decision | SetDecision:
        engine = serving.engine
        given = dict(context or {})
        if engine.policy_set is not None:  # a bad context costs no call and is never an allow
            engine.policy_set.resolve_context(given)
        # the cascade skips a detector only where neither policy's decision needs it
        found = engine.detection(image, context=given, shadow=serving.shadow)
        results, failures = list(found.results), list(found.failures)
        decided = with_skipped(engine.decide_in(results, failures, given), found.skipped)
        shadow: Decision | None = None
        if serving.shadow is not None:
            try:
                candidate = serving.shadow
                if isinstance(candidate, CompiledPolicySet):
                    shadow = candidate.decide_results(results, failures, given).decision
                else:
                    shadow = candidate.evaluate_results(results, failures)
                shadow = skipped_into(shadow, found.skipped)
            except Exception as exc:  # the candidate must never cost the active decision
                logger.exception(
                    "shadow policy %s failed on %s; decided without it",
                    serving.shadow_path,
                    loggable(image.name),
                    extra=fields(
                        "shadow-failed",
                        shadow_path=serving.shadow_path,
                        input=loggable(image.name),
                        **error_fields(exc),
                    ),
                )
        self.announce(image, decided, given, shadow=shadow, detector_calls=found.calls)
        return decided

    def announce(
        self,
        image: Image,
        decided: Decision | SetDecision,
        context: Mapping[str, Any] | None = None,
        *,
        shadow: Decision | None = None,
        detector_calls: tuple[DetectorCall, ...] = (),
    ) -> None:
        """Tell the decision hooks (the audit log among them) of a decision, as
        :meth:`check` does of its own: for a host that decided ``image`` some
        other way (the Lambda, for an object whose context it cannot
        determine). Each hook implementation is called on its own
        (:func:`call_each`), so that one that fails neither stops the others
        nor reaches the caller. ``detector_calls``: what each detector's turn
        cost, for metrics (none for a decision made without calling one)."""
        decision = decided.decision if isinstance(decided, SetDecision) else decided
        route: dict[str, Any] | None = None
        policy_set: dict[str, str] | None = None
        if isinstance(decided, SetDecision):
            record = decided.to_dict()
            route = {**record["route"], "context": record["context"]}
            policy_set = record["policy_set"]
        event = DecisionEvent(
            time=_now(),
            input=image.name,
            key=image.key,
            decision=decision,
            context=MappingProxyType(dict(context or {})),
            shadow=shadow,
            route=route,
            policy_set=policy_set,
            detector_calls=detector_calls,
        )
        if logger.isEnabledFor(logging.DEBUG):
            digest = policy_set["digest"] if policy_set is not None else decision.policy_digest
            _log_decision(event, digest)

        def on_error(plugin: str | None, exc: Exception) -> None:
            logger.exception(
                "policy_engine_decision_made hook of %s failed for %s",
                f"plugin {plugin!r}" if plugin is not WRAPPED else "a hook wrapper",
                loggable(event.input),
                extra=fields(
                    "hook-failed", plugin=plugin, input=loggable(event.input), **error_fields(exc)
                ),
            )

        call_each(
            self.plugin_manager.hook.policy_engine_decision_made,
            lambda plugin: {"event": event},
            on_error,
        )

    # -- hot reload ------------------------------------------------------

    def reload(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        shadow: str | os.PathLike[str] | _Same | None = SAME,
    ) -> ReloadResult:
        """Load the policy at ``path`` (default: the file serving now) and swap it in.

        The candidate is reloaded too: from its file (``shadow=SAME``, the
        default), from another file, or dropped (``shadow=None``). The swap is
        one assignment: a check in flight finishes under the old policy, and
        the next starts under the new one. If anything fails to load, nothing
        changes and the result says why. Never raises for a bad policy."""
        with self._reload_lock:
            old = self._serving
            source = os.fspath(path) if path is not None else old.path
            shadow_path = old.shadow_path if shadow is SAME else shadow
            shadow_path = os.fspath(shadow_path) if shadow_path is not None else None
            failed_path = source
            try:
                engine, warnings = _load_engine(source, self._options)
                candidate = None
                if shadow_path is not None:
                    failed_path = shadow_path
                    candidate = load_candidate(
                        shadow_path, self.registry, serving_set=engine.policy_set is not None
                    )
            except Exception as exc:  # whatever went wrong, the old policy keeps serving
                logger.error(
                    "policy reload from %s failed; still serving %s: %s",
                    failed_path,
                    old.digest,
                    exc,
                    exc_info=not isinstance(exc, PolicyEngineError),  # a bug: show where
                    extra=fields(
                        "reload-failed",
                        path=failed_path,
                        policy_digest=old.digest,
                        **error_fields(exc),
                    ),
                )
                return ReloadResult(
                    ok=False,
                    path=source,
                    name=old.name,
                    digest=old.digest,
                    previous_digest=old.digest,
                    shadow_digest=old.shadow_digest,
                    diagnostics=_diagnostics_of(exc, failed_path),
                    error=str(exc),
                )
            new = ServingPolicy(source, engine, engine.digest, candidate, shadow_path, warnings)
            self._serving = new  # the swap: one assignment
        logger.info(
            "policy %s reloaded from %s: %s -> %s",
            new.name,
            source,
            old.digest,
            new.digest,
            extra=fields(
                "policy-reloaded",
                policy=new.name,
                path=source,
                previous_digest=old.digest,
                policy_digest=new.digest,
            ),
        )
        return ReloadResult(
            ok=True,
            path=source,
            name=new.name,
            digest=new.digest,
            previous_digest=old.digest,
            shadow_digest=new.shadow_digest,
            diagnostics=warnings,
        )

    # -- lifetime --------------------------------------------------------

    def close(self) -> None:
        """Stop the :meth:`acheck` threads (after what they are doing) and close
        the audit log this moderator opened. Idempotent."""
        with self._executor_lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        for log in self._owned_logs:
            log.close()

    def __enter__(self) -> Moderator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _log_decision(event: DecisionEvent, digest: str) -> None:
    """One debug line per decision, its fields what a metric would count."""
    decision = event.decision
    logger.debug(
        "%s decided %s under %s",
        loggable(event.input),
        decision.verdict.value,
        digest,
        extra=fields(
            "decision-made",
            input=loggable(event.input),
            key=event.key,
            decision=decision.verdict.value,
            policy=decision.policy_name,
            policy_digest=digest,
            route=event.route["index"] if event.route is not None else None,
            calls=event.calls,
            cache_hits=event.cache_hits,
            detectors=[
                {
                    "detector": call.detector,
                    "seconds": round(call.seconds, 6),
                    "cached": call.cached,
                    "error_code": call.error_code,
                }
                for call in event.detector_calls
            ],
        ),
    )


def to_image(
    source: ImageSource, name: str | None = None, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> Image:
    """What :meth:`Moderator.check` makes of its input. A file is read only if
    it is a regular file of at most ``max_bytes`` bytes
    (:class:`~policy_engine.errors.InputFileError`, an ``OSError``, if not)."""
    if isinstance(source, Image):
        return source
    if isinstance(source, bytes | bytearray | memoryview):
        return Image(name or "<bytes>", bytes(source))
    if isinstance(source, str | os.PathLike):
        text = os.fspath(source)
        path = Path(text)
        if text.startswith("s3://") and not path.exists():
            if len(text) <= len("s3://") or text.endswith("/"):
                raise ValueError(f"{text!r} is not an s3://bucket/key URI of one object")
            return Image(name or text, uri=text)
        if "://" in text and not path.exists():
            raise ValueError(f"unsupported input {text!r}: give bytes, a file or an s3:// URI")
        return Image(name or text, read_bounded(text, max_bytes, what="image file"))
    raise TypeError(
        f"cannot check a {type(source).__name__}: give an Image, bytes, a path or an s3:// URI"
    )
