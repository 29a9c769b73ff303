"""``policy-engine plugins``: what is installed, as JSON."""

from __future__ import annotations

import argparse
import json
from importlib import metadata
from typing import Any, TextIO

from policy_engine.cli import exit_codes
from policy_engine.cli.common import installed_plugins
from policy_engine.plugins import ENTRY_POINT_GROUP


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "List the plugins that load (POLICY_ENGINE_PLUGINS restricts them to those named; "
        "POLICY_ENGINE_BLOCK_PLUGINS blocks those named, built-in ones included)."
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    manager, registry = installed_plugins()
    entry_points = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    listing: list[dict[str, Any]] = []
    for name, plugin in sorted(manager.list_name_plugin(), key=lambda item: str(item[0])):
        entry_point = entry_points.get(str(name))
        distribution = entry_point.dist if entry_point is not None else None
        listing.append(
            {
                "name": name,
                "module": getattr(plugin, "__name__", repr(plugin)),
                "distribution": distribution.name if distribution is not None else None,
                "version": distribution.version if distribution is not None else None,
                "hooks": sorted(caller.name for caller in manager.get_hookcallers(plugin) or ()),
                "detectors": [d for d in registry.names() if registry.plugin_of(d) == name],
            }
        )
    json.dump(listing, stdout, indent=2)
    stdout.write("\n")
    return exit_codes.OK
