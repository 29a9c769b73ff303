"""The normalised label every detector produces (POLICY_SPEC section 1)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from policy_engine.errors import InvalidDetectorResult
from policy_engine.json_types import frozen, plain
from policy_engine.text import has_surrogates

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def check_confidence(value: object, *, field: str = "confidence") -> float:
    """Return ``value`` as a float if it is a finite number in [0, 100].

    Anything else (missing, a string, a bool, NaN, infinite, out of range)
    raises :class:`InvalidDetectorResult`: a bad confidence invalidates the
    detector's whole result and is never read as a low confidence.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidDetectorResult(
            f"confidence must be a number, got {type(value).__name__}", field=field
        )
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        number = math.inf
    if not math.isfinite(number) or not 0.0 <= number <= 100.0:
        raise InvalidDetectorResult(
            f"confidence must be a finite number from 0 to 100, got {value!r}", field=field
        )
    return number


@dataclass(frozen=True, slots=True)
class Label:
    """One label a detector reported for an image.

    ``parent`` is the direct parent the detector reported ("" when none);
    ``model_version`` picks the source's taxonomy where it has several;
    ``extra`` carries anything else the detector knows (taxonomy level,
    bounding box, ...) through to the decision record, unevaluated.
    """

    name: str
    confidence: float
    source: str
    parent: str = ""
    model_version: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, compare=False)
    # What the compiled policy caches a resolution under; derived, not an input.
    key: tuple[str, str | None, str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "confidence", check_confidence(self.confidence))
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidDetectorResult("a label needs a non-empty name", field="name")
        if not isinstance(self.parent, str):
            raise InvalidDetectorResult("a label's parent must be a string", field="parent")
        if not isinstance(self.source, str) or not self.source:
            raise InvalidDetectorResult("a label needs its detector's name", field="source")
        if self.model_version is not None and not isinstance(self.model_version, str):
            raise InvalidDetectorResult(
                "a label's model version must be a string", field="model_version"
            )
        for name in ("name", "parent", "source", "model_version"):
            value = getattr(self, name)
            if value is not None and has_surrogates(value):
                # not valid Unicode: it could match no rule's name, so it must not pass as one
                raise InvalidDetectorResult(
                    f"a label's {name} is not valid Unicode (a lone surrogate): {value!r}",
                    field=name,
                )
        if self.extra is not _EMPTY:  # the default is read-only and empty already
            object.__setattr__(self, "extra", frozen(self.extra))
        object.__setattr__(self, "key", (self.source, self.model_version, self.name, self.parent))

    def __reduce__(self) -> tuple[type[Label], tuple[Any, ...]]:
        # A mappingproxy does not pickle: rebuild from plain data (and check it again).
        fields = (self.name, self.confidence, self.source, self.parent, self.model_version)
        return (Label, (*fields, plain(self.extra)))

    def to_dict(self) -> dict[str, Any]:
        # the detector's extras first: they can never overwrite what was evaluated
        record: dict[str, Any] = plain(self.extra)
        record.update(
            name=self.name, parent=self.parent, source=self.source, confidence=self.confidence
        )
        if self.model_version is not None:
            record["model_version"] = self.model_version
        return record
