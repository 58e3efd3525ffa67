"""Face detectors side by side: accuracy at several scales on the held-out photos, and speed per frame.

    python benchmarks/detector.py [--run NAME=VERSION[:MIN_FACE] ...] [--accuracy] [--repeats 30]

Runs (default): `before` = retinaface-masked-ilc2021-640 at min_face 16 (the default until issue 14),
`before-2x` = the same model at min_face 8 (a 2x upscale of every frame), `after` = the promoted
version at its own defaults (min_face, threshold and upscaling budget from its meta.json).
Speed: median ms per detection (pre- and post-processing included, 2 ONNX Runtime threads) and
end-to-end frames per second (detection + classification of every face with the promoted
classifier) on real frames of ../shared/data/video/airport.mp4 resized to 640x480 and 1280x720.
The runs are interleaved frame by frame, so load from other work on a shared machine hits all alike.
--accuracy adds face AP@0.5 (scores down to 0.05), recall per class and face size and FP per image at
each --scales on the ilc2021 validation photos (training/splits/ilc2021_val.txt).
Writes benchmarks/results/detector.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.report import write_report  # noqa: E402
from shared.model_store import ModelStore  # noqa: E402
from shared.pipeline import load_pipeline  # noqa: E402
from training.detector.evaluate import evaluate_version  # noqa: E402
from training.scales import parse_scales  # noqa: E402

SCENES = REPO.parent / "shared" / "data" / "scenes" / "ilc2021"
VIDEO = REPO.parent / "shared" / "data" / "video" / "airport.mp4"
SIZES = ((640, 480), (1280, 720))
BEFORE = "retinaface-masked-ilc2021-640"
OLD_BUDGET = 1920 * 1080  # the old rule capped the scaled long side at 1920 px: the same for 4:3 and 16:9 frames


def video_frames(count: int) -> list:
    """`count` frames spread over the airport clip."""
    cap = cv2.VideoCapture(str(VIDEO))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
        for _ in range(14):
            cap.grab()
    cap.release()
    if not frames:
        raise SystemExit(f"cannot read frames from {VIDEO}")
    return frames


def parse_run(text: str) -> tuple[str, str | None, dict]:
    """'after=VERSION[:MIN_FACE]' -> (name, version, options); VERSION 'promoted' is the promoted one."""
    name, _, spec = text.partition("=")
    version, _, min_face = spec.partition(":")
    options = {"min_face": float(min_face), "max_pixels": OLD_BUDGET} if min_face else {}
    return name, None if version in ("", "promoted") else version, options


def speed(runs: dict, store: ModelStore, frames: list, repeats: int, threads: int) -> dict:
    """Median ms per detection and end-to-end frames/s per run and frame size, interleaved."""
    pipes = {name: load_pipeline(store, None, version, threads=threads, classifier_threads=threads, **options)
             for name, (version, options) in runs.items()}
    out = {name: {} for name in runs}
    for w, h in SIZES:
        resized = [cv2.resize(f, (w, h)) for f in frames]
        det_ms = {name: [] for name in runs}
        e2e_ms = {name: [] for name in runs}
        for pipe in pipes.values():
            pipe.process(resized[0])  # warm-up
        for i in range(repeats):
            frame = resized[i % len(resized)]
            for name, pipe in pipes.items():
                t0 = time.perf_counter()
                found = pipe.detector.detect(frame)
                t1 = time.perf_counter()
                pipe.process(frame)
                t2 = time.perf_counter()
                det_ms[name].append(1000 * (t1 - t0))
                e2e_ms[name].append(1000 * (t2 - t1))
                out[name].setdefault(f"{w}x{h}_faces", []).append(len(found))
        for name in runs:
            d, e = statistics.median(det_ms[name]), statistics.median(e2e_ms[name])
            faces = out[name].pop(f"{w}x{h}_faces")
            out[name][f"{w}x{h}"] = {"detector_ms": round(d, 2), "detector_fps": round(1000 / d, 1),
                                     "end_to_end_ms": round(e, 2), "end_to_end_fps": round(1000 / e, 1),
                                     "faces_per_frame": round(sum(faces) / len(faces), 2)}
    base = out.get("before")
    for name, row in out.items():
        for size in row:
            if base:
                row[size]["cost_vs_before"] = round(row[size]["detector_ms"] / base[size]["detector_ms"], 3)
            if "before-2x" in out:
                ref = out["before-2x"][size]["detector_ms"]
                row[size]["cost_vs_before_2x"] = round(row[size]["detector_ms"] / ref, 3)
        row["detector"] = pipes[name].detector.name
        row["min_face"] = pipes[name].detector.min_face
    return out


def main() -> int:
    """Benchmark each run and write the JSON results."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", action="append", type=parse_run, metavar="NAME=VERSION[:MIN_FACE]",
                   help=f"repeatable; default: before={BEFORE}:16 before-2x={BEFORE}:8 after=promoted")
    p.add_argument("--accuracy", action="store_true", help="also score each run on the validation photos")
    p.add_argument("--scales", type=parse_scales, default=(1.0, 0.5, 0.33))
    p.add_argument("--models", type=Path)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "detector.json")
    args = p.parse_args()
    store = ModelStore(args.models)
    runs = {name: (version, options) for name, version, options in
            (args.run or [parse_run(f"before={BEFORE}:16"), parse_run(f"before-2x={BEFORE}:8"),
                          parse_run("after=promoted")])}
    results = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                           "load_average_1m": round(os.getloadavg()[0], 2)},
               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "promoted": store.current("detector"),
               "runs": {name: {"version": version or store.current("detector"), "options": options}
                        for name, (version, options) in runs.items()}}
    for name, row in speed(runs, store, video_frames(10), args.repeats, args.threads).items():
        results["runs"][name]["speed"] = row
        print(f"{name} ({row['detector']}, min_face {row['min_face']:g}): " + "  ".join(
            f"{size} {v['detector_ms']:.1f} ms ({v['cost_vs_before']:.2f}x before), {v['end_to_end_fps']:.1f} fps "
            "end to end" for size, v in row.items() if isinstance(v, dict)), flush=True)
    if args.accuracy:
        for name, (version, options) in runs.items():
            rows = evaluate_version(store, version, [SCENES], scales=args.scales, threads=args.threads, **options)
            results["runs"][name]["accuracy"] = {f"{m.scale:g}": m.as_dict() for m in rows}
            first = rows[0]
            print(f"{name}: face AP@0.5 " + ", ".join(f"{m.scale:g}x {m.ap50:.3f}" for m in rows)
                  + f"; masked recall {first.recall.get('with_mask', 0):.3f}, FP/img {first.fp_per_image:.2f} "
                  f"at {first.scale:g}x", flush=True)
    results["machine"]["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    write_report(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
