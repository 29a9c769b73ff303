"""An object's context under a policy set, from its metadata and its key
(CONTEXT_FROM_METADATA, CONTEXT_PREFIXES), checked when the function starts;
and the routes an undetermined context could still reach."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lambda_helpers import write_community_set
from policy_engine_lambda.config import ConfigError
from policy_engine_lambda.context import ContextSettings, object_context
from policy_engine_lambda.moderate import AUDIT_KEYS
from policy_engine_lambda.undetermined import reachable_routes

from policy_engine.plugins import DetectorRegistry
from policy_engine.policy_set import PolicySet, load_policy_set

PREFIXES = {
    "uploads/": {"surface": "feed"},
    "uploads/chat/": {"surface": "chat"},
    "uploads/teen/chat/": {"surface": "chat", "audience": "teen"},
}


@pytest.fixture(scope="module")
def community(tmp_path_factory: pytest.TempPathFactory) -> PolicySet:
    path = write_community_set(tmp_path_factory.mktemp("set"))
    return load_policy_set(path, registry=DetectorRegistry.installed())


def settings(prefixes: object = None, metadata: str = "") -> ContextSettings:
    environ = {"CONTEXT_FROM_METADATA": metadata}
    if prefixes is not None:
        text = prefixes if isinstance(prefixes, str) else json.dumps(prefixes)
        environ["CONTEXT_PREFIXES"] = text
    return ContextSettings.from_environ(environ)


# --- the settings ------------------------------------------------------------------------------


def test_defaults_read_metadata_and_no_prefixes() -> None:
    assert ContextSettings.from_environ({}) == ContextSettings(from_metadata=True, prefixes=())
    assert not settings(metadata="false").from_metadata


def test_the_longest_prefix_of_the_key_gives_the_values_alone() -> None:
    found = settings(PREFIXES)
    assert found.prefixes[0].prefix == "uploads/teen/chat/"
    rule = found.prefix_for("uploads/chat/a.jpg")
    assert rule is not None and dict(rule.values) == {"surface": "chat"}
    assert found.prefix_for("other/a.jpg") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "not JSON"),
        ('["uploads/"]', "must be a JSON object"),
        ('{"uploads": {"surface": "feed"}}', "must end with '/'"),
        ('{"": {"surface": "feed"}}', "must end with '/'"),
        ('{"uploads/": "surface=feed"}', "an object of dimension values"),
        ('{"uploads/": {}}', "an object of dimension values"),
        ('{"uploads/": {"surface": 1}}', "an object of dimension values"),
        ('{"a/": {"surface": "feed"}, "a/": {"surface": "chat"}}', "given twice"),
    ],
)
def test_a_malformed_prefix_map_is_a_config_error(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        settings(text)


def test_a_metadata_switch_that_is_no_flag_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="CONTEXT_FROM_METADATA"):
        settings(metadata="sometimes")


@pytest.mark.parametrize(
    ("prefixes", "expected"),
    [
        ({"uploads/": {"surface": "billboard"}}, "'billboard' is not a value of dimension"),
        ({"uploads/": {"region": "eu"}}, "'region' is no dimension of policy set 'community'"),
        ({"uploads/": {"content_type": "Animated"}}, "'content_type' is no dimension"),
    ],
)
def test_prefixes_naming_what_the_set_does_not_know_are_config_errors(
    community: PolicySet, prefixes: object, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        settings(prefixes).check_against(community, AUDIT_KEYS)


def test_prefixes_with_a_single_policy_are_a_config_error_and_the_switch_is_ignored() -> None:
    with pytest.raises(ConfigError, match="POLICY_FILE is a single policy"):
        settings(PREFIXES).check_against(None, AUDIT_KEYS)
    # nothing to do: no error (the template always sets the switch)
    settings(metadata="false").check_against(None, AUDIT_KEYS)
    settings("", metadata="true").check_against(None, AUDIT_KEYS)


def test_a_dimension_named_like_an_audit_key_or_twice_for_metadata_is_a_config_error(
    tmp_path: Path,
) -> None:
    write_community_set(tmp_path)
    text = (tmp_path / "community.set.yaml").read_text()
    (tmp_path / "key.set.yaml").write_text(text.replace("audience", "key"))
    (tmp_path / "case.set.yaml").write_text(text.replace("audience", "Surface"))
    registry = DetectorRegistry.installed()
    keyed = load_policy_set(tmp_path / "key.set.yaml", registry=registry)
    with pytest.raises(ConfigError, match="dimension 'key' has the name of a context key"):
        ContextSettings().check_against(keyed, AUDIT_KEYS)
    cased = load_policy_set(tmp_path / "case.set.yaml", registry=registry)
    with pytest.raises(ConfigError, match="both x-amz-meta-surface"):
        ContextSettings().check_against(cased, AUDIT_KEYS)
    ContextSettings(from_metadata=False).check_against(cased, AUDIT_KEYS)  # no metadata: fine


# --- one object's context ----------------------------------------------------------------------


def test_metadata_and_prefix_agreeing_give_the_value_with_both_sources(
    community: PolicySet,
) -> None:
    found = object_context(settings(PREFIXES), community, "uploads/chat/a.jpg", {"Surface": "chat"})
    assert found.determined
    assert dict(found.values) == {"surface": "chat", "audience": "adult"}
    assert found.sources_data() == {
        "surface": ["x-amz-meta-surface", "CONTEXT_PREFIXES 'uploads/chat/'"],
        "audience": ["default"],
    }
    assert found.given() == {"surface": "chat"}  # the engine applies the default itself
    assert found.tag_value(community) == "surface=chat audience=adult"


def test_metadata_alone_and_the_prefix_alone_each_decide_a_dimension(
    community: PolicySet,
) -> None:
    found = object_context(
        settings(PREFIXES), community, "uploads/chat/a.jpg", {"audience": "teen"}
    )
    assert dict(found.values) == {"surface": "chat", "audience": "teen"}
    assert found.sources["audience"] == ("x-amz-meta-audience",)
    assert found.sources["surface"] == ("CONTEXT_PREFIXES 'uploads/chat/'",)


def test_disagreeing_metadata_and_prefix_leave_the_dimension_undetermined(
    community: PolicySet,
) -> None:
    found = object_context(settings(PREFIXES), community, "uploads/chat/a.jpg", {"surface": "feed"})
    assert not found.determined
    assert dict(found.values) == {"audience": "adult"}
    assert found.problems["surface"] == (
        "dimension 'surface': x-amz-meta-surface says 'feed' but "
        "CONTEXT_PREFIXES 'uploads/chat/' says 'chat'"
    )
    assert found.tag_value(community) == "surface:undetermined audience=adult"


def test_an_unknown_metadata_value_is_undetermined_even_where_a_prefix_has_one(
    community: PolicySet,
) -> None:
    long = "b" * 100
    found = object_context(settings(PREFIXES), community, "uploads/a.jpg", {"surface": long})
    assert set(found.problems) == {"surface"}
    assert "not one of its values (feed, profile, chat, marketplace)" in found.problems["surface"]
    assert "(100 characters)" in found.problems["surface"]  # a long value is not quoted whole


def test_no_value_and_no_default_is_undetermined_and_says_where_it_looked(
    community: PolicySet,
) -> None:
    found = object_context(settings(PREFIXES), community, "other/a.jpg", {})
    assert found.problems["surface"].startswith(
        "dimension 'surface' has no value (none from x-amz-meta-surface or a "
        "CONTEXT_PREFIXES prefix of the key) and no default"
    )
    off = object_context(settings(metadata="false"), community, "a.jpg", {"surface": "feed"})
    assert "metadata is off and no prefixes are set" in off.problems["surface"]


def test_metadata_switched_off_is_never_read(community: PolicySet) -> None:
    found = object_context(
        settings(PREFIXES, metadata="false"),
        community,
        "uploads/chat/a.jpg",
        {"surface": "feed", "audience": "teen"},  # an uploader's say: not trusted
    )
    assert found.determined
    assert dict(found.values) == {"surface": "chat", "audience": "adult"}


# --- the routes an undetermined context could reach --------------------------------------------


def test_reachable_routes_fix_what_is_known_and_range_over_the_rest(
    community: PolicySet,
) -> None:
    def indexes(fixed: dict[str, str]) -> list[int]:
        return [route.index for route in reachable_routes(community, fixed)]

    assert indexes({"audience": "adult"}) == [1, 2]
    assert indexes({"audience": "teen"}) == [0]
    assert indexes({"surface": "feed"}) == [0, 2]
    assert indexes({}) == [0, 1, 2]
    assert indexes({"surface": "chat", "audience": "adult"}) == [1]


def test_reachable_routes_count_every_content_type_outcome(tmp_path: Path) -> None:
    write_community_set(tmp_path)
    text = (
        (tmp_path / "community.set.yaml")
        .read_text()
        .replace(
            "  - policy: general.yaml",
            "  - when: {content_type: [Animated]}\n    policy: teen.yaml\n  - policy: general.yaml",
        )
    )
    (tmp_path / "typed.set.yaml").write_text(text)
    typed = load_policy_set(tmp_path / "typed.set.yaml", registry=DetectorRegistry.installed())
    # no detector was asked: the image may or may not be Animated
    assert [r.index for r in reachable_routes(typed, {"surface": "feed", "audience": "adult"})] == [
        2,
        3,
    ]


def test_the_documented_prefix_maps_hold_for_the_reference_set() -> None:
    """The ContextPrefixes examples of README.md, deploy/README.md and the
    plugin's README are valid for policies/community.set.yaml."""
    import re

    root = Path(__file__).resolve().parents[3]
    reference = load_policy_set(
        root / "policies" / "community.set.yaml", registry=DetectorRegistry.installed()
    )
    examples = [
        *re.findall(r"'ContextPrefixes=(\{.*?\})'", (root / "deploy" / "README.md").read_text()),
        *re.findall(r"`(\{\"uploads/profile/\".*?\})`", (root / "README.md").read_text()),
        *re.findall(
            r"CONTEXT_PREFIXES='(\{.*?\})'", (root / "plugins/aws-lambda/README.md").read_text()
        ),
    ]
    assert len(examples) == 3
    for text in examples:
        found = settings(text)
        found.check_against(reference, AUDIT_KEYS)
        rule = found.prefix_for("uploads/chat/a.jpg")
        assert rule is not None and dict(rule.values) == {"surface": "chat"}
