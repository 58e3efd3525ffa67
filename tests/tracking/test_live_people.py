"""LivePeople: per-camera tracking for the detector service, with alerts and quiet cameras."""

from __future__ import annotations

from shared.alerts import AlertDispatcher, AlertsConfig
from shared.live_people import LivePeople
from shared.schemas import FrameResult, PersonRecord
from tests.tracking.synthetic import face


def camera_frame(camera: str, index: int, t: float, faces) -> FrameResult:
    return FrameResult(source=camera, camera=camera, frame=index, width=640, height=360, faces=faces,
                       captured_at=t)


def test_cameras_are_tracked_apart_and_quiet_ones_end() -> None:
    events = []
    people = LivePeople({"door": 10.0}, alerts=AlertDispatcher(AlertsConfig(confirm_frames=3), [events.append]))
    published = []
    for i in range(10):
        t = 1000.0 + i / 10
        published += people.process(camera_frame("door", i, t, [face(100 + 3 * i, 80, "without_mask")]))
        if i < 5:
            published += people.process(camera_frame("lobby", i, t, [face(100, 80, "with_mask")]))
    frames = [m for m in published if isinstance(m, FrameResult)]
    assert {f.camera: f.faces[0].track_id for f in frames} == {"door": 1, "lobby": 1}  # ids per camera
    assert all(f.faces[0].track_label == f.faces[0].label for f in frames)
    # The lobby went quiet at 1000.4; a door frame more than a second later ends its person.
    (lobby,) = people.process(camera_frame("door", 20, 1001.6, []))[1:]
    assert (lobby.camera, lobby.label, lobby.frames) == ("lobby", "with_mask", 5)
    assert [(e["kind"], e["camera"], e["frames"]) for e in events] == [("person", "door", 3)]
    (door,) = people.close(timeout_s=1)
    assert isinstance(door, PersonRecord) and (door.camera, door.label, door.frames) == ("door", "without_mask", 10)
    assert len(events) == 1  # the door person was alerted once, not again when the track ended
