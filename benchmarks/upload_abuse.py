"""Upload abuse: a burst of 50 decompression-bomb PNGs (7000x7000 px, ~6 KB each) and one normal photo.

Runs a real `maskwatch dashboard` twice - with the old settings (50-megapixel limit, a queue that never
fills) and with the defaults (12-megapixel budget checked from the header, 4 waiting uploads) - and
measures how long the normal photo waits, the bombs' answers and the dashboard's peak memory (VmHWM).
Also times the decode of 12-megapixel JPEG and PNG photos, which sizes the default budget.

    python benchmarks/upload_abuse.py            # writes benchmarks/results/upload_abuse.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "upload_abuse.json"
PHOTO = REPO.parent / "shared" / "data" / "scenes" / "ilc2021" / "images" / "ilc2021_00323.jpg"


def bomb_png(side: int = 7000) -> bytes:
    """A one-colour 1-bit PNG: a few KB on the wire, side*side*3 bytes once decoded."""
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def normal_photo() -> bytes:
    """A real scene photo when ../shared is present, else a generated 1280x720 JPEG."""
    if PHOTO.is_file():
        return PHOTO.read_bytes()
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 255, (720, 1280, 3), np.uint8), (9, 9), 3)
    return cv2.imencode(".jpg", image)[1].tobytes()


def decode_ms(data: bytes, repeats: int = 5) -> float:
    """Median milliseconds for cv2.imdecode of `data`."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def twelve_megapixel_photos() -> dict[str, bytes]:
    """A 4000x3000 photo-like image (a scene scaled up, or noise) as JPEG and PNG."""
    source = cv2.imdecode(np.frombuffer(normal_photo(), np.uint8), cv2.IMREAD_COLOR)
    image = cv2.resize(source, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    return {"jpeg": cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes(),
            "png": cv2.imencode(".png", image)[1].tobytes()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def burst(url: str, bomb: bytes, photo: bytes, bombs: int) -> dict:
    """Send `bombs` bombs at once, then the normal photo 0.2 s later; time every answer."""
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        async def post(name: str, data: bytes, kind: str) -> tuple[int, float]:
            started = time.monotonic()
            response = await client.post("/api/v1/detect", files={"file": (name, data, kind)})
            return response.status_code, time.monotonic() - started

        tasks = [asyncio.create_task(post("bomb.png", bomb, "image/png")) for _ in range(bombs)]
        await asyncio.sleep(0.2)
        photo_status, photo_s = await post("photo.jpg", photo, "image/jpeg")
        answers = await asyncio.gather(*tasks)
    latencies = sorted(t for _, t in answers)
    statuses: dict[str, int] = {}
    for status, _ in answers:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {"normal_photo_status": photo_status, "normal_photo_s": round(photo_s, 3),
            "bomb_statuses": statuses, "bomb_p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3),
            "bomb_max_s": round(latencies[-1], 3)}


def run_dashboard(models: Path, extra: list[str], bomb: bytes, photo: bytes, bombs: int) -> dict:
    port = free_port()
    env = {**os.environ, "MASKWATCH_MODELS": str(models), "OMP_NUM_THREADS": "1"}
    env.pop("MASKWATCH_API_KEY", None)
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "dashboard", "--port", str(port),
                                 "--redis", "redis://127.0.0.1:1/0", *extra], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.3)
            with httpx.Client(base_url=url, timeout=120) as client:  # load the model before measuring
                client.post("/api/v1/detect", files={"file": ("warm.jpg", photo, "image/jpeg")})
            rss_before = peak_rss_mb(proc.pid)
            outcome = asyncio.run(burst(url, bomb, photo, bombs))
            outcome.update(peak_rss_mb_before=rss_before, peak_rss_mb=peak_rss_mb(proc.pid))
            return outcome
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bombs", type=int, default=50)
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--skip-before", action="store_true", help="measure only the current defaults")
    args = parser.parse_args()
    bomb, photo = bomb_png(), normal_photo()
    photos = twelve_megapixel_photos()
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores "
                   "(shared with other work while measured)",
        "bomb": {"pixels": 7000 * 7000, "bytes": len(bomb), "decode_ms": decode_ms(bomb, repeats=3)},
        "decode_12mp_ms": {kind: decode_ms(data) for kind, data in photos.items()},
        "bombs_sent": args.bombs,
        "targets": {"normal_photo_s": 2.0, "peak_rss_mb": 600},
    }
    print(json.dumps(report, indent=2), flush=True)
    runs = {"defaults": []}
    if not args.skip_before:
        runs["before (50 MP limit, unbounded queue)"] = ["--max-pixels", "50000000", "--upload-queue", "100000"]
    report["runs"] = {}
    for name, extra in runs.items():
        report["runs"][name] = run_dashboard(args.models, extra, bomb, photo, args.bombs)
        print(name, json.dumps(report["runs"][name]), flush=True)
    defaults = report["runs"]["defaults"]
    report["targets_met"] = defaults["normal_photo_s"] <= 2.0 and defaults["normal_photo_status"] in (200, 503) \
        and defaults["peak_rss_mb"] < 600
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
