"""Composing with libyaml's parser and without recursion (issue 12): the same
graph as PyYAML's composer, the same document from either parser, and a
fixed nesting limit instead of a stack overflow."""

from __future__ import annotations

import gc
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import HOSTILE_TOKENS, mutated_policy, salted_policy
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from policy_engine import source
from policy_engine.errors import SourceError
from policy_engine.gc_pause import gc_paused
from policy_engine.source import parse_document
from policy_engine.yaml_compose import MAX_NESTING_DEPTH, compose

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(
    [*(ROOT / "policies").glob("*.yaml"), *(ROOT / "tests" / "golden").glob("*/*.yaml")]
)
SAME = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture
def fast(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run the test with libyaml's parser, or as if PyYAML had been built without it."""
    if not request.param:
        monkeypatch.setattr(source, "FAST_LOADER", None)
    return bool(request.param)


def _example_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="surrogateescape")


# Where libyaml's parser and PyYAML's were found to differ (by the tests below).
CORNERS = [
    "!",  # an empty scalar tagged "!": libyaml does not resolve it as plain
    "?",  # libyaml ends a stream without a final line break on the next line
    "a:",
    "\x85\ufeff\n",  # libyaml skips a byte order mark at the start of any line
    "{\tname: x}\n",  # libyaml takes the tab
    "|#\n",  # and a comment with no space before it, after a block scalar's header
    "- {n?ame: a, b: c}\n",  # and a "?" in a plain scalar in flow style
    "[a ?b]\n",
    "!:!!str \n",  # and tags PyYAML does not scan
    "- {a: 1, b: }\n- [c:  ]\n- {d: # note\n  , e: 1}\n",  # empty values in flow style
    "a: >-2#\n  x\n",
    "a: 1\r\nb: [\r\n  2]\r\n",  # not one of them: Windows line ends take the fast path
]
YAML_TOKENS = [
    *HOSTILE_TOKENS,
    *("\r", "\r\n", "\u2028", "\U0001f600", "e\u0301", "\u00e9", "...\n", "--- ", "? ", "- "),
    *("%YAML 1.1\n---\n", "%TAG !e! tag:e.com,2000:\n---\n", "!e!x ", "! ", "!!str ", "&x "),
    *("\n  ", "\n", "a", "b: ", "|\n", ">-\n", "#c", " ", ":"),
]
TOKENS = st.lists(st.sampled_from(YAML_TOKENS), max_size=16).map("".join)


# -- the graph is PyYAML's ---------------------------------------------------------


def _shape(node: Node | None, seen: dict[int, int]) -> Any:
    """Everything a node graph holds: kinds, tags, values, styles, marks, and which
    nodes are one shared node (an alias) rather than equal ones."""
    if node is None:
        return None
    if id(node) in seen:
        return ("alias", seen[id(node)])
    seen[id(node)] = len(seen)
    marks = tuple(
        (m.line, m.column, m.index) if m is not None else None
        for m in (node.start_mark, node.end_mark)
    )
    head = (type(node).__name__, node.tag, marks, getattr(node, "style", None))
    if isinstance(node, ScalarNode):
        return (*head, node.value)
    if isinstance(node, SequenceNode):
        return (*head, node.flow_style, [_shape(item, seen) for item in node.value])
    assert isinstance(node, MappingNode)
    pairs = [(_shape(k, seen), _shape(v, seen)) for k, v in node.value]
    return (*head, node.flow_style, pairs)


def _pyyaml_outcome(text: str) -> Any:
    try:
        return _shape(yaml.compose(text, Loader=yaml.SafeLoader), {})
    except yaml.YAMLError as exc:
        return ("error", type(exc).__name__, str(exc))


def _our_outcome(text: str, loader: Any = yaml.SafeLoader) -> Any:
    try:
        return _shape(compose(loader(text)).root, {})
    except yaml.YAMLError as exc:
        return ("error", type(exc).__name__, str(exc))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_the_graph_is_pyyamls_for_every_reference_and_golden_file(path: Path) -> None:
    text = _example_text(path)
    assert _our_outcome(text) == _pyyaml_outcome(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "a: 1\n---\nb: 2\n",
        "%YAML 1.1\n---\n%YAML 1.1\n---\n",
        "a: *nowhere\n",
        "a: &x 1\nb: &x 2\n",
        "a: &x [1, *x]\n",
        "a: &x {b: *x}\n",
        "! a\n",
        "!!str 1\n",
        "? [a, b]\n: c\n",
        "<<: {a: 1}\n",
        "- !custom {a: 1}\n- ! [1]\n",
        "a: 'quoted'\nb: \"double\"\nc: |\n  block\nd: >-\n  folded\n",
        "[unclosed\n",
        "a: b: c\n",
        *CORNERS,
    ],
)
def test_the_graph_and_the_errors_are_pyyamls_for_corner_cases(text: str) -> None:
    assert _our_outcome(text) == _pyyaml_outcome(text)


def test_libyaml_gives_the_same_graph_for_every_reference_and_golden_file() -> None:
    if source.FAST_LOADER is None:
        pytest.fail("PyYAML here was built without libyaml; its wheels ship it")
    for path in EXAMPLES:
        text = _example_text(path)
        try:
            found = _our_outcome(text, source.FAST_LOADER)
        except UnicodeEncodeError:  # not UTF-8 (bad-utf8.yaml): the pure parser decides
            continue
        if not (isinstance(found, tuple) and found[0] == "error"):  # else the pure parser decides
            assert found == _pyyaml_outcome(text), path.name


# -- either parser, the same document ------------------------------------------------


def _document(text: str) -> Any:
    """What parse_document gives, all of it: values (types included), where each
    value and key was written, the diagnostics, the refused paths; or the error."""
    try:
        document = parse_document(text, "f.yaml")
    except SourceError as exc:
        return ("error", [d.render() for d in exc.diagnostics])
    source_map = document.source_map
    return (
        repr(document.data),
        {path: (p.line, p.column) for path, p in source_map.values.items()},
        {path: (p.line, p.column) for path, p in source_map.keys.items()},
        [d.render() for d in document.diagnostics],
        sorted(map(repr, document.refused)),
    )


def _both_ways(text: str) -> tuple[Any, Any]:
    fast = _document(text)
    kept, source.FAST_LOADER = source.FAST_LOADER, None
    try:
        pure = _document(text)
    finally:
        source.FAST_LOADER = kept
    return fast, pure


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=25,
)


@st.composite
def dumped_yaml(draw: st.DrawFn) -> str:
    """A random document written the ways people write YAML: block or flow, plain,
    quoted or literal, unicode or escaped, sometimes with a node shared (an anchor
    and its aliases)."""
    value = draw(JSONISH)
    if draw(st.booleans()):
        shared = draw(JSONISH.filter(lambda v: isinstance(v, (list, dict)) and bool(v)))
        value = {"first": shared, "again": shared, "rest": value}
    return yaml.safe_dump(
        value,
        default_flow_style=draw(st.sampled_from([False, True, None])),
        default_style=draw(st.sampled_from([None, "'", '"', "|"])),
        allow_unicode=draw(st.booleans()),
        width=draw(st.sampled_from([20, 80, 1000])),
        indent=draw(st.sampled_from([2, 4])),
        sort_keys=False,
    )


@SAME
@given(dumped_yaml())
def test_either_parser_gives_the_same_document_for_random_yaml(text: str) -> None:
    fast, pure = _both_ways(text)
    assert fast == pure


@SAME
@given(mutated_policy() | salted_policy())
def test_either_parser_gives_the_same_document_for_mutated_policies(text: str) -> None:
    fast, pure = _both_ways(text)
    assert fast == pure


@SAME
@given(TOKENS | TOKENS.map(lambda text: text + "\n"))
def test_either_parser_gives_the_same_document_and_pyyamls_graph_for_yaml_tokens(
    text: str,
) -> None:
    fast, pure = _both_ways(text)
    assert fast == pure
    assert _our_outcome(text) == _pyyaml_outcome(text)


@pytest.mark.parametrize("text", CORNERS)
def test_either_parser_gives_the_same_document_where_the_parsers_differ(text: str) -> None:
    fast, pure = _both_ways(text)
    assert fast == pure


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_either_parser_gives_the_same_document_for_reference_and_golden_files(
    path: Path,
) -> None:
    fast, pure = _both_ways(_example_text(path))
    assert fast == pure


@pytest.mark.parametrize("fast", [True, False], indirect=True, ids=["libyaml", "pure"])
def test_a_syntax_error_is_pyyamls_own_message_and_place(fast: bool) -> None:
    # libyaml says "did not find expected key"; the pure parser's words are the ones
    # users and the golden files have always seen
    text = "version: 1\nname: p\nrules:\n  - id: a\n   match: {}\n"
    with pytest.raises(yaml.YAMLError) as pure:
        yaml.compose(text, Loader=yaml.SafeLoader)
    assert isinstance(pure.value, yaml.MarkedYAMLError) and pure.value.problem_mark
    assert _document(text) == (
        "error",
        [
            f"f.yaml:{pure.value.problem_mark.line + 1}:{pure.value.problem_mark.column + 1}: "
            f"error[yaml-syntax]: invalid YAML: {pure.value.problem}"
        ],
    )


def test_a_text_libyaml_cannot_take_is_read_by_the_pure_parser() -> None:
    # a lone surrogate cannot even be handed to libyaml (it takes UTF-8)
    fast, pure = _both_ways("version: 1\nname: \ud800\nrules: []\n")
    assert fast == pure and fast[0] == "error"


# -- depth, aliases ----------------------------------------------------------------------


def _nested(kind: str, depth: int) -> str:
    if kind == "flow-list":
        return "[" * depth + "1" + "]" * depth + "\n"
    if kind == "flow-map":
        return "{a: " * depth + "1" + "}" * depth + "\n"
    return "".join("  " * i + "k:\n" for i in range(depth - 1)) + "  " * (depth - 1) + "v: 1\n"


@pytest.mark.parametrize("fast", [True, False], indirect=True, ids=["libyaml", "pure"])
@pytest.mark.parametrize("kind", ["flow-list", "flow-map", "block-map"])
def test_nesting_up_to_the_limit_loads_and_one_more_is_refused(fast: bool, kind: str) -> None:
    assert _document(_nested(kind, MAX_NESTING_DEPTH))[0] != "error"
    assert _document(_nested(kind, MAX_NESTING_DEPTH + 1)) == (
        "error",
        ["f.yaml:1:1: error[yaml-depth]: the document is nested too deeply"],
    )


@pytest.mark.parametrize("fast", [True, False], indirect=True, ids=["libyaml", "pure"])
def test_a_document_libyamls_composer_cannot_take_is_refused_by_depth(fast: bool) -> None:
    # libyaml's own composer raises RecursionError near a depth of 900 and
    # crashes the interpreter (a C stack overflow) at a hundred thousand
    text = _nested("flow-list", 10_000)
    assert _document(text)[1] == [
        "f.yaml:1:1: error[yaml-depth]: the document is nested too deeply"
    ]


def test_a_caller_deep_in_its_own_stack_gets_the_depth_error_not_a_traceback() -> None:
    text = _nested("flow-list", MAX_NESTING_DEPTH)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(MAX_NESTING_DEPTH + 60)  # the builder needs two frames a level
    try:
        found = _document(text)
    finally:
        sys.setrecursionlimit(limit)
    assert found == ("error", ["f.yaml:1:1: error[yaml-depth]: the document is nested too deeply"])


@pytest.mark.parametrize("fast", [True, False], indirect=True, ids=["libyaml", "pure"])
@pytest.mark.parametrize(
    "text",
    [
        "a: &x [*x]\n",  # recursive: infinite
        "a: &x {b: [*x]}\n",
        "\n".join(
            ["a0: &a0 [xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx]"]
            + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
        )
        + "\n",
        # expands to 10**400 (more than a float holds) beside a recursive alias
        "\n".join(
            ["a0: &a0 [x]"]
            + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 401)]
            + ["r: &r [*a400, *r]"]
        )
        + "\n",
    ],
    ids=["recursive-list", "recursive-map", "billion-laughs", "beyond-floats"],
)
def test_aliases_expanding_past_the_limit_are_refused(fast: bool, text: str) -> None:
    found = _document(text)
    assert found[0] == "error" and "error[document-too-large]" in found[1][0]


@pytest.mark.parametrize("fast", [True, False], indirect=True, ids=["libyaml", "pure"])
def test_aliases_within_the_limit_are_copied_with_the_anchors_positions(fast: bool) -> None:
    document = parse_document("a: &x {b: 1}\nc: *x\n", "f.yaml")
    assert document.data == {"a": {"b": 1}, "c": {"b": 1}}
    where = document.source_map.at
    assert (where(("c", "b")).line, where(("c", "b")).column) == (1, 11)


# -- the collector is paused, then restored ----------------------------------------------


def test_parsing_leaves_the_collector_as_it_found_it() -> None:
    assert gc.isenabled()
    parse_document("a: [1, 2]\n", "f.yaml")
    assert gc.isenabled()
    gc.disable()
    try:
        parse_document("a: [1, 2]\n", "f.yaml")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_overlapping_pauses_in_threads_restore_the_collector_once_all_end() -> None:
    first_in, second_done = threading.Event(), threading.Event()
    seen_by_first: list[bool] = []

    def long_pause() -> None:
        with gc_paused():
            first_in.set()
            second_done.wait(5)
            seen_by_first.append(gc.isenabled())

    worker = threading.Thread(target=long_pause)
    worker.start()
    first_in.wait(5)
    with gc_paused():  # starts while the first is paused, ends before it
        assert not gc.isenabled()
    assert not gc.isenabled()  # the first block still runs
    second_done.set()
    worker.join(5)
    assert seen_by_first == [False]
    assert gc.isenabled()
