"""One error vocabulary: every code the source emits is registered in
``policy_engine.diagnostics.DIAGNOSTIC_CODES``, every exception lives in
``errors.py`` with a registered ``code``, and the README's table of codes is
the one the registry generates."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from policy_engine import errors
from policy_engine.diagnostics import DIAGNOSTIC_CODES, Severity, codes_markdown

MAIN = Path(__file__).resolve().parents[1]
CODE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
# calls whose argument at this index (or keyword ``code``) is a diagnostic code
CODE_ARGUMENT = {
    "error": 0,
    "warning": 0,
    "warn": 0,
    "fail": 0,
    "note": 0,
    "Diagnostic": 0,
    "DetectorFailure": 2,
    "SettingsFinding": 1,
}


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _code(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value if CODE.fullmatch(node.value) else None
    return None


def emitted_codes(path: Path, *, only: frozenset[str] | None = None) -> dict[str, str]:
    """Every code literal ``path`` emits, with where: a call's code argument, a
    ``code=`` keyword, a ``code = "..."`` class attribute, and a ``(code, message)``
    pair handed on to :func:`error` (the YAML reader's scalar problems)."""
    found: dict[str, str] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        candidates: list[ast.expr | None] = []
        if isinstance(node, ast.Call):
            name = _call_name(node.func)
            if only is not None and name not in only:
                continue
            candidates += [kw.value for kw in node.keywords if kw.arg == "code"]
            index = CODE_ARGUMENT.get(name)
            if index is not None and len(node.args) > index:
                candidates.append(node.args[index])
        elif only is None and isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "code" for t in targets):
                candidates.append(node.value)
        elif only is None and isinstance(node, ast.Tuple) and len(node.elts) == 2:
            first, message = node.elts
            code = _code(first)
            spoken = isinstance(message, ast.JoinedStr) or (
                isinstance(message, ast.Constant) and " " in str(message.value)
            )
            if code is not None and ("-" in code or spoken):
                candidates.append(first)
        for candidate in candidates:
            code = _code(candidate)
            if code is not None:
                found.setdefault(code, f"{path.relative_to(MAIN)}:{node.lineno}")
    return found


def test_the_scan_finds_codes_of_every_kind() -> None:
    # guards the scan itself: each way of emitting a code is seen
    core = {}
    for path in (MAIN / "policy_engine").rglob("*.py"):
        core.update(emitted_codes(path))
    for code in (
        "yaml-syntax",  # error("...")
        "yaml-value",  # a (code, message) pair
        "narrowing-rule",  # context.warn("...")
        "migrate-ambiguous",  # self.note("...")
        "timeout",  # DetectorError(code="...")
        "plugin-exception",  # DetectorFailure(source, message, "...")
        "no-detectors",  # class attribute
        "invalid-label",  # self.fail("...")
    ):
        assert code in core, code


def test_every_code_the_core_emits_is_registered() -> None:
    found: dict[str, str] = {}
    for path in sorted((MAIN / "policy_engine").rglob("*.py")):
        found.update(emitted_codes(path))
    unregistered = {code: where for code, where in found.items() if code not in DIAGNOSTIC_CODES}
    assert not unregistered, f"register these in DIAGNOSTIC_CODES: {unregistered}"


def test_every_lint_code_a_plugin_emits_is_registered() -> None:
    # a plugin's settings findings are warnings of `validate`: the core's table describes them
    found: dict[str, str] = {}
    for path in sorted((MAIN / "plugins").glob("*/policy_engine_*/**/*.py")):
        found.update(emitted_codes(path, only=frozenset({"SettingsFinding"})))
    assert found, "the scan finds the plugins' SettingsFinding codes"
    assert set(found) <= set(DIAGNOSTIC_CODES), set(found) - set(DIAGNOSTIC_CODES)


def test_registered_codes_are_well_formed() -> None:
    for code, info in DIAGNOSTIC_CODES.items():
        assert CODE.fullmatch(code), code
        assert info.description.endswith(".") and "\n" not in info.description, code
        assert info.topic, code
        assert isinstance(info.severity, Severity)


def _exception_classes() -> list[type[BaseException]]:
    return [
        value
        for _, value in inspect.getmembers(errors, inspect.isclass)
        if issubclass(value, BaseException) and value.__module__ == errors.__name__
    ]


def test_every_exception_is_a_policy_engine_error_with_a_registered_code() -> None:
    classes = _exception_classes()
    # those that used to live beside their raisers are here too
    for moved in ("NoDetectorsError", "PolicyDetectorsError", "ShadowPolicyError"):
        assert getattr(errors, moved) in classes
    for moved in ("TestsLoadError", "SourceError", "RecordingWriteError"):
        assert getattr(errors, moved) in classes
    for cls in classes:
        assert issubclass(cls, errors.PolicyEngineError), cls
        assert cls.code in DIAGNOSTIC_CODES, (cls, cls.code)


def test_exceptions_are_defined_only_in_errors_py() -> None:
    # the CLI's CommandError is the command line's own way out (an exit code), not an error
    # of the engine
    outside = []
    for path in sorted((MAIN / "policy_engine").rglob("*.py")):
        if path.name == "errors.py" or path.parent.name == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                _call_name(base).endswith(("Error", "Exception")) for base in node.bases
            ):
                outside.append(f"{path.relative_to(MAIN)}:{node.lineno} {node.name}")
    assert not outside


@pytest.mark.parametrize(
    "exc",
    [
        errors.NoDetectorsError("x"),
        errors.PolicyDetectorsError("x"),
        errors.UnknownDetectorError("x"),
        errors.PluginError("x"),
        errors.DuplicateDetectorError("d", "a", "b"),
        errors.DetectorUnavailableError("d", "x", code="no-region"),
        errors.PolicyEngineError("x"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_a_failed_reload_reports_the_errors_own_code(exc: errors.PolicyEngineError) -> None:
    from policy_engine.moderator import _diagnostics_of

    (diagnostic,) = _diagnostics_of(exc, "p.yaml")
    assert diagnostic.code == exc.code and diagnostic.severity is Severity.ERROR


def test_a_reload_that_fails_on_a_bug_reports_load_failed() -> None:
    from policy_engine.moderator import _diagnostics_of

    (diagnostic,) = _diagnostics_of(ValueError("boom"), "p.yaml")
    assert diagnostic.code == "load-failed"


README_BEGIN = "<!-- codes: generated by `python -m policy_engine.diagnostics`; begin -->\n"
README_END = "<!-- codes: end -->\n"


def test_the_readme_table_of_codes_is_the_generated_one() -> None:
    text = (MAIN / "README.md").read_text(encoding="utf-8")
    assert README_BEGIN in text and README_END in text
    table = text.split(README_BEGIN, 1)[1].split(README_END, 1)[0]
    assert table == codes_markdown(), (
        "the README's table of codes is stale: paste the output of "
        "`python -m policy_engine.diagnostics` between its markers"
    )
