"""The one label the ``open-nsfw`` detector reports, and its taxonomy."""

from __future__ import annotations

from policy_engine import Taxonomy, TaxonomyEntry

SOURCE = "open-nsfw"
LABEL = "Sexual Content"
"""The model's one output, P(NSFW) (trained on pornographic versus other
images), reported as this label with confidence 100 * P(NSFW)."""

TAXONOMY = Taxonomy(id="open-nsfw/1", entries=(TaxonomyEntry(name=LABEL, parent="", level=1),))
"""A taxonomy of one top-level label: a rule names it with ``{name: Sexual
Content}`` or ``{parent: Sexual Content}``, and ``source: open-nsfw`` keeps it
apart from any other detector's label of the same name."""
