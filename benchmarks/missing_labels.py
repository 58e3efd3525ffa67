"""Missing labels (issue 26, part 3): confident detections on the *training* photos that match no labelled face.

    python benchmarks/missing_labels.py [--detector VERSION] [--crops DIR] [--sample 48]
    python benchmarks/missing_labels.py --validation --detector NEW --not-found-by OLD [...] --sample-score 0.6 \
        --backend onnxruntime --crops DIR --out FILE

Runs the detector (the promoted one at its photo policy) over every ilc2021 photo that is not on the
validation list, keeps detections scoring at least 0.6 and 0.8 that overlap no labelled face (IoU < 0.3,
so boxes drawn unlike the label do not count) and counts them per face size. With --crops, a seeded
sample of the >= 0.8 ones is written there as one contact sheet (numbered crops with some context) for
review by eye; the images stay outside the repository. Writes benchmarks/results/missing_labels.json.

The second form asks what a new detector finds that nothing else does: on the held-out photos (--validation),
detections that overlap neither a label nor any detection (score >= 0.5) of the --not-found-by versions, the
sample drawn from those scoring at least --sample-score (issue 26: what pasting small faces taught the detector
to fire on).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import supervision as sv

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.report import write_report  # noqa: E402
from shared.backends import BACKENDS  # noqa: E402
from shared.face_detector import load_detector  # noqa: E402
from shared.imaging import ImageError, read_image  # noqa: E402
from shared.model_store import ModelStore  # noqa: E402
from training.detector.data import split_scenes  # noqa: E402
from training.scales import SIZE_BINS, face_sizes  # noqa: E402

SCENES = REPO.parent / "shared" / "data" / "scenes" / "ilc2021"
THRESHOLDS = (0.6, 0.8)
NO_LABEL_IOU = 0.3
CELL = 96  # contact-sheet cell (px)


def unlabelled(detector: Any, scenes: list, others: list[Any] = ()) -> list[dict[str, Any]]:
    """Every detection (score >= min threshold) whose best IoU with the photo's labels, and with what the `others`
    detect in it, is under NO_LABEL_IOU."""
    found = []
    for scene in scenes:
        try:
            image = read_image(scene.image)
        except ImageError:
            continue
        det = detector.detect(image)
        if not len(det):
            continue
        labels = np.vstack([np.asarray(scene.boxes, float).reshape(-1, 4),
                            *(np.asarray(o.detect(image).boxes, float).reshape(-1, 4) for o in others)])
        iou = sv.box_iou_batch(np.asarray(det.boxes, float), labels) if len(labels) else np.zeros((len(det), 1))
        for box, score, best in zip(det.boxes, det.scores, iou.max(axis=1)):
            if best < NO_LABEL_IOU:
                found.append({"photo": scene.image.name, "box": [round(float(v), 1) for v in box],
                              "score": round(float(score), 3), "size": round(float(face_sizes(box[None])[0]), 1)})
    return found


def by_size(items: list[dict[str, Any]]) -> dict[str, int]:
    """Count per face-size bin."""
    sizes = np.array([i["size"] for i in items], float)
    return {label: int(((sizes >= lo) & (sizes < hi)).sum()) for label, lo, hi in SIZE_BINS}


def contact_sheet(items: list[dict[str, Any]], folder: Path, path: Path) -> None:
    """The crops (box plus half its size around it, box drawn) in a numbered grid."""
    cols = 8
    rows = -(-len(items) // cols)
    sheet = np.full((rows * CELL, cols * CELL, 3), 255, np.uint8)
    for k, item in enumerate(items):
        image = read_image(folder / item["photo"])
        x1, y1, x2, y2 = item["box"]
        pad = 0.5 * max(x2 - x1, y2 - y1)
        cx1, cy1 = int(max(0, x1 - pad)), int(max(0, y1 - pad))
        cx2, cy2 = int(min(image.shape[1], x2 + pad)), int(min(image.shape[0], y2 + pad))
        crop = image[cy1:cy2, cx1:cx2].copy()
        cv2.rectangle(crop, (int(x1 - cx1), int(y1 - cy1)), (int(x2 - cx1), int(y2 - cy1)), (0, 0, 255), 1)
        scale = (CELL - 14) / max(crop.shape[:2])
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))))
        r, c = divmod(k, cols)
        sheet[r * CELL + 14:r * CELL + 14 + crop.shape[0], c * CELL:c * CELL + crop.shape[1]] = crop
        cv2.putText(sheet, str(k), (c * CELL + 2, r * CELL + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet)


def main() -> int:
    """Count, sample and write the JSON results."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detector", metavar="VERSION")
    p.add_argument("--models", type=Path)
    p.add_argument("--crops", type=Path, metavar="DIR", help="write a contact sheet of a sample here (not the repo)")
    p.add_argument("--sample", type=int, default=48)
    p.add_argument("--sample-score", type=float, default=max(THRESHOLDS),
                   help="draw the sample from detections scoring at least this (default %(default)s)")
    p.add_argument("--validation", action="store_true", help="the held-out photos instead of the training ones")
    p.add_argument("--not-found-by", action="append", default=[], metavar="VERSION",
                   help="leave out detections that overlap one of this version's (score >= 0.5; repeatable)")
    p.add_argument("--backend", default="auto", choices=("auto", *BACKENDS["detector"]),
                   help="inference back end of every detector (default auto)")
    p.add_argument("--seed", type=int, default=26)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "missing_labels.json")
    args = p.parse_args()
    store = ModelStore(args.models)
    detector = load_detector(store, args.detector, policy="photos", score_threshold=min(THRESHOLDS),
                             threads=args.threads, backend=args.backend)
    others = [load_detector(store, v, policy="photos", score_threshold=0.5, threads=args.threads,
                            backend=args.backend) for v in args.not_found_by]
    train, val = split_scenes([SCENES])
    photos = val if args.validation else train
    found = unlabelled(detector, photos, others)
    results: dict[str, Any] = {
        "machine": {"cpu": platform.processor() or platform.machine(), "load_average_1m": round(os.getloadavg()[0], 2)},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "detector": detector.name,
        "not_found_by": args.not_found_by, "backend": args.backend,
        f"{'validation' if args.validation else 'training'}_photos": len(photos),
        "labelled_faces": int(sum(len(s.boxes) for s in photos)),
        "no_label_iou": NO_LABEL_IOU, "unlabelled": {}}
    for threshold in THRESHOLDS:
        kept = [f for f in found if f["score"] >= threshold]
        results["unlabelled"][str(threshold)] = {"detections": len(kept),
                                                 "photos": len({f["photo"] for f in kept}), "by_size": by_size(kept)}
        print(f"score >= {threshold}: {len(kept)} detections matching no label in "
              f"{results['unlabelled'][str(threshold)]['photos']} of {len(photos)} photos; by size "
              f"{results['unlabelled'][str(threshold)]['by_size']}")
    if args.crops:
        confident = [f for f in found if f["score"] >= args.sample_score]
        rng = np.random.default_rng(args.seed)
        pick = sorted(rng.choice(len(confident), min(args.sample, len(confident)), replace=False).tolist())
        sample = [confident[i] for i in pick]
        contact_sheet(sample, SCENES / "images", args.crops / "sample.png")
        results["sample"] = sample
        print(f"sample of {len(sample)} -> {args.crops / 'sample.png'}")
    write_report(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
