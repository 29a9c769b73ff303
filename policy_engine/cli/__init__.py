"""The ``policy-engine`` command: a thin layer over the library.

Every command writes to the streams it is given and returns an exit code
(see :mod:`policy_engine.cli.exit_codes`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import threading
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from policy_engine import __version__
from policy_engine.cli import exit_codes

if TYPE_CHECKING:
    from policy_engine.cli.plugin_commands import PluginCommand

COMMANDS = {
    "check": "run the policy's detectors over images (files, folders, s3://, stdin)",
    "evaluate": "decide from recorded detector responses (JSON files)",
    "validate": "check policy files (schema, meaning, detector settings) and lint them",
    "test": "run policy test files: example cases and invariants",
    "explain": "explain how the policy decides each label of recorded responses",
    "table": "print the exact decision table: each label's rule and confidence bands",
    "diff": "what changes between two policies: exact confidence ranges, and on a corpus",
    "migrate": "rewrite a policy's model 6 label names to model 7",
    "schema": "print the JSON Schema of policy files (or of decision records)",
    "plugins": "list installed plugins, their versions, detectors and hooks (JSON)",
}
"""Each command, in the order ``--help`` lists them, with its line there. The
command ``NAME`` is the module ``policy_engine.cli.NAME_cmd``; it is imported
only when NAME runs (or prints its own help), so that ``--help``,
``--version`` and a usage error cost about what ``import policy_engine``
does. A module declares ``configure(parser)``: its description, its
arguments, and ``run`` as the ``run`` default. Plugins add commands through
the ``policy_engine_register_commands`` hook, looked up only for a command
not listed here and for the top-level ``--help``
(:mod:`policy_engine.cli.plugin_commands`)."""


class _LazyCommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Subcommands whose arguments are declared when the command is chosen."""

    configure: dict[str, Callable[[], None]]

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        configure = self.configure.pop(values[0], None)
        if configure is not None:
            configure()
        super().__call__(parser, namespace, values, option_string)


def build_parser(plugin_commands: Sequence[PluginCommand] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policy-engine",
        description="Content-policy engine for image moderation: policies as YAML, "
        "detectors as plugins, decisions with reasons.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", action=_LazyCommands
    )
    assert isinstance(commands, _LazyCommands)
    commands.configure = {}
    for name, summary in COMMANDS.items():
        subparser = commands.add_parser(name, help=summary)
        commands.configure[name] = _configurer(name, subparser)
    for command in plugin_commands:
        subparser = commands.add_parser(command.name, help=command.summary)
        commands.configure[command.name] = _plugin_configurer(command, subparser)
    return parser


def _plugin_configurer(
    command: PluginCommand, parser: argparse.ArgumentParser
) -> Callable[[], None]:
    def configure() -> None:
        command.configure(parser)

    return configure


def _configurer(name: str, parser: argparse.ArgumentParser) -> Callable[[], None]:
    def configure() -> None:
        import_module(f"policy_engine.cli.{name}_cmd").configure(parser)

    return configure


def main(
    argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    if out is None or err is None:  # started with the stream closed (`>&-`)
        if err is not None:
            print("policy-engine: standard output is closed; nothing can be written", file=err)
        return exit_codes.USAGE
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        extra = _plugin_commands(argv)
    except Exception as exc:  # a broken plugin: said, and only --help goes on without it
        print(f"policy-engine: {exc}", file=err)
        if "-h" not in argv and "--help" not in argv:
            return exit_codes.USAGE
        extra = ()
    parser = build_parser(extra)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    # imported now, not at the top, so that --help and --version stay cheap
    from policy_engine.cli.common import CommandError

    try:
        code: int = args.run(args, out, err)
    except CommandError as exc:
        print(str(exc), file=err)
        return exc.exit_code
    except KeyboardInterrupt:
        return exit_codes.INTERRUPTED
    except BrokenPipeError:  # e.g. piped into head: what was not written is lost
        return exit_codes.OUTPUT_CLOSED
    except OSError as exc:  # e.g. a full disk under the output: said, never a traceback
        with contextlib.suppress(OSError):
            print(f"policy-engine: {exc.strerror or exc}", file=err)
        return exit_codes.USAGE
    return code


def _plugin_commands(argv: list[str]) -> tuple[PluginCommand, ...]:
    """The plugins' commands, where the command line may need them (never for a
    core command: its start stays as cheap as without plugins)."""
    if not _names_no_core_command(argv):
        return ()
    from policy_engine.cli.plugin_commands import plugin_commands

    return tuple(plugin_commands(COMMANDS).values())


def _names_no_core_command(argv: list[str]) -> bool:
    """Whether the command line names a command that is not a core one, or asks
    for the top-level help (which lists the plugins' commands too)."""
    for arg in argv:
        if arg in ("-h", "--help"):
            return True
        if not arg.startswith("-"):
            return arg not in COMMANDS
    return False


def console_main() -> NoReturn:
    """The ``policy-engine`` command and ``python -m policy_engine``: :func:`main`,
    then exit. After a second Ctrl-C, calls may still be in flight on worker
    threads, which a normal exit would wait for (up to botocore's timeouts):
    the process exits at once instead, its output flushed."""
    for stream in (sys.stdout, sys.stderr):
        # Text that is not valid Unicode (a file name's stray byte) is shown
        # escaped, never a crash halfway through a run.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    code = main()
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError):  # the output closed or filled: already said
        _discard_stdout()
    if code == exit_codes.INTERRUPTED and _checks_in_flight():
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
    raise SystemExit(code)


def _discard_stdout() -> None:
    """After the output failed (a closed pipe, a full disk), the interpreter's
    final flush of stdout would fail again and print a traceback-like
    warning: send what is left nowhere."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _checks_in_flight() -> bool:
    from policy_engine.batch import CHECK_THREAD_PREFIX

    return any(
        thread.name.startswith(CHECK_THREAD_PREFIX) and thread.is_alive()
        for thread in threading.enumerate()
    )
