"""The plugin boundary: loading plugins (restricted, blocked, broken ones named),
calling their hooks one at a time, the built-in plugins, and every hook tested
and documented with its exact signature."""

from __future__ import annotations

import inspect
import logging
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pluggy
import pytest

from policy_engine import (
    DetectContext,
    Detector,
    DetectorRegistry,
    DetectorResult,
    Image,
    Label,
    Moderator,
    PluginError,
    Verdict,
    hookimpl,
    hookspecs,
)
from policy_engine.batch import expand_inputs
from policy_engine.errors import UnknownPluginError
from policy_engine.events import DecisionEvent
from policy_engine.hookspecs import PROJECT_NAME
from policy_engine.plugins import (
    AUDIT_LOG_PLUGIN,
    BLOCK_ENV,
    BUILTIN_PLUGINS,
    SHADOW_LOG_PLUGIN,
    WRAPPED,
    RegisteredDetector,
    call_each,
    make_plugin_manager,
)


class FakeEntryPoint:
    def __init__(self, name: str, module: Any) -> None:
        self.name = name
        self.value = f"fake_{name}.plugin"
        self._module = module

    def load(self) -> Any:
        if isinstance(self._module, Exception):
            raise self._module
        return self._module


def installed(monkeypatch: pytest.MonkeyPatch, *entry_points: FakeEntryPoint) -> None:
    def entry_points_of(group: str) -> list[FakeEntryPoint]:
        assert group == "policy_engine"
        return list(entry_points)

    monkeypatch.setattr("policy_engine.plugins.installed_entry_points", entry_points_of)


def plugin_module(**hooks: Callable[..., Any]) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{name: hookimpl(f) for name, f in hooks.items()})


def test_a_misspelt_hook_is_an_error_naming_the_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    def policy_engine_register_detector(register: Any) -> None:  # missing the s
        pass

    installed(
        monkeypatch,
        FakeEntryPoint(
            "typo", plugin_module(policy_engine_register_detector=policy_engine_register_detector)
        ),
    )
    with pytest.raises(PluginError, match="typo"):
        make_plugin_manager(environ={})


def test_a_hook_with_a_wrong_argument_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def policy_engine_register_detectors(regster: Any) -> None:
        pass

    installed(
        monkeypatch,
        FakeEntryPoint(
            "wrongarg",
            plugin_module(policy_engine_register_detectors=policy_engine_register_detectors),
        ),
    )
    with pytest.raises(PluginError, match="wrongarg"):
        make_plugin_manager(environ={})


def test_a_plugin_that_fails_to_import_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    installed(monkeypatch, FakeEntryPoint("broken", ImportError("no module named boto9")))
    with pytest.raises(PluginError, match=r"'broken'.*boto9"):
        make_plugin_manager(environ={})


def test_the_environment_restricts_which_plugins_load(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str] = []

    def module_for(name: str) -> types.SimpleNamespace:
        def policy_engine_register_detectors(register: Any) -> None:
            loaded.append(name)

        return plugin_module(policy_engine_register_detectors=policy_engine_register_detectors)

    installed(
        monkeypatch, FakeEntryPoint("a", module_for("a")), FakeEntryPoint("b", module_for("b"))
    )
    DetectorRegistry.from_plugin_manager(
        make_plugin_manager(environ={"POLICY_ENGINE_PLUGINS": "b"})
    )
    assert loaded == ["b"]
    loaded.clear()
    DetectorRegistry.from_plugin_manager(make_plugin_manager(environ={"POLICY_ENGINE_PLUGINS": ""}))
    assert loaded == []


# -- the plugin boundary: every hook tested and documented (datasette's meta-tests) --

README = Path(__file__).resolve().parent.parent / "README.md"


def hook_names() -> list[str]:
    return sorted(name for name in vars(hookspecs) if name.startswith(PROJECT_NAME + "_"))


def signature_text(name: str, function: Callable[..., Any]) -> str:
    """``name(param: Type, ...) -> Return`` as written in the source (string annotations)."""
    signature = inspect.signature(function)
    params = [
        f"{p.name}: {p.annotation}" for p in signature.parameters.values() if p.name != "self"
    ]
    return f"{name}({', '.join(params)}) -> {signature.return_annotation}"


def test_every_hook_has_a_test() -> None:
    tests = set(globals())
    assert hook_names(), "no hooks found"
    missing = [name for name in hook_names() if f"test_hook_{name}" not in tests]
    assert not missing, f"hooks without a test_hook_<name> test here: {missing}"


@pytest.mark.parametrize("name", hook_names())
def test_every_hook_is_in_the_readme_with_its_exact_signature(name: str) -> None:
    entry = signature_text(name, getattr(hookspecs, name))
    assert f"`{entry}`" in README.read_text(encoding="utf-8"), entry


DETECTOR_METHODS = sorted(
    name
    for name, value in vars(Detector).items()
    if not name.startswith("_") and inspect.isfunction(value)
)


@pytest.mark.parametrize("name", DETECTOR_METHODS)
def test_every_detector_method_is_in_the_readme_as_a_method(name: str) -> None:
    """Documented with its signature under "Detector methods", not among the hooks."""
    readme = README.read_text(encoding="utf-8")
    hooks = readme[readme.index("### Hooks") : readme.index("### Detector methods")]
    section = readme[readme.index("### Detector methods") :]
    section = section[: section.index("\n### ")]
    entry = signature_text(name, getattr(Detector, name))
    assert f"`{entry}`" in section, entry
    assert f"`{name}(" not in hooks


# -- each hook, with a throwaway plugin on a fresh manager ------------------------


class Knives(Detector):
    name: ClassVar[str] = "knives"
    remote: ClassVar[bool] = False

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        return DetectorResult(self.name, (Label("Knife", 95, self.name),))


@contextmanager
def registered(manager: pluggy.PluginManager, plugin: object, name: str) -> Iterator[None]:
    manager.register(plugin, name=name)
    try:
        yield
    finally:
        manager.unregister(name=name)


def test_hook_policy_engine_register_detectors() -> None:
    class Plugin:
        @hookimpl
        def policy_engine_register_detectors(self, register: Callable[[Detector], None]) -> None:
            register(Knives())

    class Broken:
        @hookimpl
        def policy_engine_register_detectors(self, register: Callable[[Detector], None]) -> None:
            raise RuntimeError("no model file")

    manager = make_plugin_manager(load_entry_points=False)
    with registered(manager, Plugin(), "acme"):
        registry = DetectorRegistry.from_plugin_manager(manager)
        assert registry.names() == ("knives",) and registry.plugin_of("knives") == "acme"
        with registered(manager, Broken(), "broken"), pytest.raises(PluginError) as info:
            DetectorRegistry.from_plugin_manager(manager)
        assert "'broken'" in str(info.value) and "no model file" in str(info.value)
        with registered(manager, Plugin(), "copycat"), pytest.raises(PluginError) as dup:
            DetectorRegistry.from_plugin_manager(manager)
        assert "acme" in str(dup.value) and "copycat" in str(dup.value)
    assert DetectorRegistry.from_plugin_manager(manager).names() == ()


def test_hook_policy_engine_expand_input() -> None:
    """The first plugin with an answer wins (firstresult), lazily; None passes."""
    asked: list[str] = []

    class Declines:
        @hookimpl
        def policy_engine_expand_input(self, spec: str) -> Iterable[Image] | None:
            asked.append(spec)
            return None

    class Lists:
        @hookimpl
        def policy_engine_expand_input(self, spec: str) -> Iterable[Image] | None:
            if not spec.startswith("acme://"):
                return None
            return (Image(f"{spec}{n}", uri=f"{spec}{n}") for n in range(2))

    manager = make_plugin_manager(load_entry_points=False)
    with registered(manager, Lists(), "lists"), registered(manager, Declines(), "declines"):
        hook = manager.hook.policy_engine_expand_input
        items = list(expand_inputs(["acme://bucket/", "other://x"], lambda s: hook(spec=s)))
    assert [(item.name, item.problem is None) for item in items] == [
        ("acme://bucket/0", True),
        ("acme://bucket/1", True),
        ("other://x", False),  # nobody knows the scheme: that input's problem, not the run's
    ]
    assert asked == ["acme://bucket/", "other://x"]  # last registered is asked first
    assert items[0].load is not None and items[0].load().uri == "acme://bucket/0"


def test_hook_policy_engine_decision_made(tmp_path: Path) -> None:
    events: list[DecisionEvent] = []

    class Listener:
        @hookimpl
        def policy_engine_decision_made(self, event: DecisionEvent) -> None:
            events.append(event)

    manager = make_plugin_manager(load_entry_points=False)
    with registered(manager, Listener(), "listener"):
        moderator = Moderator(
            knives_policy(tmp_path), registry=knives_registry(), plugin_manager=manager
        )
        decision = moderator.check(b"x", context={"upload_id": "u-1"}, name="upload.jpg")
    assert [(e.input, e.decision, dict(e.context)) for e in events] == [
        ("upload.jpg", decision, {"upload_id": "u-1"})
    ]
    assert decision.verdict is Verdict.BLOCK


def test_hook_policy_engine_register_commands(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plugin's command runs and is in the top-level help; a core command
    never looks the plugins' commands up; a clash names both owners."""
    import argparse
    import io

    from policy_engine import cli
    from policy_engine.cli import plugin_commands

    def hello(args: argparse.Namespace, stdout: Any, stderr: Any) -> int:
        stdout.write(f"hello {args.who}\n")
        return 0

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("who")
        parser.set_defaults(run=hello)

    def commands_plugin(*names: str) -> object:
        class Plugin:
            @hookimpl
            def policy_engine_register_commands(
                self,
                register: Callable[[str, str, Callable[[argparse.ArgumentParser], None]], None],
            ) -> None:
                for name in names:
                    register(name, f"say {name}", configure)

        return Plugin()

    manager = make_plugin_manager(load_entry_points=False)
    lookups: list[None] = []

    def manager_for_cli() -> pluggy.PluginManager:
        lookups.append(None)
        return manager

    monkeypatch.setattr(plugin_commands, "make_plugin_manager", manager_for_cli)

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(list(argv), out, err)
        return code, out.getvalue(), err.getvalue()

    with registered(manager, commands_plugin("hello"), "greeter"):
        assert run("hello", "world") == (0, "hello world\n", "")
        assert run("--help")[0] == 0
        assert "say hello" in capsys.readouterr().out  # argparse prints help to sys.stdout
        lookups.clear()
        assert run("schema", "--help")[0] == 0
        assert lookups == []  # a core command starts without the plugins' commands
        with registered(manager, commands_plugin("hello"), "copycat"):
            code, _, err = run("hello", "world")
            assert code == 2 and "'copycat'" in err and "'greeter'" in err
    with registered(manager, commands_plugin("check"), "usurper"):
        with pytest.raises(PluginError) as info:
            plugin_commands.plugin_commands(cli.COMMANDS, manager)
        assert "'usurper'" in str(info.value) and "core command" in str(info.value)
        code, _, err = run("nope")  # a broken plugin is said, never a traceback
        assert code == 2 and "usurper" in err
        code, _, err = run("--help")  # the help still lists the core commands
        assert code == 0 and "usurper" in err and "check" in capsys.readouterr().out


# -- calling each implementation on its own ----------------------------------------


def test_call_each_isolates_implementations_in_pluggys_order() -> None:
    called: list[str] = []
    failed: list[tuple[str | None, str]] = []

    def plugin(name: str, fails: bool = False) -> object:
        class Plugin:
            @hookimpl
            def policy_engine_decision_made(self, event: DecisionEvent) -> None:
                called.append(f"{name}:{event}")
                if fails:
                    raise RuntimeError(f"{name} broke")

        return Plugin()

    manager = make_plugin_manager(load_entry_points=False)
    for name, fails in (("first", False), ("second", True), ("third", False)):
        manager.register(plugin(name, fails), name=name)
    call_each(
        manager.hook.policy_engine_decision_made,
        lambda name: {"event": f"for-{name}"},
        lambda name, exc: failed.append((name, str(exc))),
    )
    assert called == ["third:for-third", "second:for-second", "first:for-first"]
    assert failed == [("second", "second broke")]


def test_call_each_runs_wrappers_through_pluggy_once() -> None:
    called: list[str] = []
    failed: list[tuple[str | None, str]] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def policy_engine_decision_made(self, event: DecisionEvent) -> Any:
            called.append("wrapper")
            yield
            raise RuntimeError("the wrapper broke")

    class Plain:
        @hookimpl
        def policy_engine_decision_made(self, event: DecisionEvent) -> None:
            called.append(f"plain:{event}")

    manager = make_plugin_manager(load_entry_points=False)
    manager.register(Plain(), name="plain")
    manager.register(Wrapper(), name="wrapper")
    call_each(
        manager.hook.policy_engine_decision_made,
        lambda name: {"event": f"for-{name}"},
        lambda name, exc: failed.append((name, str(exc))),
    )
    assert called == ["wrapper", "plain:for-None"]
    assert failed == [(WRAPPED, "the wrapper broke")]


# -- built-in plugins, and blocking by name ----------------------------------------


def knives_registry() -> DetectorRegistry:
    return DetectorRegistry([RegisteredDetector(Knives(), "acme")])


def knives_policy(
    tmp_path: Path, name: str = "knives", review_at: int = 50, block_at: int = 90
) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"version: 1\nname: {name}\ndetectors: {{knives: {{}}}}\nrules:\n  - id: knives\n"
        f"    match: {{name: Knife}}\n    review_at: {review_at}\n    block_at: {block_at}\n",
        encoding="utf-8",
    )
    return path


def test_the_built_in_plugins_are_registered_by_name_like_any_other(tmp_path: Path) -> None:
    manager = make_plugin_manager(load_entry_points=False)
    audit = tmp_path / "audit.jsonl"
    with Moderator(
        knives_policy(tmp_path), registry=knives_registry(), plugin_manager=manager, audit_log=audit
    ) as moderator:
        assert set(BUILTIN_PLUGINS) == {AUDIT_LOG_PLUGIN, SHADOW_LOG_PLUGIN}
        for name in BUILTIN_PLUGINS:
            plugin = manager.get_plugin(name)
            assert plugin is not None
            callers = manager.get_hookcallers(plugin) or []
            assert [c.name for c in callers] == ["policy_engine_decision_made"]
        assert manager.get_plugin(AUDIT_LOG_PLUGIN) is moderator.audit_log
        moderator.check(b"x")
    assert len(audit.read_text(encoding="utf-8").splitlines()) == 1


@pytest.mark.parametrize("how", ["environment", "parameter"])
def test_a_built_in_plugin_can_be_blocked_by_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    blocked = f"{SHADOW_LOG_PLUGIN}, {AUDIT_LOG_PLUGIN}"
    if how == "environment":
        manager = make_plugin_manager(load_entry_points=False, environ={BLOCK_ENV: blocked})
    else:
        manager = make_plugin_manager(
            load_entry_points=False, blocked=[SHADOW_LOG_PLUGIN, AUDIT_LOG_PLUGIN]
        )
    audit = tmp_path / "audit.jsonl"
    with caplog.at_level(logging.WARNING):
        moderator = Moderator(
            knives_policy(tmp_path, review_at=90, block_at=99),
            registry=knives_registry(),
            plugin_manager=manager,
            shadow=knives_policy(tmp_path, "strict", review_at=40, block_at=50),
            audit_log=audit,
        )
        decision = moderator.check(b"x")  # the candidate disagrees: review against block
    assert decision.verdict is Verdict.REVIEW  # deciding never depends on the built-ins
    assert not manager.has_plugin(SHADOW_LOG_PLUGIN) and not manager.has_plugin(AUDIT_LOG_PLUGIN)
    assert moderator.audit_log is None and not audit.exists()
    assert "shadow disagreement" not in caplog.text
    assert f"{AUDIT_LOG_PLUGIN!r} is blocked ({BLOCK_ENV})" in caplog.text


def test_the_environment_blocks_an_installed_plugin_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded: list[str] = []

    def module_for(name: str) -> types.SimpleNamespace:
        def policy_engine_register_detectors(register: Any) -> None:
            loaded.append(name)

        return plugin_module(policy_engine_register_detectors=policy_engine_register_detectors)

    installed(
        monkeypatch, FakeEntryPoint("a", module_for("a")), FakeEntryPoint("b", module_for("b"))
    )
    manager = make_plugin_manager(environ={BLOCK_ENV: "a"})
    DetectorRegistry.from_plugin_manager(manager)
    assert loaded == ["b"] and manager.is_blocked("a") and not manager.has_plugin("a")


def test_a_plugin_the_environment_names_that_is_not_installed_is_an_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed(monkeypatch, FakeEntryPoint("a", plugin_module()))
    with pytest.raises(UnknownPluginError) as caught:
        make_plugin_manager(environ={"POLICY_ENGINE_PLUGINS": "a, rekognitoin"})
    assert caught.value.code == "unknown-plugin"
    assert caught.value.missing == ("rekognitoin",)
    assert "POLICY_ENGINE_PLUGINS names 'rekognitoin'" in str(caught.value)
    assert "(installed: a)" in str(caught.value)
    # a built-in plugin's name is a plugin's name too
    make_plugin_manager(environ={"POLICY_ENGINE_PLUGINS": "a,policy-engine-audit-log"})
