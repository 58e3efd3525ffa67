"""End-to-end speed of the detection pipeline on a video: frames/s and ms per stage.

    python benchmarks/speed.py [--video ../shared/data/video/airport.mp4] [--frames 300]

Writes benchmarks/results/speed.json. Stages: decode (video read), detect (face detector),
classify (crops + classifier batch), draw (annotation). Uses the promoted models of the store.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import cv2

from shared.drawing import draw_faces
from shared.model_store import ModelStore
from shared.pipeline import load_pipeline

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "video" / "airport.mp4"


def run(video: Path, frames: int, min_face: int, store: ModelStore) -> dict:
    """Process up to `frames` frames (looping the clip) and return the timing report."""
    pipeline = load_pipeline(store, min_face=min_face)
    cap = cv2.VideoCapture(str(video))
    decode = draw = 0.0
    faces = done = 0
    ok, image = cap.read()  # warm-up frame, not timed
    pipeline.process(image)
    pipeline.times.detect = pipeline.times.classify = 0.0
    pipeline.times.calls = 0
    start = time.perf_counter()
    while done < frames:
        t0 = time.perf_counter()
        ok, image = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        t1 = time.perf_counter()
        found = pipeline.process(image)
        t2 = time.perf_counter()
        draw_faces(image, found)
        t3 = time.perf_counter()
        decode += t1 - t0
        draw += t3 - t2
        faces += len(found)
        done += 1
    total = time.perf_counter() - start
    h, w = image.shape[:2]
    return {
        "video": video.name, "resolution": f"{w}x{h}", "frames": done, "min_face": min_face,
        "faces_per_frame": round(faces / done, 2),
        "frames_per_s": round(done / total, 2),
        "ms_per_frame": {
            "decode": round(1000 * decode / done, 2),
            "detect": round(1000 * pipeline.times.detect / done, 2),
            "classify": round(1000 * pipeline.times.classify / done, 2),
            "draw": round(1000 * draw / done, 2),
            "total": round(1000 * total / done, 2),
        },
        "models": pipeline.model_version,
    }


def main() -> None:
    """Parse arguments, run, print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--min-face", type=int, default=16)
    parser.add_argument("--models", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "speed.json")
    args = parser.parse_args()
    report = run(args.video, args.frames, args.min_face, ModelStore(args.models))
    report["machine"] = {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
