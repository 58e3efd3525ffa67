"""Persistence that costs what it is worth (issue 29): frame images never reach the append-only file.

The stack runs against a Redis with an append-only file and a frames Redis without persistence
(`frames_redis_url`); faces cross the picture, so the tracker holds open tracks with face crops.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import pytest

from services.tracker.camera import decode_checkpoint
from shared import keys
from tests.stack.helpers import PRIVATE_PORTS, PrivateRedis, fields_text, free_port, wait_for, write_config
from tests.tracking.synthetic import Walker, write_clip

JPEG_START = b"\xff\xd8\xff"  # every JPEG begins so
BASE64_JPEG = "/9j/"  # ... and so in base64 (the detector's face crops)


@pytest.fixture
def faces_clip(tmp_path: Path, shared_data: Path) -> Path:
    root = shared_data / "faces/fm12k"
    images = [cv2.imread(str(root / name)) for name in (
        "with_mask/fm12k_with_mask_00001.jpg", "without_mask/fm12k_without_mask_00006.jpg")]
    walkers = [Walker(images[0], start=0, end=60, x=10, y=30, dx=6), Walker(images[1], start=0, end=60, x=400, y=150,
                                                                            dx=-5)]
    return write_clip(tmp_path / "faces.mp4", walkers, frames=60, fps=10)


def _aof_bytes(server: PrivateRedis) -> bytes:
    return b"".join(p.read_bytes() for p in server.folder.rglob("*.aof*") if p.is_file())


@pytest.mark.slow
def test_frames_stay_out_of_the_append_only_file(tmp_path: Path, faces_clip: Path, services) -> None:
    main = PrivateRedis(free_port(PRIVATE_PORTS), tmp_path / "main")
    main.folder.mkdir()
    main.start()
    frames = PrivateRedis(free_port(range(main.port + 1, PRIVATE_PORTS.stop)), tmp_path / "frames", persistent=False)
    frames.folder.mkdir()
    frames.start()
    try:
        config = write_config(tmp_path / "cams.yaml", main.url, [{"id": "hall", "url": str(faces_clip), "fps": 5,
                                                                  "loop": True}],
                              frames_redis_url=frames.url, detector={"max_frame_age": 10})
        stack = services.start("stack", "up", "--config", str(config), "--workers", "1", "--no-dashboard",
                               name="stack")
        client, frames_client = main.client(), frames.client()
        wait_for(lambda: int(fields_text(client, keys.camera_state("hall")).get("frames_tracked", 0)) >= 15, 180,
                 "15 tracked frames")
        state = decode_checkpoint(client.get(keys.tracker_checkpoint("hall")))
        assert state["people"]["tracks"], "the faces should be open tracks"
        assert BASE64_JPEG not in json.dumps(state) and "best_jpeg" not in json.dumps(state)  # no images
        assert frames_client.get(keys.latest_jpeg("hall")).startswith(JPEG_START)
        assert any(frames_client.scan_iter(match="maskwatch:frame:hall:*"))  # the frames' images, expiring
        assert all(0 < frames_client.pttl(k) <= 30_000 for k in frames_client.scan_iter(match="maskwatch:frame:*"))
        entry = client.xrevrange(keys.frames_stream("hall"), count=1)[0][1]
        assert b"jpeg" not in entry and entry[b"jpeg_key"].startswith(b"maskwatch:frame:hall:")
        assert services.stop(stack, timeout=40) == 0
        aof = _aof_bytes(main)
        assert len(aof) > 10_000 and JPEG_START not in aof  # streams and counters persisted, no frame image
        assert b'"crop":"' not in aof  # nor a face crop (they wait in the frames Redis for the tracker)
        results = [json.loads(f[b"data"]) for _i, f in client.xrange(keys.RESULTS_STREAM)]
        people = [m for m in results if m["type"] == "person"]  # the tracks ended at the stop
        assert people and all(p["thumbnail"] for p in people)  # the tracker got the crops from the frames Redis
        assert not re.search(rb"latest_jpeg|SET\r\n\$\d+\r\nmaskwatch:frame:", aof)  # only the keys, in entries
    finally:
        main.kill()
        frames.kill()
