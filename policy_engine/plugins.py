"""Finding plugins, calling their hooks, and the detectors they register.

Third-party and bundled plugins alike come from the ``policy_engine``
entry-point group. ``POLICY_ENGINE_PLUGINS`` (a comma-separated list of
entry-point names; empty for none) restricts which load, and
``POLICY_ENGINE_BLOCK_PLUGINS`` (names too) blocks plugins by name, built-in
ones included, as pytest's ``-p no:NAME`` does through pluggy's
``set_blocked``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy

from policy_engine import hookspecs
from policy_engine.detectors import Detector, DetectorResult
from policy_engine.entry_points import entry_points as installed_entry_points
from policy_engine.errors import (
    DuplicateDetectorError,
    PluginError,
    UnknownDetectorError,
    UnknownPluginError,
    UnrecognisedResponseError,
)
from policy_engine.taxonomy import Taxonomy

ENTRY_POINT_GROUP = "policy_engine"
PLUGINS_ENV = "POLICY_ENGINE_PLUGINS"
BLOCK_ENV = "POLICY_ENGINE_BLOCK_PLUGINS"

AUDIT_LOG_PLUGIN = "policy-engine-audit-log"
"""The built-in JSON Lines audit log (:class:`~policy_engine.audit.AuditLog`):
registered by a :class:`~policy_engine.Moderator` given ``audit_log=``."""
SHADOW_LOG_PLUGIN = "policy-engine-shadow-log"
"""The built-in shadow disagreement log
(:class:`~policy_engine.shadow.ShadowDisagreementLog`): registered by every
:class:`~policy_engine.Moderator`."""
BUILTIN_PLUGINS = (AUDIT_LOG_PLUGIN, SHADOW_LOG_PLUGIN)
"""The plugins the core ships. Each is registered by this name through the same
hooks as an installed plugin, and can be blocked by it."""

WRAPPED = None
"""What :func:`call_each` passes for the plugin when a hook wrapper made it
call the hook through pluggy's own loop, once for all implementations."""


def _names(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def make_plugin_manager(
    *,
    load_entry_points: bool = True,
    environ: Mapping[str, str] | None = None,
    blocked: Iterable[str] = (),
) -> pluggy.PluginManager:
    """A fresh plugin manager with the hook specs and, unless told not to, the
    installed plugins that ``POLICY_ENGINE_PLUGINS`` allows. Plugins named in
    ``blocked`` or in ``POLICY_ENGINE_BLOCK_PLUGINS`` are blocked
    (``set_blocked``): neither loaded from entry points nor registered later,
    built-in ones included (:data:`BUILTIN_PLUGINS`)."""
    environ = os.environ if environ is None else environ
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    for name in sorted({*blocked, *(_names(environ.get(BLOCK_ENV)) or ())}):
        manager.set_blocked(name)
    if load_entry_points:
        allowed = _names(environ.get(PLUGINS_ENV))
        entry_points = sorted(installed_entry_points(ENTRY_POINT_GROUP), key=lambda ep: ep.name)
        installed = [ep.name for ep in entry_points]
        missing = sorted((allowed or set()) - {*installed, *BUILTIN_PLUGINS})
        if missing:
            raise UnknownPluginError(PLUGINS_ENV, missing, installed)
        for entry_point in entry_points:
            if allowed is not None and entry_point.name not in allowed:
                continue
            if manager.has_plugin(entry_point.name) or manager.is_blocked(entry_point.name):
                continue
            try:
                plugin = entry_point.load()
            except Exception as exc:  # a broken plugin must say who it is
                raise PluginError(
                    f"plugin {entry_point.name!r} ({entry_point.value}) failed to load: {exc}"
                ) from exc
            register_plugin(manager, plugin, entry_point.name)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:  # e.g. a misspelt hook implementation
        name = manager.get_name(exc.plugin) or repr(exc.plugin)
        hooks = ", ".join(sorted(manager.hook.__dict__))
        raise PluginError(
            f"plugin {name!r} implements a hook that does not exist ({exc}); the hooks are: {hooks}"
        ) from exc
    return manager


def register_plugin(manager: pluggy.PluginManager, plugin: object, name: str) -> bool:
    """Register ``plugin`` as ``name``, as every plugin is, installed or built in.
    False if ``name`` is blocked (nothing registered); :class:`PluginError` if
    the plugin's hook implementations do not fit the hook specs."""
    try:
        return manager.register(plugin, name=name) is not None
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name!r} is invalid: {exc}") from exc


def register_builtin_plugins(
    manager: pluggy.PluginManager, *, audit_log: object | None = None
) -> tuple[str, ...]:
    """Register the built-in plugins (:data:`BUILTIN_PLUGINS`) on ``manager``: the
    audit log ``audit_log`` when there is one, and a shadow disagreement log
    unless one is registered already. A blocked one is skipped. Returns the
    names registered."""
    from policy_engine.shadow import ShadowDisagreementLog  # shadow imports this module

    registered = []
    for name in BUILTIN_PLUGINS:
        plugin: object | None
        if name == AUDIT_LOG_PLUGIN:
            plugin = audit_log
        else:
            plugin = None if manager.has_plugin(name) else ShadowDisagreementLog()
        if plugin is not None and register_plugin(manager, plugin, name):
            registered.append(name)
    return tuple(registered)


def call_each(
    hook: pluggy.HookCaller,
    arguments: Callable[[str | None], Mapping[str, Any]],
    on_error: Callable[[str | None, Exception], None],
) -> None:
    """Call every implementation of ``hook`` on its own, in pluggy's order (last
    registered first), with ``arguments(plugin_name)``. An exception goes to
    ``on_error(plugin_name, exc)``, which logs it (the next implementation still
    runs) or raises (the call stops there).

    pluggy's own loop stops the whole call at the first exception
    (``pluggy/_callers.py``): a host that must isolate each plugin calls them
    itself. A hook wrapper (``wrapper=True`` or ``hookwrapper=True``) only runs
    in pluggy's loop: with one, the hook is called once that way, with
    ``arguments(WRAPPED)`` and ``on_error(WRAPPED, exc)``."""
    impls = hook.get_hookimpls()
    if any(impl.hookwrapper or impl.wrapper for impl in impls):
        try:
            hook(**arguments(WRAPPED))
        except Exception as exc:
            on_error(WRAPPED, exc)
        return
    for impl in reversed(impls):
        try:
            impl.function(**arguments(impl.plugin_name))
        except Exception as exc:
            on_error(impl.plugin_name, exc)


def registration_failed(what: str) -> Callable[[str | None, Exception], None]:
    """The ``on_error`` of :func:`call_each` for a registration hook: a
    :class:`PluginError` as raised, anything else one naming the plugin and
    ``what`` it failed to register."""

    def on_error(plugin: str | None, exc: Exception) -> None:
        if isinstance(exc, PluginError):
            raise exc
        raise PluginError(f"plugin {plugin!r} failed to register {what}: {exc}") from exc

    return on_error


@dataclass(frozen=True, slots=True)
class RegisteredDetector:
    detector: Detector
    plugin: str


class DetectorRegistry:
    """The detectors the plugins of one manager registered, by name.

    Built once from the manager; the order plugins were registered in never
    matters (look-ups are by name, recognition must be unambiguous).
    """

    def __init__(self, detectors: Iterable[RegisteredDetector] = ()) -> None:
        self._by_name: dict[str, RegisteredDetector] = {}
        for registered in detectors:
            self._add(registered)

    def _add(self, registered: RegisteredDetector) -> None:
        name = registered.detector.name
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {registered.plugin!r} registered a detector without a name")
        existing = self._by_name.get(name)
        if existing is not None:
            first, second = sorted((existing.plugin, registered.plugin))
            raise DuplicateDetectorError(name, first, second)
        self._by_name[name] = registered

    @classmethod
    def from_plugin_manager(cls, manager: pluggy.PluginManager) -> DetectorRegistry:
        """The detectors every plugin of ``manager`` registers. Each plugin's
        ``policy_engine_register_detectors`` is called on its own, so that a
        failure names its plugin (:class:`PluginError`)."""
        registry = cls()

        def arguments(plugin: str | None) -> dict[str, Any]:
            name = plugin if plugin is not WRAPPED else "a hook wrapper"

            def register(detector: Detector) -> None:
                if not isinstance(detector, Detector):
                    raise PluginError(
                        f"plugin {name!r} registered {detector!r}, which is not a Detector"
                    )
                registry._add(RegisteredDetector(detector, name))

            return {"register": register}

        call_each(
            manager.hook.policy_engine_register_detectors,
            arguments,
            registration_failed("its detectors"),
        )
        return registry

    @classmethod
    def installed(cls, *, environ: Mapping[str, str] | None = None) -> DetectorRegistry:
        """The detectors of every installed (and allowed) plugin."""
        return cls.from_plugin_manager(make_plugin_manager(environ=environ))

    def names(self) -> tuple[str, ...]:
        """The registered detectors' names, sorted."""
        return tuple(sorted(self._by_name))

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> Detector:
        """The detector registered as ``name``; raises
        :class:`~policy_engine.errors.UnknownDetectorError` naming the installed
        ones if none is."""
        try:
            return self._by_name[name].detector
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UnknownDetectorError(
                f"no installed plugin provides detector {name!r} (installed: {known})"
            ) from None

    def plugin_of(self, name: str) -> str:
        return self._by_name[name].plugin

    def detectors(self) -> tuple[Detector, ...]:
        return tuple(self._by_name[name].detector for name in self.names())

    def taxonomy_for(self, source: str, model_version: str | None) -> Taxonomy | None:
        """The taxonomy of labels from detector ``source`` at ``model_version``, if any."""
        registered = self._by_name.get(source)
        return registered.detector.taxonomy(model_version) if registered is not None else None

    def parse_response(self, raw: Mapping[str, Any]) -> DetectorResult:
        """Parse a raw response with the one detector that recognises it."""
        if not isinstance(raw, Mapping):
            raise UnrecognisedResponseError(
                f"a detector response must be a JSON object, got {type(raw).__name__}"
            )
        matches = [d for d in self.detectors() if d.recognizes(raw)]
        if not matches:
            keys = ", ".join(sorted(map(str, raw))) or "no keys"
            raise UnrecognisedResponseError(
                f"no installed detector recognises a response with {keys} "
                f"(installed: {', '.join(self.names()) or 'none'})"
            )
        if len(matches) > 1:
            names = ", ".join(d.name for d in matches)
            raise UnrecognisedResponseError(f"several detectors recognise this response: {names}")
        return matches[0].parse(raw)
