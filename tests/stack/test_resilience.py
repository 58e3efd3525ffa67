"""A Redis outage in the middle of a run: capture, detector and tracker retry, resume, lose no published result."""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis

from shared import keys
from shared.schemas import FrameResult
from tests.stack.helpers import PrivateRedis, fields_text, make_video, wait_for, write_config


def _results(client: redis.Redis) -> dict[bytes, FrameResult]:
    try:
        entries = client.xrange(keys.RESULTS_STREAM)
    except redis.ConnectionError:
        return {}
    parsed = {entry_id: json.loads(f[b"data"]) for entry_id, f in entries}
    return {entry_id: FrameResult.model_validate(d) for entry_id, d in parsed.items() if d["type"] == "frame"}


def test_services_survive_a_redis_restart(tmp_path: Path, private_redis: PrivateRedis, services) -> None:
    video = make_video(tmp_path / "v.avi", frames=40, fps=20)
    config = write_config(tmp_path / "cams.yaml", private_redis.url,
                          [{"id": "cam", "url": str(video), "fps": 8, "loop": True}],
                          detector={"max_frame_age": 5, "claim_idle": 2})
    capture = services.start("capture", "--config", str(config), name="capture")
    detector = services.start("detector", "--config", str(config), "--name", "w", name="detector")
    tracker = services.start("tracker", "--config", str(config), name="tracker")
    client = private_redis.client()
    wait_for(lambda: len(_results(client)) >= 10, 60, "results before the outage")

    before = _results(client)
    private_redis.kill()
    time.sleep(2.0)  # the services see connection errors meanwhile
    private_redis.start()
    last_before = max(r.frame for r in before.values())
    wait_for(lambda: any(r.frame > last_before + 10 for r in _results(client).values()), 60,
             "new results after Redis came back")

    assert services.stop(capture) == 0
    assert services.stop(detector) == 0
    def published() -> int:
        state = fields_text(client, keys.camera_state("cam"))
        return int(state.get("frames_tracked", 0)) + int(state.get("frames_late", 0))

    processed = int(fields_text(client, keys.camera_state("cam"))["frames_processed"])
    wait_for(lambda: published() >= processed, 30, "the tracker to publish every detection")
    assert services.stop(tracker) == 0
    after = _results(client)
    assert set(before) <= set(after), "results published before the outage were lost"
    state = fields_text(client, keys.camera_state("cam"))
    assert state["status"] == "stopped"
    # counters and results are written in one transaction: every detected frame has one tracked result
    assert int(state["frames_processed"]) == len(after) == published()
    assert client.xpending(keys.frames_stream("cam"), keys.DETECTOR_GROUP)["pending"] == 0
    assert client.smembers(keys.CAMERAS_SET) == {b"cam"}
    for proc, name in ((capture, "capture"), (detector, "detector"), (tracker, "tracker")):
        log = services.log(proc)
        assert "redis unavailable" in log and "Traceback" not in log, f"{name} log:\n{log[-3000:]}"
    assert "redis is back" in services.log(capture)
