"""`maskwatch stack up`: the three services as supervised processes, restart on crash, clean stop."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import httpx
import redis

from services.stack import stack_services
from shared import keys
from tests.stack.helpers import fields_text, free_port, make_video, pid_alive, redis_url, wait_for, write_config


def _pids(log: str, service: str) -> list[int]:
    return [int(p) for p in re.findall(rf"started {service} \(pid (\d+)\)", log)]


def _track_children(services, stack) -> list[int]:
    """Pids of every service `stack up` started so far; the fixture kills them at the end whatever happens."""
    pids = [int(p) for p in re.findall(r"started \S+ \(pid (\d+)\)", services.log(stack))]
    services.extra_pids.update(pids)
    return pids


def test_stack_services_are_the_commands_compose_runs() -> None:
    specs = stack_services("c.yaml", "0.0.0.0", 8000, workers=2)
    assert [(s.name, s.args) for s in specs] == [
        ("capture", ("capture", "--config", "c.yaml")),
        ("detector-1", ("detector", "--config", "c.yaml")),
        ("detector-2", ("detector", "--config", "c.yaml")),
        ("tracker", ("tracker", "--config", "c.yaml")),
        ("recorder", ("recorder", "--config", "c.yaml")),
        ("dashboard", ("dashboard", "--host", "0.0.0.0", "--port", "8000", "--config", "c.yaml")),
    ]
    assert [s.name for s in stack_services("c.yaml", "h", 1, dashboard=False)] == \
        ["capture", "detector-1", "tracker", "recorder"]
    assert [s.name for s in stack_services("c.yaml", "h", 1, recorder=False)] == \
        ["capture", "detector-1", "tracker", "dashboard"]


def test_stack_up_runs_restarts_and_stops(tmp_path: Path, stack_db: redis.Redis, services) -> None:
    video = make_video(tmp_path / "v.avi", frames=40, fps=20)
    port = free_port(range(18200, 18300))
    config = write_config(tmp_path / "cams.yaml", redis_url(stack_db),
                          [{"id": "lobby", "url": str(video), "fps": 5, "loop": True}])
    stack = services.start("stack", "up", "--config", str(config), "--port", str(port), "--workers", "2",
                           name="stack")
    wait_for(lambda: stack_db.get(keys.latest_result("lobby")), 90, "a result from the stack")
    wait_for(lambda: _answers(port), 60, "the dashboard to answer")

    _track_children(services, stack)
    log = services.log(stack)
    [detector_pid, _other] = _pids(log, "detector-1") + _pids(log, "detector-2")
    os.kill(detector_pid, signal.SIGKILL)  # a crashed worker is restarted
    wait_for(lambda: len(_pids(services.log(stack), "detector-1")) == 2, 30, "detector-1 to be restarted")
    _track_children(services, stack)
    assert "detector-1 exited with code -9; restarting in" in services.log(stack)

    processed = int(fields_text(stack_db, keys.camera_state("lobby"))["frames_processed"])
    wait_for(lambda: int(fields_text(stack_db, keys.camera_state("lobby"))["frames_processed"]) > processed + 5,
             30, "results to keep coming")

    children = _track_children(services, stack)
    assert services.stop(stack, timeout=40) == 0
    assert not [pid for pid in children if pid_alive(pid)], "stack up left service processes behind"
    assert fields_text(stack_db, keys.camera_state("lobby"))["status"] == "stopped"
    assert "Traceback" not in services.log(stack)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_services_die_with_a_killed_launcher(tmp_path: Path, stack_db: redis.Redis, services) -> None:
    video = make_video(tmp_path / "v.avi", frames=20, fps=20)
    config = write_config(tmp_path / "cams.yaml", redis_url(stack_db),
                          [{"id": "k", "url": str(video), "fps": 5, "loop": True}])
    stack = services.start("stack", "up", "--config", str(config), "--no-dashboard", name="stack")
    wait_for(lambda: "started recorder" in services.log(stack), 60, "the services to start")
    children = _track_children(services, stack)
    assert len(children) == 4  # capture, detector-1, tracker, recorder
    stack.send_signal(signal.SIGKILL)
    stack.wait(10)
    wait_for(lambda: not any(pid_alive(pid) for pid in children), 30, "the orphaned services to stop")


def test_stack_up_without_redis_is_one_line_error(tmp_path: Path, services) -> None:
    dead = free_port(range(6390, 6400))
    config = write_config(tmp_path / "cams.yaml", f"redis://127.0.0.1:{dead}/0", [{"id": "a", "url": "0"}])
    proc = services.start("stack", "up", "--config", str(config), name="noredis")
    assert proc.wait(60) == 1
    assert services.log(proc).strip().splitlines() == [
        f"error: cannot reach Redis at redis://127.0.0.1:{dead}/0 (Error 111 connecting to 127.0.0.1:{dead}. "
        "Connection refused.); start redis-server or set redis_url / MASKWATCH_REDIS_URL"]
