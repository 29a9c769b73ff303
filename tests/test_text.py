"""Text that is not valid Unicode never breaks a writer, and names stay recoverable."""

from __future__ import annotations

import base64
import json
import os

from hypothesis import given
from hypothesis import strategies as st

from policy_engine.text import (
    has_surrogates,
    join_surrogate_pairs,
    json_dumps,
    name_fields,
    printable,
)

# Any text, lone surrogates included (hypothesis leaves them out by default).
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)


@given(JSON_VALUES)
def test_json_dumps_is_always_valid_utf8_json(value: object) -> None:
    text = json_dumps(value)
    parsed = json.loads(text.encode("utf-8").decode("utf-8"))
    assert not has_surrogates(text)
    if not has_surrogates(json.dumps(value, ensure_ascii=False)):  # nothing to escape
        assert parsed == value


@given(ANY_TEXT)
def test_printable_escapes_only_what_utf8_cannot_hold(text: str) -> None:
    shown = printable(text)
    shown.encode("utf-8")  # never raises
    if not has_surrogates(text):
        assert shown == text


def test_an_undecodable_byte_shows_as_hex_and_any_other_surrogate_as_u() -> None:
    assert printable(os.fsdecode(b"caf\xe9")) == "caf\\xe9"
    assert printable("a\ud800b") == "a\\ud800b"


@given(st.binary(min_size=1, max_size=40))
def test_a_file_name_round_trips_through_its_record(raw: bytes) -> None:
    name = os.fsdecode(raw)
    fields = json.loads(json_dumps(name_fields(name)))
    if "input_base64" in fields:
        assert base64.b64decode(fields["input_base64"]) == raw
    else:
        assert os.fsencode(fields["input"]) == raw


def test_surrogate_pairs_join_into_one_character_and_lone_ones_stay() -> None:
    assert join_surrogate_pairs("\ud83d\ude00") == "\U0001f600"
    assert join_surrogate_pairs("\ud800x\udfff") == "\ud800x\udfff"
