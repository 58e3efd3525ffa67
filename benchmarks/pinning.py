"""What OpenVINO's CPU pinning did to the overlapped pipeline: detection on a thread, classification beside it.

    python benchmarks/pinning.py [--seconds 8] [--out benchmarks/results/pinning.json]

On the airport clip stretched to 640x480 (../shared/data/video/airport.mp4), with the promoted models on the
back ends `auto` picks and one thread each (as a detector worker runs them), a thread detects frame after frame
while the main thread classifies the faces of frame after frame, for --seconds. Once with the models compiled
as shared/backends.py compiles them (`ENABLE_CPU_PINNING: false`) and once with pinning on (OpenVINO's default,
set here by wrapping `openvino.Core.compile_model`), each in a process of its own: detections and classified
frames per second, and the cores the process used.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.cameras import VIDEO, read_clip  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from shared.backends import ISA_FLAGS, cpu_info  # noqa: E402


def pin_models() -> None:
    """Compile every OpenVINO model of this process with CPU pinning on."""
    import openvino as ov

    compile_model = ov.Core.compile_model

    def pinned(self, model, device=None, config=None):  # noqa: ANN001, ANN202 - OpenVINO's own signature
        return compile_model(self, model, device, {**(config or {}), "ENABLE_CPU_PINNING": True})

    ov.Core.compile_model = pinned


def side_by_side(seconds: float) -> dict:
    """Detection on a thread and classification on this one, for `seconds`."""
    from shared.pipeline import load_pipeline

    pipeline = load_pipeline(threads=1, classifier_threads=1)
    frames = read_clip(VIDEO)[0][:40]
    found = [pipeline.detect(frame) for frame in frames]
    counts = {"detections": 0, "classified_frames": 0}
    stop = time.monotonic() + seconds

    def detect() -> None:
        while time.monotonic() < stop:
            pipeline.detect(frames[counts["detections"] % len(frames)])
            counts["detections"] += 1

    before, start = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    thread = threading.Thread(target=detect)
    thread.start()
    while time.monotonic() < stop:
        i = counts["classified_frames"] % len(frames)
        pipeline.classify([(frames[i], found[i])])
        counts["classified_frames"] += 1
    thread.join()
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - start
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"backends": {"detector": pipeline.detector.backend, "classifier": pipeline.classifier.backend},
            "detections_per_s": round(counts["detections"] / wall, 1),
            "classified_frames_per_s": round(counts["classified_frames"] / wall, 1),
            "faces_per_frame": round(sum(len(f) for f in found) / len(found), 2), "cpu_cores": round(cpu / wall, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--mode", choices=("pinned", "unpinned"), help=argparse.SUPPRESS)  # one child process
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "pinning.json")
    args = parser.parse_args()
    if args.mode:
        if args.mode == "pinned":
            pin_models()
        print(json.dumps(side_by_side(args.seconds)))
        return 0
    runs = {}
    for mode in ("pinned", "unpinned"):
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--seconds", str(args.seconds)],
                             check=True, capture_output=True, text=True).stdout
        runs[mode] = json.loads(out.strip().splitlines()[-1])
        print(mode, runs[mode], flush=True)
    name, flags = cpu_info()
    ratio = runs["unpinned"]["detections_per_s"] / runs["pinned"]["detections_per_s"]
    write_report(args.out, {"benchmark": "pinning", "cpu": name, "isa": sorted(f for f in flags if f in ISA_FLAGS),
                            "cpus": os.cpu_count(), "seconds": args.seconds, "runs": runs,
                            "detections_ratio": round(ratio, 2),
                            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
