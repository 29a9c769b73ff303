"""Composing one YAML document into PyYAML's node graph, from the parser's events.

PyYAML's composers recurse once per nesting level: the pure-Python one runs out
of stack at a depth that depends on the caller's, and libyaml's (``CSafeLoader``)
overflows the C stack near a depth of 900 and raises ``RecursionError``. This
composer keeps its own stack, so it refuses a deep document at a fixed depth
whichever parser makes the events; and with libyaml's parser it is faster than
libyaml's own composer (which calls back into Python for every node anyway).

The graph is PyYAML's, node for node (same classes, tags, values, marks and
shared alias targets), and the composer's errors are PyYAML's, word for word.
While composing it also measures what each node expands to once every alias is
copied out, so that a "billion laughs" document is refused without expanding it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from yaml.composer import ComposerError
from yaml.events import (
    AliasEvent,
    Event,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from policy_engine.errors import NestingTooDeepError

MAX_NESTING_DEPTH = 256
"""Deepest nesting of lists and maps a document may have (a policy needs about 6)."""

INFINITE = float("inf")
"""The expanded size of a node that holds an alias to itself."""


class EventSource(Protocol):
    """What a PyYAML loader offers: its parser's events, one at a time."""

    def get_event(self) -> Event | None: ...

    def dispose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Composed:
    """The document's root node (None for an empty stream) and its expanded size:
    scalars count their length plus one, lists and maps two, each alias its
    target's again (:data:`INFINITE` for a recursive one)."""

    root: Node | None
    expanded_size: float


class _Frame:
    """An open list or map: its node, the key waiting for its value, its size so far."""

    __slots__ = ("anchored", "items", "key", "node", "size")

    def __init__(self, node: SequenceNode | MappingNode, anchored: bool) -> None:
        self.node = node
        self.items: list[Any] = node.value
        self.key: Node | None = None
        self.size = 2.0
        self.anchored = anchored


_STR_TAG = Resolver.DEFAULT_SCALAR_TAG


class _Tags:
    """The resolver's implicit tags, worked out once per distinct plain text."""

    def __init__(self) -> None:
        self._resolve: Callable[[type[Node], str, tuple[bool, bool]], str] = Resolver().resolve
        self._plain: dict[str, str] = {}

    def scalar(self, value: str, implicit: tuple[bool, bool]) -> str:
        if not implicit[0]:  # quoted or block: no implicit type (and no path resolvers)
            return _STR_TAG
        return self.plain(value)

    def plain(self, value: str) -> str:
        tag = self._plain.get(value)
        if tag is None:
            tag = self._plain[value] = self._resolve(ScalarNode, value, (True, False))
        return tag


def compose(loader: EventSource) -> Composed:
    """Compose the single document of ``loader``'s stream, disposing the loader.

    Raises what PyYAML's parser raises, :class:`ComposerError` as PyYAML's
    composer would (undefined alias, duplicate anchor, a second document), and
    :class:`NestingTooDeepError`.
    """
    try:
        return _compose_stream(loader.get_event)
    finally:
        loader.dispose()


def _compose_stream(next_event: Any) -> Composed:
    next_event()  # the stream's start
    if isinstance(next_event(), StreamEndEvent):
        return Composed(None, 0)
    composed = _compose_document(next_event)
    event = next_event()
    if not isinstance(event, StreamEndEvent):
        assert composed.root is not None  # a document always has a root node
        raise ComposerError(
            "expected a single document in the stream",
            composed.root.start_mark,
            "but found another document",
            event.start_mark,
        )
    return composed


def _compose_document(next_event: Any) -> Composed:
    """Compose the document whose start event was just read, through its end event."""
    tags = _Tags()
    anchors: dict[str, Node] = {}
    sizes: dict[int, float] = {}  # expanded size of each closed anchored node, by id
    stack: list[_Frame] = []
    while True:
        event = next_event()
        kind = event.__class__
        node: Node
        if kind is ScalarEvent:
            tag = event.tag
            if tag is None:
                tag = tags.scalar(event.value, event.implicit)
            elif tag == "!":  # PyYAML resolves it as plain; libyaml not when the scalar is empty
                tag = tags.plain(event.value)
            # libyaml's parser marks a plain scalar with style "", PyYAML's with None
            style = event.style or None
            node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style)
            size = float(len(event.value) + 1)  # floats: an overflow is inf, never an error
            if event.anchor is not None:
                _anchor(anchors, event, node)
                sizes[id(node)] = size
        elif kind is AliasEvent:
            found = anchors.get(event.anchor)
            if found is None:
                raise ComposerError(
                    None, None, f"found undefined alias {event.anchor!r}", event.start_mark
                )
            node = found
            size = sizes.get(id(node), INFINITE)  # not closed yet: it holds this alias
        elif kind is SequenceStartEvent or kind is MappingStartEvent:
            if len(stack) >= MAX_NESTING_DEPTH:
                raise NestingTooDeepError
            tag = event.tag
            if kind is SequenceStartEvent:
                if tag is None or tag == "!":
                    tag = Resolver.DEFAULT_SEQUENCE_TAG
                node = SequenceNode(tag, [], event.start_mark, None, event.flow_style)
            else:
                if tag is None or tag == "!":
                    tag = Resolver.DEFAULT_MAPPING_TAG
                node = MappingNode(tag, [], event.start_mark, None, event.flow_style)
            if event.anchor is not None:
                _anchor(anchors, event, node)
            stack.append(_Frame(node, event.anchor is not None))
            continue
        else:  # the end of the innermost list or map
            frame = stack.pop()
            node = frame.node
            node.end_mark = event.end_mark
            size = frame.size
            if frame.anchored:
                sizes[id(node)] = size
        if not stack:
            next_event()  # the document's end
            return Composed(node, size)
        parent = stack[-1]
        parent.size += size
        if parent.node.__class__ is SequenceNode:
            parent.items.append(node)
        elif parent.key is None:
            parent.key = node
        else:
            parent.items.append((parent.key, node))
            parent.key = None


def _anchor(anchors: dict[str, Node], event: Any, node: Node) -> None:
    earlier = anchors.get(event.anchor)
    if earlier is not None:
        raise ComposerError(
            f"found duplicate anchor {event.anchor!r}; first occurrence",
            earlier.start_mark,
            "second occurrence",
            event.start_mark,
        )
    anchors[event.anchor] = node


__all__ = ["INFINITE", "MAX_NESTING_DEPTH", "Composed", "compose"]
