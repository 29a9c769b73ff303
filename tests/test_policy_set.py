"""Policy sets (POLICY_SPEC section 10): loading with located errors, exact
totality, context resolution, routing on content types, one detector pass,
digests and the record."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine import loader, source
from policy_engine.decision import DetectorFailure
from policy_engine.diagnostics import Severity
from policy_engine.errors import ContextError, PolicyLoadError, PolicySetLoadError
from policy_engine.labels import Label
from policy_engine.model import Policy, Verdict
from policy_engine.names import name_key
from policy_engine.policy_set import (
    Dimension,
    PolicySet,
    PolicySetLoadResult,
    Route,
    analyse_routes,
    check_policy_or_set_file,
    check_policy_set_file,
    compile_policy_set,
    is_policy_set_text,
    load_policy_set,
)

STRICT = """\
version: 1
name: strict
min_confidence: 40
on_error: block
detectors:
  a: {}
rules:
  - id: violence
    match: {parent: Violence}
    review_at: 40
    block_at: 60
"""

LENIENT = """\
version: 1
name: lenient
detectors:
  a: {}
  b: {}
rules:
  - id: violence
    match: {parent: Violence}
    block_at: 95
"""

ARTWORK = """\
version: 1
name: artwork
on_error: review
detectors:
  a: {}
rules:
  - id: violence
    match: {parent: Violence}
    action: allow
"""

SET = """\
version: 1
kind: policy-set
name: community
context:
  surface:
    values: [feed, profile, chat]
  audience:
    values: [adult, teen]
    default: adult
routes:
  - when: {audience: teen}
    policy: strict.yaml
  - when: {surface: [feed, chat], content_type: [Animated, Illustrated]}
    policy: artwork.yaml
  - policy: lenient.yaml
"""


def write_set(tmp_path: Path, text: str = SET, **policies: str) -> Path:
    files = {"strict": STRICT, "lenient": LENIENT, "artwork": ARTWORK, **policies}
    for name, body in files.items():
        (tmp_path / f"{name}.yaml").write_text(body)
    path = tmp_path / "community.set.yaml"
    path.write_text(text)
    return path


def located(path: Path) -> list[tuple[str, str, int, int]]:
    result = check_policy_set_file(path)
    return [(d.code, Path(d.file).name, d.line, d.column) for d in result.diagnostics]


# -- loading -------------------------------------------------------------------


def test_the_spec_example_loads_total_with_every_route_reachable(tmp_path: Path) -> None:
    result = check_policy_set_file(write_set(tmp_path))
    assert result.diagnostics == ()
    policy_set = result.policy_set
    assert policy_set is not None
    assert policy_set.dimension_names == ("surface", "audience")
    assert [r.policy.name for r in policy_set.routes] == ["strict", "artwork", "lenient"]
    assert policy_set.content_types_at == 50
    assert dict(policy_set.detectors) == {"a": {}, "b": {}}
    assert policy_set.min_confidence == 40
    assert is_policy_set_text(SET) and not is_policy_set_text(STRICT)
    assert is_policy_set_text("{version: 1, kind: policy-set, name: s}")
    assert not is_policy_set_text(STRICT.replace("name: strict", "name: strict\n# a policy-set"))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("version: 1\n", "version: 1.0\n", ("invalid-value", 1, 10)),
        ("audience: teen}", "audiance: teen}", ("unknown-dimension", 11, 12)),
        ("[feed, chat]", "[feed, chats]", ("unknown-context-value", 13, 28)),
        ("default: adult", "default: grown", ("unknown-context-value", 9, 14)),
        ("  audience:\n", "  content_type:\n", ("reserved-dimension", 7, 3)),
        ("name: community", "name: community\nroute: []", ("unknown-key", 4, 1)),
        ("policy: lenient.yaml", "policy: missing.yaml", ("route-policy-does-not-load", 15, 13)),
        # a NUL cannot name a file: an error at the node, never a ValueError traceback
        (
            "policy: lenient.yaml",
            'policy: "lenient\\0.yaml"',
            ("route-policy-does-not-load", 15, 13),
        ),
    ],
)
def test_each_error_is_located_in_the_set_file(
    tmp_path: Path, old: str, new: str, expected: tuple[str, int, int]
) -> None:
    assert old in SET
    found = located(write_set(tmp_path, SET.replace(old, new)))
    code, line, column = expected
    assert (code, "community.set.yaml", line, column) in found, found
    with pytest.raises(PolicySetLoadError) as info:
        load_policy_set(tmp_path / "community.set.yaml")
    assert isinstance(info.value, PolicyLoadError)
    assert info.value.code == "policy-set-does-not-load"


def test_a_routed_policy_s_errors_keep_its_own_file_and_position(tmp_path: Path) -> None:
    broken = LENIENT.replace("block_at: 95", "block_at: 95\n    review_at: 99")
    found = located(write_set(tmp_path, lenient=broken))
    assert ("threshold-order", "lenient.yaml", 10, 16) in found
    assert ("route-policy-does-not-load", "community.set.yaml", 15, 13) in found


def test_one_detector_with_two_settings_is_a_conflict(tmp_path: Path) -> None:
    lenient = LENIENT.replace("  a: {}", "  a: {region: eu-west-1}")
    found = located(write_set(tmp_path, lenient=lenient))
    assert ("detector-conflict", "community.set.yaml", 15, 13) in found


def test_a_file_named_by_several_routes_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = SET.replace("policy: strict.yaml", "policy: lenient.yaml").replace(
        "policy: artwork.yaml", "policy: ./lenient.yaml"
    )
    calls: list[Path] = []
    original = loader.check_policy_file

    def counting(path: Path, **kwargs: object) -> loader.LoadResult:
        calls.append(Path(path))
        return original(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loader, "check_policy_file", counting)
    assert load_policy_set(write_set(tmp_path, text)) is not None
    assert [p.name for p in calls] == ["lenient.yaml"]


# -- totality --------------------------------------------------------------------


def test_a_set_that_misses_a_combination_names_one(tmp_path: Path) -> None:
    text = SET.replace(
        "  - policy: lenient.yaml\n", "  - when: {surface: profile}\n    policy: lenient.yaml\n"
    )
    result = check_policy_set_file(write_set(tmp_path, text))
    assert result.policy_set is None
    [problem] = [d for d in result.errors if d.code == "route-not-total"]
    assert "audience=adult" in problem.message
    assert "surface=feed" in problem.message or "surface=chat" in problem.message
    assert "none of Animated, Illustrated" in problem.message
    assert (problem.line, problem.column) == (10, 1)  # at routes:


def test_correlated_content_type_conditions_are_not_free_atoms(tmp_path: Path) -> None:
    # [Animated] then [Animated, Illustrated]: "the first fails, the second holds"
    # needs Illustrated alone, which a free-atom analysis would get right only by luck;
    # the route for "neither" is still missing, and the exact analysis sees it
    text = """\
version: 1
kind: policy-set
name: s
routes:
  - when: {content_type: Animated}
    policy: strict.yaml
  - when: {content_type: [animated, Illustrated]}
    policy: lenient.yaml
"""
    result = check_policy_set_file(write_set(tmp_path, text))
    [problem] = result.errors
    assert problem.code == "route-not-total"
    assert "content types reported: none of Animated, Illustrated" in problem.message
    # and a route whose condition an earlier one covers entirely is unreachable
    text = text.replace("[animated, Illustrated]", "[animated]") + "  - policy: artwork.yaml\n"
    result = check_policy_set_file(write_set(tmp_path, text))
    assert [(d.code, d.severity, d.line) for d in result.diagnostics] == [
        ("unreachable-route", Severity.WARNING, 7)
    ]
    assert result.policy_set is not None


DIMENSIONS = (Dimension("d1", ("x", "y", "z")), Dimension("d2", ("p", "q")))
TYPES = ("A", "B", "C")
_POLICY = Policy(name="p", rules=())


@st.composite
def random_sets(draw: st.DrawFn) -> PolicySet:
    routes = []
    for index in range(draw(st.integers(1, 5))):
        when: dict[str, tuple[str, ...]] = {}
        for dimension in DIMENSIONS:
            if draw(st.booleans()):
                chosen = draw(st.sets(st.sampled_from(dimension.values), min_size=1))
                when[dimension.name] = tuple(sorted(chosen))
        types = None
        if draw(st.booleans()):
            types = tuple(sorted(draw(st.sets(st.sampled_from(TYPES), min_size=1))))
        routes.append(Route(index, MappingProxyType(when), types, "p.yaml", _POLICY))
    return PolicySet("s", DIMENSIONS, tuple(routes))


@settings(max_examples=150, deadline=None)
@given(random_sets())
def test_totality_and_reachability_agree_with_brute_force(policy_set: PolicySet) -> None:
    reachable: set[int] = set()
    total = True
    for values in itertools.product(*(d.values for d in DIMENSIONS)):
        context = dict(zip(("d1", "d2"), values, strict=True))
        for size in range(len(TYPES) + 1):
            for reported in itertools.combinations(TYPES, size):
                keys = frozenset(name_key(t) for t in reported)
                first = next((r for r in policy_set.routes if r.holds(context, keys)), None)
                if first is None:
                    total = False
                else:
                    reachable.add(first.index)
    analysis = analyse_routes(policy_set)
    assert (analysis.uncovered is None) == total
    assert analysis.reachable == reachable
    if analysis.uncovered is not None:
        missed_values, missed_types = analysis.uncovered
        assert policy_set.route_for(missed_values, missed_types) is None


# -- context ---------------------------------------------------------------------


def test_context_defaults_refusals_and_extra_keys(tmp_path: Path) -> None:
    policy_set = load_policy_set(write_set(tmp_path))
    resolved = policy_set.resolve_context({"surface": "chat", "upload": "u-1"})
    assert dict(resolved.values) == {"surface": "chat", "audience": "adult"}
    assert resolved.defaulted == {"audience"}
    assert dict(resolved.extra) == {"upload": "u-1"}
    with pytest.raises(ContextError) as missing:
        policy_set.resolve_context({"audience": "teen"})
    assert missing.value.code == "invalid-context"
    assert missing.value.dimension == "surface"
    assert "'surface'" in str(missing.value) and "no default" in str(missing.value)
    with pytest.raises(ContextError) as unknown:
        policy_set.resolve_context({"surface": "market"})
    assert unknown.value.dimension == "surface" and "'market'" in str(unknown.value)


# -- routing and deciding ----------------------------------------------------------


def violence(confidence: float, source: str = "a") -> Label:
    return Label("Weapon Violence", confidence, source, parent="Violence")


def content_types(*entries: tuple[str, float]) -> dict[str, dict[str, object]]:
    return {"a": {"content_types": [{"Name": n, "Confidence": c} for n, c in entries]}}


def test_routes_by_context_and_content_type(tmp_path: Path) -> None:
    compiled = compile_policy_set(load_policy_set(write_set(tmp_path)))
    labels = [violence(70)]
    teen = compiled.decide(labels, context={"surface": "feed", "audience": "teen"})
    assert (teen.route.index, teen.verdict) == (0, Verdict.BLOCK)
    drawn = compiled.decide(
        labels, context={"surface": "feed"}, metadata=content_types(("illustrated", 50))
    )
    assert (drawn.route.index, drawn.verdict) == (1, Verdict.ALLOW)
    faint = compiled.decide(
        labels, context={"surface": "feed"}, metadata=content_types(("Illustrated", 49.9))
    )
    assert (faint.route.index, faint.verdict) == (2, Verdict.ALLOW)
    profile = compiled.decide(
        labels, context={"surface": "profile"}, metadata=content_types(("Animated", 99))
    )
    assert profile.route.index == 2


def test_a_routed_policy_decides_only_on_its_own_detectors_at_its_own_floor(
    tmp_path: Path,
) -> None:
    compiled = compile_policy_set(load_policy_set(write_set(tmp_path)))
    teen = {"surface": "profile", "audience": "teen"}
    # detector b is lenient's, not strict's: strict decides as if b were not there
    from_b = compiled.decide([violence(99, "b")], [DetectorFailure("b", "down")], context=teen)
    assert from_b.verdict is Verdict.ALLOW
    assert from_b.decision.labels == () and from_b.decision.failures == ()
    # below strict's floor (40, the set's too) a label gets no verdict
    assert compiled.decide([violence(39)], context=teen).decision.kept == ()
    # lenient's floor (50) is above the set's (40): what the detectors report
    # between the two is not part of lenient's decision, as if checked alone
    adult = {"surface": "profile"}
    assert compiled.decide([violence(45)], context=adult).decision.labels == ()
    assert compiled.decide([violence(45)], context=teen).verdict is Verdict.REVIEW


def test_a_failed_detector_decides_under_every_reachable_route_and_the_most_severe_stands(
    tmp_path: Path,
) -> None:
    compiled = compile_policy_set(load_policy_set(write_set(tmp_path)))
    failure = DetectorFailure("b", "timed out")
    decided = compiled.decide([violence(96)], [failure], context={"surface": "chat"})
    # artwork (route 1) would allow; lenient (route 2) blocks at 95: block stands
    assert [r.index for r in decided.considered] == [1, 2]
    assert (decided.route.index, decided.verdict) == (2, Verdict.BLOCK)
    record = decided.to_dict()
    assert [r["index"] for r in record["route"]["considered"]] == [1, 2]
    # a reported content type is known whatever failed: no guess, no other route
    known = compiled.decide(
        [violence(96)],
        [failure],
        context={"surface": "chat"},
        metadata=content_types(("Animated", 90)),
    )
    assert [r.index for r in known.considered] == [1]
    # on a surface no content_type route holds for, the failure changes no route
    profile = compiled.decide([violence(96)], [failure], context={"surface": "profile"})
    assert [r.index for r in profile.considered] == [2]


def test_malformed_content_types_are_unknown_not_absent(tmp_path: Path) -> None:
    compiled = compile_policy_set(load_policy_set(write_set(tmp_path)))
    decided = compiled.decide(
        [violence(96)], context={"surface": "feed"}, metadata={"a": {"content_types": "x"}}
    )
    assert [r.index for r in decided.considered] == [1, 2]
    assert decided.verdict is Verdict.BLOCK


def test_the_record_carries_context_route_and_policy_set(tmp_path: Path) -> None:
    from tests.cli.conftest import decision_errors

    policy_set = load_policy_set(write_set(tmp_path))
    compiled = compile_policy_set(policy_set)
    decided = compiled.decide(
        [violence(70)],
        context={"surface": "chat", "upload": "u-1"},
        metadata=content_types(("Animated", 80)),
    )
    record = json.loads(json.dumps(decided.to_dict()))
    assert record["context"] == {"surface": "chat", "audience": "adult"}
    assert record["route"] == {
        "index": 1,
        "when": {"surface": ["feed", "chat"], "content_type": ["Animated", "Illustrated"]},
        "policy": "artwork.yaml",
    }
    assert record["policy_set"] == {"name": "community", "digest": policy_set.digest}
    assert record["policy"]["name"] == "artwork"
    assert record["policy"]["digest"] == policy_set.routes[1].policy.digest
    assert decision_errors(record) == []


# -- digest ------------------------------------------------------------------------


def test_the_digest_covers_the_set_and_every_routed_policy(tmp_path: Path) -> None:
    one = tmp_path / "one"
    one.mkdir()
    first = load_policy_set(write_set(one))
    # the same set, formatted otherwise, values in another order, a file renamed
    other = tmp_path / "two"
    other.mkdir()
    respelt = (
        SET.replace("[feed, profile, chat]", "\n      - chat\n      - feed\n      - profile")
        .replace("lenient.yaml", "renamed.yaml")
        .replace("content_type: [Animated, Illustrated]", "content_type: [illustrated, ANIMATED]")
    )
    second = load_policy_set(write_set(other, respelt, renamed=LENIENT))
    assert second.digest == first.digest
    # a routed policy's threshold is part of it
    third = tmp_path / "three"
    third.mkdir()
    changed = load_policy_set(write_set(third, lenient=LENIENT.replace("95", "96")))
    assert changed.digest != first.digest
    # and so is the order of the routes
    fourth = tmp_path / "four"
    fourth.mkdir()
    swapped = SET.replace("audience: teen}", "audience: adult}")
    assert load_policy_set(write_set(fourth, swapped)).digest != first.digest


# -- the README's worked example ---------------------------------------------------


def test_the_readme_example_set_loads_over_the_reference_policies_and_its_code_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import re
    import shutil

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    (block,) = [
        b
        for b in re.findall(r"```yaml\n(.*?)```", readme, re.S)
        if b.startswith("# community.set.yaml")
    ]
    for name in ("general-ugc", "marketplace", "young-audience", "illustrated", "teen-marketplace"):
        shutil.copy(root / "policies" / f"{name}.yaml", tmp_path)
    (tmp_path / "community.set.yaml").write_text(block)
    result = check_policy_set_file(tmp_path / "community.set.yaml")
    assert result.diagnostics == ()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "policy_set" in b]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == "block 4 {'surface': 'chat', 'audience': 'adult'}\n"


@settings(max_examples=100, deadline=None)
@given(
    confidences=st.lists(st.floats(0, 100), max_size=4),
    sources=st.lists(st.sampled_from(["a", "b"]), min_size=4, max_size=4),
    surface=st.sampled_from(["feed", "profile", "chat"]),
    reported=st.sampled_from([(), ("Animated", 70.0), ("Illustrated", 20.0)]),
)
def test_a_failure_decides_at_least_as_severely_as_every_outcome_it_hides(
    tmp_path_factory: pytest.TempPathFactory,
    confidences: list[float],
    sources: list[str],
    surface: str,
    reported: tuple[str, float] | tuple[()],
) -> None:
    compiled = _community(tmp_path_factory)
    labels = [violence(c, s) for c, s in zip(confidences, sources, strict=False)]
    failure = [DetectorFailure("b", "down")]
    metadata = content_types(reported) if reported else {}
    with_failure = compiled.decide(labels, failure, {"surface": surface}, metadata)
    # whatever content types the failed detector would have reported, that route was
    # considered, and its decision is no more severe than the one made without knowing
    considered = {r.index for r in with_failure.considered}
    for extra in ((), ("Animated", 99.0), ("Illustrated", 99.0)):
        entries = [e for e in (reported, extra) if e]
        known = compiled.decide(
            labels, failure, {"surface": surface}, content_types(*entries) if entries else {}
        )
        assert known.route.index in considered
        assert known.verdict.severity <= with_failure.verdict.severity
        # had the detector answered (no failure, these content types): one of the
        # routes considered, and never a more severe decision
        answered = compiled.decide(
            labels, (), {"surface": surface}, content_types(*entries) if entries else {}
        )
        assert answered.route.index in considered
        assert answered.verdict.severity <= with_failure.verdict.severity
    # and it is the routed policy's own decision, as if checked alone
    route = with_failure.route
    alone = compiled.compiled(route).evaluate(
        [x for x in labels if x.source in route.policy.detectors and x.confidence >= 50],
        [f for f in failure if f.source in route.policy.detectors],
    )
    assert with_failure.verdict is alone.verdict


_COMMUNITY: list[object] = []


def _community(factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if not _COMMUNITY:
        folder = factory.mktemp("community")
        _COMMUNITY.append(compile_policy_set(load_policy_set(write_set(folder))))
    return _COMMUNITY[0]


def test_eight_routes_that_extend_one_base_read_and_parse_each_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 item 7: a set of 8 routes sharing a base reads and parses each file once."""
    (tmp_path / "base.yaml").write_text(
        "version: 1\nname: base\ndetectors: {stub: {}}\nrules:\n"
        "  - id: violence\n    match: {parent: Violence}\n    block_at: 90\n",
        encoding="utf-8",
    )
    values = [f"s{n}" for n in range(8)]
    routes = []
    for n, value in enumerate(values):
        (tmp_path / f"route{n}.yaml").write_text(
            f"version: 1\nname: route{n}\nextends: base.yaml\nmin_confidence: {50 + n}\n"
            "rules: []\n",
            encoding="utf-8",
        )
        routes.append(f"  - when: {{surface: {value}}}\n    policy: route{n}.yaml\n")
    set_file = tmp_path / "eight.set.yaml"
    set_file.write_text(
        "version: 1\nkind: policy-set\nname: eight\ncontext:\n  surface:\n"
        f"    values: [{', '.join(values)}]\nroutes:\n" + "".join(routes),
        encoding="utf-8",
    )
    read: list[str] = []
    parsed: list[str] = []
    read_bytes, compose = source.read_bounded, source._compose

    def reading(path: Path, max_bytes: int, *, what: str = "file") -> bytes:
        read.append(Path(path).name)
        return read_bytes(path, max_bytes, what=what)

    def parsing(text: str) -> Any:
        parsed.append(next(line for line in text.splitlines() if line.startswith("name:")))
        return compose(text)

    monkeypatch.setattr(source, "read_bounded", reading)
    monkeypatch.setattr(source, "_compose", parsing)
    policy_set = load_policy_set(set_file)
    assert policy_set is not None and len(policy_set.routes) == 8
    files = ["eight.set.yaml", "base.yaml", *(f"route{n}.yaml" for n in range(8))]
    assert sorted(read) == sorted(files)
    assert sorted(parsed) == sorted(
        ["name: eight", "name: base"] + [f"name: route{n}" for n in range(8)]
    )

    # what the Moderator and the CLI load with: telling a set from a policy reads nothing twice
    read.clear()
    parsed.clear()
    loaded = check_policy_or_set_file(set_file)
    assert isinstance(loaded, PolicySetLoadResult) and loaded.policy_set is not None
    assert loaded.policy_set.digest == policy_set.digest
    assert sorted(read) == sorted(files)
    read.clear()
    one = check_policy_or_set_file(tmp_path / "route0.yaml")
    assert isinstance(one, loader.LoadResult) and one.policy is not None
    assert sorted(read) == ["base.yaml", "route0.yaml"]
