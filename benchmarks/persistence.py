"""What persistence costs per camera: bytes Redis appends to its append-only file while the stack runs.

Runs capture, one detector worker and one tracker on one camera (the airport clip, looped, 10 fps) against a
private redis-server with `appendonly yes` (everysec; automatic rewrites off, so the file grows by exactly
what is appended) and measures for --duration seconds: AOF bytes per second and per tracked frame, frames
captured/tracked per second, and the size of the tracker checkpoint. Two cases:

- `before`: the code of --baseline (a checkout of an older revision: frames and the face crops of the
  checkpoint go through the main Redis);
- `after`: this checkout with `frames_redis_url` pointing at a second redis-server without persistence.

    git worktree add /tmp/maskwatch-base 94393b6
    python benchmarks/persistence.py --baseline /tmp/maskwatch-base     # -> results/persistence.json
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.report import write_report  # noqa: E402
from benchmarks.stack import (  # noqa: E402
    counters,
    machine,
    parse_stack_arguments,
    private_redis,
    stack_arguments,
    stop_processes,
)
from shared import keys  # noqa: E402

log = logging.getLogger("benchmarks.persistence")


AOF = ("--appendonly", "yes", "--appendfsync", "everysec", "--auto-aof-rewrite-percentage", "0")


def aof_bytes(folder: Path) -> int:
    """Bytes in the append-only file(s) of a server's data folder."""
    return sum(p.stat().st_size for p in folder.rglob("*.aof") if p.is_file())


def run_case(args: argparse.Namespace, name: str, code: Path, split: bool, folder: Path) -> dict:
    """One measurement of one code revision; returns the summary row."""
    data = folder / name
    data.mkdir()
    main_port, frames_port = args.redis_port, args.redis_port + 1
    with contextlib.ExitStack() as servers:
        servers.enter_context(private_redis(main_port, data, AOF))  # an AOF fsynced every second, never rewritten
        if split:
            servers.enter_context(private_redis(frames_port, data))
        return _measure(args, name, code, split, data, main_port, frames_port)


def _measure(args: argparse.Namespace, name: str, code: Path, split: bool, data: Path, main_port: int,
             frames_port: int) -> dict:
    """The stack of `code` against the running servers: AOF growth and frame rates over --duration."""
    client = redis.Redis(port=main_port)
    config = data / "cams.yaml"
    settings = {"redis_url": f"redis://127.0.0.1:{main_port}/0",
                "cameras": [{"id": "cam1", "url": str(args.video), "fps": args.fps, "loop": True}]}
    if split:
        settings["frames_redis_url"] = f"redis://127.0.0.1:{frames_port}/0"
    config.write_text(yaml.safe_dump(settings))
    env = {**os.environ, "MASKWATCH_LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(code)}
    cmd = [sys.executable, "-m", "maskwatch.cli"]
    procs = [subprocess.Popen([*cmd, service, "--config", str(config), *extra], env=env, cwd=code)
             for service, extra in (("detector", ["--name", "w1"]), ("tracker", ["--name", "t1"]), ("capture", []))]
    try:
        deadline = time.monotonic() + 180
        while not client.exists(keys.latest_result("cam1")):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit("error: the stack produced no results")
            time.sleep(0.2)
        time.sleep(args.warmup)
        before, size0, t0 = counters(client, ["cam1"], ["w1"]), aof_bytes(data), time.time()
        time.sleep(args.duration)
        after, size1, t1 = counters(client, ["cam1"], ["w1"]), aof_bytes(data), time.time()
        checkpoint = client.strlen(keys.tracker_checkpoint("cam1"))
    finally:
        stop_processes(procs)
    elapsed = t1 - t0
    delta = {k: after[k] - before[k] for k in after}
    return {"case": name, "code": str(code), "frames_redis": split,
            "aof_bytes_per_s": round((size1 - size0) / elapsed),
            "aof_bytes_per_tracked_frame": round((size1 - size0) / max(1, delta["frames_tracked"])),
            "captured_fps": round(delta["frames_captured"] / elapsed, 2),
            "tracked_fps": round(delta["frames_tracked"] / elapsed, 2),
            "checkpoint_bytes": checkpoint}


def main() -> int:
    parser = stack_arguments(__doc__, "persistence", 6397)
    parser.add_argument("--baseline", type=Path, required=True, help="checkout of the revision to compare with")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    args = parse_stack_arguments(parser)
    if args is None:
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, code, split in (("before", args.baseline.resolve(), False), ("after", REPO, True)):
            log.info("%s: %s, %.0f s ...", name, code, args.duration)
            rows.append(run_case(args, name, code, split, Path(tmp)))
            log.info("  %s", rows[-1])
    before, after = rows
    report = {
        "benchmark": "persistence", "video": args.video.name, "fps": args.fps, "duration_s": args.duration,
        "aof": "appendonly yes, appendfsync everysec, automatic rewrites off (the file grows by what is appended)",
        "machine": machine(),
        "runs": rows,
        "reduction_per_s": round(before["aof_bytes_per_s"] / max(1, after["aof_bytes_per_s"]), 1),
        "reduction_per_tracked_frame": round(before["aof_bytes_per_tracked_frame"]
                                             / max(1, after["aof_bytes_per_tracked_frame"]), 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
