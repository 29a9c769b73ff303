"""Script files: the scripting API written as JSON, for ``--script FILE``.

A script is a JSON object whose keys name :class:`FakeRekognition` methods
(``set_default``, ``respond``, ``fail``, ``throttle``); each holds one call's
keyword arguments, or a list of them. Calls are made in the order written::

    {
      "set_default": {"response": {"ModerationLabels": [], "ModerationModelVersion": "7.0"}},
      "respond": [
        {"image_file": "knife.jpg", "response": {"ModerationLabels": [...]}},
        {"image": "s3://uploads/cat.jpg", "response": {"ModerationLabels": []}}
      ],
      "throttle": {"times": 2},
      "fail": {"image": "<hex sha256>", "code": "AccessDeniedException"}
    }

An image is ``image`` (a hex sha256 of the bytes, or ``s3://bucket/name``) or
``image_file`` (a file, relative to the script's folder, whose bytes are
meant); ``fail`` and ``throttle`` without one apply to every image. Every
other argument is the method's own, checked as the method checks it. Every
mistake is reported, each with where it is, before anything is applied.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from policy_engine_rekognition.testing.scripting import FakeRekognition

Step = Callable[[FakeRekognition], None]

# The arguments each method takes from a script ("image_file" stands for "image").
_ARGUMENTS: Final[Mapping[str, frozenset[str]]] = {
    "set_default": frozenset({"response", "operation"}),
    "respond": frozenset({"image", "image_file", "response", "operation"}),
    "fail": frozenset(
        {"image", "image_file", "code", "status", "message", "times", "operation", "fields", "body"}
    ),
    "throttle": frozenset({"image", "image_file", "times", "then", "operation", "status"}),
}
_REQUIRED: Final[Mapping[str, frozenset[str]]] = {
    "set_default": frozenset({"response"}),
    "respond": frozenset({"response"}),
}
_STRINGS: Final = frozenset({"image", "image_file", "code", "message", "body", "operation"})
_OBJECTS: Final = frozenset({"response", "then", "fields"})
# Scripts name images and hold JSON responses; a file far larger is a mistake.
_MAX_SCRIPT_BYTES: Final = 64 * 1024 * 1024


class ScriptError(Exception):
    """A script file that cannot be applied; :attr:`errors` says every reason,
    each as ``FILE: where: what``."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = tuple(errors)


@dataclass(frozen=True, slots=True)
class Script:
    """A checked script: :meth:`apply` makes its calls on a fake."""

    source: str
    steps: tuple[Step, ...]

    def apply(self, fake: FakeRekognition) -> None:
        for step in self.steps:
            step(fake)


def read_script(path: str | os.PathLike[str]) -> Script:
    """Read and check the script file at ``path``; raises :class:`ScriptError`."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as file:
            data = file.read(_MAX_SCRIPT_BYTES + 1)
    except OSError as exc:
        raise ScriptError([f"{source}: cannot read the script: {exc.strerror or exc}"]) from exc
    if len(data) > _MAX_SCRIPT_BYTES:
        raise ScriptError([f"{source}: larger than {_MAX_SCRIPT_BYTES} bytes"])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScriptError([f"{source}: not UTF-8 text: {exc}"]) from exc
    return parse_script(text, source=source, base_dir=Path(source).parent)


def parse_script(
    text: str, *, source: str = "<script>", base_dir: str | os.PathLike[str] = "."
) -> Script:
    """Check the script ``text`` (``image_file`` relative to ``base_dir``); raises
    :class:`ScriptError` with every mistake found."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScriptError(
            [f"{source}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"]
        ) from exc
    if not isinstance(document, dict):
        raise ScriptError(
            [
                f"{source}: a script is a JSON object whose keys are {_methods()}, "
                f"got {_json_type(document)}"
            ]
        )
    errors: list[str] = []
    steps: list[Step] = []
    scratch = FakeRekognition()  # never started: its methods check each call's arguments
    for method, calls in document.items():
        if method not in _ARGUMENTS:
            errors.append(
                f"{source}: unknown key {method!r}{_did_you_mean(method, _ARGUMENTS)}; "
                f"the keys are {_methods()}"
            )
            continue
        entries = calls if isinstance(calls, list) else [calls]
        for index, arguments in enumerate(entries):
            where = f"{source}: {method}" + (f"[{index}]" if isinstance(calls, list) else "")
            try:
                step = _step(method, arguments, Path(base_dir))
                step(scratch)
            except (ValueError, TypeError) as exc:
                errors.append(f"{where}: {exc}")
            else:
                steps.append(step)
    if errors:
        raise ScriptError(errors)
    return Script(source, tuple(steps))


def _step(method: str, arguments: object, base_dir: Path) -> Step:
    """One call of ``method`` with ``arguments``, checked for shape (the method
    checks the values); raises ValueError or TypeError."""
    if not isinstance(arguments, dict):
        raise TypeError(
            f"expected an object of arguments ({', '.join(sorted(_ARGUMENTS[method]))}), "
            f"got {_json_type(arguments)}"
        )
    unknown = sorted(set(arguments) - _ARGUMENTS[method])
    if unknown:
        name = unknown[0]
        raise ValueError(
            f"unknown argument {name!r}{_did_you_mean(name, _ARGUMENTS[method])}; "
            f"{method} takes {', '.join(sorted(_ARGUMENTS[method]))}"
        )
    missing = sorted(_REQUIRED.get(method, frozenset()) - set(arguments))
    if missing:
        raise ValueError(f"{method} needs {' and '.join(missing)}")
    for name in sorted(_STRINGS & set(arguments)):
        if not isinstance(arguments[name], str):
            raise TypeError(f"{name} must be a string, got {_json_type(arguments[name])}")
    for name in sorted(_OBJECTS & set(arguments)):
        if not isinstance(arguments[name], dict):
            raise TypeError(f"{name} must be an object, got {_json_type(arguments[name])}")
    if "image" in arguments and "image_file" in arguments:
        raise ValueError("give image or image_file, not both")
    if method == "respond" and "image" not in arguments and "image_file" not in arguments:
        raise ValueError("respond needs image (a hex sha256 or s3://bucket/name) or image_file")
    keywords: dict[str, Any] = dict(arguments)
    if "image_file" in keywords:
        keywords["image"] = _read_image(base_dir / keywords.pop("image_file"))
    return lambda fake: getattr(fake, method)(**keywords)


def _read_image(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(
            f"image_file: cannot read {os.fspath(path)}: {exc.strerror or exc}"
        ) from exc


def _methods() -> str:
    return ", ".join(_ARGUMENTS)


def _did_you_mean(name: str, choices: Mapping[str, object] | frozenset[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _json_type(value: object) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "true or false",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)
