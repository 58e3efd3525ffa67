"""Alert rules limited to a line or a zone, and static faces never alerted on (AlertDispatcher, no network)."""

from __future__ import annotations

from shared.alerts import AlertDispatcher, AlertsConfig
from shared.schemas import FrameResult, LineCrossing, PersonRecord
from tests.tracking.synthetic import face

RULES = [{"name": "unmasked-entry", "line": "door"},
         {"name": "anyone-leaving", "line": "door", "direction": "out", "labels": ["with_mask", "without_mask"]},
         {"name": "unmasked-inside", "zone": "inside", "cameras": ["door-a"]}]


def dispatcher() -> AlertDispatcher:
    return AlertDispatcher(AlertsConfig.model_validate({"rules": RULES, "cooldown_s": 0, "unmasked_share": None,
                                                        "confirm_frames": 2}))


def record(track_id: int, label: str, zones: list[str], camera: str = "door-a", static: bool = False) -> PersonRecord:
    return PersonRecord(camera=camera, track_id=track_id, label=label, first_seen=1.0, last_seen=5.0, frames=40,
                        best_box=[1, 2, 30, 40], zones=zones, static=static)


def crossing(track_id: int, label: str, direction: str) -> LineCrossing:
    return LineCrossing(camera="door-a", line="door", direction=direction, track_id=track_id, label=label, time=3.0)


def test_line_rules_match_line_direction_and_label() -> None:
    alerts = dispatcher()
    events = alerts.on_crossing(crossing(1, "without_mask", "in")) + alerts.on_crossing(crossing(2, "with_mask", "in"))
    assert [(e["kind"], e["rule"], e["track_id"]) for e in events] == [("line", "unmasked-entry", 1)]
    out = alerts.on_crossing(crossing(3, "without_mask", "out"))
    assert [(e["rule"], e["direction"]) for e in out] == [("anyone-leaving", "out")]
    assert len({e["id"] for e in events + out}) == 2  # ids differ per rule and track
    assert alerts.on_crossing(crossing(1, "without_mask", "in"))[0]["id"] == events[0]["id"]  # the same event again


def test_zone_rules_match_the_zones_a_person_was_in_and_the_camera() -> None:
    alerts = dispatcher()
    inside = [e for e in alerts.on_person(record(1, "mask_incorrect", ["inside"])) if e["kind"] == "zone"]
    assert [(e["rule"], e["zone"], e["label"]) for e in inside] == [("unmasked-inside", "inside", "mask_incorrect")]
    assert not [e for e in alerts.on_person(record(2, "without_mask", [])) if e["kind"] == "zone"]
    hall = alerts.on_person(record(3, "without_mask", ["inside"], camera="hall"))
    assert not [e for e in hall if e["kind"] == "zone"]


def test_static_faces_raise_no_alert() -> None:
    alerts = dispatcher()
    poster = face(500, 20, "without_mask").model_copy(update={"track_id": 9, "track_label": "without_mask",
                                                               "static": True})
    for i in range(5):
        frame = FrameResult(source="door-a", camera="door-a", frame=i, width=640, height=360, captured_at=1.0 + i,
                            faces=[poster])
        assert alerts.on_frame(frame) == []
    assert alerts.on_person(record(9, "without_mask", ["inside"], static=True)) == []
    walker = poster.model_copy(update={"track_id": 10, "static": False})
    events = []
    for i in range(3):
        events += alerts.on_frame(FrameResult(source="door-a", camera="door-a", frame=i, width=640, height=360,
                                              captured_at=10.0 + i, faces=[walker]))
    assert [(e["kind"], e["track_id"]) for e in events] == [("person", 10)]
