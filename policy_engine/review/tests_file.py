"""Policy tests files: example cases and invariants for a policy, loaded.

A tests file ``<name>.tests.yaml`` sits next to the policy it tests. It names
the policy (relative to itself), lists cases (the labels of one image, given
inline, as raw detector responses inline, or as recorded response files, plus
detector errors; the decision it must get; optionally its exact reasons) and
invariants (:mod:`policy_engine.review.invariants`), among them strictness
promises (``at_least_as_strict_as: other.yaml``, the other policy loaded
relative to the tests file). Its schema is
``schemas/policy-tests.schema.json``; load errors are positioned diagnostics
like a policy's. :mod:`policy_engine.review.runner` runs what is loaded here.

A label written in compact form without a ``source`` comes from the tests
file's own ``source:``, or else from the one detector the policy names: the
core names no plugin's detector.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policy_engine.compiler import CompiledPolicy, compile_policy
from policy_engine.decision import DetectorFailure, Reason
from policy_engine.diagnostics import Diagnostic, Position, error, sort_diagnostics
from policy_engine.errors import (
    ContextError,
    InvalidDetectorResult,
    SetComparisonError,
    SourceError,
    TestsLoadError,
    UnrecognisedResponseError,
)
from policy_engine.file_selection import select_files
from policy_engine.labels import Label
from policy_engine.loader import check_policy_file
from policy_engine.model import Policy, Verdict
from policy_engine.names import name_key
from policy_engine.policy_set import (
    CONTENT_TYPES_KEY,
    CompiledPolicySet,
    PolicySet,
    ResolvedContext,
    check_policy_set_file,
    compile_policy_set,
    is_policy_set_file,
)
from policy_engine.recordings import read_recording
from policy_engine.review.invariants import Invariant
from policy_engine.review.set_strictness import ContextPromise, validate_contexts
from policy_engine.review.strictness import PolicyRef, StrictnessPromise
from policy_engine.source import JsonPath, SourceMap, parse_document, read_policy_text

if TYPE_CHECKING:
    from policy_engine.plugins import DetectorRegistry

TESTS_SUFFIX = ".tests.yaml"


def policy_tests_schema() -> Mapping[str, Any]:
    """The JSON Schema of a policy test file, as shipped in the package."""
    from policy_engine.schema import packaged_schema

    return packaged_schema("policy-tests.schema.json")


@dataclass(frozen=True, slots=True)
class ExpectedReason:
    """A ``reasons:`` entry: it matches every actual reason that agrees on each key given."""

    rule: str
    label: str | None = None
    verdict: Verdict | None = None
    source: str | None = None

    def matches(self, reason: Reason) -> bool:
        if reason.rule != self.rule:
            return False
        if self.label is not None and (
            reason.label is None or name_key(reason.label) != name_key(self.label)
        ):
            return False
        if self.verdict is not None and reason.verdict is not self.verdict:
            return False
        return self.source is None or reason.source == self.source

    def describe(self) -> str:
        parts = [f"rule {self.rule}"]
        if self.label is not None:
            parts.append(f"label {self.label}")
        if self.verdict is not None:
            parts.append(f"verdict {self.verdict.value}")
        if self.source is not None:
            parts.append(f"source {self.source}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class PolicyCase:
    """One example image of a tests file and what it must be decided."""

    name: str
    labels: tuple[Label, ...]
    failures: tuple[DetectorFailure, ...]
    expect: Verdict
    reasons: tuple[ExpectedReason, ...] | None = None
    rules: frozenset[str] | None = None
    position: Position = field(default_factory=Position, compare=False)
    context: ResolvedContext | None = None
    """With a policy set: the case's context, resolved when the file loads."""
    route: int | None = None
    """With a policy set: the index of the route that must decide."""
    metadata: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)
    """Detector metadata of the case (content types, from raw responses or ``content_types:``)."""


@dataclass(frozen=True, slots=True)
class PolicyTestFile:
    """A loaded tests file: its policy (compiled), cases and invariants."""

    file: str
    policy_file: str
    policy: Policy
    compiled: CompiledPolicy
    cases: tuple[PolicyCase, ...]
    invariants: tuple[Invariant, ...]
    all_taxonomies: bool = False
    policy_set: PolicySet | None = None
    """When the file names a set: the set (``policy``/``compiled`` are then its
    first route's, for what reads one policy) and the set compiled."""
    compiled_set: CompiledPolicySet | None = None

    @property
    def subject(self) -> str:
        """What the file tests, for reports."""
        if self.policy_set is not None:
            return f"policy set {self.policy_set.name}"
        return f"policy {self.policy.name}"


@dataclass(frozen=True, slots=True)
class TestsFileLoad:
    """A tests file (None if it has errors) and every error about it."""

    __test__ = False

    tests: PolicyTestFile | None
    diagnostics: tuple[Diagnostic, ...]


class _CaseBuilder:
    """Builds cases and invariants from validated data, collecting positioned errors.

    ``default_source`` is the source of a compact label written without one
    (None: nobody says; such a label is an error, unless ``quiet`` because the
    policy did not load and the file is reported for that already)."""

    def __init__(
        self,
        source_map: SourceMap,
        base_dir: Path,
        registry: DetectorRegistry,
        default_source: str | None,
        *,
        quiet: bool = False,
        policy_written: str = "the policy",
        policy_set: PolicySet | None = None,
    ) -> None:
        self.policy_set = policy_set
        self.metadata: dict[str, Mapping[str, Any]] = {}
        self.source_map = source_map
        self.file = source_map.file
        self.base_dir = base_dir
        self.registry = registry
        self.default_source = default_source
        self.quiet = quiet
        self.policy_written = policy_written
        self.diagnostics: list[Diagnostic] = []

    def fail(self, code: str, message: str, path: JsonPath) -> None:
        self.diagnostics.append(error(code, message, self.file, self.source_map.at(path)))

    def compact_label(self, raw: Mapping[str, Any], path: JsonPath) -> Label | None:
        source = raw.get("source", self.default_source)
        if source is None:
            if not self.quiet:
                self.fail(
                    "invalid-label",
                    "invalid label: it names no source, and neither the tests file "
                    "(a top-level source:) nor the policy (it does not name exactly one "
                    "detector) says which detector reports it; add source: to the label "
                    "or to the tests file",
                    path,
                )
            return None
        try:
            return Label(
                name=raw["name"],
                parent=raw.get("parent", ""),
                confidence=raw["confidence"],
                source=source,
                model_version=raw.get("model_version"),
            )
        except InvalidDetectorResult as exc:
            self.fail("invalid-label", f"invalid label: {exc}", path)
            return None

    def parsed(self, raw: Any, path: JsonPath, where: str) -> list[Label]:
        try:
            result = self.registry.parse_response(raw)
            if result.metadata:  # content types, for a set's content_type routes
                self.metadata[result.source] = result.metadata
            return list(result.labels)
        except InvalidDetectorResult as exc:
            self.fail("invalid-response", f"{where}invalid response: {exc}", path)
        except UnrecognisedResponseError as exc:
            self.fail("unrecognised-response", f"{where}{exc}", path)
        return []

    def recording(self, written: str, path: JsonPath) -> list[Label]:
        target = self.base_dir / written
        if not target.is_file():
            self.fail(
                "unreadable-recording", f"cannot read recording {written}: no such file", path
            )
            return []
        try:
            # every form the store holds: a response, a list, what --record writes
            responses = read_recording(target)
        except InvalidDetectorResult as exc:
            self.fail("invalid-recording", str(exc), path)
            return []
        labels: list[Label] = []
        for index, entry in enumerate(responses):
            where = f"recording {written}" + (f"[{index}]" if len(responses) > 1 else "")
            labels.extend(self.parsed(entry.response, path, f"{where}: "))
        return labels

    def case(self, raw: Mapping[str, Any], path: JsonPath) -> PolicyCase:
        self.metadata = {}
        context, route = self.routing(raw, path)
        labels: list[Label] = []
        for index, item in enumerate(raw.get("labels", ())):
            label = self.compact_label(item, (*path, "labels", index))
            if label is not None:
                labels.append(label)
        for item, at in _one_or_many(raw, "response", path):
            labels.extend(self.parsed(item, at, "response: "))
        for written, at in _one_or_many(raw, "recording", path):
            labels.extend(self.recording(written, at))
        failures = tuple(DetectorFailure(e["source"], e["error"]) for e in raw.get("errors", ()))
        reasons = None
        if "reasons" in raw:
            reasons = tuple(
                ExpectedReason(
                    rule=r["rule"],
                    label=r.get("label"),
                    verdict=Verdict(r["verdict"]) if "verdict" in r else None,
                    source=r.get("source"),
                )
                for r in raw["reasons"]
            )
        return PolicyCase(
            name=raw["name"],
            labels=tuple(labels),
            failures=failures,
            expect=Verdict(raw["expect"]),
            reasons=reasons,
            rules=frozenset(raw["rules"]) if "rules" in raw else None,
            position=self.source_map.at(path),
            context=context,
            route=route,
            metadata=self.case_metadata(raw),
        )

    def routing(
        self, raw: Mapping[str, Any], path: JsonPath
    ) -> tuple[ResolvedContext | None, int | None]:
        """The case's resolved context and expected route; with a plain policy,
        an error for each key that only a set reads."""
        policy_set = self.policy_set
        if policy_set is None:
            for key in ("context", "route", "content_types"):
                if key in raw and not self.quiet:
                    self.fail(
                        "context-without-set",
                        f"{key}: is for a tests file that names a policy set; "
                        "this file names a policy",
                        (*path, key),
                    )
            return None, None
        route = raw.get("route")
        if route is not None and route >= len(policy_set.routes):
            self.fail(
                "unknown-route",
                f"route: {route} is no route of policy set {policy_set.name!r} "
                f"(it has routes 0 to {len(policy_set.routes) - 1})",
                (*path, "route"),
            )
        given = raw.get("context", {})
        try:
            context = policy_set.resolve_context(given)
        except ContextError as exc:
            at = (*path, "context", exc.dimension) if exc.dimension in given else (*path,)
            if "context" in raw and exc.dimension not in given:
                at = (*path, "context")
            self.fail("invalid-context", f"invalid context: {exc}", at)
            return None, route
        return context, route

    def case_metadata(self, raw: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
        metadata = dict(self.metadata)
        if "content_types" in raw:
            written = [{"name": name, "confidence": 100.0} for name in raw["content_types"]]
            metadata["tests-file"] = {CONTENT_TYPES_KEY: written}
        return metadata

    def cases_and_invariants(
        self, data: Mapping[str, Any]
    ) -> tuple[tuple[PolicyCase, ...], tuple[Invariant, ...]]:
        """Every case and invariant of the file that builds (the others are errors)."""
        cases = tuple(
            self.case(raw, ("cases", index)) for index, raw in enumerate(data.get("cases", ()))
        )
        invariants = (
            self.invariant(raw, ("invariants", index))
            for index, raw in enumerate(data.get("invariants", ()))
        )
        return cases, tuple(i for i in invariants if i is not None)

    def invariant(self, raw: dict[str, Any], path: JsonPath) -> Invariant | None:
        labels = [
            self.compact_label(item, (*path, "labels", index))
            for index, item in enumerate(raw.get("labels", ()))
        ]
        found = tuple(label for label in labels if label is not None)
        if len(found) < len(labels):
            return None
        if "at_least_as_strict" in raw:
            contexts = self.context_promise(raw, path)
            if contexts is None:
                return None
            return Invariant.from_data(raw, self.source_map.at(path), contexts=contexts)
        if self.policy_set is not None:
            self.fail(
                "invalid-invariant",
                "the tests file's policy is a policy set: its invariants compare two of "
                "its contexts (at_least_as_strict and than)",
                path,
            )
            return None
        promise = None
        if "at_least_as_strict_as" in raw:
            promise = self.strictness_promise(raw["at_least_as_strict_as"], path)
            if promise is None:
                return None
        return Invariant.from_data(raw, self.source_map.at(path), found, promise)

    def context_promise(self, raw: Mapping[str, Any], path: JsonPath) -> ContextPromise | None:
        """``at_least_as_strict: {context: ...}, than: {context: ...}``: between two
        contexts of the tests file's policy set, every other dimension compared."""
        if self.policy_set is None:
            self.fail(
                "invalid-invariant",
                "at_least_as_strict compares two contexts of a policy set, but the tests "
                "file's policy is not a set (use at_least_as_strict_as: another policy)",
                (*path, "at_least_as_strict"),
            )
            return None
        stricter = dict(raw["at_least_as_strict"]["context"])
        than = dict(raw["than"]["context"])
        try:
            validate_contexts(self.policy_set, stricter, than)
        except SetComparisonError as exc:
            self.fail("invalid-context", str(exc), (*path, "at_least_as_strict"))
            return None
        return ContextPromise(self.policy_set, stricter, than)

    def strictness_promise(self, written: str, path: JsonPath) -> StrictnessPromise | None:
        """``at_least_as_strict_as: other.yaml``: the tested policy is at least as strict
        as that policy (loaded relative to the tests file)."""
        loaded = check_policy_file(self.base_dir / written, registry=self.registry)
        if loaded.policy is None:
            self.fail(
                "policy-does-not-load",
                f"the policy {written} (at_least_as_strict_as) does not load "
                f"({len(loaded.errors)} error(s))",
                (*path, "at_least_as_strict_as"),
            )
            self.diagnostics.extend(loaded.errors)
            return None
        return StrictnessPromise(
            PolicyRef(self.policy_written),
            PolicyRef(written, compile_policy(loaded.policy, self.registry)),
        )


def default_source(data: Mapping[str, Any], policy: Policy | None) -> str | None:
    """The source of a compact label written without one: the tests file's
    ``source:``, else the one detector the policy names; None when neither says."""
    if isinstance(data.get("source"), str):
        return str(data["source"])
    if policy is not None and len(policy.detectors) == 1:
        return next(iter(policy.detectors))
    return None


def check_tests_file(path: str | os.PathLike[str], registry: DetectorRegistry) -> TestsFileLoad:
    """Load a tests file and its policy, collecting every error instead of raising."""
    file = str(path)
    file_path = Path(path)
    try:
        document = parse_document(read_policy_text(file_path), file)
    except SourceError as exc:
        return TestsFileLoad(None, sort_diagnostics(exc.diagnostics))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return TestsFileLoad(
            None, (error("unreadable", f"cannot read the tests file: {reason}", file, Position()),)
        )
    from policy_engine.schema import check_against_schema, packaged_validator

    source_map = document.source_map
    diagnostics = list(document.diagnostics)
    report = check_against_schema(
        packaged_validator("policy-tests.schema.json"),
        document.data,
        source_map,
        reported=document.refused,
    )
    diagnostics.extend(report.diagnostics)
    if diagnostics or not isinstance(document.data, dict):
        return TestsFileLoad(None, sort_diagnostics(diagnostics))
    data: dict[str, Any] = document.data
    base_dir = file_path.parent
    policy_path = base_dir / data["policy"]
    if is_policy_set_file(policy_path):
        return _check_set_tests(file, data, source_map, policy_path, registry)
    loaded = check_policy_file(policy_path, registry=registry)
    if loaded.policy is None:
        diagnostics.append(
            error(
                "policy-does-not-load",
                f"the policy {data['policy']} does not load ({len(loaded.errors)} error(s))",
                file,
                source_map.at(("policy",)),
            )
        )
        diagnostics.extend(loaded.errors)
    builder = _CaseBuilder(
        source_map,
        base_dir,
        registry,
        default_source(data, loaded.policy),
        quiet=loaded.policy is None,
        policy_written=data["policy"],
    )
    cases, invariants = builder.cases_and_invariants(data)
    diagnostics.extend(builder.diagnostics)
    if diagnostics or loaded.policy is None:
        return TestsFileLoad(None, sort_diagnostics(diagnostics))
    tests = PolicyTestFile(
        file=file,
        policy_file=str(policy_path),
        policy=loaded.policy,
        compiled=compile_policy(loaded.policy, registry),
        cases=cases,
        invariants=invariants,
        all_taxonomies=data.get("taxonomies") == "all",
    )
    return TestsFileLoad(tests, ())


def _check_set_tests(
    file: str,
    data: dict[str, Any],
    source_map: SourceMap,
    set_path: Path,
    registry: DetectorRegistry,
) -> TestsFileLoad:
    """A tests file that names a policy set: every case is checked in its context."""
    loaded = check_policy_set_file(set_path, registry=registry)
    policy_set = loaded.policy_set
    diagnostics: list[Diagnostic] = []
    if policy_set is None:
        diagnostics.append(
            error(
                "policy-does-not-load",
                f"the policy set {data['policy']} does not load ({len(loaded.errors)} error(s))",
                file,
                source_map.at(("policy",)),
            )
        )
        diagnostics.extend(loaded.errors)
    detectors = policy_set.detectors if policy_set is not None else {}
    source = data.get("source")
    if not isinstance(source, str):
        source = next(iter(detectors)) if len(detectors) == 1 else None
    builder = _CaseBuilder(
        source_map,
        set_path.parent,
        registry,
        source,
        quiet=policy_set is None,
        policy_written=data["policy"],
        policy_set=policy_set,
    )
    # a set's invariants compare two of its contexts (at_least_as_strict and than);
    # those over one decision table belong in the routed policy's tests file
    cases, invariants = builder.cases_and_invariants(data)
    diagnostics.extend(builder.diagnostics)
    if diagnostics or policy_set is None:
        return TestsFileLoad(None, sort_diagnostics(diagnostics))
    first = policy_set.routes[0]
    compiled_set = compile_policy_set(policy_set, registry)
    tests = PolicyTestFile(
        file=file,
        policy_file=str(set_path),
        policy=first.policy,
        compiled=compiled_set.compiled(first),
        cases=cases,
        invariants=invariants,
        all_taxonomies=data.get("taxonomies") == "all",
        policy_set=policy_set,
        compiled_set=compiled_set,
    )
    return TestsFileLoad(tests, ())


def load_tests_file(path: str | os.PathLike[str], registry: DetectorRegistry) -> PolicyTestFile:
    """Load a tests file and its policy; raise :class:`TestsLoadError` with every error."""
    loaded = check_tests_file(path, registry)
    if loaded.tests is None:
        raise TestsLoadError(loaded.diagnostics)
    return loaded.tests


def find_tests_files(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The tests files for ``paths``: each folder's ``*.tests.yaml`` (recursively),
    each tests file given, and for a policy file given, the tests file beside it.
    Returns the files (in order, each once) and a message per path that gave none."""
    return select_files(
        paths,
        in_folder=lambda path: path.name.endswith(TESTS_SUFFIX),
        folder_holds=f"*{TESTS_SUFFIX} files",
        named=_tests_file_for,
    )


def _tests_file_for(path: Path, written: str) -> Path | str:
    if path.is_file() and path.name.endswith(TESTS_SUFFIX):
        return path
    if path.is_file():
        beside = path.with_name(path.name.rsplit(".", 1)[0] + TESTS_SUFFIX)
        if beside.is_file():
            return beside
        return f"{written}: no tests file for this policy ({beside} is missing)"
    return f"{written}: no such file or folder"


def _one_or_many(
    raw: Mapping[str, Any], key: str, path: JsonPath
) -> Iterator[tuple[Any, JsonPath]]:
    """Each value of ``raw[key]`` (one value, or a list of them) and where it
    stands; nothing when the key is absent."""
    if key not in raw:
        return
    value = raw[key]
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield item, (*path, key, index)
    else:
        yield value, (*path, key)
