"""Reading YAML safely and boundedly, with positions (POLICY_SPEC 2)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from policy_engine import PolicyLoadError, load_policy, parse_policy
from policy_engine.diagnostics import Position
from policy_engine.errors import SourceError
from policy_engine.loader import check_policy_text
from policy_engine.source import MAX_POLICY_BYTES, parse_document, read_policy_text

VALID = "version: 1\nname: p\nrules: []\n"


def codes(text: str) -> list[tuple[str, int, int]]:
    return [(d.code, d.line, d.column) for d in check_policy_text(text, "f.yaml").errors]


def test_valid_minimal_document_parses() -> None:
    document = parse_document(VALID, "f.yaml")
    assert document.data == {"version": 1, "name": "p", "rules": []}


def test_source_map_records_value_and_key_positions() -> None:
    text = "version: 1\nname: p\nrules:\n  - id: a\n    match: {name: X}\n    action: block\n"
    source_map = parse_document(text, "f.yaml").source_map

    def where(position: Position) -> tuple[int, int]:
        return position.line, position.column

    assert where(source_map.at(("rules", 0, "id"))) == (4, 9)
    assert where(source_map.key_at(("rules", 0, "match"))) == (5, 5)
    assert where(source_map.at(("rules", 0, "match", "name"))) == (5, 19)


def test_positions_are_plain_position_values() -> None:
    """The builder fills positions' slots directly (fast); they must be the very
    values Position(line, column) makes: equal, hashed, ordered and shown alike."""
    source_map = parse_document("name: p\nrules:\n  - id: a\n", "f.yaml").source_map
    made = source_map.at(("rules", 0, "id"))
    assert made == Position(3, 9) and hash(made) == hash(Position(3, 9))
    assert repr(made) == repr(Position(3, 9)) and made.file is None
    assert sorted([made, Position(1, 1), Position(3, 10)]) == [
        Position(1, 1),
        Position(3, 9),
        Position(3, 10),
    ]


# -- duplicate keys ----------------------------------------------------------


def test_duplicate_top_level_key_is_an_error_at_the_second_key() -> None:
    text = "version: 1\nname: p\nname: q\nrules: []\n"
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(text, "f.yaml")
    (diagnostic,) = info.value.diagnostics
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("duplicate-key", 3, 1)
    assert "'name'" in diagnostic.message and "line 2" in diagnostic.message


def test_duplicate_key_in_nested_mapping_is_an_error() -> None:
    text = (
        "version: 1\nname: p\nrules:\n  - id: a\n    match: {name: X, name: Y}\n    action: block\n"
    )
    assert codes(text) == [("duplicate-key", 5, 22)]


def test_duplicate_key_in_a_rule_body_is_an_error() -> None:
    text = (
        "version: 1\nname: p\nrules:\n"
        "  - id: a\n    match: {name: X}\n    block_at: 90\n    block_at: 10\n"
    )
    assert codes(text) == [("duplicate-key", 7, 5)]


def test_every_duplicate_key_is_reported() -> None:
    text = "version: 1\nversion: 1\nname: p\nname: p\nrules: []\n"
    assert codes(text) == [("duplicate-key", 2, 1), ("duplicate-key", 4, 1)]


def test_duplicate_key_and_unknown_key_are_both_reported() -> None:
    # POLICY_SPEC 2: a file with several errors gets all of them reported.
    text = "version: 1\nname: p\nname: q\nrulez: []\nrules: []\n"
    found = codes(text)
    assert ("duplicate-key", 3, 1) in found
    assert ("unknown-key", 4, 1) in found


# -- unsafe tags -----------------------------------------------------------


def test_python_object_tag_is_refused_without_executing(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    text = (
        "version: 1\nname: p\n"
        f"description: !!python/object/apply:os.system ['touch {marker}']\n"
        "rules: []\n"
    )
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(text, "f.yaml")
    assert not marker.exists()
    found = [(d.code, d.line, d.column) for d in info.value.diagnostics]
    assert ("yaml-tag", 3, 14) in found


def test_python_name_tag_on_a_scalar_is_refused() -> None:
    text = "version: 1\nname: !!python/name:os.system ''\nrules: []\n"
    assert codes(text) == [("yaml-tag", 2, 7)]


def test_local_tag_is_refused() -> None:
    text = "version: 1\nname: !custom p\nrules: []\n"
    assert codes(text) == [("yaml-tag", 2, 7)]


def test_set_and_omap_tags_are_refused() -> None:
    text = "version: 1\nname: p\ndetectors: !!set {a: null}\nrules: !!omap []\n"
    found = codes(text)
    assert ("yaml-tag", 3, 12) in found
    assert ("yaml-tag", 4, 8) in found


def test_merge_key_is_refused() -> None:
    text = "version: 1\nname: p\nrules:\n  - id: a\n    match: {name: X}\n    <<: {action: block}\n"
    # the merged keys are not used, so the rule also lacks a body
    assert ("yaml-merge-key", 6, 5) in codes(text)
    with pytest.raises(PolicyLoadError):
        parse_policy(text)


@pytest.mark.parametrize(
    "tagged",
    ["!!int abc", "!!float abc", "!!bool abc", "!!int", "!!float", "!!int 1", "!!str 1"],
)
def test_explicit_standard_tags_never_escape_as_other_exceptions(tagged: str) -> None:
    text = f"version: 1\nname: p\ndescription: {tagged}\nrules: []\n"
    result = check_policy_text(text, "f.yaml")  # must not raise anything
    if tagged == "!!str 1":
        assert result.policy is not None and result.policy.description == "1"
    else:
        assert result.policy is None
        assert result.errors and result.errors[0].line == 3


# -- size and expansion bounds ---------------------------------------------


def _padded(size: int) -> str:
    padding = size - len(VALID.encode()) - 2
    return VALID + "#" + "x" * padding + "\n"


def test_text_of_exactly_one_mebibyte_loads() -> None:
    text = _padded(MAX_POLICY_BYTES)
    assert len(text.encode()) == MAX_POLICY_BYTES
    assert parse_policy(text).name == "p"


def test_text_over_one_mebibyte_is_refused() -> None:
    text = _padded(MAX_POLICY_BYTES + 1)
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(text)
    assert [d.code for d in info.value.diagnostics] == ["file-too-large"]


def test_size_counts_bytes_not_characters() -> None:
    # 'é' is two bytes in UTF-8: this text is under 1 Mi characters but over 1 MiB.
    text = VALID + "#" + "é" * (MAX_POLICY_BYTES // 2 + 10) + "\n"
    assert len(text) < MAX_POLICY_BYTES < len(text.encode())
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(text)
    assert [d.code for d in info.value.diagnostics] == ["file-too-large"]


def test_file_over_one_mebibyte_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(_padded(MAX_POLICY_BYTES + 1))
    with pytest.raises(PolicyLoadError) as info:
        load_policy(path)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "file-too-large"
    assert diagnostic.file == str(path)


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_billion_laughs_is_refused_quickly() -> None:
    started = time.perf_counter()
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(BILLION_LAUGHS, "laughs.yaml")
    elapsed = time.perf_counter() - started
    assert [d.code for d in info.value.diagnostics] == ["document-too-large"]
    assert elapsed < 2.0  # generous sanity bound; the spec asks for well under a second


def test_billion_laughs_inside_a_policy_value_is_refused() -> None:
    text = (
        "version: 1\nname: p\ndetectors:\n  x:\n"
        + "".join("    " + line + "\n" for line in BILLION_LAUGHS.splitlines())
        + "rules: []\n"
    )
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(text)
    assert [d.code for d in info.value.diagnostics] == ["document-too-large"]


def test_recursive_alias_is_refused() -> None:
    text = "version: 1\nname: p\ndetectors:\n  x: &a {y: *a}\nrules: []\n"
    started = time.perf_counter()
    with pytest.raises(PolicyLoadError):
        parse_policy(text)
    assert time.perf_counter() - started < 2.0


def test_small_aliases_are_allowed() -> None:
    text = (
        "version: 1\nname: p\nrules:\n"
        "  - {id: a, match: &m {name: X}, action: block}\n"
        "  - {id: b, match: {name: Y, parent: X}, action: review}\n"
        "default: &d {review_at: 60}\n"
    )
    policy = parse_policy(text)
    assert policy.default.review_at == 60


# -- documents -------------------------------------------------------------


def test_multiple_documents_are_refused() -> None:
    text = VALID + "---\n" + VALID
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(text, "f.yaml")
    (diagnostic,) = info.value.diagnostics
    assert (diagnostic.code, diagnostic.line) == ("yaml-syntax", 4)
    assert "single YAML document" in diagnostic.message


def test_leading_document_marker_is_one_document() -> None:
    assert parse_policy("---\n" + VALID).name == "p"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_is_an_error(text: str) -> None:
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(text, "f.yaml")
    assert [d.code for d in info.value.diagnostics] == ["empty-policy"]


def test_document_that_is_not_a_mapping_is_an_error() -> None:
    with pytest.raises(PolicyLoadError) as info:
        parse_policy("- version: 1\n", "f.yaml")
    assert [d.code for d in info.value.diagnostics] == ["wrong-type"]


def test_yaml_syntax_error_is_positioned() -> None:
    text = "version: 1\nname: p\nrules: [\n"
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(text, "f.yaml")
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "yaml-syntax"
    assert diagnostic.line >= 3


def test_bad_utf8_file_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"version: 1\nname: p\ndescription: caf\xe9\nrules: []\n")
    with pytest.raises(PolicyLoadError) as info:
        load_policy(path)
    (diagnostic,) = info.value.diagnostics
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("encoding", 3, 1)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + VALID.encode())
    assert load_policy(path).name == "p"


def test_missing_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError) as info:
        load_policy(tmp_path / "absent.yaml")
    assert [d.code for d in info.value.diagnostics] == ["unreadable"]


def test_load_policy_records_file_and_base_dir(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(VALID)
    policy = load_policy(path)
    assert policy.file == str(path)
    assert Path(policy.base_dir) == tmp_path.resolve()


@pytest.mark.parametrize(
    ("written", "meaning"),
    [("050", 50), ("017", 17), ("+50", 50), ("97.5", 97.5), ("50.", 50.0), ("1e1", None)],
)
def test_numbers_are_plain_decimal(written: str, meaning: float | None) -> None:
    result = check_policy_text(f"version: 1\nname: x\nmin_confidence: {written}\nrules: []\n")
    if meaning is None:  # YAML reads 1e1 (no dot) as a string: the schema says so
        assert [d.code for d in result.diagnostics] == ["wrong-type"]
    else:
        assert result.policy is not None and result.policy.min_confidence == meaning


@pytest.mark.parametrize("written", ["1:30", "0x1f", "1_000", ".inf", "-.Inf", ".NaN"])
def test_numbers_that_yaml_1_1_would_misread_are_refused(written: str) -> None:
    result = check_policy_text(f"version: 1\nname: x\nmin_confidence: {written}\nrules: []\n")
    assert [(d.code, d.line, d.column) for d in result.diagnostics] == [("yaml-value", 3, 17)]


def test_a_huge_number_is_refused_before_it_is_converted() -> None:
    text = "version: 1\nname: x\nrules: []\nmin_confidence: 1" + ":59" * 300_000 + "\n"
    started = time.perf_counter()
    result = check_policy_text(text)
    assert time.perf_counter() - started < 5  # generous: it used to take 24 s, then crash
    assert [d.message for d in result.diagnostics] == ["a number of 900001 characters is too long"]


def test_a_refused_key_hides_no_other_error_of_its_mapping() -> None:
    result = check_policy_text("version: 1\nname: x\n2020-01-01: x\nrulez: []\n")
    codes = {(d.code, d.line) for d in result.diagnostics}
    assert ("yaml-tag", 3) in codes
    assert ("missing-key", 1) in codes  # rules
    assert ("unknown-key", 4) in codes  # rulez


def test_a_policy_path_that_is_a_fifo_is_refused_unopened(tmp_path: Path) -> None:
    """Reading a FIFO blocks until a writer comes: `validate`, an `extends:` or
    a policy set's route naming one must be a located error, never a hang."""
    from policy_engine.loader import check_policy_file
    from policy_engine.policy_set import check_policy_set_file

    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    (tmp_path / "child.yaml").write_text(
        "version: 1\nname: child\nextends: fifo.yaml\nrules: []\n", encoding="utf-8"
    )
    (tmp_path / "s.set.yaml").write_text(
        "version: 1\nkind: policy-set\nname: s\ncontext:\n  surface: {values: [a]}\n"
        "routes:\n  - policy: fifo.yaml\n",
        encoding="utf-8",
    )
    with pytest.raises(SourceError) as raised:
        read_policy_text(fifo)
    assert [d.code for d in raised.value.diagnostics] == ["not-a-regular-file"]
    child = check_policy_file(tmp_path / "child.yaml")
    assert child.policy is None
    assert {d.code for d in child.errors} == {"base-does-not-load", "not-a-regular-file"}
    routed = check_policy_set_file(tmp_path / "s.set.yaml")
    assert routed.policy_set is None
    assert "route-policy-does-not-load" in {d.code for d in routed.errors}
