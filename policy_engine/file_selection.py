"""Which files a command takes from the paths it is given: each file named,
and the files a folder holds (recursively) that the command's kind of file
is, each once, in the order given (a folder's sorted)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path


def select_files(
    paths: Sequence[str],
    *,
    in_folder: Callable[[Path], bool],
    folder_holds: str,
    named: Callable[[Path, str], Path | str],
) -> tuple[list[Path], list[str]]:
    """The files for ``paths``: under a folder, every regular file for which
    ``in_folder`` is true (``folder_holds`` describes them, for the message
    about a folder with none); for anything else, what ``named(path, as
    written)`` gives: the file to take, or a message saying why there is none.
    Returns the files (each once, by resolved path) and the messages."""
    found: list[Path] = []
    problems: list[str] = []
    for written in paths:
        path = Path(written)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and in_folder(p))
            if not files:
                problems.append(f"{written}: no {folder_holds} in this folder")
            found.extend(files)
            continue
        chosen = named(path, written)
        if isinstance(chosen, str):
            problems.append(chosen)
        else:
            found.append(chosen)
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values()), problems
