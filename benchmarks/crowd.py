"""Crowds (issue 26): detector versions on the crowd-like set and the 1x validation photos, before and after
their crowd-calibrated policies, with the detector's ms per 640x480 frame for each setting.

    python benchmarks/crowd.py [--detector VERSION ...] [--labels] [--repeats 40] [--speed-only]

Settings per version: `before` = the defaults it had before `maskwatch calibrate-detector --crowd --write`
(the `reference` of its calibration_crowd.json; its meta.json `defaults` when it has none), `photos` and
`streams` = the policies written with it (absent when it has none). Accuracy: face AP@0.5 (scores down
to 0.05), AP at the threshold, recall per face size and class, false positives per frame on the frames
of training/splits/crowd_ilc2021.json, and the same on the 318 held-out photos at 1x (`--labels`: the
promoted classifier's label accuracy on matched faces per face size). Speed (first version only): median
ms per detection on frames of ../shared/data/video/airport.mp4 resized to 640x480, the settings
interleaved frame by frame so load from other work hits all alike (--speed-only: only that, to run it at a
higher priority than the accuracy part). Writes benchmarks/results/crowd.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.detector import video_frames  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from shared.backends import cpu_info  # noqa: E402
from shared.detectors import detector_from_version  # noqa: E402
from shared.model_store import ModelStore  # noqa: E402
from training.detector.crowd import build_crowd_set  # noqa: E402
from training.detector.evaluate import evaluate_version  # noqa: E402
from training.detector.policies import CALIBRATION_FILE  # noqa: E402

SCENES = REPO.parent / "shared" / "data" / "scenes" / "ilc2021"
KEYS = ("min_face", "max_pixels", "score_threshold")


def settings(store: ModelStore, version: str) -> dict[str, dict[str, Any]]:
    """before / photos / streams: min_face, max_pixels and score threshold of each."""
    loaded = store.load("detector", version)
    calibration = loaded.path / CALIBRATION_FILE
    if calibration.is_file():
        before = {k: json.loads(calibration.read_text())["reference"][k] for k in KEYS}
    else:
        before = dict(loaded.meta.get("defaults", {}))
    return {"before": before, **loaded.meta.get("policies", {})}


def accuracy(store: ModelStore, version: str, options: dict[str, Any], crowd, classifier) -> dict[str, Any]:
    """1x and crowd metrics of one setting."""
    rows = evaluate_version(store, version, [SCENES], policy=None, crowd=crowd, classifier=classifier,
                            min_face=options.get("min_face"), score_threshold=options.get("score_threshold"),
                            max_pixels=options.get("max_pixels"))
    return {m.dataset: m.as_dict() for m in rows}


def speed(store: ModelStore, version: str, runs: dict[str, dict], repeats: int, threads: int) -> dict[str, Any]:
    """Median detector ms per 640x480 frame of each setting, interleaved, and the ratio to `before`."""
    loaded = store.load("detector", version)
    detectors = {name: detector_from_version(loaded, threads=threads, **options) for name, options in runs.items()}
    frames = [cv2.resize(f, (640, 480)) for f in video_frames(10)]
    times: dict[str, list[float]] = {name: [] for name in runs}
    for detector in detectors.values():
        detector.detect(frames[0])  # warm-up
    for i in range(repeats):
        for name, detector in detectors.items():
            t0 = time.perf_counter()
            detector.detect(frames[i % len(frames)])
            times[name].append(1000 * (time.perf_counter() - t0))
    ms = {name: statistics.median(t) for name, t in times.items()}
    return {name: {"detector_ms": round(v, 2), "vs_before": round(v / ms["before"], 3),
                   "backend": detectors[name].backend} for name, v in ms.items()}


def main() -> int:
    """Score each version's settings and write the JSON results."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detector", action="append", metavar="VERSION", help="repeatable (default: every version "
                   "of the store, the promoted one first)")
    p.add_argument("--labels", action="store_true", help="also the classifier's label accuracy per face size")
    p.add_argument("--models", type=Path)
    p.add_argument("--repeats", type=int, default=40)
    p.add_argument("--speed-only", action="store_true", help="only the ms per 640x480 frame")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "crowd.json")
    args = p.parse_args()
    store = ModelStore(args.models)
    promoted = store.current("detector")
    versions = args.detector or [promoted, *sorted(v for v in store.versions("detector") if v != promoted)]
    crowd = build_crowd_set([SCENES]) if not args.speed_only else None
    classifier = None
    if args.labels:
        from shared.classifier import FaceClassifier

        classifier = FaceClassifier.from_version(store.load("classifier", None), threads=args.threads)
    results: dict[str, Any] = {
        "machine": {"cpu": cpu_info()[0], "threads": args.threads,
                    "load_average_1m": round(os.getloadavg()[0], 2)},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "promoted": promoted,
        "crowd": crowd.summary() if crowd else None, "versions": {}}
    runs_first: dict[str, dict] = {}
    for version in versions:
        runs = settings(store, version)
        runs_first = runs_first or runs
        if args.speed_only:
            break
        out = results["versions"][version] = {}
        for name, options in runs.items():
            scored = accuracy(store, version, options, crowd, classifier)
            out[name] = {"settings": options, **scored}
            c, v = scored["crowd"], scored["validation"]
            bins = " ".join(f"{k} {'-' if b['recall'] is None else format(b['recall'], '.2f')}"
                            for k, b in c["recall_by_size"].items())
            print(f"{version} {name} {json.dumps(options)}: crowd AP@0.5 {c['ap50']:.3f}, masked "
                  f"{c['recall'].get('with_mask', 0):.3f}, FP/frame {c['fp_per_image']:.2f}, recall by size {bins}; "
                  f"1x AP@0.5 {v['ap50']:.3f}, FP/photo {v['fp_per_image']:.2f}", flush=True)
    results["speed_640x480"] = {"version": versions[0],
                                **speed(store, versions[0], runs_first, args.repeats, args.threads)}
    print(f"detector ms per 640x480 frame ({versions[0]}): " + ", ".join(
        f"{k} {v['detector_ms']:.1f} ({v['vs_before']:.2f}x)" for k, v in results["speed_640x480"].items()
        if isinstance(v, dict)))
    results["machine"]["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    write_report(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
