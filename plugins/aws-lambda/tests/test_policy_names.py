"""The function refuses a policy with a rule name no taxonomy knows (POLICY_SPEC 7):
at the cold start, before any object is looked at, never by allowing every upload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lambda_helpers import BUCKET
from policy_engine_lambda import handler as lambda_handler

from policy_engine import PolicyLoadError


def test_a_misspelt_category_stops_the_function_at_its_cold_start(
    s3: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "typo.yaml").write_text(
        "version: 1\nname: typo\ndetectors: {rekognition-moderation: {}}\nrules:\n"
        "  - id: explicit\n    match: {parent: Explicitt}\n    block_at: 80\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    monkeypatch.setenv("POLICY_FILE", "typo.yaml")
    s3.put_object(Bucket=BUCKET, Key="uploads/x.jpg", Body=b"bytes")
    event = {"Records": [{"s3": {"bucket": {"name": BUCKET}, "object": {"key": "uploads/x.jpg"}}}]}

    with pytest.raises(PolicyLoadError) as raised:
        lambda_handler.handler(event, None)

    assert [d.code for d in raised.value.diagnostics] == ["unknown-parent"]
    assert s3.get_object_tagging(Bucket=BUCKET, Key="uploads/x.jpg")["TagSet"] == []
