"""Suite-wide test set-up, for the core's tests and every plugin's.

botocore parses its service models (several MB of JSON) afresh for each
``Session``. The code under test builds a Session per engine, as a new Lambda
container or CLI run does, and the suite builds hundreds of engines: sharing
one data loader between them saves most of the suite's time in botocore and
changes no request or response (the loader only reads the models)."""

from __future__ import annotations

import functools

import botocore.session
from botocore.loaders import create_loader

botocore.session.create_loader = functools.cache(create_loader)  # type: ignore[attr-defined]
