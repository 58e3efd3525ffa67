"""Alert rules and webhook delivery against a local HTTP server: retries, backoff, never blocking."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from shared.alerts import AlertDispatcher, AlertsConfig, WebhookSender
from shared.schemas import PersonRecord
from tests.tracking.synthetic import face, frame
from tests.tracking.webhook_server import webhook_server


def person(camera: str, track_id: int, label: str, t: float, frames: int = 10) -> PersonRecord:
    return PersonRecord(camera=camera, track_id=track_id, label=label, first_seen=t - 1, last_seen=t,
                        frames=frames, best_box=[1, 2, 3, 4])


def tracked_frame(index: int, track_id: int, track_label: str, camera: str = "door"):
    f = face(100, 100, "without_mask").model_copy(update={"track_id": track_id, "track_label": track_label})
    return frame(index, [f], camera=camera)


def test_failed_posts_are_retried_with_backoff() -> None:
    with webhook_server(statuses=[500, 503, 429]) as server:
        sender = WebhookSender(retries=5, backoff_s=0.1, timeout_s=2)
        try:
            assert sender.submit(server.url + "/hook", {"n": 1})
            (body,) = server.wait_for(1)
        finally:
            sender.close()
    assert body == {"n": 1}
    gaps = [b - a for a, b in zip(server.attempts, server.attempts[1:])]
    assert len(server.attempts) == 4
    # Exponential backoff: each retry waits at least 0.1, 0.2, 0.4 s (more only when the machine is busy).
    assert all(gap >= 0.1 * 2**i - 0.01 for i, gap in enumerate(gaps)), gaps
    assert (sender.delivered, sender.failed, sender.dropped) == (1, 0, 0)


def test_gives_up_after_the_retries_and_on_client_errors() -> None:
    with webhook_server(statuses=[500] * 3 + [400]) as server:
        sender = WebhookSender(retries=2, backoff_s=0.05, timeout_s=2)
        sender.submit(server.url, {"n": 1})
        sender.close(timeout_s=5)
        sender = WebhookSender(retries=2, backoff_s=0.05, timeout_s=2)
        sender.submit(server.url, {"n": 2})  # 400: no retry
        sender.close(timeout_s=5)
    assert len(server.attempts) == 4 and server.posts == []
    assert sender.failed == 1


def test_an_unsendable_event_fails_alone_and_the_sender_lives_on() -> None:
    with webhook_server() as server:
        sender = WebhookSender(retries=3, backoff_s=0.05, timeout_s=2)
        try:
            sender.submit(server.url, {"when": object()})  # not JSON
            sender.submit(server.url, {"n": 2})
            assert server.wait_for(1) == [{"n": 2}]
        finally:
            sender.close()
    assert (sender.submitted, sender.delivered, sender.failed) == (2, 1, 1)


def test_unreachable_hook_does_not_hold_up_other_events() -> None:
    with webhook_server() as server:
        sender = WebhookSender(retries=3, backoff_s=0.5, timeout_s=1)
        try:
            sender.submit("http://127.0.0.1:9/down", {"n": 1})  # nothing listens on port 9
            sender.submit(server.url, {"n": 2})
            assert server.wait_for(1, timeout_s=10) == [{"n": 2}]
        finally:
            sender.close(timeout_s=0.2)


def test_a_slow_hook_never_blocks_the_caller_and_a_full_queue_drops() -> None:
    with webhook_server(delay_s=0.5) as server:
        sender = WebhookSender(retries=0, timeout_s=5, queue_size=2)
        try:
            start = time.perf_counter()
            accepted = [sender.submit(server.url, {"n": i}) for i in range(10)]
            assert time.perf_counter() - start < 1.0  # blocking would take 0.5 s per post
            assert accepted.count(True) in (2, 3)  # the queue, plus one the worker may already hold
            assert sender.dropped == accepted.count(False)
        finally:
            sender.close(timeout_s=5)
    assert len(server.posts) == accepted.count(True)


def test_person_alert_once_per_confirmed_track_to_matching_hooks() -> None:
    with webhook_server() as server:
        config = AlertsConfig(
            webhooks=[{"url": server.url + "/all"}, {"url": server.url + "/door", "cameras": ["door"]},
                      {"url": server.url + "/lobby", "cameras": ["lobby"]}],
            confirm_frames=3, unmasked_share=None,
        )
        seen = []
        dispatcher = AlertDispatcher(config, sinks=[seen.append])
        try:
            raised = [dispatcher.on_frame(tracked_frame(i, 7, "without_mask")) for i in range(6)]
            assert [len(r) for r in raised] == [0, 0, 1, 0, 0, 0]
            assert dispatcher.on_frame(tracked_frame(6, 8, "with_mask")) == []
            assert dispatcher.on_person(person("door", 7, "without_mask", 1.0)) == []  # already alerted
            assert dispatcher.on_person(person("door", 8, "with_mask", 1.0)) == []
            # A short track that never reached confirm_frames alerts when its record ends.
            (late,) = dispatcher.on_person(person("door", 9, "mask_incorrect", 2.0, frames=2))
            server.wait_for(4)
        finally:
            dispatcher.close()
    event = raised[2][0]
    assert event["type"] == "alert" and event["kind"] == "person"
    assert (event["camera"], event["track_id"], event["label"], event["frames"]) == ("door", 7, "without_mask", 3)
    assert event["time"] == pytest.approx(2 / 25)
    assert (late["track_id"], late["label"]) == (9, "mask_incorrect")
    assert seen == [event, late]
    assert sorted(path for path, _, _ in server.posts) == ["/all", "/all", "/door", "/door"]
    assert {body["id"] for _, body, _ in server.posts} == {event["id"], late["id"]}


def test_unmasked_share_alert_fires_on_crossing_and_rearms() -> None:
    dispatcher = AlertDispatcher(AlertsConfig(window_s=60, unmasked_share=0.5, min_people=4))
    labels = ["with_mask", "without_mask", "without_mask",  # 3 people: too few to judge
              "without_mask",  # 4 people, 3 unmasked (0.75 > 0.5): fires
              "without_mask",  # still above: no repeat
              "with_mask", "with_mask", "with_mask",  # 4/8 = 0.5: back to the threshold, re-armed
              "without_mask"]  # 5/9 above again: fires again
    shares = []
    for i, label in enumerate(labels):
        events = dispatcher.on_person(person("hall", i, label, 100.0 + i))
        shares += [(i, e["people"], e["unmasked"]) for e in events if e["kind"] == "unmasked_share"]
    assert shares == [(3, 4, 3), (8, 9, 5)]
    # Old people leave the window: one hour later only the new person counts (1 < min_people).
    events = dispatcher.on_person(person("hall", 99, "without_mask", 4000.0))
    assert [e["kind"] for e in events] == ["person"]


def test_config_rejects_bad_values_and_broken_sinks_are_contained() -> None:
    with pytest.raises(ValidationError, match="webhook url"):
        AlertsConfig(webhooks=[{"url": "ftp://example.org/x"}])
    with pytest.raises(ValidationError):
        AlertsConfig(unmasked_share=1.5)
    with pytest.raises(ValidationError):
        AlertsConfig(webhook="http://x")  # unknown key (typo) is an error, not ignored

    def broken(event: dict) -> None:
        raise ConnectionError("redis is down")

    dispatcher = AlertDispatcher(AlertsConfig(confirm_frames=1), sinks=[broken])
    assert len(dispatcher.on_frame(tracked_frame(0, 1, "without_mask"))) == 1
