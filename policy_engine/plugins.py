"""Finding plugins and the detectors they register.

Third-party and bundled plugins alike come from the ``policy_engine``
entry-point group. ``POLICY_ENGINE_PLUGINS`` (a comma-separated list of
entry-point names; empty for none) restricts which load.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from policy_engine import hookspecs
from policy_engine.detectors import Detector, DetectorResult
from policy_engine.errors import (
    DuplicateDetectorError,
    PluginError,
    UnknownDetectorError,
    UnrecognisedResponseError,
)
from policy_engine.taxonomy import Taxonomy

ENTRY_POINT_GROUP = "policy_engine"
PLUGINS_ENV = "POLICY_ENGINE_PLUGINS"


def _allowed_plugins(environ: Mapping[str, str]) -> frozenset[str] | None:
    value = environ.get(PLUGINS_ENV)
    if value is None:
        return None
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def make_plugin_manager(
    *, load_entry_points: bool = True, environ: Mapping[str, str] | None = None
) -> pluggy.PluginManager:
    """A fresh plugin manager with the hook specs and, unless told not to, the
    installed plugins that ``POLICY_ENGINE_PLUGINS`` allows."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    if load_entry_points:
        allowed = _allowed_plugins(os.environ if environ is None else environ)
        for entry_point in sorted(
            metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name
        ):
            if allowed is not None and entry_point.name not in allowed:
                continue
            if manager.has_plugin(entry_point.name):
                continue
            try:
                plugin = entry_point.load()
            except Exception as exc:  # a broken plugin must say who it is
                raise PluginError(
                    f"plugin {entry_point.name!r} ({entry_point.value}) failed to load: {exc}"
                ) from exc
            try:
                manager.register(plugin, name=entry_point.name)
            except pluggy.PluginValidationError as exc:
                raise PluginError(f"plugin {entry_point.name!r} is invalid: {exc}") from exc
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:  # e.g. a misspelt hook implementation
        name = manager.get_name(exc.plugin) or repr(exc.plugin)
        hooks = ", ".join(sorted(manager.hook.__dict__))
        raise PluginError(
            f"plugin {name!r} implements a hook that does not exist ({exc}); "
            f"the hooks are: {hooks}"
        ) from exc
    return manager


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
        registry = cls()
        # Each implementation is called on its own so that a failure names its plugin.
        for impl in manager.hook.policy_engine_register_detectors.get_hookimpls():

            def register(detector: Detector, _plugin: str = impl.plugin_name) -> None:
                if not isinstance(detector, Detector):
                    raise PluginError(
                        f"plugin {_plugin!r} registered {detector!r}, which is not a Detector"
                    )
                registry._add(RegisteredDetector(detector, _plugin))

            try:
                impl.function(register=register)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} failed to register its detectors: {exc}"
                ) from exc
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
