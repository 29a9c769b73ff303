"""The embedding API over a policy set: Moderator.from_policy_file takes a set,
check(image, context=...) routes, a bad context raises (never an allow), hot
reload swaps the whole compiled set at once, the audit line and the hook event
carry the route, and a candidate set is shadowed on the same labels."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from test_moderator import CountingDetector, Recorder, registry_with, write

from policy_engine import Moderator, ShadowPolicyError
from policy_engine.errors import ContextError
from policy_engine.loader import load_policy
from policy_engine.plugins import make_plugin_manager
from policy_engine.policy_set import load_policy_set


def policy_text(name: str, block_at: float) -> str:
    return (
        f"version: 1\nname: {name}\non_error: review\ndetectors: {{counting: {{}}}}\n"
        "rules:\n  - id: violence\n    match: {name: Violence}\n"
        f"    review_at: 50\n    block_at: {block_at}\n"
    )


def set_text(name: str, feed: str, chat: str) -> str:
    return (
        f"version: 1\nkind: policy-set\nname: {name}\n"
        "context:\n  surface:\n    values: [feed, chat]\n"
        "  audience:\n    values: [adult, teen]\n    default: adult\n"
        f"routes:\n  - when: {{surface: feed}}\n    policy: {feed}\n"
        f"  - policy: {chat}\n"
    )


def write_sets(tmp_path: Path) -> tuple[Path, Path]:
    for name, block_at in (("feed1", 90), ("chat1", 55), ("feed2", 55), ("chat2", 90)):
        write(tmp_path / f"{name}.yaml", policy_text(name, block_at))
    one = write(tmp_path / "one.set.yaml", set_text("one", "feed1.yaml", "chat1.yaml"))
    two = write(tmp_path / "two.set.yaml", set_text("two", "feed2.yaml", "chat2.yaml"))
    return one, two


def test_a_set_routes_by_the_callers_context_with_one_detector_call(tmp_path: Path) -> None:
    one, _ = write_sets(tmp_path)
    detector, recorder = CountingDetector(), Recorder()
    audit = tmp_path / "audit.jsonl"
    moderator = Moderator.from_policy_file(
        one,
        registry=registry_with(detector),
        plugin_manager=make_plugin_manager(load_entry_points=False),
        plugins=[recorder],
        audit_log=audit,
    )
    with moderator:
        # Violence 60: feed1 reviews (block at 90), chat1 blocks (block at 55)
        assert moderator.check(b"x", context={"surface": "feed", "upload_id": "u1"}).verdict == (
            "review"
        )
        assert moderator.check(b"x", context={"surface": "chat"}).verdict == "block"
        assert detector.calls == 2
        assert moderator.policy_name == "one"
        assert moderator.policy_digest == load_policy_set(one).digest
    event = recorder.events[0]
    assert event.route is not None and event.route["context"] == {
        "surface": "feed",
        "audience": "adult",
    }
    assert event.route["index"] == 0 and event.context["upload_id"] == "u1"
    assert event.policy_set == {"name": "one", "digest": load_policy_set(one).digest}
    line = json.loads(audit.read_text().splitlines()[1])
    assert line["route"]["context"] == {"surface": "chat", "audience": "adult"}
    assert line["policy_set"]["name"] == "one" and line["decision"] == "block"


def test_check_in_gives_the_whole_set_decision_and_announce_tells_the_hooks(
    tmp_path: Path,
) -> None:
    """check_in is check with the route and context a record names; announce
    tells the hooks (the audit log) of a decision a host made some other way."""
    from policy_engine.image import Image
    from policy_engine.policy_set import SetDecision

    one, _ = write_sets(tmp_path)
    detector, recorder = CountingDetector(), Recorder()
    moderator = Moderator.from_policy_file(
        one,
        registry=registry_with(detector),
        plugin_manager=make_plugin_manager(load_entry_points=False),
        plugins=[recorder],
    )
    with moderator:
        decided = moderator.check_in(b"x", context={"surface": "chat", "upload_id": "u1"})
        assert isinstance(decided, SetDecision)
        assert decided.verdict == "block" and decided.route.index == 1
        assert decided.to_dict()["context"] == {"surface": "chat", "audience": "adult"}
        assert moderator.check(b"x", context={"surface": "chat"}) == decided.decision
        moderator.announce(Image(name="elsewhere", data=b"y"), decided, {"upload_id": "u2"})
    assert detector.calls == 2  # announce calls no detector
    announced = recorder.events[-1]
    assert (announced.input, announced.context["upload_id"]) == ("elsewhere", "u2")
    assert announced.route is not None and announced.route["index"] == 1
    assert announced.policy_set == {"name": "one", "digest": load_policy_set(one).digest}


def test_acheck_in_gives_the_set_decision_without_blocking_the_loop(tmp_path: Path) -> None:
    from policy_engine.policy_set import SetDecision

    one, _ = write_sets(tmp_path)
    moderator = Moderator.from_policy_file(
        one,
        registry=registry_with(CountingDetector()),
        plugin_manager=make_plugin_manager(load_entry_points=False),
    )

    async def both() -> tuple[object, object]:
        return await asyncio.gather(
            moderator.acheck_in(b"x", context={"surface": "feed"}),
            moderator.acheck(b"x", context={"surface": "chat"}),
        )

    with moderator:
        feed, chat = asyncio.run(both())
        with pytest.raises(ContextError):
            asyncio.run(moderator.acheck_in(b"x", context={"surface": "billboard"}))
    assert isinstance(feed, SetDecision)
    assert (feed.verdict, feed.route.index) == ("review", 0)
    assert feed.to_dict()["context"] == {"surface": "feed", "audience": "adult"}
    assert not isinstance(chat, SetDecision) and chat.verdict == "block"  # acheck: the decision
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(moderator.acheck_in(b"x", context={"surface": "feed"}))


@pytest.mark.parametrize(
    "context",
    [{}, {"surface": "billboard"}, {"surface": "feed", "audience": "child"}, {"surface": 3}],
)
def test_a_missing_or_unknown_dimension_raises_before_any_call(
    tmp_path: Path, context: dict[str, object]
) -> None:
    one, _ = write_sets(tmp_path)
    detector = CountingDetector()
    moderator = Moderator.from_policy_file(
        one,
        registry=registry_with(detector),
        plugin_manager=make_plugin_manager(load_entry_points=False),
    )
    with moderator, pytest.raises(ContextError):
        moderator.check(b"x", context=context)
    assert detector.calls == 0


def test_reload_never_mixes_a_route_of_one_set_with_a_policy_of_another(
    tmp_path: Path,
) -> None:
    one, two = write_sets(tmp_path)
    recorder = Recorder()
    moderator = Moderator.from_policy_file(
        one,
        registry=registry_with(CountingDetector()),
        plugin_manager=make_plugin_manager(load_entry_points=False),
        plugins=[recorder],
    )
    members = {
        load_policy_set(path).digest: {
            load_policy(tmp_path / f"{name}.yaml").digest for name in names
        }
        for path, names in ((one, ("feed1", "chat1")), (two, ("feed2", "chat2")))
    }
    stop = threading.Event()

    def checking(surface: str) -> None:
        while not stop.is_set():
            moderator.check(b"x", context={"surface": surface})

    threads = [threading.Thread(target=checking, args=(s,)) for s in ("feed", "chat") * 2]
    for thread in threads:
        thread.start()
    try:
        for index in range(40):
            assert moderator.reload(two if index % 2 == 0 else one).ok
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    moderator.close()
    assert len(recorder.events) > 40
    for event in recorder.events:
        assert event.policy_set is not None
        assert event.decision.policy_digest in members[event.policy_set["digest"]]


def test_a_candidate_set_is_shadowed_on_the_same_labels_and_a_policy_is_refused(
    tmp_path: Path,
) -> None:
    one, two = write_sets(tmp_path)
    detector, recorder = CountingDetector(), Recorder()
    moderator = Moderator.from_policy_file(
        one,
        registry=registry_with(detector),
        plugin_manager=make_plugin_manager(load_entry_points=False),
        plugins=[recorder],
        shadow=two,
    )
    with moderator:
        assert moderator.check(b"x", context={"surface": "feed"}).verdict == "review"
    assert detector.calls == 1
    shadow = recorder.events[0].shadow
    assert shadow is not None and shadow.policy_name == "feed2" and shadow.verdict == "block"
    assert recorder.events[0].disagrees
    with pytest.raises(ShadowPolicyError, match="shadow a set with a set"):
        Moderator.from_policy_file(
            one,
            registry=registry_with(detector),
            plugin_manager=make_plugin_manager(load_entry_points=False),
            shadow=tmp_path / "feed2.yaml",
        )
