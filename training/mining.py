"""Cut labelled face crops (and `not_face` examples) out of annotated photos with the pipeline's crop function."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import supervision as sv
from tqdm import tqdm

from shared.crops import DEFAULT_MARGIN, crop_face, square_box
from shared.face_detector import FaceDetector
from shared.imaging import ImageError, read_image
from shared.schemas import NOT_FACE
from training.dataset import GROUP_SEP
from training.voc import VocPhoto

log = logging.getLogger(__name__)
MATCH_IOU = 0.5       # a detection this close to a labelled box is that face
BACKGROUND_IOU = 0.1  # a detection this far from every labelled box is a false positive


@dataclass(frozen=True)
class CropOptions:
    """How crops are cut: size, margin, and which `not_face` examples to mine per photo.

    Detector false positives (detections far from every labelled box) are off by default: on ilc2021
    most of them are real faces the annotators skipped, which would teach the model to drop faces.
    """

    size: int = 224
    margin: float = DEFAULT_MARGIN
    background_per_photo: int = 1
    false_positives: bool = False
    seed: int = 0


def _save(out: Path, label: str, name: str, crop: np.ndarray) -> None:
    folder = out / label
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / f"{name}.jpg"), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])


def background_boxes(image_shape: tuple[int, ...], faces: np.ndarray, count: int,
                     rng: np.random.Generator, margin: float) -> list[tuple[int, int, int, int]]:
    """Random face-sized boxes whose margin-grown crops touch no labelled face."""
    h, w = image_shape[:2]
    sides = (faces[:, 2:] - faces[:, :2]).max(axis=1) if len(faces) else np.array([min(h, w) / 6])
    grown = np.array([square_box(b, margin) for b in faces], float).reshape(-1, 4)
    boxes: list[tuple[int, int, int, int]] = []
    for _ in range(count * 20):
        if len(boxes) == count:
            break
        side = float(rng.choice(sides)) * rng.uniform(0.7, 1.4)
        if side < 12 or side >= min(h, w):
            continue
        x1, y1 = rng.uniform(0, w - side), rng.uniform(0, h - side)
        box = (x1, y1, x1 + side, y1 + side)
        crop = np.array([square_box(box, margin)], float)
        if len(grown) and (sv.box_iou_batch(crop, grown) > 0).any():
            continue
        boxes.append(tuple(int(round(v)) for v in box))
    return boxes


def cut_photo_crops(photo: VocPhoto, out: Path, options: CropOptions,
                    detector: FaceDetector | None, rng: np.random.Generator) -> Counter:
    """Write the crops of one photo: labelled boxes, matching detections, false positives and background."""
    counts: Counter = Counter()
    image = read_image(photo.image)
    gt = np.array([o.box for o in photo.objects], float).reshape(-1, 4)
    prefix = photo.stem + GROUP_SEP
    for i, obj in enumerate(photo.objects):
        _save(out, obj.label, f"{prefix}gt{i}", crop_face(image, obj.box, options.size, options.margin))
        counts[obj.label] += 1
    if detector is not None:
        found = detector.detect(image)
        iou = sv.box_iou_batch(found.boxes.astype(float), gt) if len(gt) else np.zeros((len(found), 0))
        for j, box in enumerate(found.boxes):
            best = int(np.argmax(iou[j])) if iou.shape[1] else -1
            if best >= 0 and iou[j, best] >= MATCH_IOU:
                label = photo.objects[best].label
            elif options.false_positives and (best < 0 or iou[j, best] < BACKGROUND_IOU):
                label = NOT_FACE
            else:
                continue  # a loose box on a labelled face, or an unlabelled detection
            _save(out, label, f"{prefix}det{j}", crop_face(image, box, options.size, options.margin))
            counts[label] += 1
    for k, box in enumerate(background_boxes(image.shape, gt, options.background_per_photo, rng, options.margin)):
        _save(out, NOT_FACE, f"{prefix}bg{k}", crop_face(image, box, options.size, options.margin))
        counts[NOT_FACE] += 1
    return counts


def cut_crops(photos: list[VocPhoto], out: str | Path, options: CropOptions,
              detector: FaceDetector | None = None) -> Counter:
    """Cut crops for every photo into `out/<label>/<photo>__<kind><n>.jpg`; unreadable photos are logged and skipped."""
    out = Path(out)
    rng = np.random.default_rng(options.seed)
    counts: Counter = Counter()
    for photo in tqdm(photos, desc="cutting crops", unit="photo", mininterval=5):
        try:
            counts += cut_photo_crops(photo, out, options, detector, rng)
        except ImageError as exc:
            log.warning("skipped %s", exc)
            counts["skipped_photos"] += 1
    return counts
