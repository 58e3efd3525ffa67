"""Streaming-stack throughput and end-to-end latency: N camera streams x W detector workers, one tracker.

Every run starts a private redis-server, `maskwatch capture` with N cameras replaying the same video
(looped, sampled to --fps), W `maskwatch detector` processes and one `maskwatch tracker`, then measures
for --duration seconds: tracked results per second (total and per worker), frames skipped, and latency
from capture to the moment a consumer of the results stream receives the tracked result (detection,
reordering and tracking included).

    python benchmarks/stack.py                       # 1, 2, 4 cameras x 1, 2, 4 workers -> results/stack.json
    python benchmarks/stack.py --cameras 1 --workers 1 --duration 10 --models /tmp/store
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import redis
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.report import write_report  # noqa: E402
from shared import keys  # noqa: E402
from shared.model_store import ModelError, ModelStore  # noqa: E402

log = logging.getLogger("benchmarks.stack")
DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "video" / "airport.mp4"


class ResultReader(threading.Thread):
    """Reads the results stream as it grows and stamps each result with its arrival time."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(daemon=True)
        self.client, self.stop = client, threading.Event()
        self.rows: list[tuple[float, dict]] = []
        self.last_id = b"$"

    def run(self) -> None:
        while not self.stop.is_set():
            reply = self.client.xread({keys.RESULTS_STREAM: self.last_id}, block=200, count=500)
            now = time.time()
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    self.last_id = entry_id
                    self.rows.append((now, json.loads(fields[b"data"])))


def start_redis(port: int, folder: Path, persistence: tuple[str, ...] = ("--appendonly", "no")) -> subprocess.Popen:
    """A private redis-server, non-persistent unless `persistence` says otherwise (its AOF options)."""
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             *persistence, "--dir", str(folder)], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"error: redis-server did not start on port {port}")


@contextlib.contextmanager
def private_redis(port: int, folder: Path, persistence: tuple[str, ...] = ("--appendonly", "no")
                  ) -> Iterator[subprocess.Popen]:
    """`start_redis` for the length of a `with` block; the server is stopped at its end."""
    proc = start_redis(port, folder, persistence)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def stack_arguments(doc: str, name: str, redis_port: int) -> argparse.ArgumentParser:
    """The parser of a stack benchmark: --video (default the airport clip), --redis-port (its private
    redis-server) and --out (default benchmarks/results/NAME.json)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--redis-port", type=int, default=redis_port)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / f"{name}.json")
    return parser


def parse_stack_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace | None:
    """The parsed arguments with INFO logging set up; None, after one error line, when the video is missing."""
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(message)s")
    if not args.video.is_file():
        print(f"error: video {args.video} not found", file=sys.stderr)
        return None
    return args


def machine(**extra: object) -> dict:
    """The report's machine: CPUs, platform, Python, the 1-minute load average now, and `extra`."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            **extra, "load_avg_1m_at_end": round(os.getloadavg()[0], 2)}


def stop_processes(procs: list[subprocess.Popen], timeout: float = 20) -> None:
    """SIGTERM every process, then wait for each (killed after `timeout` seconds)."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes, all their threads (0 for those gone)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """A process and its children (capture's ffmpeg readers)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return [pid, *children]


def counters(client: redis.Redis, cameras: list[str], workers: list[str]) -> dict[str, int]:
    """Summed frame counters of the cameras and per-worker processed counts."""
    totals = {"frames_captured": 0, "frames_processed": 0, "frames_tracked": 0, "frames_late": 0, "frames_skipped": 0,
              "frames_dropped": 0}
    for cam in cameras:
        state = client.hgetall(keys.camera_state(cam))
        for field in totals:
            totals[field] += int(state.get(field.encode(), 0))
    for name in workers:
        totals[f"worker:{name}"] = int(client.hget(keys.detector_worker(name), "frames_processed") or 0)
    return totals


def run_case(args: argparse.Namespace, n_cameras: int, n_workers: int, folder: Path) -> dict:
    """One measurement: returns the summary row."""
    url = f"redis://127.0.0.1:{args.redis_port}/0"
    client = redis.Redis(port=args.redis_port)
    client.flushall()
    cameras = [f"cam{i + 1}" for i in range(n_cameras)]
    config = folder / f"bench-{n_cameras}x{n_workers}.yaml"
    config.write_text(yaml.safe_dump({
        "redis_url": url,
        "cameras": [{"id": c, "url": str(args.video), "fps": args.fps, "loop": True} for c in cameras],
        "detector": {"threads": args.threads, "max_frame_age": args.max_frame_age,
                     "classifier_threads": args.classifier_threads, "overlap": args.overlap},
    }))
    env = {**os.environ, "MASKWATCH_LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": str(args.threads)}
    if args.models:
        env["MASKWATCH_MODELS"] = str(args.models)
    workers = [f"bench-w{i + 1}" for i in range(n_workers)]
    cmd = [sys.executable, "-m", "maskwatch.cli"]
    procs = [subprocess.Popen([*cmd, "detector", "--config", str(config), "--name", w], env=env, cwd=REPO)
             for w in workers]
    tracker = [*cmd, "tracker", "--config", str(config), "--name", "bench-t"]
    procs.append(subprocess.Popen(tracker, env=env, cwd=REPO))
    procs.append(subprocess.Popen([*cmd, "capture", "--config", str(config)], env=env, cwd=REPO))
    reader = ResultReader(redis.Redis(port=args.redis_port))
    try:
        deadline = time.monotonic() + 120
        while not all(client.exists(keys.latest_result(c)) for c in cameras):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit("error: the stack produced no results (see the service logs above)")
            time.sleep(0.2)
        time.sleep(args.warmup)
        reader.start()
        before, t0 = counters(client, cameras, workers), time.time()
        time.sleep(args.duration)
        after, t1 = counters(client, cameras, workers), time.time()
        time.sleep(1.0)  # results of frames captured before t1 may still arrive
        reader.stop.set()
        reader.join(5)
    finally:
        stop_processes(procs)
    elapsed = t1 - t0
    window = [(arrived, r) for arrived, r in reader.rows if r.get("type") == "frame" and t0 <= r["captured_at"] < t1]
    latency = np.array([arrived - r["captured_at"] for arrived, r in window]) * 1000
    delta = {k: after[k] - before[k] for k in after}
    model = window[0][1]["model_version"] if window else None
    row = {
        "cameras": n_cameras, "workers": n_workers, "fps_per_camera": args.fps,
        "offered_fps": round(n_cameras * args.fps, 2),
        "captured_fps": round(delta["frames_captured"] / elapsed, 2),
        "processed_fps": round(delta["frames_processed"] / elapsed, 2),
        "tracked_fps": round(delta["frames_tracked"] / elapsed, 2),
        "late_frames": delta["frames_late"],
        "skipped_fps": round(delta["frames_skipped"] / elapsed, 2),
        "dropped_by_capture": delta["frames_dropped"],
        "per_worker_fps": {w: round(delta[f"worker:{w}"] / elapsed, 2) for w in workers},
        "processed_share": round(delta["frames_processed"] / max(1, delta["frames_captured"]), 3),
        "latency_ms": {
            "results": int(latency.size),
            "p50": round(float(np.percentile(latency, 50)), 1) if latency.size else None,
            "p95": round(float(np.percentile(latency, 95)), 1) if latency.size else None,
            "max": round(float(latency.max()), 1) if latency.size else None,
        },
        "faces_per_frame": round(float(np.mean([len(r["faces"]) for _a, r in window])), 2) if window else None,
        "model_version": model,
    }
    row["keeps_up"] = bool(row["processed_share"] >= 0.95 and latency.size and row["latency_ms"]["p95"] < 500)
    return row


def main() -> int:
    parser = stack_arguments(__doc__, "stack", 6399)
    parser.add_argument("--cameras", default="1,2,4", help="comma-separated camera counts")
    parser.add_argument("--workers", default="1,2,4", help="comma-separated detector worker counts")
    parser.add_argument("--fps", type=float, default=10.0, help="sampling rate per camera")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per case")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after the first results")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per worker")
    parser.add_argument("--classifier-threads", type=int, default=0, help="TFLite threads per worker (0 = cores)")
    parser.add_argument("--overlap", action=argparse.BooleanOptionalAction, default=True,
                        help="detect while classifying (the service default; --no-overlap: one after the other)")
    parser.add_argument("--max-frame-age", type=float, default=2.0)
    parser.add_argument("--models", type=Path, help="model store (default $MASKWATCH_MODELS or the repo's models)")
    args = parse_stack_arguments(parser)
    if args is None:
        return 2
    try:
        store = ModelStore(args.models) if args.models else ModelStore()
        classifier = store.load("classifier").name
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cases = [(int(c), int(w)) for c in args.cameras.split(",") for w in args.workers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, private_redis(args.redis_port, Path(tmp)):
        for i, (n_cameras, n_workers) in enumerate(cases, 1):
            log.info("case %d/%d: %d camera(s) x %.0f fps, %d worker(s), %.0fs ...", i, len(cases), n_cameras,
                     args.fps, n_workers, args.duration)
            row = run_case(args, n_cameras, n_workers, Path(tmp))
            log.info("  processed %.1f/s of %.1f/s captured, skipped %.1f/s, latency p50 %s ms p95 %s ms",
                     row["processed_fps"], row["captured_fps"], row["skipped_fps"], row["latency_ms"]["p50"],
                     row["latency_ms"]["p95"])
            rows.append(row)
    report = {
        "benchmark": "stack", "video": args.video.name, "classifier": classifier,
        "machine": machine(),
        "settings": {"fps_per_camera": args.fps, "duration_s": args.duration, "warmup_s": args.warmup,
                     "onnx_threads_per_worker": args.threads, "max_frame_age_s": args.max_frame_age,
                     "classifier_threads_per_worker": args.classifier_threads, "overlap": args.overlap},
        "latency_definition": "tracked result received by a results-stream reader minus frame capture time",
        "runs": rows,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
