"""Findings about a policy, each with a stable code and a position."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """1-based line and column in a file."""

    line: int = 1
    column: int = 1


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding: ``file:line:col: severity[code]: message``."""

    code: str
    severity: Severity
    message: str
    file: str
    line: int = 1
    column: int = 1

    def render(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.severity.value}[{self.code}]: {self.message}"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line, self.column, self.code, self.message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
        }


def error(code: str, message: str, file: str, at: Position) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, file, at.line, at.column)


def warning(code: str, message: str, file: str, at: Position) -> Diagnostic:
    return Diagnostic(code, Severity.WARNING, message, file, at.line, at.column)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    return tuple(sorted(set(diagnostics), key=Diagnostic.sort_key))
