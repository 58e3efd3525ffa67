"""A poster face through `maskwatch stack up` (real Redis db 12, real capture, detector worker, tracker and
dashboard): its tracks are static, never a person in the counts; a face walking across the line is an entry."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import httpx
import pytest
import redis

from shared import keys
from shared.schemas import LineCrossing, PersonRecord, parse_result
from tests.conftest import flushed_redis
from tests.stack.helpers import free_port, redis_url, wait_for, write_config
from tests.tracking.synthetic import Walker, write_clip

pytestmark = pytest.mark.slow
POSTER_BOX = (500, 20, 590, 110)  # where the poster is pasted (x1, y1, x2, y2 of the face image, 90 px wide)


@pytest.fixture
def db():
    yield from flushed_redis(12)


def poster_clip(path: Path, shared_data: Path) -> Path:
    """6.5 s at 10 fps, looped by capture: a poster face for 4.5 s (then 2 s of wall), a face walking down."""
    poster = cv2.imread(str(shared_data / "faces/fm12k/without_mask/fm12k_without_mask_00011.jpg"))
    walker = cv2.imread(str(shared_data / "faces/fm12k/with_mask/fm12k_with_mask_00001.jpg"))
    x1, y1, *_ = POSTER_BOX
    return write_clip(path, [Walker(poster, start=0, end=45, x=x1, y=y1, dx=0, width=90),
                             Walker(walker, start=5, end=40, x=150, y=0, dx=0, dy=7, width=100)], frames=65, fps=10)


def test_a_poster_is_never_a_person_through_stack_up(db: redis.Redis, services, tmp_path: Path,
                                                      shared_data: Path) -> None:
    clip = poster_clip(tmp_path / "poster.mp4", shared_data)
    port = free_port(range(18500, 18600))
    config = write_config(
        tmp_path / "cams.yaml", redis_url(db),
        [{"id": "door", "url": str(clip), "fps": 10, "loop": True,
          "lines": [{"name": "door", "points": [[0.02, 0.5], [0.6, 0.5]], "in": "down"}]}],
        tracker={"static_after_s": 2.0, "lost_after_s": 1.0}, detector={"max_frame_age": 30})
    stack = services.start("stack", "up", "--config", str(config), "--port", str(port), name="stack")
    try:
        wait_for(lambda: len(_poster_records(db)) >= 3, 240, "three poster tracks to end")
        wait_for(lambda: _answers(port), 60, "the dashboard")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            wait_for(lambda: http.get("/api/v1/cameras/door/stats").json()["static_people"] >= 2, 30,
                     "the dashboard to count the static tracks")
            static_faces = http.get("/api/v1/cameras/door/static-faces").json()
            entries = http.get("/api/v1/cameras/door/entries", params={"window": "1h"}).json()
    finally:
        services.extra_pids.update(int(p) for p in re.findall(r"started \S+ \(pid (\d+)\)", services.log(stack)))
        assert services.stop(stack, timeout=60) == 0
    messages = _messages(db)
    posters, people = _poster_records(db), [m for m in messages if isinstance(m, PersonRecord)]
    assert posters and all(r.static for r in posters), [(r.track_id, r.static, r.frames) for r in posters]
    walkers = [r for r in people if not r.static]
    assert walkers and not any(_on_poster(r.best_box) for r in walkers)
    # the dashboard's counts (totals and cursor move in one transaction): exactly the non-static records counted
    pipe = db.pipeline(transaction=True)
    pipe.get(keys.DASHBOARD_CURSOR)
    pipe.hgetall(keys.stats_totals("door"))
    cursor, totals = pipe.execute()
    counted = [parse_result(f[b"data"]) for _id, f in db.xrange(keys.RESULTS_STREAM, max=cursor)]
    counted_people = [m for m in counted if isinstance(m, PersonRecord)]
    assert sum(int(v) for k, v in totals.items() if k.startswith(b"people:")) == \
        sum(not r.static for r in counted_people)
    assert int(totals[b"people_static"]) == sum(r.static for r in counted_people) >= 2
    [spot] = static_faces
    x1, y1, x2, y2 = spot["box"]
    assert abs(x1 * 640 - POSTER_BOX[0]) < 25 and abs(y1 * 360 - POSTER_BOX[1]) < 25 and spot["suggestion"]["ignore"]
    crossings = [m for m in messages if isinstance(m, LineCrossing)]
    assert crossings and {c.direction for c in crossings} == {"in"}  # the walker, never the poster
    assert sum(entries["entries"].values()) >= 1
    assert "Traceback" not in services.log(stack)


def _messages(db: redis.Redis) -> list:
    return [parse_result(fields[b"data"]) for _id, fields in db.xrange(keys.RESULTS_STREAM)]


def _on_poster(box: list[int]) -> bool:
    return abs((box[0] + box[2]) / 2 - (POSTER_BOX[0] + POSTER_BOX[2]) / 2) < 30 and box[1] < 120


def _poster_records(db: redis.Redis) -> list[PersonRecord]:
    return [m for m in _messages(db) if isinstance(m, PersonRecord) and _on_poster(m.best_box)]


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
