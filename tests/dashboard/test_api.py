"""The JSON API of a real `maskwatch dashboard` process: photo detection, every error case, camera reads."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import redis

from shared.alert_log import redis_sink
from shared.drawing import LABEL_COLORS_BGR
from tests.dashboard.conftest import REPO, Dashboard, frame_result, publish, register_camera
from tests.media import png_header_only


@pytest.fixture(scope="module")
def photo(scene_photos: list[Path]) -> Path:
    """A real scene photo with several faces."""
    return scene_photos[0]


def test_detect_returns_what_detect_json_prints(dashboard: Dashboard, photo: Path, tiny_store) -> None:
    with dashboard.client() as client:
        response = client.post("/api/v1/detect", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")})
    assert response.status_code == 200, response.text
    api = response.json()
    cli = subprocess.run([sys.executable, "-m", "maskwatch.cli", "detect", str(photo), "--json", "-",
                          "--no-progress"], cwd=REPO, env={**os.environ, "MASKWATCH_MODELS": str(tiny_store.root)},
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    line = json.loads(cli.stdout.splitlines()[0])
    assert api["source"] == photo.name
    assert {k: v for k, v in api.items() if k != "source"} == {k: v for k, v in line.items() if k != "source"}
    image = cv2.imread(str(photo))
    assert (api["width"], api["height"]) == (image.shape[1], image.shape[0])
    assert api["faces"], "the scene photo has faces"
    for face in api["faces"]:
        x1, y1, x2, y2 = face["box"]
        assert 0 <= x1 < x2 <= api["width"] + 2 and 0 <= y1 < y2 <= api["height"] + 2
        assert face["label"] in ("with_mask", "without_mask", "mask_incorrect")
    assert api["model_version"] == f"tiny-test+{tiny_store.current('detector')}"


def _truncated(photo: Path) -> bytes:
    data = photo.read_bytes()
    return data[: len(data) // 2]


ERROR_CASES = [
    ("text file", lambda p: {"files": {"file": ("notes.txt", b"hello, not an image\n", "text/plain")}}, 415,
     "not a readable image"),
    ("truncated jpeg", lambda p: {"files": {"file": ("cut.jpg", _truncated(p), "image/jpeg")}}, 400,
     "truncated"),
    ("pixel bomb", lambda p: {"files": {"file": ("bomb.png", png_header_only(30_000, 30_000), "image/png")}},
     413, "image too large"),
    ("empty file", lambda p: {"files": {"file": ("empty.jpg", b"", "image/jpeg")}}, 400, "empty"),
    ("over 10 MB", lambda p: {"files": {"file": ("big.jpg", p.read_bytes() + b"\0" * (11 * 2**20), "image/jpeg")}},
     413, "upload too large"),
    ("wrong field", lambda p: {"files": {"image": (p.name, p.read_bytes(), "image/jpeg")}}, 400,
     "no file in the multipart field 'file'"),
    ("json body", lambda p: {"json": {"file": "x"}}, 415, "multipart/form-data"),
]


@pytest.mark.parametrize(("case", "request_kwargs", "status", "detail"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_detect_rejects_bad_uploads_with_a_json_detail(dashboard: Dashboard, photo: Path, case: str,
                                                       request_kwargs, status: int, detail: str) -> None:
    with dashboard.client() as client:
        response = client.post("/api/v1/detect", **request_kwargs(photo))
        assert response.status_code == status, response.text
        body = response.json()
        assert detail in body["detail"] and "\n" not in body["detail"]
        assert client.get("/api/v1/health").status_code == 200  # the server is still fine
    assert "Traceback" not in dashboard.log.read_text()


def test_detect_gives_413_before_reading_a_huge_declared_body(dashboard: Dashboard) -> None:
    host, port = dashboard.url.removeprefix("http://").split(":")
    head = (f"POST /api/v1/detect HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            f"Content-Length: {500 * 2**20}\r\n\r\n--x\r\n")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())  # 500 MB announced, a few bytes sent: the answer must not wait for the rest
        reply = b""
        while b"upload too large" not in reply and (chunk := sock.recv(65536)):  # head and body may come apart
            reply += chunk
    reply = reply.decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert "upload too large" in reply


@pytest.fixture(scope="module")
def seeded(dashboard: Dashboard, redis_url_8: str, photo: Path) -> dict:
    """Camera 'door' with 6 results (the last one with its JPEG) and camera 'attic' that never sent a frame."""
    client = redis.Redis.from_url(redis_url_8)
    register_camera(client, "door", frames_captured=6, frames_processed=6)
    register_camera(client, "attic", status="retrying")
    jpeg = cv2.imencode(".jpg", cv2.resize(cv2.imread(str(photo)), (640, 360)))[1].tobytes()
    labels = [["with_mask"], ["with_mask"], ["with_mask", "without_mask"], ["without_mask"], ["mask_incorrect"],
              ["with_mask", "without_mask"]]
    now = time.time()
    for i, frame_labels in enumerate(labels):
        publish(client, frame_result("door", i, frame_labels, captured_at=now - 6 + i), jpeg if i == 5 else None)
    with dashboard.client() as http:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if http.get("/api/v1/cameras/door/stats", params={"window": "1m"}).json()["frames"] == 6:
                break
            time.sleep(0.1)
    return {"client": client, "jpeg": jpeg}


def test_cameras_list_status_counts_and_compliance(dashboard: Dashboard, seeded: dict) -> None:
    with dashboard.client() as client:
        cameras = {cam["id"]: cam for cam in client.get("/api/v1/cameras").json()}
    assert set(cameras) == {"door", "attic"}
    door, attic = cameras["door"], cameras["attic"]
    assert door["status"] == "live" and door["up"] is True
    assert attic["status"] == "retrying" and attic["up"] is False and attic["latest"] is None
    assert door["latest"]["frame"] == 5 and door["latest"]["counts"] == {"with_mask": 1, "without_mask": 1,
                                                                         "mask_incorrect": 0}
    assert door["compliance"]["1m"] == pytest.approx(4 / 8)
    assert door["faces"]["1h"] == {"with_mask": 4, "without_mask": 3, "mask_incorrect": 1}
    assert len(door["chart"]) == 60
    assert sum(bucket.get("without_mask", 0) for bucket in door["chart"]) == 3  # per-minute faces per label
    assert door["frames_processed"] == 6


@pytest.mark.parametrize("window", ["1m", "hour", "1d"])
def test_stats_windows(dashboard: Dashboard, seeded: dict, window: str) -> None:
    with dashboard.client() as client:
        body = client.get("/api/v1/cameras/door/stats", params={"window": window}).json()
    assert body["camera"] == "door" and body["frames"] == 6
    assert body["faces"] == {"with_mask": 4, "without_mask": 3, "mask_incorrect": 1}
    assert body["compliance"] == pytest.approx(0.5)
    assert sum(point["frames"] for point in body["series"]) == 6


def test_bad_window_unknown_camera_and_missing_frame(dashboard: Dashboard, seeded: dict) -> None:
    with dashboard.client() as client:
        bad = client.get("/api/v1/cameras/door/stats", params={"window": "fortnight"})
        assert bad.status_code == 400 and "unknown window" in bad.json()["detail"]
        for path in ("/api/v1/cameras/nope", "/api/v1/cameras/nope/stats", "/api/v1/cameras/nope/events",
                     "/api/v1/cameras/nope/frame.jpg"):
            response = client.get(path)
            assert response.status_code == 404 and "unknown camera" in response.json()["detail"], path
        missing = client.get("/api/v1/cameras/attic/frame.jpg")
        assert missing.status_code == 404 and "no processed frame" in missing.json()["detail"]


def test_frame_jpeg_has_the_boxes_of_its_result_drawn_in_label_colours(dashboard: Dashboard, seeded: dict) -> None:
    with dashboard.client() as client:
        response = client.get("/api/v1/cameras/door/frame.jpg")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-frame"] == "5"
    image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (360, 640, 3)
    # frame 5 has with_mask at x 20..90 and without_mask at x 110..180 (see frame_result); check the left edges
    for x, label in ((20, "with_mask"), (110, "without_mask")):
        pixel = image[85, x].astype(int)
        assert np.abs(pixel - np.array(LABEL_COLORS_BGR[label])).max() < 60, (label, pixel)


def test_events_record_changes_newest_first(dashboard: Dashboard, seeded: dict) -> None:
    with dashboard.client() as client:
        events = client.get("/api/v1/cameras/door/events", params={"limit": 3}).json()
    assert len(events) == 3
    assert events[0]["type"] == "change" and events[0]["frame"] == 5
    assert events[0]["faces"] == {"with_mask": 1, "without_mask": 1}
    assert events[0]["previous"] == {"mask_incorrect": 1}


def test_feed_pushes_new_results(dashboard: Dashboard, seeded: dict) -> None:
    received: list[dict] = []
    with httpx.Client(base_url=dashboard.url, timeout=httpx.Timeout(10.0)) as client:
        with client.stream("GET", "/api/v1/feed") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            deadline = time.monotonic() + 15
            event = None
            published = False
            for line in stream.iter_lines():
                if not published:  # the stream is open: now the detector publishes a result
                    publish(seeded["client"], frame_result("door", 99, ["mask_incorrect"]))
                    published = True
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "frame":
                    received.append(json.loads(line[6:]))
                    if received[-1]["frame"] == 99:
                        break
                assert time.monotonic() < deadline, "no frame event within 15 s"
    assert received[-1]["camera"] == "door" and received[-1]["faces"][0]["label"] == "mask_incorrect"


def test_health_model_labels_docs_and_pages(dashboard: Dashboard, tiny_store) -> None:
    with dashboard.client() as client:
        assert client.get("/api/v1/health").json() == {"status": "ok", "redis": True}
        model = client.get("/api/v1/model").json()
        assert model["promoted"]["classifier"]["version"] == "tiny-test"
        assert model["promoted"]["detector"]["version"] == tiny_store.current("detector")
        assert client.get("/api/v1/labels").json()["colors"]["without_mask"] == "#e62828"
        paths = client.get("/openapi.json").json()["paths"]
        assert {"/api/v1/detect", "/api/v1/cameras", "/api/v1/cameras/{camera}/stats", "/api/v1/health",
                "/api/v1/model", "/api/v1/feed"} <= set(paths)
        assert "multipart/form-data" in paths["/api/v1/detect"]["post"]["requestBody"]["content"]
        docs = client.get("/docs").text
        assert "swagger" in docs.lower() and "cdn" not in docs  # docs assets come from the service itself
        assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
        for page in ("/", "/upload", "/cameras/door"):
            response = client.get(page)
            assert response.status_code == 200 and "<script src=\"/static/common.js\">" in response.text
        assert client.get("/static/upload.js").status_code == 200
        assert "access-control-allow-origin" not in client.get("/api/v1/cameras",
                                                               headers={"Origin": "http://evil.test"}).headers


def test_alerts_listed_and_merged_into_camera_events(dashboard: Dashboard, seeded: dict) -> None:
    sink = redis_sink(seeded["client"])
    now = time.time()
    sink({"type": "alert", "id": "a1", "kind": "person", "camera": "door", "track_id": 4, "label": "without_mask",
          "time": now + 1, "frames": 12, "box": [1, 2, 3, 4]})
    sink({"type": "alert", "id": "a2", "kind": "unmasked_share", "camera": "attic", "time": now + 2,
          "window_s": 300, "people": 10, "unmasked": 6, "share": 0.6, "threshold": 0.3})
    with dashboard.client() as client:
        assert [a["id"] for a in client.get("/api/v1/alerts").json()] == ["a2", "a1"]
        assert [a["id"] for a in client.get("/api/v1/alerts", params={"camera": "door"}).json()] == ["a1"]
        events = client.get("/api/v1/cameras/door/events").json()
    assert events[0]["type"] == "alert" and events[0]["id"] == "a1"  # newest first, alerts merged in
    assert any(e["type"] == "change" for e in events)


def thumbnail(color: tuple[int, int, int]) -> str:
    """A small base64 JPEG like the tracker's face thumbnails."""
    import base64

    return base64.b64encode(cv2.imencode(".jpg", np.full((96, 80, 3), color, np.uint8))[1].tobytes()).decode()


@pytest.fixture(scope="module")
def porch(dashboard: Dashboard, seeded: dict) -> dict:
    """Camera 'porch': 4 people (3 masked) in the last hour, one of them with a face thumbnail, and
    8 frames; plus a person alert raised from frames (no thumbnail) and a grouped people alert."""
    from shared.schemas import PersonRecord

    client = seeded["client"]
    register_camera(client, "porch")
    now = time.time()
    hour = int(now // 3600) * 3600
    thumb = thumbnail((40, 160, 40))
    for i, label in enumerate(["with_mask", "with_mask", "without_mask", "with_mask"]):
        record = PersonRecord(camera="porch", track_id=i + 1, label=label, first_seen=now - 30 + i,
                              last_seen=now - 20 + i, frames=12, best_box=[1, 2, 30, 40],
                              thumbnail=thumb if i == 2 else None)
        publish(client, record)
    for i in range(8):
        publish(client, frame_result("porch", i, ["with_mask"] if i < 6 else ["without_mask"],
                                     captured_at=now - 10 + i))
    sink = redis_sink(client)
    sink({"type": "alert", "id": "p3", "kind": "person", "camera": "porch", "track_id": 3, "label": "without_mask",
          "time": now - 25, "frames": 5, "box": [1, 2, 3, 4]})
    sink({"type": "alert", "id": "g1", "kind": "people", "camera": "porch", "time": now - 15, "since": now - 300,
          "window_s": 300, "people": 12, "labels": {"without_mask": 12}, "track_ids": [3, 40, 41]})
    with dashboard.client() as http:
        deadline = time.monotonic() + 20
        while http.get("/api/v1/cameras/porch/stats", params={"window": "1m"}).json()["frames"] < 8:
            assert time.monotonic() < deadline, "porch results not counted"
            time.sleep(0.1)
    return {"thumbnail": thumb, "hour": hour}


def test_overview_and_stats_lead_with_people(dashboard: Dashboard, porch: dict) -> None:
    with dashboard.client() as client:
        cam = client.get("/api/v1/cameras/porch").json()
        stats_ = client.get("/api/v1/cameras/porch/stats", params={"window": "1h"}).json()
    assert cam["people"]["1h"] == cam["people"]["1d"] == {"with_mask": 3, "without_mask": 1, "mask_incorrect": 0}
    assert cam["people_compliance"]["1h"] == pytest.approx(0.75)
    assert cam["compliance"]["1m"] == pytest.approx(6 / 8)  # faces, beside the people
    assert stats_["people_compliance"] == pytest.approx(0.75)
    assert sum(sum(p["people"].values()) for p in stats_["series"]) == 4


def test_stats_csv_has_the_detect_stats_columns_per_period(dashboard: Dashboard, porch: dict) -> None:
    import csv
    import io

    from shared.stats import CSV_COLUMNS

    with dashboard.client() as client:
        day = client.get("/api/v1/cameras/porch/stats.csv", params={"window": "1d"})
        assert day.status_code == 200 and day.headers["content-type"].startswith("text/csv")
        assert 'filename="porch-1d-3600s.csv"' in day.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(day.text)))
        assert tuple(rows[0])[:len(CSV_COLUMNS)] == CSV_COLUMNS
        assert len(rows) == 24 and [int(r["period_end"]) - int(r["period_start"]) for r in rows] == [3600] * 24
        busy = [r for r in rows if r["people"] != "0"]
        assert sum(int(r["people"]) for r in rows) == 4 and sum(int(r["frames"]) for r in rows) == 8
        assert busy and all(float(r["compliance_rate"]) == pytest.approx(int(r["with_mask"]) / int(r["people"]),
                                                                          abs=1e-4) for r in busy)
        assert all(r["compliance_rate"] == "" for r in rows if r["people"] == "0")
        assert sum(int(r["faces_without_mask"]) for r in rows) == 2
        assert sum(int(r["with_mask"]) for r in rows) == 3
        quarter = list(csv.DictReader(io.StringIO(client.get("/api/v1/cameras/porch/stats.csv",
                                                             params={"window": "1h", "period": "15m"}).text)))
        assert len(quarter) in (4, 5) and all(int(r["period_start"]) % 900 == 0 for r in quarter)
        assert sum(int(r["people"]) for r in quarter) == 4
        for bad in ("7s", "2h", "soon"):
            response = client.get("/api/v1/cameras/porch/stats.csv", params={"window": "1m", "period": bad})
            assert response.status_code == 400 and "period" in response.json()["detail"], bad
        assert client.get("/api/v1/cameras/nope/stats.csv").status_code == 404


def test_person_events_and_alerts_carry_the_face_thumbnail(dashboard: Dashboard, porch: dict) -> None:
    with dashboard.client() as client:
        events = client.get("/api/v1/cameras/porch/events").json()
        alerts = {a["id"]: a for a in client.get("/api/v1/alerts", params={"camera": "porch"}).json()}
    people = {e["track_id"]: e for e in events if e["type"] == "person"}
    assert people[3]["thumbnail"] == porch["thumbnail"] and "thumbnail" not in people[1]
    image = cv2.imdecode(np.frombuffer(__import__("base64").b64decode(people[3]["thumbnail"]), np.uint8),
                         cv2.IMREAD_COLOR)
    assert max(image.shape[:2]) <= 96
    # an alert raised from frames, before the person's record, shows the thumbnail the record brought
    assert alerts["p3"]["thumbnail"] == porch["thumbnail"]
    assert alerts["g1"]["thumbnails"] == [porch["thumbnail"]] and alerts["g1"]["people"] == 12


def test_openapi_documents_the_response_models(dashboard: Dashboard) -> None:
    with dashboard.client() as client:
        spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert {"CameraOverview", "CameraStats", "Event", "Health", "Labels", "ModelInfo"} <= set(schemas)
    assert {"people", "people_compliance", "faces", "compliance"} <= set(schemas["CameraOverview"]["properties"])
    ok = spec["paths"]["/api/v1/cameras/{camera}/stats"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("/CameraStats")
    assert "text/csv" in spec["paths"]["/api/v1/cameras/{camera}/stats.csv"]["get"]["responses"]["200"]["content"]
