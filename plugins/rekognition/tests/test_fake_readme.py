"""The README's FakeRekognition example runs as written, and tests what it says."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## Testing your upload flow without AWS"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :].split("\n## ", 2)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, re.S)
    return str(block)


@pytest.mark.usefixtures("instant_retries")
def test_readme_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    threads_before = set(threading.enumerate())
    namespace: dict[str, Any] = {"__name__": "test_uploads"}
    exec(compile(readme_example(), str(README), "exec"), namespace)

    namespace["test_upload_flow"](monkeypatch)

    assert set(threading.enumerate()) - threads_before == set()


def test_readme_example_fails_when_the_flow_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    # The example's assertions bite: an upload flow that allows everything fails it.
    namespace: dict[str, Any] = {"__name__": "test_uploads"}
    exec(compile(readme_example(), str(README), "exec"), namespace)
    namespace["moderate_upload"] = lambda engine, upload_id, data: "allow"

    with pytest.raises(AssertionError):
        namespace["test_upload_flow"](monkeypatch)
