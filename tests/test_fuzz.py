"""Fuzzing the inputs an attacker controls: policy text and detector responses.

Whatever the bytes, no exception escapes the loader, every diagnostic is
located (``file:line:col``), and a detector whose answer cannot be used never
yields ``allow`` unless the policy's own ``on_error`` says so. Sizes fit CI.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine import DetectorRegistry, parse_policy
from policy_engine.compiler import CompiledPolicy
from policy_engine.decision import DetectorFailure
from policy_engine.errors import InvalidDetectorResult, UnrecognisedResponseError
from policy_engine.loader import check_policy_text
from policy_engine.text import json_dumps

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_TEXTS = [p.read_text("utf-8") for p in sorted((ROOT / "policies").glob("*.yaml"))]
LOCATED = re.compile(r"^fuzz\.yaml:\d+:\d+: (error|warning)\[[a-z0-9-]+\]: .+", re.S)
REGISTRY = DetectorRegistry.installed()
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# What an attacker types: YAML punctuation, escapes, control characters, lone surrogates.
HOSTILE_TOKENS = [
    *":-[]{}&*!|>'\"%@`#,?\\\n\t ",
    *("\\ud800", "\\U0001F600", "\ud800", "\x00", "\x85", "\ufeff", "!!python/object", "<<"),
    *("1e999", "0x1F", "050", "1:30", ".nan", "&a", "*a", "~", "null", "yes"),
]
ESCAPES = st.sampled_from(["\\ud800", "x \\udfff", "\\ud83d\\ude00", "caf\\xe9", "\\x00", "\\N"])
HOSTILE = st.lists(st.sampled_from(HOSTILE_TOKENS), max_size=12).map("".join)


@st.composite
def mutated_policy(draw: st.DrawFn) -> str:
    """A reference policy, cut, spliced or salted at random places."""
    text = draw(st.sampled_from(REFERENCE_TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "requote", "delete", "duplicate", "truncate"]))
        if action == "requote":  # a value becomes a double-quoted string, escapes and all
            lines = text.splitlines(keepends=True)
            valued = [i for i, line in enumerate(lines) if ": " in line]
            if valued:
                index = draw(st.sampled_from(valued))
                key = lines[index].split(": ", 1)[0]
                lines[index] = f'{key}: "{draw(ESCAPES | HOSTILE)}"\n'
                text = "".join(lines)
        elif action == "insert":
            text = text[:where] + draw(HOSTILE) + text[where:]
        elif action == "delete":
            text = text[:where] + text[where + draw(st.integers(1, 40)) :]
        elif action == "duplicate":
            lines = text.splitlines(keepends=True)
            index = draw(st.integers(0, max(0, len(lines) - 1)))
            text = "".join(lines[: index + 1] + lines[index:])
        else:
            text = text[:where]
    return text


@st.composite
def salted_policy(draw: st.DrawFn) -> str:
    """A reference policy with one value replaced by a double-quoted escape: the
    policy stays valid but for that one string, so the whole loader runs on it."""
    lines = draw(st.sampled_from(REFERENCE_TEXTS)).splitlines(keepends=True)
    valued = [
        i for i, line in enumerate(lines) if ": " in line and not line.lstrip().startswith("#")
    ]
    index = draw(st.sampled_from(valued))
    key = lines[index].split(": ", 1)[0]
    lines[index] = f'{key}: "{draw(ESCAPES)}"\n'
    return "".join(lines)


def _assert_loads_or_explains(text: str) -> None:
    result = check_policy_text(text, "fuzz.yaml", registry=REGISTRY)  # never raises
    for diagnostic in result.diagnostics:
        rendered = diagnostic.render()
        assert LOCATED.match(rendered), rendered
        rendered.encode("utf-8")  # printable, whatever the input held
        assert diagnostic.line >= 1 and diagnostic.column >= 1, rendered
    if result.errors:
        assert result.policy is None or result.errors
    else:
        assert result.policy is not None
        result.policy.digest  # noqa: B018 (computing it must not raise)


@FUZZ
@given(mutated_policy())
def test_a_mutated_policy_loads_or_gets_located_diagnostics(text: str) -> None:
    _assert_loads_or_explains(text)


@FUZZ
@given(salted_policy())
def test_a_salted_value_loads_or_gets_located_diagnostics(text: str) -> None:
    _assert_loads_or_explains(text)


@FUZZ
@given(st.text(max_size=300))
def test_any_text_loads_or_gets_located_diagnostics(text: str) -> None:
    _assert_loads_or_explains(text)


JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec=None, exclude_categories=()), max_size=8)
    | st.sampled_from(["Violence", "Weapon Violence", "Explicit", "", "7.0", "7" * 5000])
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
LABEL_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "Name": JSON_VALUE,
        "ParentName": JSON_VALUE,
        "Confidence": JSON_VALUE,
        "TaxonomyLevel": JSON_VALUE,
    },
)


@st.composite
def hostile_response(draw: st.DrawFn) -> dict[str, Any]:
    """Something shaped like a DetectModerationLabels answer, with any value anywhere."""
    response: dict[str, Any] = {
        "ModerationLabels": draw(st.lists(LABEL_FIELDS, max_size=4) | JSON_VALUE)
    }
    for key in ("ModerationModelVersion", "ContentTypes", "HumanLoopActivationOutput"):
        if draw(st.booleans()):
            response[key] = draw(JSON_VALUE)
    return response


POLICY = """\
version: 1
name: fuzz
on_error: {on_error}
detectors: {{rekognition-moderation: {{}}}}
rules:
  - id: violence
    match: {{parent: Violence}}
    block_at: 90
"""


@FUZZ
@given(hostile_response(), st.sampled_from(["review", "block", "allow"]))
def test_a_response_is_parsed_or_refused_and_refused_never_allows(
    response: dict[str, Any], on_error: str
) -> None:
    policy = parse_policy(POLICY.format(on_error=on_error), registry=REGISTRY)
    compiled = CompiledPolicy(policy, REGISTRY.taxonomy_for)
    try:
        result = REGISTRY.parse_response(response)
        for label in result.labels:
            compiled.resolve(label)
    except (InvalidDetectorResult, UnrecognisedResponseError) as exc:
        failure = DetectorFailure("rekognition-moderation", str(exc), "invalid-result")
        decision = compiled.evaluate([], [failure], {})
        assert decision.verdict.value == on_error  # never allow unless the policy says so
        json_dumps(decision.to_dict()).encode("utf-8")
        return
    decision = compiled.evaluate(list(result.labels), [], {result.source: result.metadata})
    json_dumps(decision.to_dict()).encode("utf-8")  # the record can always be written
