"""The moderation label hierarchies shipped with this plugin, loaded on first use.

The JSON files beside this module are copies of the project's shared
Rekognition taxonomies: model 6 and older (two levels) and model 7 (three
levels, with an alias for the level-2 label seen on the wire in two spellings).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from policy_engine import Taxonomy

V6_ID = "rekognition-moderation/v6"
V7_ID = "rekognition-moderation/v7"

_V6_FILE = "moderation-taxonomy-v6.json"
_V7_FILE = "moderation-taxonomy-v7.json"
_MIGRATION_FILE = "v6-to-v7.json"

# The first model version whose labels follow the v7 hierarchy.
_FIRST_V7_MAJOR = 7
# At most 9 digits: a longer "major version" is no version at all (and int() of
# thousands of digits raises), so it is unknown, as an unparseable one is.
_MAJOR_VERSION = re.compile(r"\s*(\d{1,9})(?!\d)")


def _load(taxonomy_id: str, file_name: str) -> Taxonomy:
    # as_file gives a real path even when the package is imported from a zip.
    with resources.as_file(resources.files(__name__) / file_name) as path:
        return Taxonomy.from_json_file(taxonomy_id, path)


@cache
def moderation_v6() -> Taxonomy:
    """Labels of moderation models before 7 (3.0 to 6.1)."""
    return _load(V6_ID, _V6_FILE)


@cache
def moderation_v7() -> Taxonomy:
    """Labels of moderation model 7.x; its ``aliases`` map the other spelling of
    "Drugs & Tobacco Paraphernalia & Use" to the canonical one."""
    return _load(V7_ID, _V7_FILE)


@cache
def v6_to_v7_names() -> Mapping[str, Mapping[str, tuple[str, ...]]]:
    """AWS's mapping of v6 names to v7 names, by level (``level1``, ``level2``),
    for tools that migrate policies written against model 6."""
    text = (resources.files(__name__) / _MIGRATION_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return MappingProxyType(
        {
            level: MappingProxyType({old: tuple(new) for old, new in rows.items()})
            for level, rows in data.items()
            if level.startswith("level")
        }
    )


def model_major_version(model_version: str | None) -> int | None:
    """The leading integer of a model version ("6.1" -> 6), or None if there is
    none or it is not a usable number (over 9 digits)."""
    if model_version is None:
        return None
    match = _MAJOR_VERSION.match(model_version)
    return int(match.group(1)) if match else None


def moderation_taxonomy(model_version: str | None) -> Taxonomy:
    """The taxonomy for labels of moderation model ``model_version``.

    - ``7.x``: v7.
    - An older version that parses (``3.0``, ``6.1``): v6.
    - Absent, empty or unparseable: v7, as every account has answered with
      model 7 since mid-2024.
    - A future major (``8.0``): v7 too. A new model most likely keeps most of
      v7's hierarchy, names v7 does not know simply end the ancestor chain
      (POLICY_SPEC section 1), and a policy's ``labels:`` can add the rest;
      falling back to v6 would instead resolve names to a hierarchy AWS retired.
    """
    major = model_major_version(model_version)
    if major is not None and major < _FIRST_V7_MAJOR:
        return moderation_v6()
    return moderation_v7()


def moderation_taxonomies() -> tuple[Taxonomy, ...]:
    return (moderation_v6(), moderation_v7())
