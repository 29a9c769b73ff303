"""Reading the local files a user names: regular files only, never more than a
bound, and folders walked whole.

A FIFO among the inputs would block a read forever and ``/dev/zero`` never
ends, so a file is opened without blocking and checked with ``fstat`` (on
the open file: no race with a rename) before a byte is read; then at most
``max_bytes + 1`` bytes are read, to tell a larger file, whatever its size.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from policy_engine.errors import InputFileError

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # opening a FIFO must not wait for a writer
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def read_bounded(path: str | os.PathLike[str], max_bytes: int, *, what: str = "file") -> bytes:
    """The bytes of the regular file at ``path``; raises :class:`InputFileError`
    for anything else or for more than ``max_bytes`` bytes, and ``OSError`` as
    ``open`` does (missing, no permission)."""
    # Refused before it is opened: opening some devices does something by itself.
    _refuse_special(os.stat(path).st_mode)
    fd = os.open(path, _OPEN_FLAGS)
    try:
        info = os.fstat(fd)  # again, on what was opened: it may have been swapped
        _refuse_special(info.st_mode)
        if info.st_size > max_bytes:
            raise _too_large(what, info.st_size, max_bytes)
        with os.fdopen(fd, "rb") as stream:
            fd = -1  # the stream owns it now
            data = _read_upto(stream, info.st_size, max_bytes + 1)
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > max_bytes:  # it grew since fstat
        raise _too_large(what, len(data), max_bytes, at_least=True)
    return data


_CHUNK_BYTES = 1024 * 1024
"""What a read past the size ``fstat`` gave asks for at a time."""


def _read_upto(stream: BinaryIO, size: int, limit: int) -> bytes:
    """At most ``limit`` bytes of ``stream``, a file ``fstat`` said is ``size`` bytes.

    A read of ``n`` bytes allocates ``n`` first: asking for ``limit`` (64 MiB
    for an image) cost every image that much address space and a map and unmap.
    So the size is asked for (plus a byte, to see a file that grew since, or
    one whose size says nothing, as in /proc), and only beyond it, in chunks."""
    data = stream.read(min(size, limit - 1) + 1)
    if len(data) <= size or len(data) >= limit:
        return data
    chunks = [data]
    read = len(data)
    while read < limit and (chunk := stream.read(min(_CHUNK_BYTES, limit - read))):
        chunks.append(chunk)
        read += len(chunk)
    return b"".join(chunks)


def _refuse_special(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise InputFileError(
            f"{_kind(mode)}, not a regular file: refused", code="not-a-regular-file"
        )


def describe_stat_error(path: str, exc: OSError) -> str:
    """Why ``path`` cannot be looked at, in words: a missing file, a link that
    leads nowhere or round in a loop, a name too long, no permission."""
    if exc.errno == errno.ENOENT:
        return (
            "cannot read: a symbolic link that leads nowhere"
            if os.path.islink(path)
            else ("no such file or folder")
        )
    if exc.errno == errno.ELOOP:
        return "cannot read: symbolic links that lead round in a loop"
    return f"cannot read: {exc.strerror or exc}"


def _too_large(what: str, size: int, max_bytes: int, *, at_least: bool = False) -> InputFileError:
    amount = f"at least {size:,}" if at_least else f"{size:,}"
    return InputFileError(
        f"the {what} is {amount} bytes, over the {max_bytes:,} that may be read",
        code="file-too-large",
    )


@dataclass(frozen=True, slots=True)
class FolderEntry:
    """A file found under a folder, or why an entry there cannot be read."""

    path: str
    problem: str | None = None


def walk_folder(folder: str) -> Iterator[FolderEntry]:
    """Every entry under ``folder``, depth first, sorted by name, hidden ones
    included (a name must never hide an upload from moderation). Symbolic
    links are followed; one that leads back to a folder being walked (a
    cycle), one that leads nowhere, and anything that is not a regular file
    are yielded with their ``problem``, never skipped in silence."""
    start = os.stat(folder)
    yield from _walk(folder, {(start.st_dev, start.st_ino): folder})


def _walk(folder: str, walked: dict[tuple[int, int], str]) -> Iterator[FolderEntry]:
    """``walked``: every folder walked so far, by device and inode, and the path
    it was first walked as: a folder reached again (links that fan out, or a
    cycle) is walked once, or a few links could make the walk exponential."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        yield FolderEntry(folder, f"cannot list the folder: {exc.strerror or exc}")
        return
    for name in names:
        path = os.path.join(folder, name)
        try:
            info = os.stat(path)  # follows links
        except OSError as exc:
            yield FolderEntry(path, describe_stat_error(path, exc))
            continue
        if stat.S_ISDIR(info.st_mode):
            identity = (info.st_dev, info.st_ino)
            if identity in walked:
                yield FolderEntry(
                    path,
                    f"not followed: a symbolic link to {walked[identity]}, which is walked "
                    "already (its files are checked there; links that lead back make a cycle)",
                )
                continue
            walked[identity] = path
            yield from _walk(path, walked)
        elif stat.S_ISREG(info.st_mode):
            yield FolderEntry(path)
        else:
            yield FolderEntry(path, f"{_kind(info.st_mode)}, not a regular file: refused")
