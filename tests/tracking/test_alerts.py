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
            confirm_frames=3, unmasked_share=None, cooldown_s=0,
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
    dispatcher = AlertDispatcher(AlertsConfig(window_s=60, unmasked_share=0.5, min_people=4, cooldown_s=0))
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


def test_a_crowd_of_unmasked_people_raises_one_grouped_alert_per_cooldown() -> None:
    with webhook_server() as server:
        config = AlertsConfig(webhooks=[{"url": server.url + "/door"}], confirm_frames=2, unmasked_share=None,
                              cooldown_s=300)
        dispatcher = AlertDispatcher(config)
        try:
            # 13 unmasked people in 5 minutes: person 0 alerts at once, the next 12 are held back
            for i in range(13):
                labels = "mask_incorrect" if i % 4 == 3 else "without_mask"
                dispatcher.on_person(person("door", i, labels, 100.0 + 20 * i, frames=2).model_copy(
                    update={"thumbnail": f"thumb{i}"}))
            dispatcher.on_person(person("door", 50, "with_mask", 390.0))  # the masked never count
            assert len(server.wait_for(1)) == 1
            # the first frame after the cooldown sends the group, and a new cooldown starts
            (grouped,) = dispatcher.on_frame(tracked_frame(0, 99, "with_mask").model_copy(update={"time": 401.0}))
            dispatcher.on_person(person("door", 60, "without_mask", 420.0, frames=2))  # held by the new cooldown
            flushed = dispatcher.flush()  # end of the video
            posts = server.wait_for(3)
        finally:
            dispatcher.close()
    first = posts[0]
    assert (first["kind"], first["track_id"], first["thumbnail"]) == ("person", 0, "thumb0")
    assert grouped["kind"] == "people" and grouped["people"] == 12
    assert grouped["labels"] == {"without_mask": 9, "mask_incorrect": 3}
    assert grouped["track_ids"] == list(range(1, 13)) and grouped["window_s"] == 300
    assert (grouped["since"], grouped["time"]) == (100.0, 340.0)
    assert grouped["thumbnails"] == [f"thumb{i}" for i in range(1, 7)]  # a few faces, not all
    assert [(e["kind"], e["people"], e["track_ids"]) for e in flushed] == [("people", 1, [60])]
    assert [p["kind"] for p in posts] == ["person", "people", "people"]
    assert posts[1] == grouped


def test_cooldowns_are_per_camera_and_a_quiet_camera_alerts_at_once_again() -> None:
    dispatcher = AlertDispatcher(AlertsConfig(confirm_frames=2, unmasked_share=None, cooldown_s=60))
    out = []
    for camera, track_id, t in [("door", 1, 10.0), ("hall", 1, 11.0), ("door", 2, 20.0),  # door 2 is held
                                ("door", 3, 100.0),  # after door's cooldown: the group (door 2), door 3 held
                                ("door", 4, 300.0)]:  # the group (door 3); a new cooldown, door 4 held
        out += [(e["kind"], e["camera"], e.get("track_id"), e.get("track_ids"))
                for e in dispatcher.on_person(person(camera, track_id, "without_mask", t, frames=2))]
    assert out == [("person", "door", 1, None), ("person", "hall", 1, None), ("people", "door", None, [2]),
                   ("people", "door", None, [3])]
    # a track confirmed from its frames during a cooldown gets its record's thumbnail in the group
    for i in range(2):
        dispatcher.on_frame(tracked_frame(i, 5, "without_mask", camera="hall").model_copy(update={"time": 30.0}))
    dispatcher.on_person(person("hall", 5, "without_mask", 31.0).model_copy(update={"thumbnail": "t5"}))
    by_camera = {e["camera"]: e for e in dispatcher.flush()}
    assert by_camera["hall"]["track_ids"] == [5] and by_camera["hall"]["thumbnails"] == ["t5"]
    assert by_camera["door"]["track_ids"] == [4]
    quiet = AlertDispatcher(AlertsConfig(confirm_frames=2, unmasked_share=None, cooldown_s=60))
    quiet.on_person(person("door", 1, "without_mask", 10.0, frames=2))
    assert quiet.on_frame(tracked_frame(0, 9, "with_mask").model_copy(update={"time": 80.0})) == []  # nobody held
    assert [e["kind"] for e in quiet.on_person(person("door", 2, "without_mask", 90.0, frames=2))] == ["person"]
