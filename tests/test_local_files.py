"""Reading named files: regular files only, bounded reads, folders walked whole."""

from __future__ import annotations

import os
import socket
import stat
import threading
import tracemalloc
from pathlib import Path

import pytest

from policy_engine import local_files
from policy_engine.errors import InputFileError
from policy_engine.local_files import FolderEntry, read_bounded, walk_folder


def test_reads_a_regular_file_up_to_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"x" * 10)
    assert read_bounded(path, 10) == b"x" * 10


def test_a_larger_file_is_refused_naming_both_sizes(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(b"x" * 11)
    with pytest.raises(InputFileError) as caught:
        read_bounded(path, 10, what="image file")
    assert caught.value.code == "file-too-large"
    assert "image file is 11 bytes, over the 10" in str(caught.value)
    assert isinstance(caught.value, OSError)  # callers that catch OSError keep working


def test_a_small_file_costs_its_size_not_the_bound(tmp_path: Path) -> None:
    # a read asks for what fstat said: every image used to allocate the whole bound
    path = tmp_path / "small.png"
    path.write_bytes(b"x" * 100)
    tracemalloc.start()
    try:
        assert read_bounded(path, 64 * 1024 * 1024) == b"x" * 100
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_a_file_that_grew_since_fstat_is_read_to_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "growing.png"
    content = bytes(range(256)) * 40  # 10,240 bytes
    path.write_bytes(content)
    real_fstat = os.fstat

    def stale_fstat(fd: int) -> os.stat_result:
        fields = list(real_fstat(fd))
        fields[stat.ST_SIZE] = 10  # as it was when fstat looked
        return os.stat_result(fields)

    monkeypatch.setattr(os, "fstat", stale_fstat)
    monkeypatch.setattr(local_files, "_CHUNK_BYTES", 1000)
    assert read_bounded(path, len(content)) == content
    with pytest.raises(InputFileError, match="at least 5,001 bytes, over the 5,000"):
        read_bounded(path, 5000)


def test_a_file_whose_size_says_nothing_is_read_whole() -> None:
    # /proc files are regular, of size 0, and have content
    assert read_bounded("/proc/self/status", 1 << 20).startswith(b"Name:")


def test_an_endless_device_is_refused_without_reading_it() -> None:
    with pytest.raises(InputFileError) as caught:
        read_bounded("/dev/zero", 5)
    assert caught.value.code == "not-a-regular-file"
    assert "character device" in str(caught.value)


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_bounded(fifo, 5)
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert isinstance(outcome[0], InputFileError)
    assert "FIFO" in str(outcome[0])


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="a folder"):
        read_bounded(tmp_path, 5)


def _walked(folder: Path) -> list[tuple[str, str | None]]:
    return [(os.path.relpath(e.path, folder), e.problem) for e in walk_folder(str(folder))]


def test_walk_yields_every_file_hidden_ones_and_any_suffix_included(tmp_path: Path) -> None:
    for name in ("b.png", "a.gif", ".hidden.jpg", "notes.txt", "sub/c.webp", ".git/x"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"1")
    assert _walked(tmp_path) == [
        (".git/x", None),
        (".hidden.jpg", None),
        ("a.gif", None),
        ("b.png", None),
        ("notes.txt", None),
        ("sub/c.webp", None),
    ]


def test_walk_follows_symlinked_folders_and_reports_a_cycle(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "linked.png").write_bytes(b"1")
    root = tmp_path / "root"
    (root / "inner").mkdir(parents=True)
    (root / "inner" / "x.png").write_bytes(b"1")
    (root / "via-link").symlink_to(outside)
    (root / "inner" / "back-up").symlink_to(root)  # a cycle
    walked = _walked(root)
    assert ("via-link/linked.png", None) in walked
    assert ("inner/x.png", None) in walked
    cycle = dict(walked)["inner/back-up"]
    assert cycle is not None and "cycle" in cycle


def test_walk_reports_broken_links_and_special_files(tmp_path: Path) -> None:
    (tmp_path / "dangling.png").symlink_to(tmp_path / "missing")
    os.mkfifo(tmp_path / "pipe.png")
    listener = socket.socket(socket.AF_UNIX)
    try:
        listener.bind(str(tmp_path / "sock.png"))
        problems = dict(_walked(tmp_path))
    finally:
        listener.close()
    assert "leads nowhere" in (problems["dangling.png"] or "")
    assert "FIFO" in (problems["pipe.png"] or "")
    assert "socket" in (problems["sock.png"] or "")


def test_walk_reports_a_folder_it_cannot_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    listdir = os.listdir

    def refuse(path: str) -> list[str]:
        if path == str(locked):
            raise PermissionError(13, "Permission denied")
        return listdir(path)

    monkeypatch.setattr(os, "listdir", refuse)  # as root, chmod 0 would not stop it
    assert list(walk_folder(str(tmp_path))) == [
        FolderEntry(str(locked), "cannot list the folder: Permission denied")
    ]


def test_links_that_fan_out_are_walked_once_each_not_exponentially(tmp_path: Path) -> None:
    # level i holds two links to level i+1: 2**depth paths lead to the last file
    depth = 30
    for level in range(depth + 1):
        (tmp_path / f"l{level}").mkdir()
    (tmp_path / f"l{depth}" / "x.png").write_bytes(b"1")
    for level in range(depth):
        for link in ("a", "b"):
            (tmp_path / f"l{level}" / link).symlink_to(tmp_path / f"l{level + 1}")
    entries = list(walk_folder(str(tmp_path / "l0")))
    files = [e for e in entries if e.problem is None]
    assert [os.path.basename(e.path) for e in files] == ["x.png"]
    assert len(entries) == depth + 1  # one 'walked already' record per second link
    assert all("walked already" in (e.problem or "") for e in entries if e.problem)


def test_a_link_loop_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assert "loop" in (dict(_walked(tmp_path))["a"] or "")


def test_a_device_is_refused_before_it_is_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_open(*args: object) -> int:
        raise AssertionError("opened a device")

    monkeypatch.setattr(os, "open", no_open)
    with pytest.raises(InputFileError, match="character device"):
        read_bounded("/dev/zero", 5)
