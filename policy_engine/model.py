"""A loaded policy as immutable values (POLICY_SPEC sections 2-3)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple

from policy_engine.diagnostics import Position
from policy_engine.json_types import frozen, plain
from policy_engine.names import name_key

DEFAULT_MIN_CONFIDENCE = 50.0


class Verdict(StrEnum):
    """A label's or a decision's verdict; also a rule's ``action``."""

    ALLOW = "allow"
    REVIEW = "review"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Verdict.ALLOW: 0, Verdict.REVIEW: 1, Verdict.BLOCK: 2}
VERDICT_BY_SEVERITY = (Verdict.ALLOW, Verdict.REVIEW, Verdict.BLOCK)


class FiresAt(NamedTuple):
    """The lowest confidence from which a body blocks, and from which it reviews
    (infinity where that band is off)."""

    block_from: float
    review_from: float


@dataclass(frozen=True, slots=True)
class Body:
    """A rule body: an action, or thresholds (section 3). The loader ensures exactly one kind."""

    action: Verdict | None = None
    review_at: float | None = None
    block_at: float | None = None

    @property
    def fires_at(self) -> FiresAt:
        """``(block_from, review_from)``: the lowest confidence that blocks and that
        reviews (infinity where that band is off). ``action: review`` reviews from 0,
        ``action: block`` blocks from 0, ``action: allow`` does neither (section 3)."""
        if self.action is Verdict.ALLOW:
            return FiresAt(math.inf, math.inf)
        if self.action is Verdict.REVIEW:
            return FiresAt(math.inf, 0.0)
        if self.action is Verdict.BLOCK:
            return FiresAt(0.0, math.inf)
        return FiresAt(
            math.inf if self.block_at is None else self.block_at,
            math.inf if self.review_at is None else self.review_at,
        )

    def verdict(self, confidence: float) -> Verdict:
        """Section 5, steps 1-4."""
        block_from, review_from = self.fires_at
        if confidence >= block_from:
            return Verdict.BLOCK
        if confidence >= review_from:
            return Verdict.REVIEW
        return Verdict.ALLOW

    def to_data(self) -> dict[str, Any]:
        if self.action is not None:
            return {"action": self.action.value}
        data: dict[str, Any] = {}
        if self.review_at is not None:
            data["review_at"] = plain_number(self.review_at)
        if self.block_at is not None:
            data["block_at"] = plain_number(self.block_at)
        return data


@dataclass(frozen=True, slots=True)
class Match:
    """Which labels a rule selects (section 4). Names are kept as written."""

    name: str | None = None
    parent: str | None = None
    source: str | None = None

    @property
    def rank(self) -> int:
        """0 for name and parent, 1 for name alone, 2 for parent alone (lower wins)."""
        if self.name is not None:
            return 0 if self.parent is not None else 1
        return 2

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.name is not None:
            data["name"] = self.name
        if self.parent is not None:
            data["parent"] = self.parent
        if self.source is not None:
            data["source"] = self.source
        return data

    def describe(self) -> str:
        return json.dumps(self.to_data(), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry of a policy's ``rules:`` (section 3): ``match`` selects labels,
    ``body`` says what they get (an action, or thresholds). ``id`` names it in
    decision records and diagnostics; ``position`` is where it was written, and
    ``file`` the file that wrote it when that is a base the policy ``extends``
    (None: the policy's own file). Neither is part of its meaning."""

    id: str
    match: Match
    body: Body
    description: str | None = None
    position: Position = field(default_factory=Position, compare=False)
    file: str | None = field(default=None, compare=False)

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id}
        if self.description is not None:
            data["description"] = self.description
        data["match"] = self.match.to_data()
        data.update(self.body.to_data())
        return data


@dataclass(frozen=True, slots=True)
class LabelDefinition:
    """A ``labels:`` entry: ``name`` sits under ``parent`` (for ``source`` only, if set)."""

    name: str
    parent: str
    source: str | None = None
    position: Position = field(default_factory=Position, compare=False)

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "parent": self.parent}
        if self.source is not None:
            data["source"] = self.source
        return data


@dataclass(frozen=True, slots=True)
class Cascade:
    """The policy's ``cascade:`` settings: whether the engine may skip a detector
    whose answer can no longer change the decision (``skip``, default on), and
    the relative cost of calling each detector where the policy overrides its
    plugin's (``costs``; cheaper detectors are called first)."""

    skip: bool = True
    costs: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "costs", MappingProxyType(dict(self.costs)))

    @property
    def is_default(self) -> bool:
        return self.skip and not self.costs

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"skip": self.skip}
        if self.costs:
            data["costs"] = {name: plain_number(cost) for name, cost in sorted(self.costs.items())}
        return data


def _numbers_normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _numbers_normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_normalised(v) for v in value]
    if isinstance(value, float):
        return plain_number(value)
    return value


def plain_number(value: float) -> int | float:
    """50.0 and 50 are one number: write integral values as integers."""
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True, slots=True, eq=False)
class Policy:
    """A policy that loaded without errors. Build one with :func:`policy_engine.load_policy`.

    ``file`` and ``base_dir`` say where it came from (relative paths in
    detector settings resolve against ``base_dir``); they are not part of its
    meaning, so they take no part in :attr:`digest` or equality.

    ``aliases`` maps the name key of an alias spelling to the name key of the
    label it stands for (two spellings of one label, from the taxonomies of
    the detectors the policy was loaded with; see
    :func:`~policy_engine.names.alias_keys`). It is how this policy's names
    compare, everywhere: the loader's duplicate and cycle checks, the digest,
    and compiling (:meth:`canonical_key`).
    """

    name: str
    rules: tuple[Rule, ...]
    description: str | None = None
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    default: Body = field(default_factory=lambda: Body(action=Verdict.ALLOW))
    on_error: Verdict = Verdict.REVIEW
    detectors: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    labels: tuple[LabelDefinition, ...] = ()
    version: int = 1
    file: str = "<string>"
    base_dir: str = "."
    aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    names_checked: bool = False
    """Whether the loader checked the rules' names against installed taxonomies
    (it was given a registry): an engine checks them itself otherwise."""
    detector_dirs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """The folder of the file that wrote each detector's entry, where it is not
    ``base_dir`` (an entry a base the policy ``extends`` wrote): that entry's
    relative paths resolve against it (:meth:`directory_of`)."""
    cascade: Cascade = field(default_factory=Cascade)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "detectors", frozen(self.detectors))
        object.__setattr__(self, "aliases", MappingProxyType(dict(self.aliases)))
        object.__setattr__(self, "detector_dirs", MappingProxyType(dict(self.detector_dirs)))

    def directory_of(self, detector: str) -> str:
        """The folder the relative paths in ``detector``'s settings resolve against:
        that of the file that wrote its entry (section 9)."""
        return self.detector_dirs.get(detector, self.base_dir)

    def canonical_key(self, name: str) -> str:
        """How ``name`` compares in this policy: its name key, an alias spelling
        replaced by the label's canonical one."""
        key = name_key(name)
        return self.aliases.get(key, key)

    def to_data(self) -> dict[str, Any]:
        """The canonical form: every default written out, numbers normalised,
        names as written. Loading it again gives an equal policy."""
        data: dict[str, Any] = {"version": self.version, "name": self.name}
        if self.description is not None:
            data["description"] = self.description
        data["min_confidence"] = plain_number(self.min_confidence)
        default = self.default.to_data()
        data["default"] = default["action"] if set(default) == {"action"} else default
        data["on_error"] = self.on_error.value
        data["detectors"] = plain(self.detectors)
        if not self.cascade.is_default:  # left out by default: older digests stay as they were
            data["cascade"] = self.cascade.to_data()
        data["labels"] = [label.to_data() for label in self.labels]
        data["rules"] = [rule.to_data() for rule in self.rules]
        return data

    def canonical_data(self) -> dict[str, Any]:
        """:meth:`to_data` with label names as they compare (case-folded, white
        space collapsed, an alias spelling as the label's canonical one): what
        the policy means, for equality and the digest."""
        data = self.to_data()
        for rule in data["rules"]:
            for key in ("name", "parent"):
                if key in rule["match"]:
                    rule["match"][key] = self.canonical_key(rule["match"][key])
        for label in data["labels"]:
            label["name"] = self.canonical_key(label["name"])
            label["parent"] = self.canonical_key(label["parent"]) if label["parent"] else ""
        # rules never combine and never tie, so their order means nothing
        data["rules"].sort(key=lambda rule: rule["id"])
        data["labels"].sort(key=lambda label: (label["name"], label.get("source") or ""))
        data["detectors"] = _numbers_normalised(data["detectors"])
        return data

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` over the canonical JSON of :meth:`canonical_data`: equal
        policies have equal digests whatever their YAML formatting, the case of
        their label names or the alias spelling they use (section 8); and as
        names compare the same way when the policy is compiled, equal digests
        mean equal decisions."""
        canonical = json.dumps(
            self.canonical_data(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        # surrogatepass: a policy built in code may hold text no file could (never a crash)
        data = canonical.encode("utf-8", "surrogatepass")
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Policy):
            return NotImplemented
        # by canonical JSON, not Python equality, which holds 1 == True
        return self.digest == other.digest

    def __hash__(self) -> int:
        return hash(self.digest)
