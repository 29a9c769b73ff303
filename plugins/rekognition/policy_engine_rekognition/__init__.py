"""Amazon Rekognition detectors for policy-engine.

``rekognition-moderation`` wraps DetectModerationLabels, ``rekognition-custom-labels``
wraps DetectCustomLabels. The plugin module (``policy_engine_rekognition.plugin``)
registers both. boto3 is imported only when a detector builds its first client,
so listing or parsing with this plugin installed never pays for it.
"""

from __future__ import annotations

# The distribution's one version: plugins/rekognition/pyproject.toml reads it (dynamic version).
__version__ = "0.1.0"
