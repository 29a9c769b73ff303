"""Strictness over the contexts of policy sets (POLICY_SPEC sections 10-11):
``diff_sets`` (two sets, or a set and a policy, combination by combination) and
context promises in tests files (``at_least_as_strict`` ... ``than``)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from policy_engine.errors import SetComparisonError
from policy_engine.loader import load_policy
from policy_engine.policy_set import PolicySet, load_policy_set
from policy_engine.review.runner import run_tests_file
from policy_engine.review.set_strictness import compare_contexts, diff_sets
from policy_engine.review.strictness import Relation
from policy_engine.review.tests_file import check_tests_file

POLICIES = {
    "strict": """\
version: 1
name: strict
detectors:
  rekognition-moderation: {}
rules:
  - id: violence
    match: {parent: Violence}
    block_at: 60
""",
    "middle": """\
version: 1
name: middle
detectors:
  rekognition-moderation: {}
rules:
  - id: violence
    match: {parent: Violence}
    review_at: 60
    block_at: 95
""",
    "loose": """\
version: 1
name: loose
detectors:
  rekognition-moderation: {}
rules:
  - id: violence
    match: {parent: Violence}
    action: allow
""",
}

SET = """\
version: 1
kind: policy-set
name: community
context:
  surface:
    values: [feed, profile, chat]
  audience:
    values: [adult, teen]
routes:
  - when: {audience: teen}
    policy: strict.yaml
  - when: {surface: feed, content_type: Illustrated}
    policy: loose.yaml
  - policy: middle.yaml
"""

# teen profile images now go to the loose policy: teen is no longer as strict as adult there
LEAKY = SET.replace(
    "routes:\n", "routes:\n  - when: {audience: teen, surface: profile}\n    policy: loose.yaml\n"
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name, text in POLICIES.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    (tmp_path / "community.set.yaml").write_text(SET)
    (tmp_path / "leaky.set.yaml").write_text(LEAKY)
    return tmp_path


def brute_force_relations(old: PolicySet, new: PolicySet, registry) -> set[tuple[int, int]]:
    """Every (old route, new route) pair some context value and content-type subset
    takes, enumerating every value and subset (not classes)."""
    found = set()
    dims = old.dimensions
    types = ["illustrated", "animated"]
    for values in itertools.product(*(d.values for d in dims)):
        context = dict(zip((d.name for d in dims), values, strict=True))
        for size in range(len(types) + 1):
            for reported in itertools.combinations(types, size):
                a = old.route_for(context, frozenset(reported))
                b = new.route_for(context, frozenset(reported))
                assert a is not None and b is not None
                found.add((a.index, b.index))
    return found


def test_diff_sets_pairs_every_context_exactly_as_brute_force(folder, registry):
    old = load_policy_set(folder / "community.set.yaml", registry=registry)
    new = load_policy_set(folder / "leaky.set.yaml", registry=registry)
    found = diff_sets(old, new, registry)
    assert not found.by_index
    pairs = {(p.old_route.index, p.new_route.index) for p in found.pairs}
    assert pairs == brute_force_relations(old, new, registry)
    assert found.relation is Relation.MORE_LENIENT
    assert not found.new_at_least_as_strict
    leaked = [p for p in found.pairs if p.strictness.a_less_severe]
    assert [(p.old_route.policy_file, p.new_route.policy_file) for p in leaked] == [
        ("strict.yaml", "loose.yaml")
    ]
    assert all(dict(c[0])["surface"] == "profile" for c in leaked[0].combinations)
    assert diff_sets(new, old, registry).relation is Relation.STRICTER
    assert diff_sets(old, old, registry).relation is Relation.EQUAL
    assert diff_sets(old, old, registry).by_index


def test_a_plain_policy_routes_every_context_to_itself(folder, registry):
    old = load_policy_set(folder / "community.set.yaml", registry=registry)
    strict = load_policy(folder / "strict.yaml", registry=registry)
    assert diff_sets(old, strict, registry).relation is Relation.STRICTER
    assert diff_sets(strict, old, registry).relation is Relation.MORE_LENIENT


def test_sets_with_other_values_for_one_dimension_are_refused(folder, registry, tmp_path):
    old = load_policy_set(folder / "community.set.yaml", registry=registry)
    (tmp_path / "wider.set.yaml").write_text(SET.replace("profile, chat]", "profile, chat, shop]"))
    wider = load_policy_set(tmp_path / "wider.set.yaml", registry=registry)
    with pytest.raises(SetComparisonError, match="dimension 'surface' has values"):
        diff_sets(old, wider, registry)


def test_context_comparison_covers_every_other_dimension(folder, registry):
    good = load_policy_set(folder / "community.set.yaml", registry=registry)
    found = compare_contexts(good, {"audience": "teen"}, {"audience": "adult"}, registry)
    assert all(c.strictness.a_at_least_as_strict for c in found)
    # surface classes: feed and the rest (profile and chat are routed alike); content types:
    # Illustrated reported or not
    assert len(found) == 4
    leaky = load_policy_set(folder / "leaky.set.yaml", registry=registry)
    broken = [
        c
        for c in compare_contexts(leaky, {"audience": "teen"}, {"audience": "adult"}, registry)
        if not c.strictness.a_at_least_as_strict
    ]
    assert {dict(c.combination[0])["surface"] for c in broken} == {"profile"}
    with pytest.raises(SetComparisonError, match="not a dimension"):
        compare_contexts(good, {"age": "teen"}, {"age": "adult"}, registry)
    with pytest.raises(SetComparisonError, match="not one of"):
        compare_contexts(good, {"audience": "kid"}, {"audience": "adult"}, registry)
    with pytest.raises(SetComparisonError, match="different dimensions"):
        compare_contexts(good, {"audience": "teen"}, {"surface": "feed"}, registry)


PROMISE = """\
policy: {policy}
invariants:
  - name: teen at least as strict as adult on every surface
    at_least_as_strict: {{context: {{audience: teen}}}}
    than: {{context: {{audience: adult}}}}
"""


def test_a_context_promise_in_a_tests_file_holds_or_names_the_context(folder, registry):
    tests = folder / "community.tests.yaml"
    tests.write_text(PROMISE.format(policy="community.set.yaml"))
    loaded = check_tests_file(tests, registry)
    assert loaded.tests is not None, loaded.diagnostics
    result = run_tests_file(loaded.tests, registry)
    assert [r.passed for r in result.invariants] == [True]
    tests.write_text(PROMISE.format(policy="leaky.set.yaml"))
    loaded = check_tests_file(tests, registry)
    assert loaded.tests is not None, loaded.diagnostics
    (broken,) = run_tests_file(loaded.tests, registry).invariants
    assert not broken.passed
    details = broken.details()
    assert details[0].startswith("broken: less severe in")
    assert details[1].startswith(
        "counterexample: surface=profile, content types reported: none, "
        "route 0 (loose.yaml) vs route 3 (middle.yaml): "
    )
    assert "audience=teen allow" in details[1] and "audience=adult review" in details[1]


def test_context_promises_are_refused_where_they_do_not_fit(folder, registry):
    tests = folder / "strict.tests.yaml"
    tests.write_text(PROMISE.format(policy="strict.yaml"))
    loaded = check_tests_file(tests, registry)
    assert loaded.tests is None
    assert [d.code for d in loaded.diagnostics] == ["invalid-invariant"]
    assert loaded.diagnostics[0].line == 4
    tests.write_text(
        PROMISE.format(policy="community.set.yaml").replace("audience: adult", "audience: kid")
    )
    loaded = check_tests_file(tests, registry)
    assert [d.code for d in loaded.diagnostics] == ["invalid-context"]
    assert "not one of" in loaded.diagnostics[0].message
    tests.write_text(
        PROMISE.format(policy="community.set.yaml").replace(
            "    than: {context: {audience: adult}}\n", ""
        )
    )
    loaded = check_tests_file(tests, registry)
    assert loaded.tests is None
    assert loaded.diagnostics
