"""``python -m examples.upload_service``: serve the example upload service."""

from __future__ import annotations

import sys

from examples.upload_service.app import main

sys.exit(main())
