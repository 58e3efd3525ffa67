"""People counted by the streaming stack with 1, 2 and 4 detector workers on the same clip and frames.

Each run starts a private redis-server, one `maskwatch tracker`, W `maskwatch detector` workers (all
waiting before the first frame) and `maskwatch capture` playing the first --seconds of the video once at
--fps, waits until every frame was detected and tracked, stops the tracker (which ends the open tracks)
and counts the person records on the results stream (and any published twice).

    python benchmarks/people_stack.py     # airport clip, 20 s at 10 fps -> benchmarks/results/people_stack.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import cv2
import redis
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.report import write_report  # noqa: E402
from benchmarks.stack import (  # noqa: E402
    machine,
    parse_stack_arguments,
    private_redis,
    stack_arguments,
    stop_processes,
)
from shared import keys  # noqa: E402
from shared.streams import ensure_group  # noqa: E402

log = logging.getLogger("benchmarks.people_stack")
CAMERA = "airport"


def cut(video: Path, seconds: float, out: Path) -> Path:
    """The first `seconds` of `video` as an MJPG file (so every run decodes exactly the same frames)."""
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for _ in range(round(seconds * fps)):
        ok, image = cap.read()
        if not ok:
            break
        writer.write(image)
    writer.release()
    cap.release()
    return out


def state(client: redis.Redis) -> dict[str, int]:
    raw = client.hgetall(keys.camera_state(CAMERA))
    return {k.decode(): int(v) for k, v in raw.items() if v.isdigit()} | {
        "stopped": raw.get(b"status") == b"stopped"}


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"error: timed out waiting for {what}")
        time.sleep(0.2)


def run(args: argparse.Namespace, clip: Path, workers: int, folder: Path) -> dict:
    client = redis.Redis(port=args.redis_port)
    client.flushall()
    config = folder / f"people-{workers}.yaml"
    config.write_text(yaml.safe_dump({
        "redis_url": f"redis://127.0.0.1:{args.redis_port}/0",
        "cameras": [{"id": CAMERA, "url": str(clip), "fps": args.fps}],
        "detector": {"threads": 1, "max_frame_age": 30},
    }))
    client.sadd(keys.CAMERAS_SET, CAMERA)
    ensure_group(client, keys.frames_stream(CAMERA))
    env = {**os.environ, "MASKWATCH_LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": "1"}
    if args.models:
        env["MASKWATCH_MODELS"] = str(args.models)
    cmd = [sys.executable, "-m", "maskwatch.cli"]
    names = [f"w{i + 1}" for i in range(workers)]
    procs = [subprocess.Popen([*cmd, "detector", "--config", str(config), "--name", n], env=env, cwd=REPO)
             for n in names]
    tracker = subprocess.Popen([*cmd, "tracker", "--config", str(config)], env=env, cwd=REPO)
    capture = None
    try:
        wait(lambda: all(any(c["name"] == f"detector:{n}" and c["cmd"] == "xreadgroup" for c in client.client_list())
                         for n in names), 180, "the workers to load their models")
        wait(lambda: client.exists(keys.tracker_lease(CAMERA)), 30, "the tracker")
        capture = subprocess.Popen([*cmd, "capture", "--config", str(config)], env=env, cwd=REPO)
        wait(lambda: state(client)["stopped"], 120, "the clip to end")
        s = state(client)
        wait(lambda: sum(state(client).get(k, 0) for k in ("frames_processed", "frames_skipped", "frames_dropped"))
             >= s["frames_captured"], 120, "the workers")
        wait(lambda: state(client).get("frames_tracked", 0) + state(client).get("frames_late", 0)
             >= state(client).get("frames_processed", 0), 60, "the tracker")
    finally:
        stop_processes([p for p in (capture, tracker, *procs) if p is not None], timeout=30)
    people = [json.loads(f[b"data"]) for _id, f in client.xrange(keys.RESULTS_STREAM)]
    people = [p for p in people if p["type"] == "person"]
    twice = sum(n - 1 for n in Counter(p["track_id"] for p in people).values())
    s = state(client)
    return {"workers": workers, "people": len(people), "published_twice": twice,
            "labels": dict(Counter(p["label"] for p in people)),
            "frames_captured": s.get("frames_captured", 0), "frames_processed": s.get("frames_processed", 0),
            "frames_skipped": s.get("frames_skipped", 0), "frames_dropped": s.get("frames_dropped", 0),
            "frames_tracked": s.get("frames_tracked", 0),
            "frames_late": s.get("frames_late", 0)}


def main() -> int:
    parser = stack_arguments(__doc__, "people_stack", 6398)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--models", type=Path)
    args = parse_stack_arguments(parser)
    if args is None:
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = cut(args.video, args.seconds, Path(tmp) / "clip.avi")
        with private_redis(args.redis_port, Path(tmp)):
            for workers in (int(w) for w in args.workers.split(",")):
                log.info("%d worker(s) ...", workers)
                rows.append(run(args, clip, workers, Path(tmp)))
                log.info("  %s", rows[-1])
    report = {"benchmark": "people_stack", "video": args.video.name, "seconds": args.seconds, "fps": args.fps,
              "machine": machine(),
              "runs": rows, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
