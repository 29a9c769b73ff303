"""Every hook a plugin may implement. Plugins import :data:`hookimpl` from
``policy_engine`` and register through the ``policy_engine`` entry-point group:

.. code-block:: toml

    [project.entry-points.policy_engine]
    mydetector = "my_package.plugin"
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from policy_engine.detectors import Detector

PROJECT_NAME = "policy_engine"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def policy_engine_register_detectors(register: Callable[[Detector], None]) -> None:
    """Register this plugin's detectors by calling ``register(detector)`` once each.

    Called once per plugin manager, when detectors are first needed. The host
    owns naming: a name that another plugin registered already is an error
    naming both plugins, never silently renamed or replaced. Return nothing.
    """
