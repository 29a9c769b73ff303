"""The policy JSON Schema check (policy_engine.schema): every error located, the
values that are fine kept usable, and detector settings schemas cached."""

from __future__ import annotations

from policy_engine.schema import check_policy_data, policy_schema, settings_validator
from policy_engine.source import parse_document

TEXT = """\
version: 1
name: schema-test
min_confidence: 150
rules:
  - id: ok
    match: {name: Violence}
    block_at: 90
  - id: typo
    match: {name: Knife}
    blok_at: 90
"""


def test_every_error_is_located_and_the_good_values_stay_usable() -> None:
    document = parse_document(TEXT, "p.yaml")
    report = check_policy_data(document.data, document.source_map)
    found = {(d.code, d.line, d.column) for d in report.diagnostics}
    assert ("out-of-range", 3, 17) in found
    assert any(code == "unknown-key" and line == 10 for code, line, _ in found), found
    assert not report.usable(("min_confidence",))
    assert report.usable(("rules", 0))
    assert not report.usable(("rules", 1))


def test_values_already_reported_are_not_reported_again() -> None:
    document = parse_document(TEXT, "p.yaml")
    report = check_policy_data(
        document.data, document.source_map, reported=frozenset({("min_confidence",)})
    )
    assert all(d.line != 3 for d in report.diagnostics)
    assert not report.usable(("min_confidence",))


def test_the_policy_schema_is_draft_2020_12() -> None:
    assert policy_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_a_settings_schema_gets_one_validator_however_it_is_spelt() -> None:
    schema = {"type": "object", "properties": {"region": {"type": "string"}}}
    same = {"properties": {"region": {"type": "string"}}, "type": "object"}
    assert settings_validator(schema) is settings_validator(same)
    assert list(settings_validator(schema).iter_errors({"region": 1}))
