"""What several commands share: loading the registry, a policy and recorded
responses, the ``--fail-on`` test, reporting errors. Commands import from here
(and from :mod:`policy_engine.cli.render`), never from each other."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import pluggy

from policy_engine.detectors import DetectorResult
from policy_engine.errors import InvalidDetectorResult, PluginError, UnrecognisedResponseError
from policy_engine.image import sniff_format
from policy_engine.loader import LoadResult, check_policy_file
from policy_engine.model import Policy, Verdict
from policy_engine.plugins import DetectorRegistry, make_plugin_manager
from policy_engine.recordings import RecordedResponse, RecordingStore, recorded_responses

if TYPE_CHECKING:
    from policy_engine.policy_set import PolicySet, ResolvedContext


class CommandError(Exception):
    """A failure the command reports on stderr and exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def installed_registry() -> DetectorRegistry:
    return installed_plugins()[1]


def installed_plugins() -> tuple[pluggy.PluginManager, DetectorRegistry]:
    """The plugin manager and its detectors, or a CommandError naming a broken plugin."""
    try:
        manager = make_plugin_manager()
        return manager, DetectorRegistry.from_plugin_manager(manager)
    except PluginError as exc:
        raise CommandError(f"policy-engine: {exc}") from exc


def load_policy_or_fail(
    path: str, registry: DetectorRegistry, stderr: TextIO, *, show_warnings: bool = False
) -> Policy:
    """The policy at ``path``, or a CommandError after its errors on ``stderr``;
    with ``show_warnings``, the linter's warnings about it go to ``stderr`` too."""
    return _policy_or_fail(path, check_policy_file(path, registry=registry), stderr, show_warnings)


def _policy_or_fail(path: str, result: LoadResult, stderr: TextIO, show_warnings: bool) -> Policy:
    if result.policy is None:
        for diagnostic in result.errors or result.diagnostics:
            print(diagnostic.render(), file=stderr)
        raise CommandError(f"policy-engine: {path}: the policy does not load")
    if show_warnings:
        for diagnostic in result.warnings:
            print(diagnostic.render(), file=stderr)
    return result.policy


def load_policy_or_set_or_fail(
    path: str, registry: DetectorRegistry, stderr: TextIO, *, show_warnings: bool = False
) -> Policy | PolicySet:
    """The policy or policy set (a file with ``kind: policy-set``) at ``path``, or a
    CommandError after its errors on ``stderr``; the file is read once. With
    ``show_warnings``, a policy's linter warnings go to ``stderr`` too."""
    from policy_engine.policy_set import PolicySetLoadResult, check_policy_or_set_file

    result = check_policy_or_set_file(path, registry=registry)
    if not isinstance(result, PolicySetLoadResult):
        return _policy_or_fail(path, result, stderr, show_warnings)
    if result.policy_set is None:
        for diagnostic in result.errors or result.diagnostics:
            print(diagnostic.render(), file=stderr)
        raise CommandError(f"policy-engine: {path}: the policy set does not load")
    return result.policy_set


def _context_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def add_context_argument(parser: argparse.ArgumentParser) -> None:
    """``--context KEY=VALUE``, repeatable: the context a policy set routes by."""
    parser.add_argument(
        "--context",
        action="append",
        default=[],
        type=_context_pair,
        metavar="KEY=VALUE",
        help="with a policy set: a context dimension's value (repeat for several); "
        "a dimension left out takes its default",
    )


def context_or_fail(
    target: Policy | PolicySet,
    pairs: list[tuple[str, str]],
    path: str,
    *,
    partial: bool = False,
) -> ResolvedContext | None:
    """The context ``--context`` gives, resolved against the set (None for a
    policy); a dimension without a value and default, an unknown value, or a
    context for a plain policy is a CommandError (exit 2) naming it. With
    ``partial`` (each input completes the context later), only the values
    given are checked, and None is returned."""
    from policy_engine.errors import ContextError

    if isinstance(target, Policy):
        if pairs:
            raise CommandError(
                f"policy-engine: {path} is a policy, not a policy set: --context does not apply"
            )
        return None
    given: dict[str, str] = {}
    for key, value in pairs:
        if key in given and given[key] != value:
            raise CommandError(f"policy-engine: --context {key} is given twice")
        given[key] = value
    try:
        if partial:  # any listed value stands in for the ones the inputs will give
            stand_ins = {d.name: d.values[0] for d in target.dimensions}
            target.resolve_context({**stand_ins, **given})
            return None
        return target.resolve_context(given)
    except ContextError as exc:
        raise CommandError(f"policy-engine: {path}: {exc}") from exc


def reaches(decision: Verdict, fail_on: str | None) -> bool:
    """Whether ``decision`` is the ``--fail-on`` verdict or more severe."""
    return fail_on is not None and decision.severity >= Verdict(fail_on).severity


# -- recorded responses -----------------------------------------------------------------


def add_labels_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """``--labels FILE...`` and ``--replay DIR``, as evaluate and explain take them."""
    parser.add_argument(
        "--labels",
        required=required,
        action="extend",
        nargs="+",
        default=[],
        metavar="FILE",
        help="raw detector responses (each file a JSON object, a list of them, or what "
        "'check --record' writes); several files, or --labels again, pool their labels. "
        "With --replay, a FILE may be an image: its recording is used",
    )
    parser.add_argument(
        "--replay",
        metavar="DIR",
        help="a recordings folder (what 'check --record DIR' writes): an image given to "
        "--labels is decided from DIR/<sha256-of-image>.json, as 'check --replay DIR' would",
    )


def labels_results(args: argparse.Namespace, registry: DetectorRegistry) -> list[DetectorResult]:
    """Every detector result of ``--labels`` (see :func:`add_labels_arguments`)."""
    if args.replay is not None and not os.path.isdir(args.replay):
        raise CommandError(f"policy-engine: --replay {args.replay}: no such folder")
    return [r for path in args.labels for r in read_responses(path, registry, replay=args.replay)]


def binary_kind(data: bytes) -> str | None:
    """What ``data`` is when it cannot be a JSON response: an image format named
    by its magic bytes, ``"binary"`` for other bytes that are not text, or None
    for text (which the JSON reader then judges)."""
    found = sniff_format(data)
    if found is not None:
        return "PDF document" if found == "PDF" else f"{found} image"
    if b"\0" in data[:4096]:
        return "binary"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "binary"
    return None


def read_responses(
    path: str, registry: DetectorRegistry, *, replay: str | None = None
) -> list[DetectorResult]:
    """The detector results in a labels file (one raw response, a list of them,
    or what ``--record`` writes), or a CommandError naming file and field.

    Given an image instead, its recording in ``replay`` (``<sha256>.json``, as
    ``check --replay`` finds it); without ``replay``, a CommandError that says
    how to explain an image."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"policy-engine: {path}: cannot read: {exc.strerror or exc}") from exc
    kind = binary_kind(data)
    if kind is not None:
        return _parse(_replayed(path, data, kind, replay), registry)
    try:
        parsed = json.loads(data.decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"policy-engine: {path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
        ) from exc
    try:
        recorded = recorded_responses(parsed, path)
    except InvalidDetectorResult as exc:
        raise CommandError(f"policy-engine: {exc}") from exc
    single = isinstance(parsed, dict) and len(recorded) == 1
    return _parse(
        [(path if single else f"{path}: [{i}]", r) for i, r in enumerate(recorded)], registry
    )


def _replayed(
    path: str, data: bytes, kind: str, replay: str | None
) -> list[tuple[str, RecordedResponse]]:
    """The recorded responses of the image ``data``, each with where it came from."""
    key = hashlib.sha256(data).hexdigest()
    if replay is None:
        if not kind.endswith("image"):
            raise CommandError(
                f"policy-engine: {path}: {kind} data, not a detector response "
                "(a JSON object, or a list of them)"
            )
        raise CommandError(
            f"policy-engine: {path}: a {kind}, not a detector response. To decide from what "
            "a detector answered for it, add --replay DIR, the recordings folder of "
            f"'check --record DIR' (it looks for DIR/{key}.json); to run the policy's "
            f"detectors on it, use 'policy-engine check --policy FILE {path}'"
        )
    store = RecordingStore(replay)
    try:
        found = store.responses(key)
    except InvalidDetectorResult as exc:
        raise CommandError(f"policy-engine: {exc}") from exc
    if found is None:
        raise CommandError(
            f"policy-engine: {path}: no recording for this {kind} in {replay} "
            f"(looked for {store.path_for(key)}); record one with "
            f"'policy-engine check --policy FILE --record {replay} {path}'"
        )
    where = str(store.path_for(key))
    single = len(found) == 1
    return [(where if single else f"{where}: [{i}]", entry) for i, entry in enumerate(found)]


def _parse(
    recorded: list[tuple[str, RecordedResponse]], registry: DetectorRegistry
) -> list[DetectorResult]:
    results = []
    for where, entry in recorded:
        try:
            results.append(registry.parse_response(entry.response))
        except InvalidDetectorResult as exc:
            raise CommandError(f"policy-engine: {where}: invalid response: {exc}") from exc
        except UnrecognisedResponseError as exc:
            raise CommandError(f"policy-engine: {where}: {exc}") from exc
    return results
