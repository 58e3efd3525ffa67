"""Cost per camera: how many 10 fps cameras one detector worker answers, this checkout against an earlier revision.

    python benchmarks/cameras.py [--rev 94393b6] [--rounds 2] [--capacity-entrance 16] [--capacity-airport 4]
    python benchmarks/cameras.py --ladder [--entrance 1,2,3,4,6,8,12,16] [--airport 1,2,3,4]
    python benchmarks/cameras.py --clips airport --capacity-airport 10 --rounds 1 --no-people \
        [--detector-option classifier_threads=1] [--detector-option overlap=false]

Runs the real stack (private redis-server, `maskwatch capture`, 1 `maskwatch detector`, `maskwatch tracker`,
`maskwatch dashboard`) with N file cameras at 10 fps, for two clips made from ../shared/data/video/airport.mp4,
stretched to 640x480:
- entrance: a 30 s day in miniature, 24 s of the empty scene (the clip's per-pixel median: a still frame of the
  hall, with sensor noise and a slow lighting change) and a 6 s burst of the crowd clip (80 % / 20 %). Camera i
  plays phase i mod 5 (the clip rotated by 6 s a phase), so a fifth of the cameras are in a burst at any time;
  each measurement lasts one whole cycle.
- airport: the crowd clip alone.
Capacity (the default): each revision runs each clip with more cameras than it can answer (--capacity-entrance,
--capacity-airport), for --rounds rounds, the revisions alternating case by case so load from other work falls
on both alike; the frames answered per second at saturation, divided by 10 fps, is the number of cameras one
worker keeps up with. Ladder (--ladder): for each clip and revision, N goes up the list until a case fails; a
case passes when every frame is answered (processed >= 99 % of captured: nothing skipped or dropped beyond
noise) with a p95 latency under 1 s — on a shared, loaded machine even N=1 can fail this, which is why
capacity is the default. The earlier revision runs from a `git worktree` of --rev with its own code and models.
Each run also records the CPU cores each service used (capture's ffmpeg readers and Redis apart, from /proc) and
the share of faces that took a settled track's label (`faces_reused_share`); --detector-option sets `detector:`
options of this checkout's camera file. Last, the accuracy guard: people counted by `maskwatch detect` on the
airport clip with and without motion gating and classify-once, and entries/exits on the generated door clip of
benchmarks/entrances.py (a line and a zone) the same way. Writes benchmarks/results/cameras.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import redis
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.report import write_report  # noqa: E402
from benchmarks.stack import ResultReader, cpu_seconds, process_tree, start_redis, stop_processes  # noqa: E402
from shared import keys  # noqa: E402
from shared.backends import ISA_FLAGS, cpu_info  # noqa: E402

log = logging.getLogger("benchmarks.cameras")
VIDEO = REPO.parent / "shared" / "data" / "video" / "airport.mp4"
SIZE = (640, 480)
FPS = 10.0
CYCLE_S, BURST_S, PHASES = 30.0, 6.0, 5
COUNTERS = ("frames_captured", "frames_processed", "frames_skipped", "frames_dropped", "frames_unchanged")


def read_clip(path: Path) -> tuple[list[np.ndarray], float]:
    """The clip's frames stretched to SIZE, and its frame rate."""
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(image, SIZE, interpolation=cv2.INTER_AREA))
    cap.release()
    return frames, fps


def write_video(path: Path, frames, fps: float) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, SIZE)
    for image in frames:
        writer.write(image)
    writer.release()
    return path


def entrance_phases(frames: list[np.ndarray], fps: float, folder: Path) -> list[Path]:
    """PHASES rotations of the entrance clip (10 fps): empty hall with noise and light drift, then a crowd burst."""
    step = fps / FPS
    sampled = [frames[int(i * step)] for i in range(int(len(frames) / step))]
    background = np.median(np.stack(sampled[::5]), axis=0).astype(np.float32)
    rng = np.random.default_rng(0)
    empty_n, burst_n = int((CYCLE_S - BURST_S) * FPS), int(BURST_S * FPS)
    empty = []
    for i in range(empty_n):
        light = 8.0 * np.sin(2 * np.pi * i / empty_n)  # slow drift over the empty stretch
        noisy = background + light + rng.normal(0, 2.5, background.shape).astype(np.float32)
        empty.append(np.clip(noisy, 0, 255).astype(np.uint8))
    paths = []
    for phase in range(PHASES):
        start = (phase * burst_n) % max(1, len(sampled) - burst_n)  # each phase shows another part of the crowd
        cycle = empty + sampled[start:start + burst_n]
        shift = phase * len(cycle) // PHASES
        paths.append(write_video(folder / f"entrance{phase}.mp4", cycle[shift:] + cycle[:shift], FPS))
    return paths


class Revision:
    """One checkout to run the services from, with extra `detector:` settings for its camera file."""

    def __init__(self, name: str, root: Path, detector: dict | None = None) -> None:
        self.name, self.root, self.detector = name, root, detector or {}
        self.failed: dict[str, int] = {}  # clip -> the first N that failed


def run_case(rev: Revision, clips: list[Path], n: int, duration: float, port: int, folder: Path) -> dict:
    """The stack of `rev` with n cameras playing `clips` round robin; returns the measured row."""
    client = redis.Redis(port=port)
    client.flushall()
    cameras = [f"cam{i + 1}" for i in range(n)]
    config = folder / f"{rev.name}-{n}.yaml"
    config.write_text(yaml.safe_dump({
        "redis_url": f"redis://127.0.0.1:{port}/0",
        "cameras": [{"id": c, "url": str(clips[i % len(clips)]), "fps": FPS, "loop": True}
                    for i, c in enumerate(cameras)],
        "dashboard": {"port": port + 1000},
        **({"detector": rev.detector} if rev.detector else {}),
    }))
    env = {**os.environ, "MASKWATCH_LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(rev.root)}
    env.pop("MASKWATCH_MODELS", None)
    cmd = [sys.executable, "-m", "maskwatch.cli"]
    logs = (folder / f"{rev.name}-{n}.log").open("wb")
    services = {service: subprocess.Popen([*cmd, service, "--config", str(config)], env=env, cwd=rev.root,
                                          stdout=logs, stderr=subprocess.STDOUT)
                for service in ("detector", "tracker", "dashboard", "capture")}
    procs = list(services.values())
    reader = ResultReader(redis.Redis(port=port))
    try:
        deadline = time.monotonic() + 180
        while not all(client.exists(keys.latest_result(c)) for c in cameras):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"error: the {rev.name} stack produced no results (see {logs.name})")
            time.sleep(0.2)
        time.sleep(5.0)
        reader.start()
        redis_pid = int(client.info("server")["process_id"])
        before, t0, cpu0 = _counters(client, cameras), time.time(), _cpu(services, redis_pid)
        time.sleep(duration)
        after, t1, cpu1 = _counters(client, cameras), time.time(), _cpu(services, redis_pid)
        time.sleep(1.5)
        reader.stop.set()
        reader.join(5)
    finally:
        stop_processes(procs)
        logs.close()
    delta = {k: after[k] - before[k] for k in after}
    elapsed = t1 - t0
    window = [(arrived, r) for arrived, r in reader.rows if r.get("type") == "frame" and t0 <= r["captured_at"] < t1]
    latency = np.array([arrived - r["captured_at"] for arrived, r in window]) * 1000
    share = delta["frames_processed"] / max(1, delta["frames_captured"])
    p95 = round(float(np.percentile(latency, 95)), 1) if latency.size else None
    return {"revision": rev.name, "cameras": n, "offered_fps": n * FPS,
            "captured_fps": round(delta["frames_captured"] / elapsed, 2),
            "processed_fps": round(delta["frames_processed"] / elapsed, 2),
            "unchanged_fps": round(delta["frames_unchanged"] / elapsed, 2),
            "skipped": delta["frames_skipped"], "dropped": delta["frames_dropped"], "answered_share": round(share, 4),
            "latency_ms": {"p50": round(float(np.percentile(latency, 50)), 1) if latency.size else None, "p95": p95,
                           "results": int(latency.size)},
            "faces_per_frame": round(float(np.mean([len(r["faces"]) for _a, r in window])), 2) if window else None,
            "faces_reused_share": round(sum(bool(f.get("reused")) for _a, r in window for f in r["faces"])
                                        / max(1, sum(len(r["faces"]) for _a, r in window)), 3),
            "cpu_cores": {name: round((cpu1[name] - cpu0.get(name, 0.0)) / elapsed, 2) for name in cpu1},
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "passed": bool(share >= 0.99 and p95 is not None and p95 < 1000)}


def _cpu(services: dict[str, subprocess.Popen], redis_pid: int) -> dict[str, float]:
    """CPU seconds so far of each service, of capture's ffmpeg readers together (those alive now) and of Redis."""
    out = {name: cpu_seconds([proc.pid]) for name, proc in services.items()}
    out["ffmpeg"] = cpu_seconds(process_tree(services["capture"].pid)[1:])
    out["redis"] = cpu_seconds([redis_pid])
    return out


def _counters(client: redis.Redis, cameras: list[str]) -> dict[str, int]:
    totals = dict.fromkeys(COUNTERS, 0)
    for cam in cameras:
        state = client.hgetall(keys.camera_state(cam))
        for name in COUNTERS:
            totals[name] += int(state.get(name.encode(), 0))
    return totals


def ladder(revs: list[Revision], clip: str, clips: list[Path], counts: list[int], duration: float, port: int,
           folder: Path, rows: list[dict]) -> dict[str, int]:
    """Raise N until each revision fails once; returns the largest passing N per revision."""
    best = {rev.name: 0 for rev in revs}
    for n in counts:
        for rev in revs:
            if clip in rev.failed:
                continue
            row = run_case(rev, clips, n, duration, port, folder)
            row["clip"] = clip
            rows.append(row)
            log.info("%s %s N=%d: answered %.3f, %.1f/%.1f fps, unchanged %.1f fps, p95 %s ms, load %.1f -> %s",
                     clip, rev.name, n, row["answered_share"], row["processed_fps"], row["captured_fps"],
                     row["unchanged_fps"], row["latency_ms"]["p95"], row["load_avg_1m"],
                     "pass" if row["passed"] else "FAIL")
            if row["passed"]:
                best[rev.name] = n
            else:
                rev.failed[clip] = n
    return best


def capacity(revs: list[Revision], clips: dict[str, tuple[list[Path], int, float]], rounds: int, port: int,
             folder: Path, rows: list[dict]) -> dict[str, dict]:
    """Frames answered per second at saturation, per clip and revision (median of the rounds), and the ratio."""
    answered: dict[str, dict[str, list[float]]] = {clip: {rev.name: [] for rev in revs} for clip in clips}
    for round_ in range(rounds):
        for clip, (files, n, duration) in clips.items():
            for rev in revs if round_ % 2 == 0 else revs[::-1]:
                row = run_case(rev, files, n, duration, port, folder)
                row["clip"], row["round"] = clip, round_ + 1
                rows.append(row)
                answered[clip][rev.name].append(row["processed_fps"])
                log.info("%s %s N=%d round %d: %.1f of %.1f frames/s answered (unchanged %.1f), p95 %s ms, "
                         "load %.1f", clip, rev.name, n, round_ + 1, row["processed_fps"], row["captured_fps"],
                         row["unchanged_fps"], row["latency_ms"]["p95"], row["load_avg_1m"])
    out = {}
    for clip, by_rev in answered.items():
        fps = {name: round(float(np.median(values)), 2) for name, values in by_rev.items()}
        base, current = (fps[rev.name] for rev in revs)
        out[clip] = {"answered_fps": fps, "cameras_at_10fps": {k: round(v / FPS, 2) for k, v in fps.items()},
                     "ratio": round(current / base, 2) if base else None}
    return out


def detect_runs(video: Path, extra: list[str]) -> dict[str, tuple[list[dict], float]]:
    """The JSON lines of `maskwatch detect` on a clip and its seconds, gated (the default) and with --full."""
    out = {}
    for mode in ("gated", "full"):
        with tempfile.NamedTemporaryFile(suffix=".jsonl") as tmp:
            args = [sys.executable, "-m", "maskwatch.cli", "detect", str(video), *extra, "--json", tmp.name,
                    "--no-progress", *(["--full"] if mode == "full" else [])]
            t0 = time.perf_counter()
            subprocess.run(args, cwd=REPO, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
            lines = [json.loads(line) for line in Path(tmp.name).read_text().splitlines()]
        out[mode] = lines, round(time.perf_counter() - t0, 1)
        log.info("detect %s %s: %d lines in %.1f s", video.name, mode, len(lines), out[mode][1])
    return out


def people_guard(video: Path) -> dict:
    """People counted by `maskwatch detect` on the clip, gated (default) and with --full."""
    out: dict = {}
    for mode, (lines, seconds) in detect_runs(video, []).items():
        people = [r for r in lines if r.get("type") == "person"]
        frames = [r for r in lines if r.get("type", "frame") == "frame"]
        out[mode] = {"people": len(people), "labels": {k: sum(p["label"] == k for p in people)
                                                       for k in sorted({p["label"] for p in people})},
                     "frames": len(frames), "seconds": seconds,
                     "faces_reused": sum(f.get("reused", False) for r in frames for f in r["faces"]),
                     "faces": sum(len(r["faces"]) for r in frames),
                     "unchanged_frames": sum(r.get("unchanged", False) for r in frames)}
    full, gated = out["full"]["people"], out["gated"]["people"]
    out["people_change_percent"] = round(100 * (gated - full) / max(1, full), 2)
    out["guard_passed"] = abs(gated - full) <= 0.03 * full
    return out


def crossings_guard(folder: Path) -> dict:
    """Entries and exits on the generated door clip of benchmarks/entrances.py (5 in, 3 out by its script),
    counted by `maskwatch detect --config --camera` gated and with --full: they must be the same."""
    from benchmarks.entrances import DOOR, DOOR_TRUTH, INSIDE, render_door

    clip = render_door(folder / "door.avi")
    config = folder / "door.yaml"
    config.write_text(yaml.safe_dump({"cameras": [{"id": "door", "url": str(clip), "zones": [INSIDE],
                                                   "lines": [DOOR]}]}))
    out: dict = {"truth": {k: DOOR_TRUTH[k] for k in ("entries", "exits", "people")}}
    for mode, (lines, _seconds) in detect_runs(clip, ["--config", str(config), "--camera", "door"]).items():
        crossings = [r for r in lines if r.get("type") == "crossing"]
        out[mode] = {"entries": sum(r["direction"] == "in" for r in crossings),
                     "exits": sum(r["direction"] == "out" for r in crossings),
                     "people": sum(r.get("type") == "person" and not r.get("static", False) for r in lines),
                     "crossings": sorted((r["direction"], r["label"]) for r in crossings)}
    out["guard_passed"] = out["gated"]["crossings"] == out["full"]["crossings"]
    return out


def stack_runs(args: argparse.Namespace, rows: list[dict]) -> dict:
    """The capacity or ladder runs of both revisions (rows appended to `rows`)."""
    with tempfile.TemporaryDirectory(prefix="maskwatch-cameras-") as tmp:
        folder = Path(tmp)
        baseline = folder / "baseline"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline), args.rev], check=True,
                       capture_output=True)
        redis_proc = start_redis(args.redis_port, folder)
        try:
            frames, fps = read_clip(VIDEO)
            entrance = entrance_phases(frames, fps, folder)
            airport = [write_video(folder / "airport480.mp4", frames, fps)]
            del frames
            revs = [Revision(args.rev, baseline), Revision("current", REPO, dict(args.detector_option))]
            clips = {"entrance": (entrance, args.capacity_entrance, CYCLE_S),
                     "airport": (airport, args.capacity_airport, args.airport_duration)}
            clips = {name: clip for name, clip in clips.items() if name in args.clips.split(",")}
            if args.ladder:
                result = {clip: ladder(revs, clip, files, [int(n) for n in getattr(args, clip).split(",")],
                                       duration, args.redis_port, folder, rows)
                          for clip, (files, _n, duration) in clips.items()}
            else:
                result = capacity(revs, clips, args.rounds, args.redis_port, folder, rows)
        finally:
            redis_proc.terminate()
            redis_proc.wait(10)
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline)],
                           capture_output=True)
    return result


def _option(text: str) -> tuple[str, object]:
    """KEY=VALUE of --detector-option, the value read as YAML (`overlap=false` -> False)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return key, yaml.safe_load(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", default="94393b6", help="the earlier revision to compare with")
    parser.add_argument("--ladder", action="store_true", help="find the largest N with every frame answered")
    parser.add_argument("--entrance", default="1,2,3,4,6,8,12,16", help="ladder: camera counts to try")
    parser.add_argument("--airport", default="1,2,3,4", help="ladder: camera counts to try on the crowd clip")
    parser.add_argument("--capacity-entrance", type=int, default=16, help="cameras of the entrance clip")
    parser.add_argument("--capacity-airport", type=int, default=4, help="cameras of the crowd clip")
    parser.add_argument("--rounds", type=int, default=2, help="capacity rounds per clip and revision")
    parser.add_argument("--airport-duration", type=float, default=20.0)
    parser.add_argument("--no-people", action="store_true", help="skip the accuracy guards (people, crossings)")
    parser.add_argument("--guards-only", action="store_true", help="only the accuracy guards, no stack runs")
    parser.add_argument("--clips", default="entrance,airport", help="which clips to run")
    parser.add_argument("--detector-option", action="append", default=[], type=_option, metavar="KEY=VALUE",
                        help="a `detector:` setting for this checkout's runs (repeatable; the value is YAML)")
    parser.add_argument("--redis-port", type=int, default=6419)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "cameras.json")
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(message)s")
    if not VIDEO.is_file():
        print(f"error: {VIDEO} not found", file=sys.stderr)
        return 2
    model, flags = cpu_info()
    rows: list[dict] = []
    result = None if args.guards_only else stack_runs(args, rows)
    if args.no_people:
        people = crossings = None
    else:
        people = people_guard(VIDEO)
        with tempfile.TemporaryDirectory(prefix="maskwatch-door-") as tmp:
            crossings = crossings_guard(Path(tmp))
    report = {
        "benchmark": "cameras", "cpu": model, "isa": sorted(f for f in flags if f in ISA_FLAGS),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_avg_1m_at_end": round(os.getloadavg()[0], 2)},
        "settings": {"fps_per_camera": FPS, "size": SIZE, "entrance_cycle_s": CYCLE_S, "burst_s": BURST_S,
                     "phases": PHASES, "workers": 1,
                     "mode": "guards only" if args.guards_only else "ladder" if args.ladder else "capacity",
                     "ladder_pass": "processed >= 99 % of captured and p95 latency < 1 s"},
        "baseline": args.rev, "detector_options": dict(args.detector_option), "result": result, "people_guard": people,
        "crossings_guard": crossings, "runs": rows,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_report(args.out, report)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
