"""The policy file's JSON Schema with every installed detector's settings in it.

The packaged core schema (``policy.schema.json``) cannot know which detectors
are installed, so it takes any object as a detector's settings. For editors,
:func:`policy_schema_with_detectors` fills ``detectors:`` in from a registry,
as Cloud Custodian's ``schema.generate`` assembles resources' schemas: each
detector's ``settings_schema`` becomes an embedded schema resource under
``$defs``, and a detector name no plugin provides is refused, as ``validate``
refuses it. The loader keeps checking with the core schema and each
detector's own validator (:mod:`policy_engine.schema`); this one is for help.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from policy_engine.json_types import plain
from policy_engine.plugins import DetectorRegistry
from policy_engine.schema import policy_schema

SCHEMA_ID = "urn:policy-engine:schema:policy:1:installed-detectors"
"""The assembled schema's ``$id``: not the core's, since it says more."""
SETTINGS_DEF = "detector:"
"""The ``$defs`` entry of a detector's settings schema is this and its name (an
entry of ``$defs`` itself, so that schema tools find it as an embedded resource)."""


def settings_id(detector: str) -> str:
    """The ``$id`` a detector's settings schema gets when it has none, so that
    its own ``$ref``s (``#/...``) resolve inside it, not in the policy schema."""
    return f"urn:policy-engine:detector-settings:{quote(detector, safe='')}"


def _pointer(name: str) -> str:
    """``name`` as one step of a JSON Pointer inside a URI fragment (RFC 6901)."""
    return quote(name.replace("~", "~0").replace("/", "~1"), safe="~:")


def _embedded(detector: str, plugin: str, settings_schema: Any) -> dict[str, Any]:
    schema: dict[str, Any] = plain(settings_schema)
    schema.setdefault("$id", settings_id(detector))
    schema.setdefault("description", f"Settings of the {detector} detector (plugin {plugin}).")
    return schema


def policy_schema_with_detectors(registry: DetectorRegistry) -> dict[str, Any]:
    """The core policy schema, with ``detectors:`` naming exactly the detectors
    of ``registry``, each checked against its own settings schema."""
    schema: dict[str, Any] = plain(policy_schema())
    schema["$id"] = SCHEMA_ID
    names = registry.names()
    for name in names:
        detector = registry.get(name)
        schema["$defs"][SETTINGS_DEF + name] = _embedded(
            name, registry.plugin_of(name), detector.settings_schema
        )
    detectors = schema["properties"]["detectors"]
    detectors["description"] = (
        f"{detectors['description']} Installed when this schema was made: "
        f"{', '.join(names) or 'none'}."
    )
    detectors["properties"] = {
        name: {"$ref": f"#/$defs/{_pointer(SETTINGS_DEF + name)}"} for name in names
    }
    detectors["additionalProperties"] = False
    return schema
