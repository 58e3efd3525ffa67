"""Zones, counting lines with hysteresis, ignore zones and static faces on synthetic tracks (no models)."""

from __future__ import annotations

import pytest

from shared.entrances import SPOT_REFRESH_S, EntranceCounter, end_tracks, track_frame
from shared.people import PeopleTracker
from shared.schemas import Face, FrameResult, LineCrossing, PersonRecord
from shared.tracker_config import TrackerConfig
from shared.zones import CameraGeometry
from tests.tracking.synthetic import face

FPS = 10.0
SIZE = 60  # face box side (px) in a 640x360 frame
DOOR = {"name": "door", "points": [[0.05, 0.5], [0.95, 0.5]], "in": "down"}  # y = 180 px


def run(frames: list[list[Face]], geometry: dict | None = None, **options) -> tuple[list[FrameResult], list]:
    """Track frames (10 fps, 640x360) with the default tracker settings; returns the frames and the messages."""
    config = TrackerConfig(**{k: v for k, v in options.items() if k in TrackerConfig.model_fields})
    people = PeopleTracker("door-a", FPS, **config.people_options())
    entrances = EntranceCounter("door-a", CameraGeometry.model_validate(geometry or {}), **config.entrance_options())
    tracked, messages = [], []
    for i, faces in enumerate(frames):
        result = FrameResult(source="door-a", camera="door-a", frame=i, width=640, height=360, faces=faces,
                             captured_at=1000.0 + i / FPS)
        frame, out = track_frame(people, entrances, result, result.captured_at)
        tracked.append(frame)
        messages += out
    messages += end_tracks(people, entrances, people.flush())
    return tracked, messages


def walk(ys: list[float], x: float = 300, label: str = "with_mask") -> list[list[Face]]:
    """One face whose box centre goes through the given y positions (one frame each)."""
    return [[face(x - SIZE / 2, y - SIZE / 2, label, size=SIZE)] for y in ys]


def line_from(start: float, end: float, steps: int) -> list[float]:
    return [start + (end - start) * i / (steps - 1) for i in range(steps)]


def crossings(messages: list) -> list[tuple[str, str, str]]:
    return [(m.line, m.direction, m.label) for m in messages if isinstance(m, LineCrossing)]


def people(messages: list) -> list[PersonRecord]:
    return [m for m in messages if isinstance(m, PersonRecord)]


def test_crossing_down_is_one_entry_and_up_is_one_exit() -> None:
    _, down = run(walk(line_from(60, 320, 27)), {"lines": [DOOR]})
    assert crossings(down) == [("door", "in", "with_mask")]
    _, up = run(walk(line_from(320, 60, 27), label="without_mask"), {"lines": [DOOR]})
    assert crossings(up) == [("door", "out", "without_mask")]
    crossing, record = next(m for m in up if isinstance(m, LineCrossing)), people(up)[0]
    assert up.index(crossing) == up.index(record) + 1  # published right after its track's record
    assert record.first_seen < crossing.time < record.last_seen


def test_lingering_on_the_line_counts_once() -> None:
    # walks to the line, sways 8 px either side of it for 4 s, walks on: one entry
    sway = [180 + (8 if i % 4 < 2 else -8) for i in range(40)]
    _, messages = run(walk(line_from(60, 180, 13) + sway + line_from(180, 320, 15)), {"lines": [DOOR]})
    assert crossings(messages) == [("door", "in", "with_mask")]
    # stands on the line and goes back where it came from: nothing
    _, back = run(walk(line_from(60, 180, 13) + sway + line_from(180, 60, 13)), {"lines": [DOOR]})
    assert crossings(back) == [] and len(people(back)) == 1


def test_in_and_back_out_is_one_entry_and_one_exit() -> None:
    _, messages = run(walk(line_from(60, 320, 20) + line_from(320, 60, 20)), {"lines": [DOOR]})
    assert crossings(messages) == [("door", "in", "with_mask"), ("door", "out", "with_mask")]
    assert len(people(messages)) == 1


def test_passing_beyond_the_end_of_the_line_crosses_nothing() -> None:
    short = {**DOOR, "points": [[0.05, 0.5], [0.4, 0.5]]}  # x 32..256 px; the face walks down at x = 500
    _, messages = run(walk(line_from(60, 320, 27), x=500), {"lines": [short]})
    assert crossings(messages) == [] and len(people(messages)) == 1


def test_the_crossing_carries_the_voted_label_of_the_whole_track() -> None:
    frames = walk(line_from(60, 200, 8), label="without_mask") + walk(line_from(210, 330, 25), label="with_mask")
    tracked, messages = run(frames, {"lines": [DOOR]})
    assert tracked[9].faces[0].track_label == "without_mask"  # the vote when it crossed
    assert crossings(messages) == [("door", "in", "with_mask")] == [("door", "in", people(messages)[0].label)]


def test_in_side_named_by_a_zone_and_a_diagonal_line() -> None:
    hall = {"name": "hall", "points": [[0.6, 0.0], [1.0, 0.0], [1.0, 1.0], [0.6, 1.0]]}
    gate = {"name": "gate", "points": [[0.4, 0.05], [0.6, 0.95]], "in": "hall"}
    frames = [[face(x - 30, 150, size=SIZE)] for x in line_from(100, 560, 30)]  # left to right, into the hall
    _, messages = run(frames, {"zones": [hall], "lines": [gate]})
    assert crossings(messages) == [("gate", "in", "with_mask")]
    assert people(messages)[0].zones == ["hall"]


def test_a_face_turned_away_for_2_s_stays_one_person_and_one_entry() -> None:
    # walks down; not detected for 2 s (20 frames) while crossing the line; seen again below it
    ys = line_from(60, 320, 40)
    frames = walk(ys[:12]) + [[] for _ in range(20)] + walk(ys[32:])
    _, messages = run(frames, {"lines": [DOOR]})
    assert len(people(messages)) == 1
    assert crossings(messages) == [("door", "in", "with_mask")]


def test_faces_in_an_ignore_zone_are_never_tracked() -> None:
    poster = {"name": "poster", "points": [[0.7, 0.05], [0.95, 0.05], [0.95, 0.45], [0.7, 0.45]], "ignore": True}
    still = [[face(520, 40, "without_mask", size=SIZE)] for _ in range(50)]  # centre (550, 70): inside
    tracked, messages = run(still, {"zones": [poster], "lines": [DOOR]})
    assert messages == [] and all(not f.faces for f in tracked)


def test_a_static_face_is_marked_never_counted_and_remembered() -> None:
    jitter = [[face(100 + i % 2, 250 - i % 3, "without_mask", size=SIZE)] for i in range(60)]  # 6 s, still
    tracked, messages = run(jitter + [[] for _ in range(40)] + jitter[:20] + [[] for _ in range(40)]
                            + walk(line_from(60, 320, 27)), {"lines": [DOOR]}, static_after_s=3.0)
    assert not tracked[29].faces[0].static and tracked[30].faces[0].static  # 3 s still: static
    records = people(messages)
    assert [r.static for r in records] == [True, True, False]  # the poster twice (known spot), then a walker
    assert tracked[100].faces[0].static  # a new track on the known spot is static from its first frame
    assert crossings(messages) == [("door", "in", "with_mask")]


def test_a_track_on_a_static_spot_that_moves_is_a_person() -> None:
    still = [[face(100, 250, size=SIZE)] for _ in range(40)]
    leaving = [[face(100 + 12 * i, 250, size=SIZE)] for i in range(20)]  # starts on the spot, walks away
    tracked, messages = run(still + [[] for _ in range(40)] + leaving, static_after_s=3.0)
    assert [r.static for r in people(messages)] == [True, False]
    assert tracked[80].faces[0].static and not tracked[99].faces[0].static


def test_a_static_face_kept_in_view_keeps_its_spot_fresh() -> None:
    counter = EntranceCounter("c", static_after_s=3.0, static_forget_s=100.0)
    for t in range(250):  # 1 fps for 250 s, far past static_forget_s: the spot is refreshed while seen
        poster = face(100, 250, size=SIZE).model_copy(update={"track_id": 1})
        frame = counter.observe(FrameResult(source="c", frame=t, width=640, height=360, faces=[poster]), float(t))
    assert frame.faces[0].static
    [spot] = counter.static_faces()
    assert 249 - SPOT_REFRESH_S <= spot["last_seen"] <= 249 and spot["first_seen"] == 0.0


def test_zone_membership_and_occupancy() -> None:
    inside = {"name": "inside", "points": [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]}
    geometry = CameraGeometry.model_validate({"zones": [inside]})
    people_ = PeopleTracker("c", FPS)
    counter = EntranceCounter("c", geometry)
    occupancy = []
    for i in range(30):
        faces = [face(100, 250, size=SIZE), face(400, 40 + 6 * i, size=SIZE)]  # one inside, one walking in
        result = FrameResult(source="c", camera="c", frame=i, width=640, height=360, faces=faces)
        track_frame(people_, counter, result, i / FPS)
        occupancy.append(counter.occupancy["inside"])
    assert occupancy[0] == 1 and occupancy[-1] == 2
    records = end_tracks(people_, counter, people_.flush())
    assert [r.zones for r in records] == [["inside"], ["inside"]] and counter.occupancy["inside"] == 0


def test_state_round_trip_continues_a_crossing() -> None:
    geometry = CameraGeometry.model_validate({"lines": [DOOR]})
    frames = walk(line_from(60, 320, 27))
    first_people, first = PeopleTracker("c", FPS), EntranceCounter("c", geometry)
    messages = []
    for i, faces in enumerate(frames[:14]):  # crossed at about frame 11
        result = FrameResult(source="c", camera="c", frame=i, width=640, height=360, faces=faces)
        messages += track_frame(first_people, first, result, i / FPS)[1]
    people_, counter = PeopleTracker("c", FPS), EntranceCounter("c", geometry)
    people_.restore(first_people.state())
    counter.restore(first.state())
    for i, faces in enumerate(frames[14:], start=14):
        result = FrameResult(source="c", camera="c", frame=i, width=640, height=360, faces=faces)
        messages += track_frame(people_, counter, result, i / FPS)[1]
    messages += end_tracks(people_, counter, people_.flush())
    assert crossings(messages) == [("door", "in", "with_mask")]


def test_editing_a_line_keeps_the_crossings_made() -> None:
    geometry = CameraGeometry.model_validate({"lines": [DOOR]})
    people_, counter = PeopleTracker("c", FPS), EntranceCounter("c", geometry)
    messages = []
    for i, faces in enumerate(walk(line_from(60, 320, 27))):
        if i == 20:  # crossed already; the line moves further down
            counter.set_geometry(CameraGeometry.model_validate({"lines": [{**DOOR, "points": [[0, 0.9], [1, 0.9]]}]}))
        result = FrameResult(source="c", camera="c", frame=i, width=640, height=360, faces=faces)
        messages += track_frame(people_, counter, result, i / FPS)[1]
    messages += end_tracks(people_, counter, people_.flush())
    assert crossings(messages) == [("door", "in", "with_mask")]
    assert "geometry" in counter.take_changes()


@pytest.mark.parametrize("state", [{}, {"tracks": {"1": {"bogus": 1}}, "spots": [], "geometry": {}},
                                   {"tracks": {}, "spots": [{"box": "x"}], "geometry": {}}])
def test_a_malformed_state_is_refused(state: dict) -> None:
    with pytest.raises(ValueError, match="malformed entrance state"):
        EntranceCounter("c").restore(state)
