"""Capture with many cameras: does a healthy camera keep its rate, and how many 10 fps cameras does one process hold?

Runs `maskwatch capture` alone against a private, non-persistent redis-server (streams kept 20 frames long:
nothing consumes them) and measures, from the cameras' state counters and the process tree:

1. `healthy`: one camera (the airport clip, 640x360, looped, sampled at 10 fps) alone, then beside
   --many file cameras at 1 fps (the clip re-encoded to 1 fps: a camera streaming 1 fps, as an NVR's
   detect stream would): its frames per second, its largest gap between frames, CPU and memory (PSS) of
   capture and its ffmpeg readers.
2. `capacity`: N cameras at 10 fps (the clip re-encoded to 10 fps) for each N of --capacity: the frames per
   second each camera delivers; a process holds N cameras when each keeps >= 95 % of 10 fps.

    python benchmarks/capture.py                       # -> benchmarks/results/capture.json
    python benchmarks/capture.py --many 50 --capacity 10,20 --duration 10
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import redis
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.report import write_report  # noqa: E402
from benchmarks.stack import (  # noqa: E402
    cpu_seconds,
    machine,
    parse_stack_arguments,
    private_redis,
    process_tree,
    stack_arguments,
)
from shared import keys  # noqa: E402
from shared.streams import FrameMessage  # noqa: E402

log = logging.getLogger("benchmarks.capture")


def reencode(video: Path, fps: float, out: Path) -> Path:
    """The video at `fps` frames per second (H.264), as a camera streaming at that rate would send it."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(video), "-an", "-vf", f"fps={fps}",
                    "-c:v", "libx264", "-preset", "veryfast", "-g", str(max(1, int(fps * 2))), str(out)], check=True)
    return out


def pss_mb(pids: list[int]) -> float:
    """Proportional set size of the processes (shared pages split between them), MB."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class Capture:
    """`maskwatch capture` on a config of cameras; stopped (SIGTERM) on exit."""

    def __init__(self, folder: Path, url: str, cameras: list[dict], max_cameras: int) -> None:
        self.config = folder / "cams.yaml"
        self.config.write_text(yaml.safe_dump({"redis_url": url, "cameras": cameras, "capture": {
            "stream_maxlen": 20, "max_cameras": max_cameras}}))
        env = {**os.environ, "MASKWATCH_LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "capture", "--config", str(self.config)],
                                     env=env, cwd=REPO)

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *_exc: object) -> None:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.stop_s = time.monotonic() - started


def captured(client: redis.Redis, cameras: list[str]) -> dict[str, int]:
    """Frames each camera published: captured less those dropped before publishing (not the ones trimmed
    from the stream unread, `frames_expired`: nothing consumes the streams here)."""
    pipe = client.pipeline(transaction=False)
    for cam in cameras:
        pipe.hmget(keys.camera_state(cam), "frames_captured", "frames_dropped", "frames_expired")
    return {cam: int(c or 0) - int(d or 0) + int(e or 0) for cam, (c, d, e) in zip(cameras, pipe.execute())}


def wait_live(client: redis.Redis, cameras: list[str], timeout: float) -> float:
    """Seconds until every camera has published a frame."""
    started = time.monotonic()
    while min(captured(client, cameras).values()) == 0:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"error: not every camera was live after {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - started


def healthy_gaps(client: redis.Redis, duration: float) -> tuple[float, float]:
    """Frames per second of the healthy camera read from its stream over `duration`, and the largest gap (s)."""
    stamps: list[float] = []
    last = b"$"
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        reply = client.xread({keys.frames_stream("healthy"): last}, block=200, count=100)
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                last = entry_id
                stamps.append(FrameMessage.from_fields(fields).ts)
    gaps = np.diff(stamps) if len(stamps) > 1 else np.array([duration])
    return len(stamps) / duration, float(gaps.max())


def measure_healthy(args: argparse.Namespace, url: str, client: redis.Redis, folder: Path, one_fps: Path,
                    many: int) -> dict:
    """The healthy camera's rate alone (many=0) or beside `many` 1 fps file cameras."""
    client.flushall()
    cameras = [{"id": "healthy", "url": str(args.video), "fps": 10, "loop": True}]
    cameras += [{"id": f"file{i:04d}", "url": str(one_fps), "fps": 1, "loop": True} for i in range(many)]
    ids = [c["id"] for c in cameras]
    with Capture(folder, url, cameras, max_cameras=many + 1) as capture:
        startup = wait_live(client, ids, 180)
        time.sleep(args.warmup)
        pids = process_tree(capture.proc.pid)
        cpu0, count0, t0 = cpu_seconds(pids), captured(client, ids), time.monotonic()
        _read_fps, max_gap = healthy_gaps(client, args.duration)
        cpu1, count1, t1 = cpu_seconds(pids), captured(client, ids), time.monotonic()
        memory = pss_mb(pids)
        rates = {c: (count1[c] - count0[c]) / (t1 - t0) for c in ids}
        others = [rates[c] for c in ids[1:]]
    return {"file_cameras_at_1fps": many, "healthy_fps": round(rates["healthy"], 2),
            "healthy_max_gap_s": round(max_gap, 3),
            "others_fps_mean": round(float(np.mean(others)), 3) if others else None,
            "others_fps_min": round(float(np.min(others)), 3) if others else None,
            "startup_s": round(startup, 1), "cpu_cores": round((cpu1 - cpu0) / (t1 - t0), 2),
            "pss_mb": round(memory, 1), "sigterm_s": round(capture.stop_s, 2)}


def measure_capacity(args: argparse.Namespace, url: str, client: redis.Redis, folder: Path, ten_fps: Path,
                     n: int) -> dict:
    """N cameras at 10 fps: what each delivers."""
    client.flushall()
    ids = [f"cam{i:04d}" for i in range(n)]
    cameras = [{"id": cam, "url": str(ten_fps), "fps": 10, "loop": True} for cam in ids]
    with Capture(folder, url, cameras, max_cameras=n) as capture:
        wait_live(client, ids, 180)
        time.sleep(args.warmup)
        pids = process_tree(capture.proc.pid)
        cpu0, py0, count0, t0 = cpu_seconds(pids), cpu_seconds(pids[:1]), captured(client, ids), time.monotonic()
        time.sleep(args.duration)
        cpu1, py1, count1, t1 = cpu_seconds(pids), cpu_seconds(pids[:1]), captured(client, ids), time.monotonic()
        memory = pss_mb(pids)
    rates = np.array([(count1[c] - count0[c]) / (t1 - t0) for c in ids])
    return {"cameras": n, "fps_mean": round(float(rates.mean()), 2), "fps_min": round(float(rates.min()), 2),
            "holds": bool(rates.min() >= 9.5), "cpu_cores_total": round((cpu1 - cpu0) / (t1 - t0), 2),
            "cpu_cores_capture_process": round((py1 - py0) / (t1 - t0), 3), "pss_mb": round(memory, 1),
            "sigterm_s": round(capture.stop_s, 2)}


def main() -> int:
    parser = stack_arguments(__doc__, "capture", 6398)
    parser.add_argument("--many", type=int, default=200, help="file cameras at 1 fps beside the healthy one")
    parser.add_argument("--capacity", default="10,25,50,100", help="camera counts at 10 fps to try")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    args = parse_stack_arguments(parser)
    if args is None:
        return 2
    url = f"redis://127.0.0.1:{args.redis_port}/0"
    load_at_start = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        one_fps = reencode(args.video, 1, folder / "one_fps.mp4")
        ten_fps = reencode(args.video, 10, folder / "ten_fps.mp4")
        with private_redis(args.redis_port, folder):
            client = redis.Redis(port=args.redis_port)
            healthy = []
            for many in (0, args.many):
                healthy.append(measure_healthy(args, url, client, folder, one_fps, many))
                log.info("healthy: %s", healthy[-1])
            capacity = []
            for n in (int(v) for v in args.capacity.split(",")):
                capacity.append(measure_capacity(args, url, client, folder, ten_fps, n))
                log.info("capacity: %s", capacity[-1])
    held = [row["cameras"] for row in capacity if row["holds"]]
    report = {
        "benchmark": "capture", "video": args.video.name, "duration_s": args.duration,
        "machine": machine(load_avg_1m_at_start=load_at_start),
        "healthy": healthy,
        "healthy_rate_ratio": round(healthy[1]["healthy_fps"] / max(0.01, healthy[0]["healthy_fps"]), 3),
        "capacity_at_10fps": capacity,
        "cameras_held_at_10fps": max(held) if held else 0,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
