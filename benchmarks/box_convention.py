"""How the labels' boxes differ from the detector's on faces it finds: bias and spread per face size.

    python benchmarks/box_convention.py [--detector VERSION] [--train-photos 500]

For every labelled face matched by a detection at IoU >= 0.3 (default detector at its own defaults), the
centre offset (in detected box sizes) and the log ratio of the label's width and height to the detection's,
per face-size bin, on training photos and on the held-out validation photos. A mean near zero with a wide
spread means the annotators' boxes vary from photo to photo: a better detector cannot close that gap at IoU 0.5.
Writes benchmarks/results/box_convention.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import supervision as sv
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.report import write_report  # noqa: E402
from shared.detectors import FaceDetector, detector_from_version  # noqa: E402
from shared.imaging import read_image  # noqa: E402
from shared.model_store import ModelStore  # noqa: E402
from training.detector.data import Scene, split_scenes  # noqa: E402
from training.detector.evaluate import ILC2021_VAL  # noqa: E402
from training.evaluate import match_detections  # noqa: E402

SCENES = REPO.parent / "shared" / "data" / "scenes" / "ilc2021"
BINS = ((0, 24), (24, 48), (48, 96), (96, None))
MIN_IOU = 0.3


def matched_pairs(detector: FaceDetector, scenes: list[Scene], desc: str) -> np.ndarray:
    """Rows of (face size, dx, dy, log w ratio, log h ratio, IoU) for labelled faces matched by a detection
    (the evaluation's one-to-one matching, at IoU >= MIN_IOU)."""
    rows = []
    for scene in tqdm(scenes, desc=desc, unit="photo", leave=False):
        found = detector.detect(read_image(scene.image))
        labels = np.asarray(scene.boxes, float).reshape(-1, 4)
        for d, g in match_detections(found.boxes, found.scores, labels, MIN_IOU):
            label, det = labels[g], found.boxes[d].astype(float)
            lw, lh, dw, dh = label[2] - label[0], label[3] - label[1], det[2] - det[0], det[3] - det[1]
            iou = float(sv.box_iou_batch(label[None], det[None])[0, 0])
            rows.append([np.sqrt(dw * dh), (label[0] + label[2] - det[0] - det[2]) / 2 / dw,
                         (label[1] + label[3] - det[1] - det[3]) / 2 / dh, np.log(lw / dw), np.log(lh / dh), iou])
    return np.asarray(rows).reshape(-1, 6)


def by_size(rows: np.ndarray) -> dict[str, dict]:
    """Mean and spread of the offsets per face-size bin."""
    out = {}
    for lo, hi in BINS:
        sel = rows[(rows[:, 0] >= lo) & (rows[:, 0] < (hi or np.inf))]
        name = f"{lo}-{hi}" if hi else f">={lo}"
        if not len(sel):
            out[name] = {"faces": 0}
            continue
        mean, std = (np.round(v, 3).tolist() for v in (sel[:, 1:5].mean(0), sel[:, 1:5].std(0)))
        out[name] = {"faces": len(sel), "dx_mean": mean[0], "dy_mean": mean[1],
                     "log_w_ratio_mean": mean[2], "log_h_ratio_mean": mean[3],
                     "log_w_ratio_std": std[2], "log_h_ratio_std": std[3],
                     "iou_under_0.5": int((sel[:, 5] < 0.5).sum())}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector", help="detector version (default: the promoted one)")
    parser.add_argument("--scenes", type=Path, default=SCENES)
    parser.add_argument("--train-photos", type=int, default=500, help="training photos measured (the first N)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "box_convention.json")
    args = parser.parse_args()
    if not args.scenes.is_dir():
        print(f"error: {args.scenes} not found", file=sys.stderr)
        return 2
    version = ModelStore(REPO / "models").load("detector", args.detector)
    detector = detector_from_version(version)
    train, val = split_scenes([args.scenes], ILC2021_VAL)
    report = {"benchmark": "box_convention", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "detector": version.name, "min_iou": MIN_IOU,
              "training": by_size(matched_pairs(detector, train[: args.train_photos], "training photos")),
              "validation": by_size(matched_pairs(detector, val, "held-out photos"))}
    for split in ("training", "validation"):
        for name, row in report[split].items():
            print(f"{split:10} {name:>6} px: {row}")
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
