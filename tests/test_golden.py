"""Golden policies: each invalid one beside the exact diagnostics it must produce,
each valid one loading without errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy_engine import PolicyLoadError, load_policy
from policy_engine.loader import check_policy_file

GOLDEN = Path(__file__).parent / "golden"
INVALID = sorted((GOLDEN / "invalid").glob("*.yaml"))
VALID = sorted((GOLDEN / "valid").glob("*.yaml"))
# invalid only against the installed detectors' taxonomies (unknown names, aliases)
INVALID_WITH_PLUGINS = sorted((GOLDEN / "invalid-with-plugins").glob("*.yaml"))


def test_there_are_enough_golden_cases() -> None:
    assert len(INVALID) >= 12
    assert VALID
    for case in INVALID:
        assert case.with_suffix(".diagnostics.txt").exists(), case.name


@pytest.mark.parametrize("case", INVALID, ids=lambda p: p.stem)
def test_invalid_policy_gives_exactly_its_golden_diagnostics(
    case: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(case.parent)
    expected = case.with_suffix(".diagnostics.txt").read_text(encoding="utf-8").splitlines()
    result = check_policy_file(case.name)
    assert result.policy is None
    assert [d.render() for d in result.diagnostics] == expected


@pytest.mark.parametrize("case", INVALID, ids=lambda p: p.stem)
def test_invalid_policy_raises_policy_load_error(
    case: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(case.parent)
    with pytest.raises(PolicyLoadError) as info:
        load_policy(case.name)
    assert info.value.diagnostics
    assert all(d.severity.value == "error" for d in info.value.diagnostics)


@pytest.mark.parametrize("case", VALID, ids=lambda p: p.stem)
def test_valid_policy_loads_without_errors(case: Path) -> None:
    result = check_policy_file(case)
    assert result.errors == ()
    assert result.policy is not None
    assert load_policy(case) == result.policy


@pytest.mark.parametrize("case", INVALID_WITH_PLUGINS, ids=lambda p: p.stem)
def test_policy_invalid_with_the_plugins_gives_exactly_its_golden_diagnostics(
    case: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policy_engine.plugins import DetectorRegistry

    monkeypatch.chdir(case.parent)
    expected = case.with_suffix(".diagnostics.txt").read_text(encoding="utf-8").splitlines()
    registry = DetectorRegistry.installed()
    result = check_policy_file(case.name, registry=registry)
    assert result.policy is None
    assert [d.render() for d in result.diagnostics] == expected
    with pytest.raises(PolicyLoadError):
        load_policy(case.name, registry=registry)
    assert check_policy_file(case.name).policy is not None  # without the taxonomies: loads
