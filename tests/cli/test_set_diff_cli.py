"""``policy-engine diff`` with policy sets: every combination of context and
content types compared, the strictness over all of them, and --fail-on lenient."""

from __future__ import annotations

import pytest

from tests.cli.test_policy_set_cli import ADULT, ART, SET, TEEN


@pytest.fixture
def sets(h, tmp_path):
    for name, text in {"teen": TEEN, "adult": ADULT, "art": ART}.items():
        h.write_text(tmp_path / f"{name}.yaml", text)
    old = h.write_text(tmp_path / "old.set.yaml", SET)
    # the illustrated feed now goes to the adult policy: stricter there, same elsewhere
    new = h.write_text(
        tmp_path / "new.set.yaml", SET.replace("policy: art.yaml", "policy: adult.yaml")
    )
    return old, new


def test_sets_with_the_same_routes_are_compared_route_by_route(h, sets):
    old, new = sets
    result = h.run("diff", old, new, "--fail-on", "lenient")
    assert result.code == 0, result
    assert "policy sets compared route by route" in result.out
    assert (
        "route 0 (audience=teen: teen.yaml) -> route 0 (audience=teen: teen.yaml): same policy"
        in result.out
    )
    assert (
        "art.yaml) -> route 1 (surface=feed, content_type=Illustrated: adult.yaml): stricter"
        in result.out
    )
    assert "[60, 95) allow -> review" in result.out
    assert result.out.rstrip().endswith(
        "strictness: NEW is stricter than OLD (more severe in 1 of 3 route pair(s), "
        "more lenient in none)"
    )


def test_fail_on_lenient_names_the_context_that_loosened(h, sets):
    old, new = sets
    result = h.run("diff", new, old, "--fail-on", "lenient")
    assert result.code == 1, result
    last = result.out.rstrip().splitlines()[-1]
    assert last.startswith("strictness: NEW is more lenient than OLD (more lenient in 1 of 3")
    assert "surface=feed, audience=adult, content types reported: Illustrated:" in last
    data = h.run("diff", new, old, "--format", "json").json()
    assert data["kind"] == "policy-set-diff"
    assert data["matched_by"] == "route"
    assert data["strictness"]["relation"] == "more-lenient"
    assert data["strictness"]["more_lenient"] == [{"old_route": 1, "new_route": 1}]
    changed = [p for p in data["pairs"] if not p["same_policy"]]
    assert len(changed) == 1
    assert changed[0]["diff"]["strictness"]["relation"] == "more-lenient"
    assert {
        "context": {"surface": "feed", "audience": "adult"},
        "content_types": ["Illustrated"],
    } in changed[0]["combinations"]


def test_sets_with_other_routes_are_compared_by_context(h, tmp_path, sets):
    old, _ = sets
    # teen routes by surface now: profile teen images go to the adult policy
    reordered = SET.replace("when: {audience: teen}", "when: {audience: teen, surface: feed}")
    new = h.write_text(tmp_path / "reordered.set.yaml", reordered)
    result = h.run("diff", old, new, "--fail-on", "lenient")
    assert result.code == 1, result
    assert "compared by context (the routes differ)" in result.out
    assert (
        "route 0 (audience=teen: teen.yaml) -> route 2 (always: adult.yaml): more-lenient"
        in result.out
    )
    assert "contexts: surface=profile, audience=teen, content types reported: none" in result.out


def test_a_plain_policy_stands_for_a_set_routing_everything_to_it(h, tmp_path, sets):
    old, _ = sets
    result = h.run("diff", tmp_path / "teen.yaml", old, "--format", "json")
    assert result.code == 0, result
    data = result.json()
    assert data["matched_by"] == "context"
    assert data["strictness"]["relation"] == "more-lenient"
    assert [p["new_route"]["index"] for p in data["pairs"]] == [0, 1, 2]
    assert data["pairs"][0]["same_policy"] is True


def test_sets_whose_dimension_values_differ_are_refused(h, tmp_path, sets):
    old, _ = sets
    other = h.write_text(
        tmp_path / "other.set.yaml",
        SET.replace("values: [feed, profile]", "values: [feed, profile, chat]"),
    )
    result = h.run("diff", old, other)
    assert result.code == 2, result
    assert "dimension 'surface' has values" in result.err
    assert "Traceback" not in result.err


def test_a_set_that_does_not_load_is_exit_2(h, tmp_path, sets):
    old, _ = sets
    broken = h.write_text(tmp_path / "broken.set.yaml", SET.replace("adult.yaml", "missing.yaml"))
    result = h.run("diff", old, broken)
    assert result.code == 2, result
    assert "broken.set.yaml: does not load" in result.err


def test_a_corpus_with_a_set_is_refused(h, tmp_path, sets):
    old, new = sets
    result = h.run("diff", old, new, "--corpus", tmp_path)
    assert result.code == 2, result
    assert "--corpus compares two policies" in result.err


def test_test_counts_a_context_promise_and_prints_its_counterexamples(h, tmp_path, sets):
    del sets  # writes the policies and old.set.yaml
    # teen profile images go to the art policy: teen is no longer as strict as adult there
    leaky = SET.replace(
        "routes:\n", "routes:\n  - when: {audience: teen, surface: profile}\n    policy: art.yaml\n"
    )
    h.write_text(tmp_path / "leaky.set.yaml", leaky)
    promise = (
        "policy: {}\n"
        "invariants:\n"
        "  - at_least_as_strict: {{context: {{audience: teen}}}}\n"
        "    than: {{context: {{audience: adult}}}}\n"
    )
    h.write_text(tmp_path / "community.tests.yaml", promise.format("old.set.yaml"))
    kept = h.run("test", tmp_path / "community.tests.yaml")
    assert kept.code == 0, kept
    assert "0 case(s), 1 invariant(s) (policy set community)" in kept.out
    assert "1 passed, 0 failed" in kept.out
    h.write_text(tmp_path / "community.tests.yaml", promise.format("leaky.set.yaml"))
    broken = h.run("test", tmp_path / "community.tests.yaml")
    assert broken.code == 1, broken
    assert "0 passed, 1 failed" in broken.out
    assert (
        "counterexample: surface=profile, content types reported: none, "
        "route 0 (art.yaml) vs route 3 (adult.yaml): "
    ) in broken.out


def test_markdown_shows_each_changed_pair_and_the_strictness_line(h, sets):
    old, new = sets
    result = h.run("diff", new, old, "--format", "markdown")
    assert result.code == 0, result
    assert result.out.startswith("### Policy set diff:")
    assert (
        "#### route 1 (surface=feed, content_type=Illustrated: adult.yaml) -> route 1" in result.out
    )
    assert "| review | **allow** |" in result.out
    assert "#### route 0" not in result.out  # the same policy: nothing to show
    assert result.out.rstrip().splitlines()[-1].startswith("strictness: NEW is more lenient")
