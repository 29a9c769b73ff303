"""``python -m examples.upload_service.healthcheck``: the container's health
check. Exits 0 when the service on this machine answers ``GET /healthz``
with ``"status": "ok"``, 1 otherwise (standard library only: the slim image
has no curl). It asks the ``PORT`` the service listens on, at ``HOST``, or at
127.0.0.1 when the service listens on every interface."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Mapping

EVERY_INTERFACE = {"", "0.0.0.0", "::"}


def healthz_url(environ: Mapping[str, str]) -> str:
    host = environ.get("HOST", "")
    host = "127.0.0.1" if host in EVERY_INTERFACE else host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{int(environ.get('PORT') or 8000)}/healthz"


def main(environ: Mapping[str, str] | None = None) -> int:
    url = healthz_url(os.environ if environ is None else environ)
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            status = json.load(response).get("status")
    except (OSError, ValueError) as exc:  # refused, timed out, not 200, not JSON
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if status != "ok":
        print(f"unhealthy: {url}: status {status!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
