"""Reading a policy's YAML: safely, bounded, with every node's position kept.

The text is composed into PyYAML's node graph (aliases are shared nodes, not
yet copies; see :mod:`policy_engine.yaml_compose`, which also counts what the
aliases expand to); we build plain Python values from it ourselves so that we
can refuse duplicate keys and object-building tags, and remember where each
value and each key came from. Positions come from the
parser's marks, never recovered afterwards.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from policy_engine.diagnostics import Diagnostic, Position, error
from policy_engine.errors import InputFileError, NestingTooDeepError, SourceError
from policy_engine.gc_pause import gc_paused
from policy_engine.local_files import read_bounded
from policy_engine.text import has_surrogates, join_surrogate_pairs, printable
from policy_engine.yaml_compose import Composed, compose

MAX_POLICY_BYTES = 1024 * 1024
"""Largest policy file, and the most its aliases may expand to (POLICY_SPEC section 2)."""

JsonPath = tuple[str | int, ...]

_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_DECIMAL_INT = re.compile(r"[-+]?[0-9]+\Z")
_DECIMAL_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
MAX_NUMBER_LENGTH = 64
"""Longer number texts are refused before any conversion (huge integers are slow)."""

_PLAIN_TAGS = {
    _STR_TAG,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


@dataclass(frozen=True, slots=True)
class SourceMap:
    """Where each value (by its path from the document root) and each mapping key was written."""

    file: str
    values: dict[JsonPath, Position] = field(default_factory=dict)
    keys: dict[JsonPath, Position] = field(default_factory=dict)

    def at(self, path: JsonPath) -> Position:
        """The position of the value at ``path``, or of its nearest recorded ancestor."""
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return found
        return Position()

    def key_at(self, path: JsonPath) -> Position:
        """The position of the key naming the value at ``path`` (the value's own if none)."""
        return self.keys.get(path) or self.at(path)


@dataclass(frozen=True, slots=True)
class Document:
    """The parsed values, where each came from, and the problems that did not stop
    parsing (a duplicate key keeps its first value; a refused tag, its text)."""

    data: Any
    source_map: SourceMap
    diagnostics: tuple[Diagnostic, ...] = ()
    refused: frozenset[JsonPath] = frozenset()
    """Paths of values refused here (already reported; the schema need not repeat it)."""


def _number(text: str) -> tuple[Any, tuple[str, str] | None]:
    """A number in plain decimal, or the text and why it is refused.

    YAML 1.1, which PyYAML follows, reads ``050`` as octal 40 and ``1:30`` as
    90 (base 60): a policy threshold must never change that silently, so only
    decimal is accepted, as in YAML 1.2. NaN and infinities are refused too:
    NaN passes every range check (NaN < 0 is false).
    """
    value = text.strip()
    if len(value) > MAX_NUMBER_LENGTH:
        return text, ("yaml-value", f"a number of {len(value)} characters is too long")
    if _DECIMAL_INT.match(value):
        return int(value, 10), None
    if _DECIMAL_FLOAT.match(value):
        number = float(value)
        if math.isfinite(number):
            return number, None
        return text, ("yaml-value", f"{text!r} is not a finite number")
    if value.lower().lstrip("+-") in (".inf", ".nan"):
        return text, (
            "yaml-value",
            f"{text!r} is not a finite number; a policy's numbers must be finite",
        )
    return text, (
        "yaml-value",
        f"{text!r} is not a plain decimal number; write e.g. 50 or 97.5 "
        "(octal, hexadecimal, base 60 and underscores are not accepted)",
    )


# A frozen dataclass's __init__ sets each field through object.__setattr__; the
# builder makes a position for every key and value (some 100,000 for a 1 MiB
# policy), so it fills the three slots directly, about four times faster.
_new_position = object.__new__
_set_line, _set_column, _set_file = (
    getattr(Position, slot).__set__ for slot in ("line", "column", "file")
)


def _position(node: Node) -> Position:
    """``Position(line, column)`` of where ``node`` starts (1-based)."""
    mark = node.start_mark
    position = _new_position(Position)
    _set_line(position, mark.line + 1)
    _set_column(position, mark.column + 1)
    _set_file(position, None)
    return position


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Builder:
    def __init__(self, file: str, escapes: bool = True) -> None:
        self.file = file
        self.source_map = SourceMap(file)
        self.diagnostics: list[Diagnostic] = []
        self.refused: set[JsonPath] = set()
        self._constructor = SafeConstructor()
        # Without a backslash (or a surrogate) in the text no scalar can hold a
        # lone surrogate: a string scalar is then its text, unchecked.
        self._plain_strings = not escapes

    def build(self, node: Node, path: JsonPath, active: frozenset[int] = frozenset()) -> Any:
        self.source_map.values.setdefault(path, _position(node))
        if id(node) in active:  # a recursive alias: the document would be infinite
            raise SourceError(
                [error("recursive-alias", "an alias refers to itself", self.file, _position(node))]
            )
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        active = active | {id(node)}
        if isinstance(node, SequenceNode):
            self._check_tag(node, "tag:yaml.org,2002:seq")
            return [self.build(item, (*path, i), active) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            self._check_tag(node, "tag:yaml.org,2002:map")
            return self._mapping(node, path, active)
        raise SourceError([error("yaml-node", "unsupported YAML node", self.file, _position(node))])

    def _check_tag(self, node: Node, expected: str) -> None:
        if node.tag != expected:
            self.diagnostics.append(
                error(
                    "yaml-tag", f"tag {node.tag!r} is not allowed here", self.file, _position(node)
                )
            )

    def _scalar(self, node: ScalarNode, path: JsonPath) -> Any:
        """The scalar at ``path``; a refused one is reported and its path marked."""
        value, problem = self._construct(node)
        if problem is not None:
            code, message = problem
            self.diagnostics.append(error(code, message, self.file, _position(node)))
            self.refused.add(path)
        return value

    def _construct(self, node: ScalarNode) -> tuple[Any, tuple[str, str] | None]:
        """The scalar's value, or its text and why it is refused."""
        if node.tag not in _PLAIN_TAGS:
            return node.value, (
                "yaml-tag",
                f"tag {node.tag!r} is not allowed: a policy holds only strings, numbers, "
                "booleans, nulls, lists and maps",
            )
        if node.tag in (_INT_TAG, _FLOAT_TAG):
            return _number(node.value)
        if not self._plain_strings and has_surrogates(node.value):  # an escape: "\ud800"
            # a pair written as two escapes is one character, as in JSON
            paired = join_surrogate_pairs(node.value)
            node = ScalarNode(node.tag, paired, node.start_mark, node.end_mark, node.style)
            if has_surrogates(node.value):  # a lone one: not valid Unicode
                return printable(node.value), (
                    "encoding",
                    f"the text '{printable(node.value)}' holds a lone surrogate, which is not "
                    "valid Unicode; write the character itself (or \\U and its 8 hex digits)",
                )
        if node.tag == _STR_TAG:  # what SafeConstructor builds, without its bookkeeping
            return node.value, None
        try:
            value = self._constructor.construct_object(node)
        except ConstructorError as exc:
            return node.value, ("yaml-value", str(exc.problem))
        except Exception:  # PyYAML's constructors raise bare errors: "!!int abc", "!!int "
            return node.value, (
                "yaml-value",
                f"{node.value!r} is not a valid {node.tag.rsplit(':', 1)[-1]}",
            )
        return value, None

    def _mapping(self, node: MappingNode, path: JsonPath, active: frozenset[int]) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first_seen: dict[Any, Position] = {}
        values, keys = self.source_map.values, self.source_map.keys
        plain_strings = self._plain_strings
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self.diagnostics.append(
                    error(
                        "yaml-merge-key",
                        "merge keys (<<) are not supported; write the keys out",
                        self.file,
                        _position(key_node),
                    )
                )
                continue
            if not isinstance(key_node, ScalarNode):
                self.diagnostics.append(
                    error(
                        "yaml-key", "a key must be a plain scalar", self.file, _position(key_node)
                    )
                )
                continue
            if plain_strings and key_node.tag == _STR_TAG:  # most keys: what _scalar gives
                key = key_node.value
            else:
                key = self._scalar(key_node, (*path, key_node.value))
                if not isinstance(key, str):
                    key = str(key)  # the schema will reject it by name; keep going
            at = _position(key_node)
            if key in first_seen:
                earlier = first_seen[key]
                self.diagnostics.append(
                    error(
                        "duplicate-key",
                        f"duplicate key {key!r} (first at line {earlier.line}, "
                        f"column {earlier.column})",
                        self.file,
                        at,
                    )
                )
                continue
            first_seen[key] = at
            child = (*path, key)
            keys[child] = at
            if plain_strings and value_node.__class__ is ScalarNode and value_node.tag == _STR_TAG:
                # most values: what build gives a string scalar, without the calls
                values.setdefault(child, _position(value_node))
                result[key] = value_node.value
            else:
                result[key] = self.build(value_node, child, active)
        return result


def _too_large(file: str) -> SourceError:
    return SourceError(
        [
            error(
                "file-too-large",
                f"a policy file may be at most {MAX_POLICY_BYTES} bytes",
                file,
                Position(),
            )
        ]
    )


def _too_deep(file: str) -> SourceError:
    return SourceError([error("yaml-depth", "the document is nested too deeply", file, Position())])


_DIFFERING_CHARACTERS = "\t?!\ufeff\x85\u2028\u2029"
_BLOCK_SCALAR_COMMENT = re.compile("[|>][-+0-9]*#")
_EMPTY_FLOW_VALUE = re.compile(":(?:\\s|#[^\n]*\n)*[,}\\]]")


def _parsers_differ(text: str) -> bool:
    """Whether ``text`` holds something the two parsers read differently, found by
    comparing them. libyaml takes tags PyYAML refuses to scan ("!:x"; a policy
    has no use for tags or directives, so any "!" or "%" directive is left to
    PyYAML), tabs PyYAML refuses (as in "{<tab>name: x}"), a "?" inside a plain
    scalar in flow style (PyYAML ends the scalar there: "{n?ame: x}") and a
    comment right after a block scalar's "|" or ">" (PyYAML wants a space); it
    skips a byte order mark at the start of any line (PyYAML only at the start
    of the text); and it is not relied on for the rarer line breaks. It also
    places an empty value in flow style ("{a: }") after the blanks, PyYAML right
    after the colon. A text with one of them, or whose last line has no line
    break (libyaml then puts the end of the stream, and an empty value there, on
    the line after), is left to PyYAML's parser.

    Each case is searched for on its own: one pattern of them all tried every
    alternative at every character (25 ms for 1 MiB, against about 5)."""
    return (
        any(character in text for character in _DIFFERING_CHARACTERS)
        or (("|" in text or ">" in text) and _BLOCK_SCALAR_COMMENT.search(text) is not None)
        or text.startswith("%")
        or "\n%" in text
        or _EMPTY_FLOW_VALUE.search(text) is not None
    )


FAST_LOADER: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)
"""libyaml's loader, when PyYAML was built with it (its wheels are); else None."""


def _compose(text: str) -> Composed:
    """The document's node graph: from libyaml's parser where it is available and
    the text parses cleanly; otherwise from PyYAML's pure-Python parser, whose
    error messages and marks the diagnostics have always used (libyaml words its
    errors otherwise, and refuses some texts PyYAML takes, such as the escape
    of a lone surrogate)."""
    if FAST_LOADER is not None and text.endswith("\n") and not _parsers_differ(text):
        try:
            return compose(FAST_LOADER(text))
        except Exception:  # the pure parser below reports it, as before
            pass
    return compose(yaml.SafeLoader(text))


def parse_document(text: str, file: str) -> Document:
    """Parse one YAML document into plain values and a source map.

    Raises :class:`SourceError` when the text is no usable document (syntax,
    size, encoding); problems inside a usable document (duplicate keys,
    refused tags) come back in :attr:`Document.diagnostics`.
    """
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_POLICY_BYTES:
        raise _too_large(file)
    with gc_paused():
        return _parse(text, file)


def _parse(text: str, file: str) -> Document:
    try:
        composed = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = Position(mark.line + 1, mark.column + 1) if mark else Position()
        problem = exc.problem or exc.context or "invalid YAML"
        if "another document" in problem:
            problem = "a policy file holds a single YAML document, found another"
        raise SourceError([error("yaml-syntax", f"invalid YAML: {problem}", file, at)]) from None
    except yaml.YAMLError as exc:
        raise SourceError(
            [error("yaml-syntax", f"invalid YAML: {exc}", file, Position())]
        ) from None
    except NestingTooDeepError:
        raise _too_deep(file) from None
    root = composed.root
    if root is None:
        raise SourceError([error("empty-policy", "the policy file is empty", file, Position())])
    if composed.expanded_size > MAX_POLICY_BYTES:
        raise SourceError(
            [
                error(
                    "document-too-large",
                    f"the document expands past {MAX_POLICY_BYTES} bytes "
                    "(aliases repeated too often?); refused",
                    file,
                    _position(root),
                )
            ]
        )
    builder = _Builder(file, escapes="\\" in text or has_surrogates(text))
    try:
        data = builder.build(root, ())
    except RecursionError:  # a caller already deep in its own stack
        raise _too_deep(file) from None
    return Document(
        data, builder.source_map, tuple(builder.diagnostics), frozenset(builder.refused)
    )


def read_policy_text(path: Path) -> str:
    """Read at most :data:`MAX_POLICY_BYTES` (+1, to tell a larger file) and decode UTF-8."""
    file = str(path)
    try:
        # a FIFO or a device (an `extends:` may name one) is refused unopened:
        # reading it could block for ever or never end
        raw = read_bounded(path, MAX_POLICY_BYTES, what="policy file")
    except InputFileError as exc:
        if exc.code == "file-too-large":
            raise _too_large(file) from None
        raise SourceError([error(exc.code, str(exc), file, Position())]) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SourceError(
            [error("encoding", "a policy file must be UTF-8", file, Position(line, 1))]
        ) from None


def decimal_version(data: dict[str, Any], source_map: SourceMap) -> list[Diagnostic]:
    """``version: 1.0``, which JSON Schema counts as an integer: the spec asks
    for the integer 1 (policies and policy sets alike)."""
    if not isinstance(data.get("version"), float):
        return []
    message = "version: write the integer 1, not a decimal"
    return [error("invalid-value", message, source_map.file, source_map.at(("version",)))]
