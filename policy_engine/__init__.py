"""A plugin-based content-policy engine for image moderation.

``import policy_engine`` stays cheap: the loader, the schema validator and the
plugin machinery are imported when first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# The distribution's one version: pyproject.toml reads it (dynamic version).
__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "hookimpl": "policy_engine.hookspecs",
    "Detector": "policy_engine.detectors",
    "DetectorResult": "policy_engine.detectors",
    "DetectContext": "policy_engine.detectors",
    "SettingsFinding": "policy_engine.detectors",
    "Image": "policy_engine.image",
    "Label": "policy_engine.labels",
    "check_confidence": "policy_engine.labels",
    "Taxonomy": "policy_engine.taxonomy",
    "TaxonomyEntry": "policy_engine.taxonomy",
    "DetectorError": "policy_engine.errors",
    "InvalidDetectorResult": "policy_engine.errors",
    "NoRecordingError": "policy_engine.errors",
    "PolicyEngineError": "policy_engine.errors",
    "PolicyLoadError": "policy_engine.errors",
    "PluginError": "policy_engine.errors",
    "DetectorRegistry": "policy_engine.plugins",
    "load_policy": "policy_engine.loader",
    "parse_policy": "policy_engine.loader",
    "Policy": "policy_engine.model",
    "Verdict": "policy_engine.model",
    "compile_policy": "policy_engine.compiler",
    "CompiledPolicy": "policy_engine.compiler",
    "Decision": "policy_engine.decision",
    "DetectorFailure": "policy_engine.decision",
    "Engine": "policy_engine.engine",
    "Moderator": "policy_engine.moderator",
    "ReloadResult": "policy_engine.moderator",
    "AuditLog": "policy_engine.audit",
    "ShadowPolicyError": "policy_engine.errors",
}

__all__ = [
    "AuditLog",
    "CompiledPolicy",
    "Decision",
    "DetectContext",
    "Detector",
    "DetectorError",
    "DetectorFailure",
    "DetectorRegistry",
    "DetectorResult",
    "Engine",
    "Image",
    "InvalidDetectorResult",
    "Label",
    "Moderator",
    "NoRecordingError",
    "PluginError",
    "Policy",
    "PolicyEngineError",
    "PolicyLoadError",
    "ReloadResult",
    "SettingsFinding",
    "ShadowPolicyError",
    "Taxonomy",
    "TaxonomyEntry",
    "Verdict",
    "__version__",
    "check_confidence",
    "compile_policy",
    "hookimpl",
    "load_policy",
    "parse_policy",
]

if TYPE_CHECKING:
    from policy_engine.audit import AuditLog
    from policy_engine.compiler import CompiledPolicy, compile_policy
    from policy_engine.decision import Decision, DetectorFailure
    from policy_engine.detectors import DetectContext, Detector, DetectorResult, SettingsFinding
    from policy_engine.engine import Engine
    from policy_engine.errors import (
        DetectorError,
        InvalidDetectorResult,
        NoRecordingError,
        PluginError,
        PolicyEngineError,
        PolicyLoadError,
        ShadowPolicyError,
    )
    from policy_engine.hookspecs import hookimpl
    from policy_engine.image import Image
    from policy_engine.labels import Label, check_confidence
    from policy_engine.loader import load_policy, parse_policy
    from policy_engine.model import Policy, Verdict
    from policy_engine.moderator import Moderator, ReloadResult
    from policy_engine.plugins import DetectorRegistry
    from policy_engine.taxonomy import Taxonomy, TaxonomyEntry


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'policy_engine' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
