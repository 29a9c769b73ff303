"""Properties of loading and evaluation, checked on random policies (POLICY_SPEC 1-8).

Policies are generated as plain data over a small alphabet of label names placed
in a small random taxonomy (cycles included), loaded with ``parse_policy`` from
``yaml.safe_dump``, and compared against a naive reference evaluator written
straight from the spec text below.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from policy_engine import (
    CompiledPolicy,
    Detector,
    DetectorFailure,
    DetectorRegistry,
    DetectorResult,
    Engine,
    Image,
    Label,
    PolicyLoadError,
    Taxonomy,
    TaxonomyEntry,
    parse_policy,
)
from policy_engine.detectors import DetectContext
from policy_engine.loader import check_policy_text, dump_policy
from policy_engine.model import Policy
from policy_engine.plugins import RegisteredDetector

SETTINGS = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

NAMES = ["Alpha", "Beta Two", "Gamma", "Delta", "Eps"]
ALIAS = ("Zed", "Alpha")  # in the taxonomy of source s1, "Zed" is another spelling of "Alpha"
SOURCES = ["s1", "s2"]  # s1 has the generated taxonomy, s2 none
NUMBERS = [0, 10, 49.5, 50, 60, 75, 90, 99.5, 100]
SEVERITY = {"allow": 0, "review": 1, "block": 2}


def ref_key(name: str) -> str:
    """Section 1: case-insensitive, trimmed, inner white space collapsed."""
    return " ".join(name.split()).casefold()


def spelt(name: str) -> st.SearchStrategy[str]:
    """The same name written differently (case, spaces)."""
    return st.sampled_from(
        [name, name.lower(), name.upper(), f" {name} ", name.replace(" ", "   ")]
    )


def any_name(names: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(names).flatmap(spelt)


numbers = st.one_of(
    st.sampled_from(NUMBERS), st.floats(min_value=0, max_value=100, allow_nan=False)
)


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["action", "review", "block", "both"]))
    if kind == "action":
        return {"action": draw(st.sampled_from(["allow", "review", "block"]))}
    if kind == "review":
        return {"review_at": draw(numbers)}
    if kind == "block":
        return {"block_at": draw(numbers)}
    low, high = sorted([draw(numbers), draw(numbers)])
    assume(low < high)
    return {"review_at": low, "block_at": high}


def matcher_key(match: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    alias_of = {ref_key(ALIAS[0]): ref_key(ALIAS[1])}

    def canon(name: str | None) -> str | None:
        return None if name is None else alias_of.get(ref_key(name), ref_key(name))

    return canon(match.get("name")), canon(match.get("parent")), match.get("source")


@st.composite
def policy_data(draw: st.DrawFn) -> dict[str, Any]:
    rule_names = [*NAMES, ALIAS[0]]
    rules: list[dict[str, Any]] = []
    seen: set[tuple[str | None, str | None, str | None]] = set()
    for index in range(draw(st.integers(0, 7))):
        shape = draw(st.sampled_from(["name", "parent", "both"]))
        match: dict[str, str] = {}
        if shape in ("name", "both"):
            match["name"] = draw(any_name(rule_names))
        if shape in ("parent", "both"):
            match["parent"] = draw(any_name(rule_names))
        source = draw(st.sampled_from([None, None, *SOURCES]))
        if source is not None:
            match["source"] = source
        if matcher_key(match) in seen:
            continue
        seen.add(matcher_key(match))
        rules.append({"id": f"r{index}", "match": match, **draw(bodies())})
    labels: dict[tuple[str | None, str], dict[str, Any]] = {}
    for _ in range(draw(st.integers(0, 3))):
        name = draw(any_name(NAMES))
        entry: dict[str, Any] = {
            "name": name,
            "parent": draw(st.sampled_from(["", *NAMES, "Custom"])),
        }
        source = draw(st.sampled_from([None, *SOURCES]))
        if source is not None:
            entry["source"] = source
        labels.setdefault((source, ref_key(name)), entry)
    data: dict[str, Any] = {"version": 1, "name": "generated", "rules": rules}
    if labels:
        data["labels"] = list(labels.values())
    if draw(st.booleans()):
        data["min_confidence"] = draw(st.sampled_from([0, 30, 50, 60.5]))
    if draw(st.booleans()):
        data["default"] = draw(st.one_of(st.sampled_from(["allow", "review", "block"]), bodies()))
    if draw(st.booleans()):
        data["on_error"] = draw(st.sampled_from(["allow", "review", "block"]))
    return data


@st.composite
def taxonomies(draw: st.DrawFn) -> dict[str, str]:
    """Canonical name -> canonical parent ("" at the top); cycles allowed, no self-parents."""
    parents: dict[str, str] = {}
    for name in NAMES:
        if draw(st.integers(0, 4)) == 0:
            continue  # unknown to the taxonomy
        parent = draw(st.sampled_from(["", *[n for n in NAMES if n != name]]))
        parents[ref_key(name)] = ref_key(parent)
    return parents


def label_strategy() -> st.SearchStrategy[Label]:
    return st.builds(
        Label,
        name=any_name([*NAMES, ALIAS[0], "Unknown"]),
        confidence=numbers,
        source=st.sampled_from(SOURCES),
        parent=st.one_of(st.just(""), any_name([*NAMES, ALIAS[0], "Custom"])),
    )


labels_lists = st.lists(label_strategy(), max_size=6)
failures_lists = st.lists(st.just(DetectorFailure("s9", "down")), max_size=1)


def load(data: dict[str, Any]) -> Policy:
    result = check_policy_text(yaml.safe_dump(data), "generated.yaml")
    # The generator avoids every error except a labels: cycle, which it cannot avoid cheaply.
    assume(result.policy is not None)
    assert all(d.code == "label-cycle" for d in result.errors), result.errors
    return result.policy  # type: ignore[return-value]


def build_taxonomy(parents: dict[str, str]) -> Taxonomy:
    entries = tuple(TaxonomyEntry(name, parent) for name, parent in parents.items())
    return Taxonomy("generated", entries, aliases={ALIAS[0]: ALIAS[1]})


def compile_with(policy: Policy, parents: dict[str, str]) -> CompiledPolicy:
    taxonomy = build_taxonomy(parents)
    return CompiledPolicy(policy, lambda source, version: taxonomy if source == "s1" else None)


# -- the reference evaluator ---------------------------------------------------


@dataclass
class RefOutcome:
    verdict: str
    rule: str


class Reference:
    """POLICY_SPEC sections 1, 4 and 5, written out naively: every rule is checked
    for every label, the hierarchy is walked from scratch each time."""

    def __init__(self, data: dict[str, Any], tax_parents: dict[str, str]) -> None:
        self.data = data
        self.tax = tax_parents  # used for source s1 only
        self.alias = {ref_key(ALIAS[0]): ref_key(ALIAS[1])}

    def canon(self, name: str, source: str) -> str:
        key = ref_key(name)
        return self.alias.get(key, key) if source == "s1" else key

    def parent_of(self, key: str, source: str) -> str | None:
        """The policy's labels: (scoped entries over unscoped) over the taxonomy."""
        entries = self.data.get("labels", [])
        for wanted in (source, None):
            for entry in entries:
                if entry.get("source") == wanted and self.canon(entry["name"], source) == key:
                    return self.canon(entry["parent"], source) if entry["parent"].strip() else ""
        if source == "s1":
            return self.tax.get(key)
        return None

    def decide(self, label: Label) -> RefOutcome:
        source = label.source
        key = self.canon(label.name, source)
        if label.parent.strip():
            direct: str | None = self.canon(label.parent, source)
        else:
            direct = self.parent_of(key, source) or None
        chain = [key]
        current = direct
        while current and current not in chain:
            chain.append(current)
            current = self.parent_of(current, source)
        best: tuple[tuple[int, int, int], dict[str, Any]] | None = None
        tied = False
        for rule in self.data["rules"]:
            match = rule["match"]
            if "source" in match and match["source"] != source:
                continue
            rank_distance: tuple[int, int] | None = None
            if "name" in match and "parent" in match:
                if (
                    self.canon(match["name"], source) == key
                    and direct is not None
                    and (self.canon(match["parent"], source) == direct)
                ):
                    rank_distance = (0, 0)
            elif "name" in match:
                if self.canon(match["name"], source) == key:
                    rank_distance = (1, 0)
            else:
                wanted = self.canon(match["parent"], source)
                if wanted in chain:
                    rank_distance = (2, chain.index(wanted))
            if rank_distance is None:
                continue
            specificity = (*rank_distance, 0 if "source" in match else 1)
            if best is None or specificity < best[0]:
                best, tied = (specificity, rule), False
            elif specificity == best[0]:
                tied = True
        assert not tied, "two rules equally specific: the loader should have refused them"
        if best is None:
            default = self.data.get("default", "allow")
            body = {"action": default} if isinstance(default, str) else default
            rule_id = "default"
        else:
            body, rule_id = best[1], best[1]["id"]
        return RefOutcome(self.verdict(body, label.confidence), rule_id)

    @staticmethod
    def verdict(body: Mapping[str, Any], confidence: float) -> str:
        action = body.get("action")
        if action == "allow":
            return "allow"
        block_at = 0 if action == "block" else body.get("block_at")
        review_at = 0 if action == "review" else body.get("review_at")
        if block_at is not None and confidence >= block_at:
            return "block"
        if review_at is not None and confidence >= review_at:
            return "review"
        return "allow"

    def evaluate(
        self, labels: list[Label], failures: list[DetectorFailure]
    ) -> tuple[str, list[RefOutcome], list[Label]]:
        floor = self.data.get("min_confidence", 50)
        kept = [lab for lab in labels if lab.confidence >= floor]
        dropped = [lab for lab in labels if lab.confidence < floor]
        outcomes = [self.decide(lab) for lab in kept]
        severities = [SEVERITY[o.verdict] for o in outcomes]
        if failures:
            severities.append(SEVERITY[self.data.get("on_error", "review")])
        decision = ["allow", "review", "block"][max(severities, default=0)]
        return decision, outcomes, dropped


# -- properties ------------------------------------------------------------------


@SETTINGS
@given(policy_data(), taxonomies(), labels_lists, failures_lists)
def test_agrees_with_the_naive_reference_evaluator(
    data: dict[str, Any], tax: dict[str, str], labels: list[Label], failures: list[DetectorFailure]
) -> None:
    compiled = compile_with(load(data), tax)
    decision = compiled.evaluate(labels, failures)
    expected_decision, expected_outcomes, expected_dropped = Reference(data, tax).evaluate(
        labels, failures
    )
    got = [RefOutcome(o.verdict.value, o.rule) for o in decision.outcomes()]
    assert got == expected_outcomes
    assert list(decision.dropped) == expected_dropped
    assert decision.verdict == expected_decision


@SETTINGS
@given(policy_data(), taxonomies(), labels_lists.filter(bool), st.data())
def test_raising_a_confidence_never_lowers_the_decision(
    data: dict[str, Any], tax: dict[str, str], labels: list[Label], draw: st.DataObject
) -> None:
    compiled = compile_with(load(data), tax)
    index = draw.draw(st.integers(0, len(labels) - 1))
    old = labels[index]
    higher = draw.draw(
        st.floats(min_value=old.confidence, max_value=100)
        | st.sampled_from([old.confidence, 100.0])
    )
    raised = [*labels]
    raised[index] = Label(old.name, higher, old.source, parent=old.parent)
    before = compiled.evaluate(labels).verdict
    after = compiled.evaluate(raised).verdict
    assert after.severity >= before.severity


@SETTINGS
@given(policy_data(), taxonomies(), labels_lists, label_strategy(), failures_lists)
def test_adding_a_label_never_lowers_the_decision(
    data: dict[str, Any],
    tax: dict[str, str],
    labels: list[Label],
    extra: Label,
    failures: list[DetectorFailure],
) -> None:
    compiled = compile_with(load(data), tax)
    before = compiled.evaluate(labels, failures).verdict
    after = compiled.evaluate([*labels, extra], failures).verdict
    assert after.severity >= before.severity


def _order_free(record: dict[str, Any]) -> dict[str, Any]:
    """The record with its per-label lists as multisets: those list labels in the
    order the detectors reported them, which is not part of the decision."""
    record = dict(record)
    for key in ("labels", "dropped"):
        record[key] = sorted(json.dumps(item, sort_keys=True) for item in record[key])
    return record


@SETTINGS
@given(policy_data(), taxonomies(), labels_lists, failures_lists, st.randoms(use_true_random=False))
def test_label_order_never_matters(
    data: dict[str, Any],
    tax: dict[str, str],
    labels: list[Label],
    failures: list[DetectorFailure],
    rnd: random.Random,
) -> None:
    compiled = compile_with(load(data), tax)
    shuffled = [*labels]
    rnd.shuffle(shuffled)
    first = compiled.evaluate(labels, failures).to_dict()
    second = compiled.evaluate(shuffled, failures).to_dict()
    assert first["decision"] == second["decision"]
    assert first["reasons"] == second["reasons"]
    assert _order_free(first) == _order_free(second)


class _Fixed(Detector):
    def __init__(self, name: str, labels: tuple[tuple[str, float, str], ...]) -> None:
        self.name = name  # type: ignore[misc]
        self._labels = labels

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        return DetectorResult(
            self.name, tuple(Label(n, c, self.name, parent=p) for n, c, p in self._labels)
        )


detector_labels = st.lists(
    st.tuples(any_name(NAMES), numbers, st.sampled_from(["", *NAMES])), max_size=4
).map(tuple)


@SETTINGS
@given(policy_data(), detector_labels, detector_labels)
def test_detector_registration_order_never_matters(
    data: dict[str, Any], first_labels: tuple[Any, ...], second_labels: tuple[Any, ...]
) -> None:
    data = {**data, "detectors": {"s1": {}, "s2": {}}}
    policy = load(data)
    one, two = _Fixed("s1", first_labels), _Fixed("s2", second_labels)
    forward = DetectorRegistry([RegisteredDetector(one, "p1"), RegisteredDetector(two, "p2")])
    backward = DetectorRegistry([RegisteredDetector(two, "p2"), RegisteredDetector(one, "p1")])
    image = Image("x", b"x")
    assert (
        Engine(policy, forward).check(image).to_dict()
        == Engine(policy, backward).check(image).to_dict()
    )


def _shuffled(value: Any, rnd: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        # version must stay the integer 1 (the spec refuses 1.0)
        return {k: v if k == "version" else _shuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rnd) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and rnd.random() < 0.5:
        return float(value)  # 50 and 50.0 are one number
    return value


@SETTINGS
@given(policy_data(), st.booleans(), st.randoms(use_true_random=False))
def test_digest_unchanged_by_reformatting(
    data: dict[str, Any], flow: bool, rnd: random.Random
) -> None:
    policy = load(data)
    reformatted = yaml.safe_dump(
        _shuffled(data, rnd),
        default_flow_style=flow,
        sort_keys=False,
        width=rnd.choice([40, 80, 1000]),
    )
    other = parse_policy("# reformatted\n" + reformatted)
    assert other == policy
    assert other.digest == policy.digest


@SETTINGS
@given(policy_data())
def test_dump_and_load_round_trip(data: dict[str, Any]) -> None:
    policy = load(data)
    again = parse_policy(dump_policy(policy))
    assert again == policy
    assert again.digest == policy.digest
    assert again.to_data() == policy.to_data()
    assert parse_policy(dump_policy(again)).digest == policy.digest


# -- loading never fails with anything but PolicyLoadError ----------------------------

TOKENS = [
    "version: ",
    "name: ",
    "rules: ",
    "match: ",
    "id: ",
    "labels: ",
    "default: ",
    "on_error: ",
    "min_confidence: ",
    "detectors: ",
    "review_at: ",
    "block_at: ",
    "action: ",
    "parent: ",
    "1",
    "p",
    "50",
    "-1",
    ".nan",
    ".inf",
    "1e3",
    "true",
    "null",
    "~",
    "block",
    "x",
    "\n",
    "\n  ",
    "\n  - ",
    "- ",
    "  ",
    ": ",
    ", ",
    "{",
    "}",
    "[",
    "]",
    "&a ",
    "*a",
    "<<: ",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!str ",
    "!!binary ",
    "!!timestamp ",
    "!!python/name:os.system ",
    "!x ",
    "? ",
    "---\n",
    "...\n",
    "#",
    "'",
    '"',
    "|\n  ",
    ">\n  ",
    "%YAML 1.1\n",
    "\t",
    "\x00",
    "é",
    "2001-12-14",
    "0x1F",
    "0o17",
    "1_000",
    "abc",
]

yamlish = st.one_of(
    st.lists(st.sampled_from(TOKENS), max_size=40).map("".join),
    st.text(max_size=200),
)

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=10) | st.sampled_from([*SEVERITY, "name", "match", "rules"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


def _never_escapes(text: str) -> None:
    try:
        policy = parse_policy(text, "fuzz.yaml")
    except PolicyLoadError as exc:
        assert exc.diagnostics
        return
    assert isinstance(policy, Policy)
    policy.digest  # noqa: B018  (must not raise either)


@SETTINGS
@given(yamlish)
@example("!!int ")
@example("version: 1\nname: p\ndescription: !!bool maybe\nrules: []\n")
def test_random_text_loads_or_raises_policy_load_error(text: str) -> None:
    _never_escapes(text)


@SETTINGS
@given(json_like)
def test_random_data_loads_or_raises_policy_load_error(data: Any) -> None:
    _never_escapes(yaml.safe_dump(data))
    _never_escapes(json.dumps(data))


@SETTINGS
@given(policy_data(), st.data())
def test_mutated_policy_loads_or_raises_policy_load_error(
    data: dict[str, Any], draw: st.DataObject
) -> None:
    paths: list[tuple[Any, ...]] = []

    def walk(value: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*path, i))

    walk(data, ())
    path = draw.draw(st.sampled_from(paths[1:]))
    replacement = draw.draw(json_like)
    mutated = json.loads(json.dumps(data))
    target: Any = mutated
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = replacement
    _never_escapes(yaml.safe_dump(mutated))
