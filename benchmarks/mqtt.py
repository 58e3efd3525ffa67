"""What MQTT publishing costs: CPU time of the `maskwatch mqtt` process, with MQTT on and off, side by side.

A feeder writes what the tracker would for --cameras cameras into a private Redis: --fps tracked frames
per second per camera (two faces each), one person record per second per camera (with a face thumbnail)
and an alert every 10 s per camera. The bridge runs as its own process (`maskwatch mqtt`, thumbnails on)
in alternating runs:

- on: publishing to a private Mosquitto (a subscriber counts what arrives);
- off: the same process with no broker to reach (it reads, parses and counts the same results and keeps
  computing state, but publishes nothing: events wait in its bounded queue).

Each run measures the bridge's user + system CPU time (/proc/<pid>/stat) over --seconds after a warm-up.
MQTT's cost is the whole bridge process (without MQTT there is no bridge), and publishing's share of it
is the difference on - off.

    nice python benchmarks/mqtt.py     # 4 cameras, 2 rounds of 30 s -> benchmarks/results/mqtt.json
"""

from __future__ import annotations

import argparse
import base64
import getpass
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import paho.mqtt.client as paho
import redis
import yaml
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.compare import cpu_model  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from benchmarks.stack import cpu_seconds, free_port, start_redis  # noqa: E402
from services.dashboard import stats  # noqa: E402
from shared import keys  # noqa: E402
from shared.schemas import AlertRecord, Face, FrameResult, PersonRecord  # noqa: E402


def thumbnail() -> str:
    """A 96 px face-sized JPEG, base64, like the tracker's person thumbnails."""
    image = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    return base64.b64encode(cv2.imencode(".jpg", cv2.GaussianBlur(image, (9, 9), 3))[1].tobytes()).decode()


class Feeder(threading.Thread):
    """Writes frames, person records and alerts of `cameras` cameras to the results stream until stopped."""

    def __init__(self, client: redis.Redis, cameras: list[str], fps: float) -> None:
        super().__init__(daemon=True)
        self.client, self.cameras, self.fps = client, cameras, fps
        self.stop = threading.Event()
        self.people = 0
        self.jpeg = thumbnail()

    def run(self) -> None:
        frame, track, start = 0, 0, time.time()
        while not self.stop.is_set():
            now = time.time()
            pipe = self.client.pipeline(transaction=False)
            for camera in self.cameras:
                faces = [Face(box=[10 + i * 50, 20, 50 + i * 50, 70], score=0.9, label="with_mask", confidence=0.9,
                              probs={"with_mask": 0.9, "without_mask": 0.05, "mask_incorrect": 0.05},
                              track_id=track + i, track_label="with_mask") for i in range(2)]
                result = FrameResult(source=camera, camera=camera, frame=frame, time=now - start, width=640,
                                     height=360, faces=faces, captured_at=now - 0.2, processed_at=now)
                pipe.xadd(keys.RESULTS_STREAM, {"data": result.to_json()}, maxlen=10_000, approximate=True)
                if frame % round(self.fps) == 0:  # one person a second
                    label = "without_mask" if track % 5 == 0 else "with_mask"
                    person = PersonRecord(camera=camera, track_id=track, label=label, first_seen=now - 3,
                                          last_seen=now, frames=15, best_box=[10, 20, 50, 70], thumbnail=self.jpeg)
                    pipe.xadd(keys.RESULTS_STREAM, {"data": person.to_json()}, maxlen=10_000, approximate=True)
                    for resolution in stats.RESOLUTIONS:  # as the dashboard counts it: the state changes
                        pipe.hincrby(keys.stats_bucket(camera, resolution.name, stats.bucket_start(now, resolution)),
                                     f"people:{label}", 1)
                    self.people += 1
                if frame % round(10 * self.fps) == 0:
                    alert = AlertRecord(camera=camera, kind="person", time=now, event={"kind": "person"})
                    pipe.xadd(keys.RESULTS_STREAM, {"data": alert.to_json()}, maxlen=10_000, approximate=True)
                pipe.hset(keys.camera_state(camera), mapping={"status": "live", "last_frame_time": repr(now)})
            pipe.execute()
            frame += 1
            if frame % round(self.fps) == 0:
                track += 2
            self.stop.wait(max(0.0, start + frame / self.fps - time.time()))


def start_broker(port: int, folder: Path) -> subprocess.Popen:
    conf = folder / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    f"user {getpass.getuser()}\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"error: mosquitto did not start on port {port}")


def wait_reading(client: redis.Redis, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Wait until the bridge reads the results stream (its start-up, imports included, is not measured)."""
    deadline = time.monotonic() + timeout
    while not any(c.get("name") == "mqtt" for c in client.client_list()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("error: the bridge did not start")
        time.sleep(0.2)


def measure(mode: str, config: Path, seconds: float, warmup: float, env: dict, broker_port: int,
            client: redis.Redis) -> dict:
    """Run the bridge once; its CPU time over `seconds` and, when on, the messages a subscriber got."""
    received = {"events": 0, "thumbnail": 0, "state": 0}
    sub = None
    if mode == "on":
        sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{time.monotonic_ns()}")

        def on_message(_c, _u, msg: paho.MQTTMessage) -> None:
            kind = msg.topic.rsplit("/", 1)[1]
            if kind in received:
                received[kind] += 1

        sub.on_message = on_message
        sub.connect("127.0.0.1", broker_port)
        sub.subscribe("bench/#", qos=1)
        sub.loop_start()
    proc = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "--log-level", "WARNING", "mqtt", "--config",
                             str(config)], cwd=REPO, env=env)
    try:
        wait_reading(client, proc)
        time.sleep(warmup)
        before_events = dict(received)
        t0, c0 = time.monotonic(), cpu_seconds([proc.pid])
        time.sleep(seconds)
        t1, c1 = time.monotonic(), cpu_seconds([proc.pid])
        got = {k: received[k] - before_events[k] for k in received}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        if sub is not None:
            sub.disconnect()
            sub.loop_stop()
    cpu = c1 - c0
    print(f"  {mode:3}: bridge CPU {cpu:.2f} s over {t1 - t0:.1f} s = {100 * cpu / (t1 - t0):.2f} % of one core"
          + (f"; received {got}" if mode == "on" else ""), flush=True)
    return {"mode": mode, "cpu_s": round(cpu, 3), "wall_s": round(t1 - t0, 2),
            "core_percent": round(100 * cpu / (t1 - t0), 3), **({"received": got} if mode == "on" else {})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--fps", type=float, default=5.0, help="tracked frames per second per camera")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured interval per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after the bridge started reading")
    parser.add_argument("--rounds", type=int, default=2, help="on/off pairs")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "mqtt.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mqtt-bench-") as tmp:
        folder = Path(tmp)
        redis_port, broker_port = free_port(), free_port()
        redis_proc = start_redis(redis_port, folder)
        broker = start_broker(broker_port, folder)
        client = redis.Redis(port=redis_port)
        cameras = [f"cam{i + 1}" for i in range(args.cameras)]
        client.sadd(keys.CAMERAS_SET, *cameras)
        configs = {}
        for mode, port in (("on", broker_port), ("off", free_port())):
            configs[mode] = folder / f"{mode}.yaml"
            configs[mode].write_text(yaml.safe_dump({
                "redis_url": f"redis://127.0.0.1:{redis_port}/0",
                "cameras": [{"id": c, "url": "/dev/null"} for c in cameras],
                "mqtt": {"url": f"mqtt://127.0.0.1:{port}", "topic_prefix": "bench", "thumbnails": True},
            }))
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        feeder = Feeder(client, cameras, args.fps)
        feeder.start()
        runs = []
        try:
            print(f"{args.cameras} cameras, {args.fps:g} frames/s and 1 person/s each; {args.rounds} rounds of "
                  f"{args.seconds:g} s", flush=True)
            for _ in range(args.rounds):
                for mode in ("on", "off"):
                    runs.append(measure(mode, configs[mode], args.seconds, args.warmup, env, broker_port, client))
        finally:
            feeder.stop.set()
            feeder.join(10)
            broker.kill()
            redis_proc.kill()
    on = statistics.mean(r["core_percent"] for r in runs if r["mode"] == "on")
    off = statistics.mean(r["core_percent"] for r in runs if r["mode"] == "off")
    report = {
        "benchmark": "mqtt",
        "command": "nice python benchmarks/mqtt.py " + " ".join(sys.argv[1:]),
        "setup": {"cameras": args.cameras, "frames_per_s_per_camera": args.fps, "people_per_s_per_camera": 1,
                  "alerts_per_10s_per_camera": 1, "thumbnails": True, "seconds_per_run": args.seconds,
                  "rounds": args.rounds},
        "runs": runs,
        "bridge_core_percent_on": round(on, 3),
        "bridge_core_percent_off": round(off, 3),
        "publishing_core_percent": round(on - off, 3),
        "target": "MQTT publishing under 2 % of one core (the whole bridge process, MQTT on)",
        "target_met": on < 2.0,
        "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "platform": platform.platform(),
                    "load_average_at_end": os.getloadavg()},
    }
    print(f"bridge: {on:.2f} % of one core with MQTT on, {off:.2f} % off; publishing {on - off:.2f} %")
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
