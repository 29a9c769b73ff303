"""Habits every command keeps: help for each positional argument, and a
progress line that leaves no stale characters behind."""

from __future__ import annotations

import argparse
import io

import pytest

from policy_engine.cli import COMMANDS, build_parser
from policy_engine.cli.check_cmd import ProgressLine


def _screen(written: str) -> str:
    """What a terminal shows on the line after ``written``: a carriage return
    moves to column 0, each character overwrites the one under the cursor."""
    line: list[str] = []
    column = 0
    for char in written:
        if char == "\r":
            column = 0
            continue
        if column < len(line):
            line[column] = char
        else:
            line.append(char)
        column += 1
    return "".join(line)


def test_a_shorter_progress_text_leaves_nothing_of_the_longer_one() -> None:
    stream = io.StringIO()
    progress = ProgressLine(stream)
    progress.show("checked 10 image(s), 1234.5/s, 10 call(s)")
    progress.show("checked 11 image(s), 9.9/s, 11 call(s)")
    assert _screen(stream.getvalue()).rstrip() == "checked 11 image(s), 9.9/s, 11 call(s)"
    assert "\x1b" not in stream.getvalue()  # plain spaces: fine on any terminal or log


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_check_on_a_terminal_shows_each_count_on_one_line(h, tmp_path) -> None:
    from policy_engine.cli import main

    rec = tmp_path / "rec"
    images = [h.write_image(tmp_path / "imgs" / f"{n}.jpg", f"image {n}".encode()) for n in "ab"]
    for image in images:
        h.record(rec, image, h.moderation())
    policy = h.write_text(
        tmp_path / "policy.yaml",
        f"version: 1\nname: p\ndetectors:\n  stub: {{recordings: {rec}}}\n"
        "rules:\n  - id: v\n    match: {parent: Violence}\n    block_at: 90\n",
    )
    out, err = io.StringIO(), _Terminal()
    code = main(["check", "--policy", str(policy), str(tmp_path / "imgs")], out, err)
    assert code == 0, err.getvalue()
    progress = err.getvalue().split("\n", 1)[0]
    assert progress.count("\r") == 2
    assert _screen(progress).rstrip().startswith("checked 2 image(s), ")


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_positional_argument_has_help(command: str) -> None:
    parser = build_parser()
    commands = _subparsers(parser)
    commands.configure.pop(command)()  # type: ignore[attr-defined]  # declare its arguments
    subparser = commands.choices[command]
    positionals = [a for a in subparser._actions if not a.option_strings]
    for action in positionals:
        assert action.help and action.help.strip(), f"{command} {action.metavar or action.dest}"
