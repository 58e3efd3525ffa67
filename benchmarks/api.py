"""Photo API throughput: `/api/v1/detect` requests/s and latency with 1 and 8 concurrent clients on loopback.

    python benchmarks/api.py [--models DIR] [--photos 20] [--requests 80] [--concurrency 1 8]

Starts a real `maskwatch dashboard` process (uvicorn), uploads real scene photos from ../shared/data
over HTTP and writes benchmarks/results/api.json. Uses the promoted models of the store
($MASKWATCH_MODELS, ./models or the repo's models unless --models is given).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
SCENES = REPO.parent / "shared" / "data" / "scenes" / "ilc2021" / "images"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(models: Path | None, redis_url: str) -> tuple[subprocess.Popen, str]:
    """A dashboard process on a free port, once it answers /api/v1/health."""
    port = _free_port()
    env = dict(os.environ)
    if models:
        env["MASKWATCH_MODELS"] = str(models)
    proc = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "--log-level", "WARNING", "dashboard",
                             "--port", str(port), "--redis", redis_url, "--no-aggregate"], cwd=REPO, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"dashboard exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("dashboard did not start within 60 s")


async def load(url: str, photos: list[tuple[str, bytes]], requests: int, concurrency: int,
               progress: tqdm) -> dict:
    """Send `requests` uploads with `concurrency` clients; latency per request and overall rate."""
    latencies: list[float] = []
    faces = 0
    counter = iter(range(requests))

    async def client() -> None:
        nonlocal faces
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            for i in counter:
                name, data = photos[i % len(photos)]
                t0 = time.perf_counter()
                response = await http.post("/api/v1/detect", files={"file": (name, data, "image/jpeg")})
                latencies.append(time.perf_counter() - t0)
                response.raise_for_status()
                faces += len(response.json()["faces"])
                progress.update()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": requests, "seconds": round(elapsed, 2),
            "requests_per_s": round(requests / elapsed, 2), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "faces_per_request": round(faces / requests, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="model store (default: the dashboard's default store)")
    parser.add_argument("--photos", type=int, default=20, help="distinct scene photos to cycle through")
    parser.add_argument("--requests", type=int, default=80, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--redis", default=os.environ.get("MASKWATCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "api.json")
    args = parser.parse_args()
    if not SCENES.is_dir():
        raise SystemExit(f"{SCENES} is absent (the ../shared data set is needed)")
    photos = [(p.name, p.read_bytes()) for p in sorted(SCENES.glob("*.jpg"))[: args.photos]]
    load_before = round(os.getloadavg()[0], 2)
    proc, url = start_server(args.models, args.redis)
    try:
        warm = httpx.post(f"{url}/api/v1/detect", files={"file": photos[0]}, timeout=120)
        warm.raise_for_status()
        model_version = warm.json()["model_version"]
        runs = []
        for concurrency in args.concurrency:
            with tqdm(total=args.requests, desc=f"{concurrency} client(s)", unit="req") as progress:
                runs.append(asyncio.run(load(url, photos, args.requests, concurrency, progress)))
    finally:
        proc.terminate()
        proc.wait(15)
    report = {
        "benchmark": "POST /api/v1/detect over loopback (real uvicorn process, multipart JPEG upload)",
        "model_version": model_version,
        "photos": f"{len(photos)} ilc2021 scene photos, mean {np.mean([len(d) for _, d in photos]) / 1024:.0f} KiB",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_1m_before": load_before},  # other work on the machine slows the numbers
        "runs": runs,
        "command": "python benchmarks/api.py " + " ".join(sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for run in runs:
        print(f"{run['concurrency']} client(s): {run['requests_per_s']} req/s, p50 {run['p50_ms']} ms, "
              f"p95 {run['p95_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
