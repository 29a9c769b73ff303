"""The ``hash-match`` detector: images matched against banks of known hashes
(PDQ, with rotated and mirrored copies, and SHA-256 for exact copies), and the
``policy-engine bank`` command that builds and checks banks."""

from __future__ import annotations

__version__ = "0.1.0"
