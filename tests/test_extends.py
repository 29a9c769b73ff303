"""``extends`` and ``remove_rules`` (POLICY_SPEC section 9): the effective
policy, the checks on it, diagnostics located in the file that wrote each
node, the digest over the effective policy, the file of the deciding rule,
and each file read once per load."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from policy_engine import (
    CompiledPolicy,
    DetectorRegistry,
    Image,
    Label,
    load_policy,
)
from policy_engine.engine import Engine
from policy_engine.loader import (
    MAX_EXTENDS_DEPTH,
    PolicyFileCache,
    check_policy_file,
    check_policy_text,
)
from policy_engine.review.explain import trace_label
from policy_engine.review.table import decision_table
from policy_engine.schema import policy_schema

ROOT = Path(__file__).resolve().parent.parent

BASE = """\
version: 1
name: base
description: the base
min_confidence: 40
default: review
detectors:
  stub: {labels: [{name: Knife, confidence: 90}]}
  other: {labels: [{name: Knife, confidence: 10}]}
labels:
  - {name: Knife, parent: Weapons}
  - {name: Dagger, parent: Weapons}
rules:
  - id: weapons
    match: {parent: Weapons}
    review_at: 50
  - id: knife
    match: {name: Knife}
    block_at: 90
  - id: explicit
    match: {parent: Explicit}
    action: block
  - id: gambling-ok
    match: {parent: Gambling}
    action: allow
"""

TOP = """\
version: 1
name: top
extends: base.yaml
remove_rules: [gambling-ok]
on_error: block
detectors:
  other: {labels: [{name: Dagger, confidence: 70}]}
labels:
  - {name: KNIFE, parent: Blades}
rules:
  - id: knife
    match: {name: Knife}
    action: block
  - id: violence
    match: {parent: Violence}
    review_at: 60
"""

# what TOP extending BASE means, written out in one file (section 9's table)
MERGED = """\
version: 1
name: top
description: the base
min_confidence: 40
default: review
on_error: block
detectors:
  stub: {labels: [{name: Knife, confidence: 90}]}
  other: {labels: [{name: Dagger, confidence: 70}]}
labels:
  - {name: Dagger, parent: Weapons}
  - {name: KNIFE, parent: Blades}
rules:
  - id: weapons
    match: {parent: Weapons}
    review_at: 50
  - id: knife
    match: {name: Knife}
    action: block
  - id: explicit
    match: {parent: Explicit}
    action: block
  - id: violence
    match: {parent: Violence}
    review_at: 60
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def codes(result: Any) -> list[tuple[str, str, int, int]]:
    return [(d.code, Path(d.file).name, d.line, d.column) for d in result.diagnostics]


def test_the_effective_policy_follows_the_table_of_section_9(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    policy = load_policy(write(tmp_path, "top.yaml", TOP))
    merged = load_policy(write(tmp_path, "merged.yaml", MERGED))
    assert policy.to_data() == merged.to_data()  # rule order too: replaced in place, appended
    assert policy.digest == merged.digest
    assert [rule.id for rule in policy.rules] == ["weapons", "knife", "explicit", "violence"]


def test_each_rule_records_the_file_that_wrote_it(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    policy = load_policy(write(tmp_path, "top.yaml", TOP))
    base = str(tmp_path / "base.yaml")
    assert {rule.id: rule.file for rule in policy.rules} == {
        "weapons": base,
        "knife": None,
        "explicit": base,
        "violence": None,
    }
    assert policy.rules[0].position.line == 13  # where the base wrote it


def test_a_base_of_a_base_counts_and_keeps_its_rules_file(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    write(tmp_path, "mid/top.yaml", TOP.replace("extends: base.yaml", "extends: ../base.yaml"))
    leaf = write(
        tmp_path,
        "leaf.yaml",
        "version: 1\nname: leaf\nextends: mid/top.yaml\nrules:\n"
        "  - {id: violence, match: {parent: Violence}, block_at: 95}\n",
    )
    policy = load_policy(leaf)
    files = {rule.id: rule.file for rule in policy.rules}
    assert files["weapons"] == str(tmp_path / "base.yaml")
    assert files["knife"] == str(tmp_path / "mid" / "top.yaml")
    assert files["violence"] is None
    assert policy.name == "leaf" and policy.on_error.value == "block"


def test_a_label_entry_for_an_alias_spelling_replaces_the_base_entry(tmp_path: Path) -> None:
    registry = DetectorRegistry.installed()
    write(
        tmp_path,
        "base.yaml",
        "version: 1\nname: base\ndetectors: {rekognition-moderation: {}}\nlabels:\n"
        "  - {name: Drugs & Tobacco Paraphernalia & Use, parent: Drugs & Tobacco}\nrules: []\n",
    )
    top = write(
        tmp_path,
        "top.yaml",
        "version: 1\nname: top\nextends: base.yaml\nlabels:\n"
        "  - {name: Drug & Tobacco Paraphernalia & Use, parent: Products}\nrules: []\n",
    )
    result = check_policy_file(top, registry=registry)
    assert result.policy is not None, [d.render() for d in result.diagnostics]
    assert [(d.name, d.parent) for d in result.policy.labels] == [
        ("Drug & Tobacco Paraphernalia & Use", "Products")
    ]


def test_remove_rules_naming_no_base_rule_is_an_error_at_that_item(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    top = write(tmp_path, "top.yaml", TOP.replace("[gambling-ok]", "[gambling-ok, nope]"))
    result = check_policy_file(top)
    assert result.policy is None
    assert codes(result) == [("unknown-removed-rule", "top.yaml", 4, 29)]
    assert "'nope'" in result.diagnostics[0].message


def test_remove_rules_without_extends_is_an_error() -> None:
    result = check_policy_text("version: 1\nname: p\nremove_rules: [a]\nrules: []\n", "p.yaml")
    assert [(d.code, d.line) for d in result.errors] == [("remove-rules-without-extends", 3)]


def test_an_id_written_twice_in_the_extending_file_is_a_duplicate(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    twice = TOP.replace("id: violence", "id: knife")
    result = check_policy_file(write(tmp_path, "top.yaml", twice))
    assert codes(result) == [("duplicate-rule-id", "top.yaml", 14, 9)]
    assert f"the rule at {tmp_path / 'top.yaml'}, line 11" in result.diagnostics[0].message


def test_a_removed_id_written_again_is_appended(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    top = write(
        tmp_path,
        "top.yaml",
        "version: 1\nname: top\nextends: base.yaml\nremove_rules: [weapons]\nrules:\n"
        "  - {id: weapons, match: {parent: Weapons}, block_at: 70}\n",
    )
    policy = load_policy(top)
    assert [rule.id for rule in policy.rules] == ["knife", "explicit", "gambling-ok", "weapons"]
    assert policy.rules[-1].body.block_at == 70


def test_a_missing_base_is_an_error_at_the_extends_node(tmp_path: Path) -> None:
    top = write(tmp_path, "top.yaml", TOP)
    result = check_policy_file(top)
    assert result.policy is None
    assert codes(result) == [("extends-unreadable", "top.yaml", 3, 10)]


def test_a_base_named_with_a_nul_character_is_an_error_at_the_extends_node(
    tmp_path: Path,
) -> None:
    top = write(tmp_path, "top.yaml", TOP.replace("extends: base.yaml", 'extends: "base\\0.yaml"'))
    result = check_policy_file(top)
    assert result.policy is None
    assert codes(result) == [("extends-unreadable", "top.yaml", 3, 10)]


def test_a_base_that_does_not_load_is_an_error_with_its_own_diagnostics(tmp_path: Path) -> None:
    write(
        tmp_path,
        "base.yaml",
        BASE.replace("    block_at: 90", "    review_at: 95\n    block_at: 90"),
    )
    result = check_policy_file(write(tmp_path, "top.yaml", TOP))
    assert result.policy is None
    assert codes(result) == [
        ("threshold-order", "base.yaml", 18, 16),  # the base's own error, its own place
        ("base-does-not-load", "top.yaml", 3, 10),
    ]


def test_a_cycle_of_extends_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "version: 1\nname: a\nextends: b.yaml\nrules: []\n")
    write(tmp_path, "b.yaml", "version: 1\nname: b\nextends: a.yaml\nrules: []\n")
    result = check_policy_file(tmp_path / "a.yaml")
    assert result.policy is None
    assert ("extends-cycle", "b.yaml", 3, 10) in codes(result)
    assert ("base-does-not-load", "a.yaml", 3, 10) in codes(result)
    itself = check_policy_file(
        write(tmp_path, "self.yaml", "version: 1\nname: s\nextends: ./self.yaml\nrules: []\n")
    )
    assert codes(itself) == [("extends-cycle", "self.yaml", 3, 10)]


def test_at_most_eight_levels_of_extends(tmp_path: Path) -> None:
    write(tmp_path, "p0.yaml", "version: 1\nname: p0\ndetectors: {stub: {}}\nrules: []\n")
    for level in range(1, MAX_EXTENDS_DEPTH + 2):
        write(
            tmp_path,
            f"p{level}.yaml",
            f"version: 1\nname: p{level}\nextends: p{level - 1}.yaml\nrules: []\n",
        )
    assert check_policy_file(tmp_path / f"p{MAX_EXTENDS_DEPTH}.yaml").errors == ()
    too_deep = check_policy_file(tmp_path / f"p{MAX_EXTENDS_DEPTH + 1}.yaml")
    assert codes(too_deep) == [("extends-depth", f"p{MAX_EXTENDS_DEPTH + 1}.yaml", 3, 10)]


def test_checks_apply_to_the_effective_policy_located_where_written(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    # the same match as the base's `weapons`, written in the extending file
    clash = TOP.replace("match: {parent: Violence}", "match: {parent: weapons}")
    result = check_policy_file(write(tmp_path, "top.yaml", clash))
    assert codes(result) == [("duplicate-match", "top.yaml", 15, 12)]
    assert "top.yaml" in result.diagnostics[0].file
    assert f"rule 'weapons' ({tmp_path / 'base.yaml'}, line 13)" in result.diagnostics[0].message
    # a labels: cycle made of a base's entry and the file's
    cycle = TOP.replace("{name: KNIFE, parent: Blades}", "{name: Weapons, parent: Dagger}")
    found = check_policy_file(write(tmp_path, "cycle.yaml", cycle))
    assert [d.code for d in found.errors] == ["label-cycle"]


def test_warnings_are_located_and_acknowledged_in_the_file_that_wrote_the_node(
    tmp_path: Path,
) -> None:
    base = (
        "version: 1\nname: base\nmin_confidence: 50\ndetectors: {stub: {}}\nrules:\n"
        "  - id: low\n"
        "    match: {parent: Weapons}\n"
        "    block_at: 10  # policy-engine: ignore[threshold-below-floor]\n"
    )
    write(tmp_path, "base.yaml", base)
    top = "version: 1\nname: top\nextends: base.yaml\nrules: []\n"
    assert check_policy_file(write(tmp_path, "top.yaml", top)).diagnostics == ()
    # the extending file lowers nothing but raises the floor: the base's rule is
    # below it now, and the warning points at the base's rule
    raised = top.replace("rules: []", "min_confidence: 60\nrules: []")
    write(
        tmp_path, "base.yaml", base.replace("  # policy-engine: ignore[threshold-below-floor]", "")
    )
    found = check_policy_file(write(tmp_path, "raised.yaml", raised), cache=PolicyFileCache())
    assert {(d.code, Path(d.file).name, d.line) for d in found.diagnostics} == {
        ("threshold-below-floor", "base.yaml", 8)
    }


def test_a_base_detector_entry_resolves_paths_in_the_base_folder(tmp_path: Path) -> None:
    recordings = tmp_path / "shared" / "recs"
    shutil.copytree(ROOT / "examples" / "recordings", recordings)
    write(
        tmp_path,
        "shared/base.yaml",
        "version: 1\nname: base\ndetectors:\n  stub: {recordings: recs}\nrules:\n"
        "  - {id: weapons, match: {parent: Violence}, block_at: 50}\n",
    )
    top = write(
        tmp_path,
        "surfaces/chat.yaml",
        "version: 1\nname: chat\nextends: ../shared/base.yaml\nrules: []\n",
    )
    engine = Engine.from_policy_file(top, DetectorRegistry.installed())
    picture = ROOT / "examples" / "images" / "knife-fight.jpg"
    image = Image(picture.name, picture.read_bytes())
    decision = engine.check(image)
    assert decision.failures == ()
    assert decision.verdict.value == "block"
    (reason,) = [r for r in decision.to_dict()["reasons"] if r["rule"] == "weapons"][:1]
    assert reason["rule_file"] == str(tmp_path / "shared" / "base.yaml")


def test_table_explain_and_record_name_the_file_of_a_base_rule(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    policy = load_policy(write(tmp_path, "top.yaml", TOP))
    compiled = CompiledPolicy(policy)
    base = str(tmp_path / "base.yaml")
    record = compiled.evaluate(
        [Label("Dagger", 80, "stub", parent="Weapons"), Label("Knife", 95, "stub")]
    ).to_dict()
    files = {reason["rule"]: reason.get("rule_file") for reason in record["reasons"]}
    assert files == {"weapons": base, "knife": None}
    assert {label["rule"]: label.get("rule_file") for label in record["labels"]} == files
    schema = json.loads((ROOT / "schemas" / "decision.schema.json").read_text("utf-8"))
    Draft202012Validator(schema).validate(record)
    rows = {row.label.lower(): row for row in decision_table(compiled).rows}
    assert rows["dagger"].rule_file == base and base in rows["dagger"].describe()
    assert rows["knife"].rule_file is None and "(in" not in rows["knife"].describe()
    trace = trace_label(compiled, Label("Dagger", 80, "stub", parent="Weapons"))
    assert trace.rule_file == base and f"[rule weapons in {base}]" in "\n".join(trace.lines())


def test_a_shared_base_is_read_and_parsed_once_per_load(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    routes = [
        write(tmp_path, f"route{n}.yaml", TOP.replace("name: top", f"name: route{n}"))
        for n in range(8)
    ]
    cache = PolicyFileCache()
    results = [check_policy_file(route, cache=cache) for route in routes]
    assert all(r.policy is not None for r in results)
    assert (cache.reads, cache.parses) == (9, 9)
    check_policy_file(routes[0], cache=cache)  # loaded again: nothing read again
    assert (cache.reads, cache.parses) == (9, 9)
    without = [check_policy_file(route) for route in routes]  # no shared cache: 16 reads
    assert [r.policy for r in without] == [r.policy for r in results]
    shared = PolicyFileCache()
    policies = [load_policy(route, cache=shared) for route in routes]
    assert shared.reads == 9 and [p.name for p in policies] == [f"route{n}" for n in range(8)]


def test_the_readme_example_loads_next_to_the_reference_policy() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    (block,) = [b for b in readme.split("```yaml\n")[1:] if "extends: general-ugc.yaml" in b]
    text = block.split("```", 1)[0]
    result = check_policy_text(
        text, "teen.yaml", registry=DetectorRegistry.installed(), base_dir=str(ROOT / "policies")
    )
    assert result.policy is not None, [d.render() for d in result.errors]
    assert "swimwear-ok" not in {rule.id for rule in result.policy.rules}


def test_the_schema_knows_extends_and_remove_rules() -> None:
    properties = policy_schema()["properties"]
    assert properties["extends"]["type"] == "string"
    assert properties["remove_rules"]["items"]["type"] == "string"
    assert (ROOT / "schemas" / "policy.schema.json").read_text("utf-8") == (
        ROOT / "policy_engine" / "schemas" / "policy.schema.json"
    ).read_text("utf-8")


# -- the digest is over the effective policy: a property ------------------

NAMES = ("Knife", "Weapons", "Violence", "Explicit", "Nudity", "Gambling", "Dagger")
MATCHES = (
    [{"name": n} for n in NAMES]
    + [{"parent": n} for n in NAMES[:5]]
    + [
        {"name": "Knife", "parent": "Weapons"},
        {"name": "Dagger", "source": "stub"},
    ]
)
BODIES = st.one_of(
    st.sampled_from([{"action": "allow"}, {"action": "review"}, {"action": "block"}]),
    st.tuples(st.integers(0, 49), st.integers(50, 100)).map(
        lambda t: {"review_at": t[0], "block_at": t[1]}
    ),
    st.integers(0, 100).map(lambda n: {"block_at": n}),
)


@st.composite
def base_and_extension(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    order = draw(st.permutations(range(len(MATCHES))))
    n_base = draw(st.integers(0, 5))
    base_rules = [
        {"id": f"r{i}", "match": MATCHES[order[i]], **draw(BODIES)} for i in range(n_base)
    ]
    base: dict[str, Any] = {"version": 1, "name": "base", "rules": base_rules}
    if draw(st.booleans()):
        base["min_confidence"] = draw(st.integers(0, 80))
    if draw(st.booleans()):
        base["default"] = draw(st.sampled_from(["allow", "review", "block"]))
    if draw(st.booleans()):
        base["labels"] = [{"name": "Dagger", "parent": "Weapons"}]
    base["detectors"] = {"stub": {"labels": [{"name": "Knife", "confidence": 1}]}}
    # the extension's rules: some take a base id (replacing it), some are new;
    # every rule keeps a match of its own, so the effective policy is valid
    ext_rules = []
    for i in range(draw(st.integers(0, 5))):
        rule_id = draw(st.sampled_from([f"r{j}" for j in range(n_base)] + [f"e{i}"]))
        if any(rule["id"] == rule_id for rule in ext_rules):
            continue
        match = MATCHES[order[n_base + i]] if rule_id.startswith("e") else None
        if match is None:
            match = next(r["match"] for r in base_rules if r["id"] == rule_id)
        ext_rules.append({"id": rule_id, "match": match, **draw(BODIES)})
    ext: dict[str, Any] = {"version": 1, "name": "ext", "extends": "base.yaml", "rules": ext_rules}
    replaced = {rule["id"] for rule in ext_rules}
    removable = [r["id"] for r in base_rules if r["id"] not in replaced]
    if removable and draw(st.booleans()):
        ext["remove_rules"] = draw(st.lists(st.sampled_from(removable), unique=True))
    if draw(st.booleans()):
        ext["min_confidence"] = draw(st.integers(0, 80))
    if draw(st.booleans()):
        ext["on_error"] = draw(st.sampled_from(["allow", "review", "block"]))
    if draw(st.booleans()):
        ext["labels"] = [{"name": "dagger", "parent": "Explicit"}]
    if draw(st.booleans()):
        ext["detectors"] = {"stub": {"labels": [{"name": "Dagger", "confidence": 2}]}}
    return base, ext


def reference_merge(base: dict[str, Any], ext: dict[str, Any]) -> dict[str, Any]:
    """Section 9's table, by hand."""
    merged = {key: value for key, value in base.items() if key != "rules"}
    merged.update(
        {k: v for k, v in ext.items() if k not in ("extends", "remove_rules", "rules", "labels")}
    )
    merged["detectors"] = {**base.get("detectors", {}), **ext.get("detectors", {})}
    ext_labels = ext.get("labels", [])
    taken = {(entry["name"].lower(), entry.get("source")) for entry in ext_labels}
    merged["labels"] = [
        entry
        for entry in base.get("labels", [])
        if (entry["name"].lower(), entry.get("source")) not in taken
    ] + ext_labels
    removed = set(ext.get("remove_rules", []))
    rules = [rule for rule in base["rules"] if rule["id"] not in removed]
    for rule in ext["rules"]:
        ids = [r["id"] for r in rules]
        if rule["id"] in ids and rule["id"] not in removed:
            rules[ids.index(rule["id"])] = rule
        else:
            rules.append(rule)
    merged["rules"] = rules
    return merged


@settings(max_examples=120, deadline=None)
@given(base_and_extension(), st.lists(st.tuples(st.sampled_from(NAMES), st.integers(0, 100))))
def test_a_policy_built_by_extends_equals_it_written_out(
    pair: tuple[dict[str, Any], dict[str, Any]], labels: list[tuple[str, int]]
) -> None:
    base, ext = pair
    with tempfile.TemporaryDirectory() as folder:
        write(Path(folder), "base.yaml", yaml.safe_dump(base))
        extended = load_policy(write(Path(folder), "ext.yaml", yaml.safe_dump(ext)))
    twin = check_policy_text(yaml.safe_dump(reference_merge(base, ext)), "twin.yaml")
    assert twin.policy is not None, twin.diagnostics
    assert extended.digest == twin.policy.digest
    batch = [Label(name, confidence, "stub") for name, confidence in labels]
    a = CompiledPolicy(extended).evaluate(batch)
    b = CompiledPolicy(twin.policy).evaluate(batch)
    assert a.verdict == b.verdict
    assert [o.rule for o in a.outcomes()] == [o.rule for o in b.outcomes()]
