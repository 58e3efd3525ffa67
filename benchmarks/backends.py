"""Accuracy calibration of the inference back ends (shared/backends.py) for the promoted models.

    python benchmarks/backends.py [--detector VERSION] [--classifier VERSION] [--write]

Runs `evaluate_scenes` on the held-out ilc2021 photos (training/splits/ilc2021_val.txt) with the default back
ends (ONNX Runtime detector, TFLite classifier) and with each OpenVINO back end the CPU can run (int8: once its
models exist, `python -m training.quantize_openvino`) for one model at a time, and
times each back end side by side (fastest of interleaved rounds; a 640x480 frame, 6 crops).
The guard: face AP within 0.005 and label accuracy within 0.5 point of the default back ends. With --write the
result goes into each version's folder as backends.json, which `auto` back-end selection reads (a back end other
than the runtime's default is only picked when it passed there). Report: benchmarks/results/backends.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.report import write_report  # noqa: E402
from shared.backends import (  # noqa: E402
    BACKENDS,
    CALIBRATION_FILE,
    DEFAULTS,
    ISA_FLAGS,
    cpu_info,
    openvino_version,
    supported,
    time_calls,
)
from shared.classifier import FaceClassifier  # noqa: E402
from shared.detectors import detector_from_version  # noqa: E402
from shared.model_store import ModelError, ModelStore  # noqa: E402
from shared.pipeline import Pipeline  # noqa: E402
from training.evaluate import evaluate_scenes  # noqa: E402
from training.splits import read_list  # noqa: E402
from training.voc import load_voc  # noqa: E402

SCENES = REPO.parent / "shared" / "data" / "scenes" / "ilc2021"
HELDOUT = REPO / "training" / "splits" / "ilc2021_val.txt"
AP_GUARD, ACCURACY_GUARD_POINTS = 0.005, 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector", help="detector version (default: the promoted one)")
    parser.add_argument("--classifier", help="classifier version (default: the promoted one)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--write", action="store_true", help="write backends.json into the versions' folders")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "backends.json")
    args = parser.parse_args()
    if not SCENES.is_dir():
        print(f"error: {SCENES} not found", file=sys.stderr)
        return 2
    store = ModelStore(REPO / "models")
    versions = {"detector": store.load("detector", args.detector),
                "classifier": store.load("classifier", args.classifier)}
    photos = load_voc(SCENES, stems=set(read_list(HELDOUT)))
    load = {"detector": detector_from_version, "classifier": FaceClassifier.from_version}
    models: dict[str, dict] = {kind: {} for kind in BACKENDS}
    for kind, backend in ((k, b) for k in BACKENDS for b in BACKENDS[k] if supported(b) is None):
        try:
            models[kind][backend] = load[kind](versions[kind], backend=backend)
        except ModelError as exc:  # an int8 model not made yet: python -m training.quantize_openvino
            print(f"{kind} {backend}: left out: {exc}", flush=True)
    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    crops = [np.random.default_rng(i).integers(0, 255, (160, 160, 3), dtype=np.uint8) for i in range(6)]
    speed = time_calls({**{f"detector:{b}": (lambda d=d: d.detect(frame)) for b, d in models["detector"].items()},
                     **{f"classifier:{b}": (lambda c=c: c.predict(crops)) for b, c in models["classifier"].items()}},
                    args.rounds)
    default_det, default_cls = (models[k][DEFAULTS[k]] for k in ("detector", "classifier"))
    base = evaluate_scenes(Pipeline(default_det, default_cls), photos)
    report: dict = {"benchmark": "backends", "cpu": cpu_info()[0], "openvino": openvino_version(),
                    "isa": sorted(f for f in cpu_info()[1] if f in ISA_FLAGS),
                    "photos": len(photos), "guard": f"face AP within {AP_GUARD}, label accuracy within "
                    f"{ACCURACY_GUARD_POINTS} point of the default back ends",
                    "default": {"face_ap50": base["face_ap50"], "label_accuracy": base["matched_faces"]["accuracy"]},
                    "versions": {k: v.name for k, v in versions.items()}, "backends": {}}
    for kind in ("detector", "classifier"):
        calibration = {}
        for backend, model in models[kind].items():
            if backend == DEFAULTS[kind]:
                continue
            pipeline = Pipeline(model, default_cls) if kind == "detector" else Pipeline(default_det, model)
            got = evaluate_scenes(pipeline, photos)
            ap_change = round(got["face_ap50"] - base["face_ap50"], 4)
            points = round(100 * (got["matched_faces"]["accuracy"] - base["matched_faces"]["accuracy"]), 2)
            passed = bool(ap_change >= -AP_GUARD and points >= -ACCURACY_GUARD_POINTS)
            calibration[backend] = {
                "passed": passed, "face_ap_change": ap_change, "label_accuracy_change_points": points,
                "ms": speed[f"{kind}:{backend}"], "default_ms": speed[f"{kind}:{DEFAULTS[kind]}"],
                "summary": f"face AP {ap_change:+.4f}, label accuracy {points:+.2f} points on {len(photos)} held-out "
                           f"photos ({cpu_info()[0]}, openvino {openvino_version()})"}
            print(f"{kind} {backend}: {calibration[backend]}", flush=True)
        report["backends"][kind] = calibration
        if args.write:
            path = versions[kind].path / CALIBRATION_FILE
            path.write_text(json.dumps({"version": versions[kind].name, "cpu": cpu_info()[0],
                                        "openvino": openvino_version(), "backends": calibration}, indent=1) + "\n")
            print(f"wrote {path}")
    report["speed_ms"] = speed
    report["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
