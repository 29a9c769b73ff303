"""``python -m examples.asgi_service``: serve the ASGI example upload service."""

from __future__ import annotations

import sys

from examples.asgi_service.app import main

sys.exit(main())
