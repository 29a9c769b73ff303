"""``dumps_indented`` writes what ``json.dumps(ensure_ascii=False, indent=2)`` writes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from policy_engine.indented_json import dumps_indented
from policy_engine.text import json_dumps

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and the infinities too
    | st.text()  # lone surrogates too
)
keys = st.text() | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none()
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(keys, inner, max_size=4)
    ),
    max_leaves=30,
)


@given(values)
def test_the_same_text_as_json_dumps(value: Any) -> None:
    assert dumps_indented(value) == json_dumps(value, indent=2)


def test_other_types_are_left_to_json() -> None:
    class Odd:
        pass

    try:
        dumps_indented({"a": [Odd()]})
    except TypeError as error:
        assert "Odd" in str(error)
    else:
        raise AssertionError("json.dumps refuses an object it cannot write")
    assert dumps_indented({"k": 1.5, "n": [True, None]}) == json.dumps(
        {"k": 1.5, "n": [True, None]}, indent=2
    )
