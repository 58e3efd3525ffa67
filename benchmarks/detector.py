"""Face detector versions before/after fine-tuning: accuracy on the held-out photos and speed per frame.

    python benchmarks/detector.py [--detector VERSION ...] [--min-face 16 8] [--models DIR] [--repeats 30]

Accuracy: class-agnostic face AP@0.5, recall per mask class at IoU 0.5 and false positives per image
(score >= 0.5) on the ilc2021 validation photos (training/splits/ilc2021_val.txt) for each `min_face`.
Speed: median ms per detection (pre- and post-processing included, 2 ONNX Runtime threads) on real
frames of ../shared/data/video/airport.mp4 resized to 640x480 and 1280x720, at min_face 16.
Writes benchmarks/results/detector.json (results of versions or min_face values not run again are kept).
Timings on a shared machine depend on its load: each version records the 1-minute load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.face_detector import RetinaFaceDetector  # noqa: E402
from shared.model_store import ModelStore  # noqa: E402
from training.detector.evaluate import evaluate_version  # noqa: E402

SCENES = REPO.parent / "shared" / "data" / "scenes" / "ilc2021"
VIDEO = REPO.parent / "shared" / "data" / "video" / "airport.mp4"
SIZES = ((640, 480), (1280, 720))


def video_frames(count: int) -> list:
    """The first `count` frames of the airport clip."""
    cap = cv2.VideoCapture(str(VIDEO))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise SystemExit(f"cannot read frames from {VIDEO}")
    return frames


def speed(detector: RetinaFaceDetector, frames: list, repeats: int) -> dict[str, float]:
    """Median and p90 ms per frame at each benchmark size."""
    out = {}
    for w, h in SIZES:
        resized = [cv2.resize(f, (w, h)) for f in frames]
        detector.detect(resized[0])  # warm-up
        times = []
        for i in range(repeats):
            t0 = time.perf_counter()
            detector.detect(resized[i % len(resized)])
            times.append(1000 * (time.perf_counter() - t0))
        times.sort()
        out[f"{w}x{h}"] = {"median_ms": round(statistics.median(times), 2),
                           "p90_ms": round(times[int(0.9 * (len(times) - 1))], 2),
                           "fps": round(1000 / statistics.median(times), 1)}
    return out


def main() -> int:
    """Benchmark each detector version and write the JSON results."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detector", action="append", help="version (repeatable; default: every version in the store)")
    p.add_argument("--min-face", type=int, nargs="+", default=[16, 8])
    p.add_argument("--models", type=Path)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "detector.json")
    args = p.parse_args()
    store = ModelStore(args.models)
    versions = args.detector or store.versions("detector")
    frames = video_frames(10)
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads},
               "promoted": store.current("detector"), "versions": previous.get("versions", {})}
    for name in versions:
        row = results["versions"].get(name, {"accuracy": {}})  # earlier min_face results are kept
        row["load_average_1m"] = round(os.getloadavg()[0], 2)
        for min_face in args.min_face:
            metrics = evaluate_version(store, name, [SCENES], min_face=min_face, threads=args.threads)
            row["accuracy"][f"min_face_{min_face}"] = metrics.as_dict()
            print(f"{name} min_face={min_face}: AP@0.5 {metrics.ap50:.3f}, masked recall "
                  f"{metrics.recall.get('with_mask', 0):.3f}, FP/img {metrics.fp_per_image:.2f}", flush=True)
        detector = RetinaFaceDetector.from_version(store.load("detector", name), min_face=16, threads=args.threads)
        row["speed_min_face_16"] = speed(detector, frames, args.repeats)
        print(f"{name} speed: {json.dumps(row['speed_min_face_16'])}", flush=True)
        results["versions"][name] = row
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
