"""Fault injection on the whole stack (`maskwatch stack up` on a private redis-server with an append-only file).

A worker killed with SIGKILL, Redis frozen with SIGSTOP for 20 s, Redis killed and restarted, the stack
stopped with SIGTERM: each test ends with the books of every camera checked -
captured = processed + skipped + dropped, every answered frame's result in the results stream exactly
once, and no person record published twice.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import redis

from shared import keys
from shared.schemas import FrameResult, PersonRecord
from tests.stack.helpers import PrivateRedis, fields_text, free_port, make_video, pid_alive, wait_for, write_config

CAMERAS = ("north", "south")
pytestmark = pytest.mark.slow


def start_stack(services, tmp_path: Path, server: PrivateRedis, *extra: str, dashboard_port: int | None = None):
    """`stack up` with two looped cameras and two workers; returns the launcher process."""
    video = make_video(tmp_path / "v.avi", frames=30, fps=20)
    config = write_config(tmp_path / "cams.yaml", server.url,
                          [{"id": cam, "url": str(video), "fps": 6, "loop": True} for cam in CAMERAS],
                          detector={"claim_idle": 2, "max_frame_age": 5, "threads": 1},
                          capture={"stream_maxlen": 60})
    args = ["--port", str(dashboard_port)] if dashboard_port else ["--no-dashboard"]
    return services.start("stack", "up", "--config", str(config), "--workers", "2", *args, *extra, name="stack")


def track_children(services, stack) -> dict[str, list[int]]:
    """Service name -> pids `stack up` started (all killed at teardown whatever happens)."""
    found = collections.defaultdict(list)
    for name, pid in re.findall(r"started (\S+) \(pid (\d+)\)", services.log(stack)):
        found[name].append(int(pid))
        services.extra_pids.add(int(pid))
    return found


def processed(client: redis.Redis) -> dict[str, int]:
    """frames_processed per camera (0 while Redis does not answer)."""
    try:
        return {cam: int(fields_text(client, keys.camera_state(cam)).get("frames_processed", 0)) for cam in CAMERAS}
    except redis.RedisError:
        return dict.fromkeys(CAMERAS, 0)


def wait_for_progress(client: redis.Redis, frames: int, timeout: float, what: str) -> None:
    """Wait until every camera has `frames` more processed frames than now."""
    start = processed(client)
    wait_for(lambda: all(processed(client)[c] >= start[c] + frames for c in CAMERAS), timeout, what, interval=0.3)


def stop_stack(services, stack) -> None:
    """SIGTERM the launcher; it stops the stages in order and exits 0."""
    children = track_children(services, stack)
    assert services.stop(stack, timeout=60) == 0
    alive = [pid for pids in children.values() for pid in pids if pid_alive(pid)]
    assert not alive, f"stack up left {alive} running"


def check_books(client: redis.Redis) -> dict[str, dict[str, int]]:
    """The accounting identity per camera, each result once, no duplicate person record; returns the counters."""
    entries = client.xrange(keys.RESULTS_STREAM)
    frames: dict[str, list[int]] = collections.defaultdict(list)
    people: list[tuple] = []
    for _id, fields in entries:
        data = fields[b"data"]
        if b'"type":"person"' in data:
            person = PersonRecord.model_validate_json(data)
            people.append((person.camera, person.track_id, person.first_seen))
        else:
            result = FrameResult.model_validate_json(data)
            frames[result.camera].append(result.frame)
    books = {}
    for cam in CAMERAS:
        state = fields_text(client, keys.camera_state(cam))
        counts = {k: int(state.get(k, 0)) for k in ("frames_captured", "frames_processed", "frames_skipped",
                                                     "frames_dropped", "frames_expired", "frames_late")}
        books[cam] = counts
        assert counts["frames_processed"] > 0, (cam, counts)
        assert counts["frames_captured"] == (counts["frames_processed"] + counts["frames_skipped"]
                                             + counts["frames_dropped"]), (cam, counts)
        duplicates = [f for f, n in collections.Counter(frames[cam]).items() if n > 1]
        assert not duplicates, f"{cam}: frames with more than one result: {duplicates[:10]}"
        # every answered frame has its one result (a late one, `frames_late`, is published untracked)
        assert len(frames[cam]) == counts["frames_processed"], (cam, counts, len(frames[cam]))
        stream = keys.frames_stream(cam)
        assert client.xpending(stream, keys.DETECTOR_GROUP)["pending"] == 0, cam
    assert len(people) == len(set(people)), "a person record was published twice"
    return books


def _no_tracebacks(services) -> None:
    for _proc, path in services.procs:
        text = path.read_text(errors="replace")
        assert "Traceback" not in text, f"{path.name}:\n{text[-3000:]}"


def test_a_killed_worker_loses_no_frame(tmp_path: Path, private_redis: PrivateRedis, services) -> None:
    client = private_redis.client()
    stack = start_stack(services, tmp_path, private_redis)
    wait_for_progress(client, 5, 120, "results from both cameras")
    victim = track_children(services, stack)["detector-1"][0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(track_children(services, stack)["detector-1"]) == 2, 30, "detector-1 to be restarted")
    wait_for_progress(client, 5, 60, "results after the kill")

    def nothing_pending() -> bool:
        return all(client.xpending(keys.frames_stream(c), keys.DETECTOR_GROUP)["pending"] <= 2 for c in CAMERAS)

    wait_for(nothing_pending, 30, "the killed worker's frames to be claimed")
    stop_stack(services, stack)
    check_books(client)
    _no_tracebacks(services)


def test_redis_frozen_for_20_seconds(tmp_path: Path, private_redis: PrivateRedis, services) -> None:
    client = private_redis.client()
    stack = start_stack(services, tmp_path, private_redis)
    wait_for_progress(client, 5, 120, "results before the freeze")
    private_redis.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(20)
    finally:
        private_redis.proc.send_signal(signal.SIGCONT)
    wait_for_progress(client, 5, 90, "results after the freeze")
    stop_stack(services, stack)
    check_books(client)
    _no_tracebacks(services)


def test_redis_killed_and_restarted_from_its_append_only_file(tmp_path: Path, private_redis: PrivateRedis,
                                                               services) -> None:
    client = private_redis.client()
    stack = start_stack(services, tmp_path, private_redis)
    wait_for_progress(client, 5, 120, "results before the restart")
    before = client.xlen(keys.RESULTS_STREAM)
    private_redis.kill()
    time.sleep(2)
    private_redis.start()
    assert client.xlen(keys.RESULTS_STREAM) >= before  # the append-only file kept every result
    wait_for_progress(client, 5, 90, "results after the restart")
    stop_stack(services, stack)
    check_books(client)
    _no_tracebacks(services)


def test_sigterm_stops_upstream_first_and_the_feed_at_once(tmp_path: Path, private_redis: PrivateRedis,
                                                           services) -> None:
    client = private_redis.client()
    port = free_port(range(18600, 18700))
    stack = start_stack(services, tmp_path, private_redis, dashboard_port=port)
    wait_for_progress(client, 5, 120, "results")
    wait_for(lambda: _answers(port), 60, "the dashboard")
    with httpx.stream("GET", f"http://127.0.0.1:{port}/api/v1/feed", timeout=60) as feed:
        lines = feed.iter_lines()
        next(lines)
        stack.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        for _line in lines:  # the dashboard ends the stream as soon as it is told to stop
            pass
        ended = time.time()
    stop_stack(services, stack)
    assert time.monotonic() - stopping < 45
    log = services.log(stack)
    stages = re.findall(r"^(\S+ \S+) \S+ services.stack: stack: (\S+) stopped", log, re.M)
    order = [stage for _, stage in stages]
    assert order[0] == "capture" and order[-1] == "dashboard" and order.index("detector") < order.index("dashboard")
    # the dashboard is told to stop when the stage before it has stopped: its feed ends at once (no 5 s wait)
    told = datetime.strptime(stages[-2][0], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    assert ended - told < 2.0, ended - told
    books = check_books(client)
    totals = {cam: int(fields_text(client, keys.stats_totals(cam)).get("frames", 0)) for cam in CAMERAS}
    for cam in CAMERAS:  # the dashboard stopped last and counted every result
        assert totals[cam] == books[cam]["frames_processed"], (cam, totals, books)
    assert "Waiting for connections to close" not in log and "graceful shutdown exceeded" not in log
    assert "CancelledError" not in log
    _no_tracebacks(services)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
