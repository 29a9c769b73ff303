"""Small policies, a test taxonomy and labels, shared by the tests of the
compiler, the decision record, the model and the engine (importable from any
test module: tests/conftest.py puts this folder on the path)."""

from __future__ import annotations

from policy_engine import (
    CompiledPolicy,
    DetectorFailure,
    Image,
    Label,
    Taxonomy,
    TaxonomyEntry,
    parse_policy,
)

HEAD = "version: 1\nname: p\n"

# Violence > Weapons > Knife; Violence > Graphic Violence; Explicit > Nudity
TAXONOMY = Taxonomy(
    "test/v1",
    (
        TaxonomyEntry("Violence", ""),
        TaxonomyEntry("Weapons", "Violence"),
        TaxonomyEntry("Knife", "Weapons"),
        TaxonomyEntry("Graphic Violence", "Violence"),
        TaxonomyEntry("Explicit", ""),
        TaxonomyEntry("Nudity", "Explicit"),
        TaxonomyEntry("Gambling", ""),
        TaxonomyEntry("Gambling", "Gambling"),
    ),
    aliases={"Weapon": "Weapons", "Blade": "Knife"},
)


def compiled(text: str, taxonomy: Taxonomy | None = TAXONOMY) -> CompiledPolicy:
    policy = parse_policy(HEAD + text)
    return CompiledPolicy(policy, lambda source, model_version: taxonomy)


def label(name: str, confidence: float, parent: str = "", source: str = "stub") -> Label:
    return Label(name, confidence, source, parent=parent)


def decide(policy: CompiledPolicy, lab: Label) -> tuple[str, str]:
    """(verdict, deciding rule) of one label."""
    (outcome,) = policy.evaluate([lab]).outcomes()
    return outcome.verdict.value, outcome.rule


FAILURE = DetectorFailure("broken", "boom", "plugin-exception")
IMAGE = Image("cat.jpg", b"\x89PNG not really")
