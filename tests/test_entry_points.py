"""The one entry-point scan (policy_engine.entry_points) finds what
importlib.metadata finds, in the same order, without importing it."""

from __future__ import annotations

import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from policy_engine.entry_points import EntryPoint, entry_points


def pairs(found: object) -> list[tuple[str, str]]:
    return [(ep.name, ep.value) for ep in found]  # type: ignore[attr-defined]


def write_distribution(folder: Path, info: str, text: str | None) -> None:
    (folder / info).mkdir(parents=True)
    (folder / info / "METADATA").write_text(f"Name: {info.partition('-')[0]}\n", encoding="utf-8")
    if text is not None:
        (folder / info / "entry_points.txt").write_text(text, encoding="utf-8")


@pytest.mark.parametrize("group", ["policy_engine", "console_scripts", "pytest11"])
def test_the_installed_entry_points_are_those_importlib_metadata_lists(group):
    assert pairs(entry_points(group)) == pairs(metadata.entry_points(group=group))


def test_the_first_distribution_of_a_name_on_the_path_hides_later_ones(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    write_distribution(
        first,
        "demo_pkg-2.0.dist-info",
        "# a comment\n[console_scripts]\ndemo = demo:main\n\n[demo.group]\n"
        "one = demo_one:plugin\n# another comment\n two =demo_two.sub:Thing.make [extra]\n",
    )
    write_distribution(second, "Demo.Pkg-1.0.dist-info", "[demo.group]\nold = demo_old:plugin\n")
    write_distribution(second, "other-1.0.egg-info", "[demo.group]\nthree = other\n")
    write_distribution(second, "no_entry_points-1.0.dist-info", None)
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))

    found = pairs(entry_points("demo.group"))

    assert found == [
        ("one", "demo_one:plugin"),
        ("two", "demo_two.sub:Thing.make [extra]"),
        ("three", "other"),
    ]
    assert found == pairs(metadata.entry_points(group="demo.group"))


def test_a_zip_on_the_path_is_read_through_importlib_metadata(tmp_path, monkeypatch):
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\n")
        zipped.writestr("zipped-1.0.dist-info/entry_points.txt", "[demo.zip]\nz = zipped:plugin\n")
    monkeypatch.syspath_prepend(str(archive))

    assert pairs(entry_points("demo.zip")) == [("z", "zipped:plugin")]


def test_load_imports_the_module_and_follows_the_attributes(tmp_path, monkeypatch):
    (tmp_path / "demo_loaded.py").write_text(
        "class Thing:\n    class Inner:\n        VALUE = 42\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    assert EntryPoint("x", "demo_loaded:Thing.Inner.VALUE [extra]").load() == 42
    assert EntryPoint("x", "demo_loaded").load().__name__ == "demo_loaded"
    with pytest.raises(ValueError, match="malformed value"):
        EntryPoint("x", "not a module path").load()
