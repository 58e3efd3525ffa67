"""Entries, zones and static faces through a real dashboard process (Redis database 8): counted once from the
results stream, served as JSON, CSV and Prometheus metrics; static faces never counted as people."""

from __future__ import annotations

import csv
import io
import json
import time

import redis
from prometheus_client.parser import text_string_to_metric_families

from shared import keys
from shared.schemas import LineCrossing, PersonRecord
from tests.dashboard.conftest import Dashboard, frame_result, publish, register_camera

CAMERA = "door-a"
GEOMETRY = {"zones": [{"name": "inside", "points": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], "ignore": False},
                      {"name": "poster", "points": [[0.8, 0], [1, 0], [1, 0.2]], "ignore": True}],
            "lines": [{"name": "door", "points": [[0, 0.5], [1, 0.5]], "in": "down"},
                      {"name": "side", "points": [[0.5, 0], [0.5, 1]], "in": "right"}],
            "problem": None, "applied_at": 1.0}


def person(track_id: int, label: str, now: float, zones: list[str] = (), static: bool = False) -> PersonRecord:
    return PersonRecord(camera=CAMERA, track_id=track_id, label=label, first_seen=now - 4, last_seen=now - 1,
                        frames=30, best_box=[1, 2, 30, 40], zones=list(zones), static=static)


def crossing(track_id: int, label: str, direction: str, now: float, line: str = "door") -> LineCrossing:
    return LineCrossing(camera=CAMERA, line=line, direction=direction, track_id=track_id, label=label, time=now - 2)


def test_entries_zones_static_faces_and_metrics(dashboard: Dashboard, redis_url_8: str) -> None:
    client = redis.Redis.from_url(redis_url_8)
    register_camera(client, CAMERA)
    client.set(keys.camera_geometry(CAMERA), json.dumps(GEOMETRY))
    client.set(keys.zone_occupancy(CAMERA), json.dumps({"time": time.time(), "zones": {"inside": 2}}))
    spot = {"box": [0.1, 0.1, 0.2, 0.3], "first_seen": 5.0, "last_seen": 9.0, "track_id": 4,
            "suggestion": {"name": "static-1", "points": [[0.075, 0.05], [0.225, 0.05], [0.225, 0.35],
                                                          [0.075, 0.35]], "ignore": True}}
    client.set(keys.static_faces(CAMERA), json.dumps([spot]))
    now = time.time()
    frame = frame_result(CAMERA, 0, ["with_mask", "without_mask"], captured_at=now - 3)
    frame.faces[1] = frame.faces[1].model_copy(update={"static": True, "track_id": 4})  # a poster's face
    publish(client, frame)
    for message in [person(1, "with_mask", now, ["inside"]), crossing(1, "with_mask", "in", now),
                    person(2, "without_mask", now, ["inside"]), crossing(2, "without_mask", "in", now),
                    crossing(2, "without_mask", "out", now),
                    person(3, "with_mask", now), crossing(3, "with_mask", "in", now, line="side"),
                    person(4, "without_mask", now, static=True)]:
        publish(client, message)

    with dashboard.client() as http:
        deadline = time.monotonic() + 20
        while sum(http.get(f"/api/v1/cameras/{CAMERA}/entries").json()["entries"].values()) < 3:
            assert time.monotonic() < deadline, "the crossings were not counted"
            time.sleep(0.1)
        entries = http.get(f"/api/v1/cameras/{CAMERA}/entries", params={"window": "1h"}).json()
        assert entries["entries"] == {"with_mask": 2, "without_mask": 1, "mask_incorrect": 0}
        assert entries["exits"] == {"with_mask": 0, "without_mask": 1, "mask_incorrect": 0}
        assert entries["entries_compliance"] == 2 / 3
        assert entries["lines"] == {"door": {"in": {"with_mask": 1, "without_mask": 1}, "out": {"without_mask": 1}},
                                    "side": {"in": {"with_mask": 1}, "out": {}}}
        assert sum(len(p["lines"]) for p in entries["series"]) == 2 and len(entries["series"]) == 60

        response = http.get(f"/api/v1/cameras/{CAMERA}/entries.csv", params={"window": "1h", "period": "30m"})
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert {(r["line"], r["direction"]) for r in rows} == {("door", "in"), ("door", "out"), ("side", "in"),
                                                               ("side", "out")}
        door_in = [r for r in rows if r["line"] == "door" and r["direction"] == "in" and int(r["people"])]
        assert [(r["people"], r["with_mask"], r["without_mask"], r["compliance_rate"]) for r in door_in] == \
            [("2", "1", "1", "0.5")]
        assert int(door_in[0]["period_end"]) - int(door_in[0]["period_start"]) == 1800
        bad = http.get(f"/api/v1/cameras/{CAMERA}/entries.csv", params={"window": "1h", "period": "7s"})
        assert bad.status_code == 400 and "multiple of 60 s" in bad.json()["detail"]
        assert http.get("/api/v1/cameras/nope/entries").status_code == 404

        zones = http.get(f"/api/v1/cameras/{CAMERA}/zones").json()
        assert [(z["name"], z["ignore"], z["occupancy"]) for z in zones["zones"]] == [("inside", False, 2),
                                                                                       ("poster", True, None)]
        assert zones["zones"][0]["people"]["1h"] == {"with_mask": 1, "without_mask": 1}
        assert zones["lines"][0] == GEOMETRY["lines"][0] and zones["problem"] is None

        assert http.get(f"/api/v1/cameras/{CAMERA}/static-faces").json() == [spot]

        overview = http.get(f"/api/v1/cameras/{CAMERA}").json()
        assert overview["has_lines"] and overview["occupancy"] == {"inside": 2}
        assert overview["entries"]["1d"]["with_mask"] == 2 and overview["entries_compliance"]["1h"] == 2 / 3
        assert overview["entries"]["today"]["with_mask"] == (2 if time.localtime(now - 2).tm_yday
                                                              == time.localtime().tm_yday else 0)
        stats = http.get(f"/api/v1/cameras/{CAMERA}/stats", params={"window": "1h"}).json()
        assert stats["people"] == {"with_mask": 2, "without_mask": 1, "mask_incorrect": 0}  # the poster left out
        assert stats["static_people"] == 1 and stats["faces"]["without_mask"] == 0  # its face too

        events = http.get(f"/api/v1/cameras/{CAMERA}/events").json()
        assert sum(e["type"] == "crossing" for e in events) == 4 and sum(e["type"] == "person" for e in events) == 3

        text = http.get("/metrics").text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    door_in = (("camera", CAMERA), ("direction", "in"), ("label", "with_mask"), ("line", "door"))
    assert samples[("maskwatch_line_crossings_total", door_in)] == 1
    assert samples[("maskwatch_zone_occupancy", (("camera", CAMERA), ("zone", "inside")))] == 2
    assert samples[("maskwatch_zone_people_total", (("camera", CAMERA), ("label", "without_mask"),
                                                    ("zone", "inside")))] == 1
    assert samples[("maskwatch_static_faces_total", (("camera", CAMERA),))] == 1
    assert samples[("maskwatch_people_total", (("camera", CAMERA), ("label", "without_mask")))] == 1
