"""Capture service against real Redis (db 1): video files, a loopback MJPEG stream, hot reload, bad config."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import redis

from shared import keys
from shared.imaging import decode_image
from tests.media import MjpegServer
from tests.stack.conftest import RunCapture, frames, state
from tests.stack.helpers import free_port, make_video, redis_url, wait_for, write_config


def test_video_file_is_sampled_to_the_configured_fps(tmp_path: Path, capture_db: redis.Redis,
                                                     run_capture: RunCapture) -> None:
    video = make_video(tmp_path / "clip.avi", frames=40, fps=20)  # 2 s of video
    config = write_config(tmp_path / "cams.yaml", redis_url(capture_db), [{"id": "door", "url": str(video), "fps": 5}])
    started = time.time()
    run_capture(config)
    wait_for(lambda: state(capture_db, "door").get("status") == "stopped", 20, "the video to end")
    elapsed = time.time() - started
    got = frames(capture_db, "door")
    assert 1.8 < elapsed < 15  # played in real time, not as fast as it decodes
    assert 9 <= len(got) <= 11  # 2 s at 5 fps
    assert [m.frame for m in got] == list(range(1, len(got) + 1))
    assert all(m.camera == "door" and (m.width, m.height) == (160, 120) for m in got)
    assert all(b.ts > a.ts for a, b in zip(got, got[1:], strict=False))
    gaps = np.diff([m.ts for m in got])
    assert 0.15 < float(np.median(gaps)) < 0.25  # 1/5 s apart
    image = decode_image(got[3].jpeg)
    assert image.shape == (120, 160, 3)
    # sampled every 4th source frame: frame 4 (index 3) shows source frame 12, gray level 12*8 = 96
    assert abs(int(np.median(image[60:80, 100:150])) - 96) < 20
    s = state(capture_db, "door")
    assert s["frames_captured"] == str(len(got)) and s["error"] == "" and s["url"] == str(video)
    assert float(s["last_frame_time"]) == pytest.approx(got[-1].ts)
    assert capture_db.smembers(keys.CAMERAS_SET) == {b"door"}
    groups = capture_db.xinfo_groups(keys.frames_stream("door"))
    assert [g["name"] for g in groups] == [keys.DETECTOR_GROUP.encode()]  # frames wait for detectors


def test_looped_video_keeps_going_and_big_frames_shrink(tmp_path: Path, capture_db: redis.Redis,
                                                        run_capture: RunCapture) -> None:
    video = make_video(tmp_path / "short.avi", frames=10, fps=20)  # 0.5 s
    config = write_config(tmp_path / "cams.yaml", redis_url(capture_db),
                          [{"id": "loop", "url": str(video), "fps": 10, "loop": True}], capture={"max_side": 80})
    run_capture(config)
    wait_for(lambda: len(frames(capture_db, "loop")) >= 15, 20, "frames from three or more passes of the video")
    assert state(capture_db, "loop")["status"] == "live"
    last = frames(capture_db, "loop")[-1]
    assert (last.width, last.height) == (80, 60) == decode_image(last.jpeg).shape[1::-1]  # scaled to max_side


def test_loopback_stream_cut_and_restored(tmp_path: Path, capture_db: redis.Redis, run_capture: RunCapture) -> None:
    image = np.zeros((96, 128, 3), np.uint8)
    cv2.circle(image, (64, 48), 30, (0, 200, 255), -1)
    port = free_port(range(18090, 18190))
    url = f"http://user:secret@127.0.0.1:{port}/stream.mjpg"
    config = write_config(tmp_path / "cams.yaml", redis_url(capture_db),
                          [{"id": "net", "url": url, "fps": 5}], capture={"reconnect_max": 1})
    with MjpegServer(image, fps=15, port=port):
        run_capture(config)
        wait_for(lambda: len(frames(capture_db, "net")) >= 5, 20, "frames from the MJPEG stream")
        assert state(capture_db, "net")["status"] == "live"
    cut_at = len(frames(capture_db, "net"))
    s = wait_for(lambda: (s := state(capture_db, "net"))["status"] == "retrying" and s, 20, "the cut to be noticed")
    assert "stopped answering" in s["error"] or "cannot open" in s["error"]
    assert "secret" not in s["error"] and s["url"] == f"http://***@127.0.0.1:{port}/stream.mjpg"
    time.sleep(1.5)  # a few reconnect attempts against the dead port
    assert len(frames(capture_db, "net")) <= cut_at + 1
    with MjpegServer(image, fps=15, port=port):
        wait_for(lambda: state(capture_db, "net")["status"] == "live", 20, "the reconnect")
        wait_for(lambda: len(frames(capture_db, "net")) >= cut_at + 5, 20, "frames after the reconnect")
    got = frames(capture_db, "net")
    assert [m.frame for m in got] == list(range(1, len(got) + 1))  # numbering continues after the cut
    full = [m for m in got if not m.still]  # a still picture: no motion, frames between keyframes carry no JPEG
    assert decode_image(full[-1].jpeg).shape == (96, 128, 3)


def test_config_edits_apply_without_restart(tmp_path: Path, capture_db: redis.Redis, run_capture: RunCapture) -> None:
    video = make_video(tmp_path / "v.avi", frames=20, fps=20)
    url = redis_url(capture_db)
    path = write_config(tmp_path / "cams.yaml", url, [{"id": "a", "url": str(video), "fps": 5, "loop": True},
                                                      {"id": "b", "url": str(video), "fps": 5, "loop": True}])
    service = run_capture(path)
    wait_for(lambda: frames(capture_db, "a") and frames(capture_db, "b"), 20, "both cameras")
    reader_b = service.readers.readers["b"]
    process_b = reader_b.proc

    # add c, change a's fps, remove b
    write_config(path, url, [{"id": "a", "url": str(video), "fps": 2, "loop": True},
                             {"id": "c", "url": str(video), "fps": 5, "loop": True}])
    wait_for(lambda: capture_db.smembers(keys.CAMERAS_SET) == {b"a", b"c"}, 20, "the camera set to follow the edit")
    wait_for(lambda: frames(capture_db, "c"), 20, "frames of the added camera")
    assert not capture_db.exists(keys.camera_state("b"), keys.frames_stream("b"))
    assert "b" not in service.readers.readers and reader_b.proc is None
    wait_for(lambda: process_b is None or process_b.poll() is not None, 10, "camera b's reader process to end")
    # a's state shows its new rate (written by the next tick, and again by every full sync, 10 s)
    wait_for(lambda: state(capture_db, "a")["fps"] == "2.0", 15, "camera a's state to show its new fps")

    # a broken edit keeps the running cameras
    path.write_text("cameras: [\n")
    time.sleep(2.5)
    assert capture_db.smembers(keys.CAMERAS_SET) == {b"a", b"c"}
    assert set(service.owned) == {"a", "c"} and set(service.readers.readers) == {"a", "c"}

    # disabling a camera stops it and shows it as stopped
    write_config(path, url, [{"id": "a", "url": str(video), "fps": 2, "loop": True, "enabled": False}])
    wait_for(lambda: state(capture_db, "a").get("error") == "disabled", 20, "camera a to be disabled")
    assert state(capture_db, "a")["status"] == "stopped"
    assert capture_db.smembers(keys.CAMERAS_SET) == {b"a"}


def test_bad_entries_fail_alone(tmp_path: Path, capture_db: redis.Redis, run_capture: RunCapture) -> None:
    video = make_video(tmp_path / "v.avi", frames=20, fps=20)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(300))
    config = write_config(tmp_path / "cams.yaml", redis_url(capture_db), [
        {"id": "ok", "url": str(video), "loop": True},
        {"id": "neg", "url": str(video), "fps": -3},
        {"id": "missing", "url": str(tmp_path / "nope.mp4")},
        {"id": "corrupt", "url": str(corrupt)},
    ])
    run_capture(config)
    wait_for(lambda: frames(capture_db, "ok"), 20, "frames of the good camera")
    assert capture_db.smembers(keys.CAMERAS_SET) == {b"ok", b"neg", b"missing", b"corrupt"}
    neg = state(capture_db, "neg")
    assert neg["status"] == "failed" and neg["error"].startswith("config: cameras[1] (id 'neg'): fps:"), neg
    missing = wait_for(lambda: (s := state(capture_db, "missing")).get("status") == "failed" and s, 20, "missing")
    assert missing["error"] == f"{tmp_path / 'nope.mp4'}: no such video file", missing
    bad = wait_for(lambda: (s := state(capture_db, "corrupt")).get("status") == "failed" and s, 20, "corrupt")
    assert str(corrupt) in bad["error"] and "\n" not in bad["error"], bad
    # the status reaches the state hash within capture's state-write tick, possibly just after the first frame
    ok = wait_for(lambda: (s := state(capture_db, "ok")).get("status") == "live" and s, 5, "the good camera live")
    assert ok["error"] == "" and int(ok["frames_captured"]) >= 1, ok


def test_sigterm_stops_capture_cleanly(tmp_path: Path, capture_db: redis.Redis, services) -> None:
    video = make_video(tmp_path / "v.avi", frames=20, fps=20)
    config = write_config(tmp_path / "cams.yaml", redis_url(capture_db),
                          [{"id": "x", "url": str(video), "fps": 10, "loop": True}])
    proc = services.start("capture", "--config", str(config), name="capture")
    wait_for(lambda: len(frames(capture_db, "x")) >= 3, 30, "frames")
    assert services.stop(proc, timeout=15) == 0  # one SIGTERM: a second one during exit would kill it
    log = services.log(proc)
    assert "SIGTERM received" in log and "Traceback" not in log
    assert state(capture_db, "x")["status"] == "stopped"


def test_capture_leaves_phone_cameras_alone(tmp_path: Path, capture_db: redis.Redis, run_capture: RunCapture) -> None:
    """Phone cameras (the dashboard's, in PHONE_CAMERAS) are in no config file: capture must not remove them."""
    video = make_video(tmp_path / "v.avi", frames=20, fps=20)
    capture_db.sadd(keys.CAMERAS_SET, "phone-door", "gone")
    capture_db.sadd(keys.PHONE_CAMERAS, "phone-door")
    capture_db.hset(keys.camera_state("phone-door"), mapping={"status": "live", "url": "phone"})
    run_capture(write_config(tmp_path / "cams.yaml", redis_url(capture_db),
                             [{"id": "a", "url": str(video), "fps": 5, "loop": True}]))
    wait_for(lambda: capture_db.smembers(keys.CAMERAS_SET) == {b"a", b"phone-door"}, 20, "the camera set synced")
    time.sleep(1.5)  # a few more syncs
    assert capture_db.smembers(keys.CAMERAS_SET) == {b"a", b"phone-door"}
    assert capture_db.hget(keys.camera_state("phone-door"), "status") == b"live"
