"""The root README's Prometheus example runs as written, and what it serves at
/metrics is scraped over real HTTP."""

from __future__ import annotations

import re
import threading
import urllib.request
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from prometheus_client.parser import text_string_to_metric_families

README = Path(__file__).resolve().parents[3] / "README.md"


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_readme_example_serves_its_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    (block,) = [b for b in blocks if "PrometheusMetrics(registry)" in b]
    monkeypatch.chdir(README.parent)
    namespace: dict[str, Any] = {}
    exec(compile(block, str(README), "exec"), namespace)

    server = make_server("127.0.0.1", 0, namespace["metrics_app"], handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode("utf-8")
    finally:
        server.shutdown()
        server.server_close()
        namespace["moderator"].close()

    families = {f.name: f for f in text_string_to_metric_families(text)}
    def totals(family: str) -> list[Any]:
        return [s for s in families[family].samples if s.name.endswith("_total")]

    verdicts = sorted(s.labels["verdict"] for s in totals("policy_engine_decisions"))
    assert verdicts == ["allow", "block", "review"]
    (errors,) = totals("policy_engine_detector_errors")
    assert (errors.labels["error_code"], errors.value) == ("no-recording", 1.0)
