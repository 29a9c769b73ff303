"""Every hook a plugin may implement. Plugins import :data:`hookimpl` from
``policy_engine`` and register through the ``policy_engine`` entry-point group:

.. code-block:: toml

    [project.entry-points.policy_engine]
    mydetector = "my_package.plugin"

A new hook needs a ``test_hook_<name>`` test in ``tests/test_plugins.py`` and
an entry with its exact signature in the README's "Hooks" section (meta-tests
there check both). ``Detector`` methods are not hooks: see
:mod:`policy_engine.detectors`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # annotations only: loading a plugin must not import the decision types
    import argparse

    from policy_engine.detectors import Detector
    from policy_engine.events import DecisionEvent
    from policy_engine.image import Image

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


@hookspec(firstresult=True)
def policy_engine_expand_input(spec: str) -> Iterable[Image] | None:
    """Turn an input that is not a local path into images, or return None.

    Called by ``check`` for each input with a URI scheme (``s3://bucket/prefix/``).
    The first plugin that returns an iterable wins; it may yield lazily (a
    listing paginator) and may yield images known by ``uri`` only, which a
    detector reads in place. Raise an exception with a clear message when the
    input cannot be listed; the run records it and goes on.
    """


@hookspec
def policy_engine_decision_made(event: DecisionEvent) -> None:
    """Told of every decision the embedding API (:class:`policy_engine.Moderator`) makes.

    Called after the decision, in the thread that made it; keep it quick (queue
    slow work). An exception here is logged and never changes the decision nor
    reaches the caller. Return nothing.
    """


@hookspec
def policy_engine_register_commands(
    register: Callable[[str, str, Callable[[argparse.ArgumentParser], None]], None],
) -> None:
    """Add commands to ``policy-engine`` by calling ``register(name, summary,
    configure)`` once each: ``summary`` is the command's line in ``--help``;
    ``configure(parser)`` declares its arguments and sets ``run`` as the
    ``run`` default, as a core command module does (``run(args, stdout,
    stderr)`` returns an exit code, and may raise
    :class:`~policy_engine.cli.common.CommandError`).

    Called only when the command line names a command the core does not have,
    and when the top-level ``--help`` is printed, so that core commands start
    as fast as without plugins. A name that is a core command or that another
    plugin registered already is an error naming both. Return nothing.
    """
