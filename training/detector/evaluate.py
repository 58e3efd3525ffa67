"""Face-detector evaluation on annotated photos: class-agnostic AP@0.5 (pycocotools), recall per class, FP per image.

API for `maskwatch eval --scenes`: `evaluate_detector(detector, scenes)` for any `FaceDetector`, or
`evaluate_version(store, version, voc_dirs)` for a detector version of the model store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import supervision as sv
from tqdm import tqdm

from shared.crops import crop_face
from shared.detectors import FaceDetector, detector_class, detector_from_version, policy_defaults
from shared.imaging import ImageError, read_image
from shared.model_store import ModelStore
from shared.schemas import MASK_LABELS
from training.detector.data import Scene, split_scenes
from training.evaluate import MATCH_IOU, coco_ap50, match_detections
from training.scales import face_sizes, recall_by_size, scale_photo
from training.splits import ILC2021_VAL

if TYPE_CHECKING:
    from shared.classifier import FaceClassifier
    from training.detector.crowd import CrowdSet

log = logging.getLogger(__name__)
AP_SCORE_FLOOR = 0.05  # detections kept for the precision-recall curve (COCO style, not cut by the threshold)
SWEEP_THRESHOLDS = (0.6, 0.5, 0.4, 0.3, 0.2)  # score thresholds reported beside the operating point
# AP also at looser box overlap: what AP@0.5 loses there are faces found with a box drawn unlike the label's
LOOSER_IOUS = (0.4, 0.3)
MISS_OVERLAP_IOU = 0.3  # a missed face overlapped at least this much counts as a box-placement miss


@dataclass
class DetectorMetrics:
    """Scores of one detector on a set of annotated photos."""

    ap50: float
    recall: dict[str, float]
    recall_all: float
    fp_per_image: float
    images: int
    faces: dict[str, int]
    score_threshold: float
    ms_per_image: float
    ap50_served: float = 0.0  # AP of the detections the services keep (score >= score_threshold)
    scale: float = 1.0  # photos and boxes downscaled by this before detection
    dataset: str = "validation"  # the held-out photos, or "crowd": the crowd-like frames made of them
    recall_by_size: dict[str, dict[str, Any]] = field(default_factory=dict)  # at the operating threshold
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (rounded)."""
        out = asdict(self)
        out["ap50"] = round(self.ap50, 4)
        out["ap50_served"] = round(self.ap50_served, 4)
        out["recall"] = {k: round(v, 4) for k, v in self.recall.items()}
        out["recall_all"] = round(self.recall_all, 4)
        out["fp_per_image"] = round(self.fp_per_image, 4)
        out["ms_per_image"] = round(self.ms_per_image, 1)
        return out


def _ap50(scenes: list[Scene], results: list[tuple[np.ndarray, np.ndarray]], iou: float = 0.5) -> float:
    """Class-agnostic face AP@0.5, or at IoU `iou` (pycocotools, through the scene evaluation of `maskwatch eval`)."""
    images, truth, dets = [], [], []
    for img_id, (scene, (boxes, scores)) in enumerate(zip(scenes, results), start=1):
        images.append({"id": img_id})
        for box in scene.boxes:
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            truth.append({"id": len(truth) + 1, "image_id": img_id, "category_id": 1,
                          "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h, "iscrowd": 0})
        for box, score in zip(boxes, scores):
            dets.append({"image_id": img_id, "category_id": 1, "score": float(score),
                         "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]})
    return coco_ap50(images, truth, dets, ["face"], iou)["face"]


def _operating_point(scenes: list[Scene], results: list[tuple[np.ndarray, np.ndarray]],
                     threshold: float) -> tuple[dict[str, list[int]], int, dict[str, dict[str, int]]]:
    """Found/total faces per class, false positives, and why each missed face was missed, at one threshold.

    A miss is `overlap` (a kept box overlaps it at IoU 0.3-0.5), `low_score` (a box below the threshold
    overlaps it at IoU >= 0.5) or `not_found`.
    """
    found = {label: [0, 0] for label in MASK_LABELS}
    misses: dict[str, dict[str, int]] = {}
    false = 0
    for scene, (boxes, scores) in zip(scenes, results):
        keep = scores >= threshold
        pairs = match_detections(boxes[keep], scores[keep], scene.boxes)
        false += int(keep.sum()) - len(pairs)
        hits = {g for _, g in pairs}
        iou = sv.box_iou_batch(np.asarray(scene.boxes, float).reshape(-1, 4), np.asarray(boxes, float).reshape(-1, 4))
        for g, label in enumerate(scene.labels):
            counts = found.setdefault(label, [0, 0])
            counts[0] += int(g in hits)
            counts[1] += 1
            if g in hits:
                continue
            kept, dropped = iou[g][keep], iou[g][~keep]
            cause = ("overlap" if kept.size and kept.max() >= MISS_OVERLAP_IOU
                     else "low_score" if dropped.size and dropped.max() >= MATCH_IOU else "not_found")
            by_cause = misses.setdefault(label, {"overlap": 0, "low_score": 0, "not_found": 0})
            by_cause[cause] += 1
    return found, false, misses


def evaluate_detector(
    detector: FaceDetector, scenes: list[Scene], score_threshold: float = 0.5, scale: float = 1.0,
    sweep_thresholds: tuple[float, ...] = SWEEP_THRESHOLDS, looser_ious: tuple[float, ...] = LOOSER_IOUS,
    classifier: FaceClassifier | None = None,
) -> DetectorMetrics:
    """Run a detector over annotated photos; it must report scores down to AP_SCORE_FLOOR for a full AP curve.

    Photos and boxes are first downscaled by `scale` (in memory), then scored by `evaluate_frames`.
    """
    def frames() -> Iterator[tuple[np.ndarray, Scene]]:
        for scene in tqdm(scenes, desc=f"evaluating at {scale:g}x", unit="photo", leave=False):
            try:
                image, boxes = scale_photo(read_image(scene.image), scene.boxes, scale)
            except ImageError as exc:
                log.warning("skipping %s", exc)
                continue
            yield image, Scene(scene.image, np.asarray(boxes, np.float32).reshape(-1, 4), scene.labels)

    return evaluate_frames(detector, frames(), score_threshold, scale, sweep_thresholds, looser_ious, classifier)


def evaluate_frames(
    detector: FaceDetector, frames: Iterable[tuple[np.ndarray, Scene]], score_threshold: float = 0.5,
    scale: float = 1.0, sweep_thresholds: tuple[float, ...] = SWEEP_THRESHOLDS,
    looser_ious: tuple[float, ...] = LOOSER_IOUS, classifier: FaceClassifier | None = None,
) -> DetectorMetrics:
    """Score a detector on images in memory with their labelled faces (`Scene.boxes` in the image's pixels).

    Recall, recall per face size and false positives count detections scoring at least `score_threshold`
    (the operating point); `ap50` is over every detection down to the floor, `ap50_served` over the kept
    ones only; `extra` adds recall and FP at each of `sweep_thresholds`, the causes of the misses at the
    operating point, face AP at each of `looser_ious` and, with a `classifier`, its label accuracy on the
    matched faces per face size.
    """
    results, seconds, used, labelled = [], 0.0, [], []
    for image, scene in frames:
        t0 = time.perf_counter()
        det = detector.detect(image)
        seconds += time.perf_counter() - t0
        used.append(scene)
        results.append((det.boxes, det.scores))
        if classifier is not None:
            keep = det.scores >= score_threshold
            labelled.append(_label_matches(classifier, image, scene, det.boxes[keep], det.scores[keep]))
    n = max(len(used), 1)
    points = {t: _operating_point(used, results, t) for t in dict.fromkeys((score_threshold, *sweep_thresholds))}
    found_by_class, false, misses = points[score_threshold]
    total_found = sum(f for f, _ in found_by_class.values())
    total = sum(t for _, t in found_by_class.values())
    sweep = {str(threshold): {"recall": {k: round(f / t, 4) for k, (f, t) in points[threshold][0].items() if t},
                              "fp_per_image": round(points[threshold][1] / n, 4)}
             for threshold in sweep_thresholds}
    served = [(b[s >= score_threshold], s[s >= score_threshold]) for b, s in results]
    extra: dict[str, Any] = {"thresholds": sweep, "misses": misses,
                             "ap_looser_iou": {str(iou): round(_ap50(used, results, iou), 4) for iou in looser_ious}}
    if classifier is not None:
        extra["label_accuracy_by_size"] = _accuracy_by_size(labelled)
        extra["classifier"] = classifier.name
    return DetectorMetrics(
        ap50=_ap50(used, results),
        recall={k: f / t for k, (f, t) in found_by_class.items() if t},
        recall_all=total_found / max(total, 1),
        fp_per_image=false / n,
        images=len(used),
        faces={k: t for k, (_, t) in found_by_class.items()},
        score_threshold=score_threshold,
        ms_per_image=1000 * seconds / n,
        ap50_served=_ap50(used, served),
        scale=scale,
        recall_by_size=_size_recall(used, served),
        extra=extra,
    )


def _label_matches(classifier: FaceClassifier, image: np.ndarray, scene: Scene, boxes: np.ndarray,
                   scores: np.ndarray) -> list[tuple[float, bool]]:
    """(face size, label right) for each labelled face a kept detection matches (crop of the detected box)."""
    pairs = match_detections(boxes, scores, scene.boxes)
    if not pairs:
        return []
    crops = [crop_face(image, boxes[d], classifier.input_size, classifier.crop_margin) for d, _ in pairs]
    predicted = [classifier.labels[int(np.argmax(row))] for row in classifier.predict(crops)]
    sizes = face_sizes(scene.boxes)
    return [(float(sizes[g]), label == scene.labels[g]) for (_, g), label in zip(pairs, predicted)]


def _accuracy_by_size(labelled: list[list[tuple[float, bool]]]) -> dict[str, dict[str, Any]]:
    """Label accuracy on matched faces per face-size bin (the recall-by-size bins), and over all."""
    flat = [item for items in labelled for item in items]
    sizes = np.array([s for s, _ in flat], float)
    right = np.array([r for _, r in flat], bool)
    out = {k: {"faces": v["faces"], "accuracy": v["recall"]} for k, v in recall_by_size(sizes, right).items()}
    out["all"] = {"faces": len(flat), "accuracy": round(float(right.mean()), 4) if flat else None}
    return out


def _size_recall(scenes: list[Scene], results: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, Any]]:
    """Recall at IoU 0.5 per face-size bin (sqrt of the labelled box's area)."""
    sizes, found = [], []
    for scene, (boxes, scores) in zip(scenes, results):
        hits = {g for _, g in match_detections(boxes, scores, scene.boxes)}
        sizes.append(face_sizes(scene.boxes))
        found.append(np.array([g in hits for g in range(len(scene.boxes))], bool))
    return recall_by_size(np.concatenate(sizes or [np.zeros(0)]), np.concatenate(found or [np.zeros(0, bool)]))


def open_detector(model_path: Path, min_face: float = 16, threads: int = 2, fmt: str = "retinaface-onnx",
                  meta: dict[str, Any] | None = None, **kwargs: Any) -> FaceDetector:
    """A detector of any registered format for an ONNX file that reports scores down to AP_SCORE_FLOOR."""
    cls = detector_class(fmt)
    spec = cls.spec_from_meta(meta or {})
    return cls(model_path, spec, score_threshold=AP_SCORE_FLOOR, min_face=min_face, threads=threads, **kwargs)


def evaluate_version(
    store: ModelStore, version: str | None, voc_dirs: list[Path], val_list: Path = ILC2021_VAL,
    min_face: float | None = None, score_threshold: float | None = None, threads: int = 2,
    scales: tuple[float, ...] = (1.0,), policy: str | None = "photos", crowd: CrowdSet | None = None,
    classifier: FaceClassifier | None = None, **options: Any,
) -> list[DetectorMetrics]:
    """Evaluate a detector version (the promoted one when None) on the validation photos of `voc_dirs`,
    once per scale, then on the `crowd` frames when given (`dataset` "crowd"); min_face, threshold
    and scale policy default to the version's own for `policy` (photos or streams)."""
    loaded = store.load("detector", version)
    _, val = split_scenes(voc_dirs, val_list)
    threshold = score_threshold if score_threshold is not None else \
        policy_defaults(loaded.meta, policy).get("score_threshold", 0.5)
    detector = detector_from_version(loaded, policy=policy, score_threshold=AP_SCORE_FLOOR, min_face=min_face,
                                     threads=threads, **options)
    settings = {"version": loaded.name, "policy": policy, "min_face": detector.min_face,
                "max_pixels": detector.policy.max_pixels}
    out = []
    for scale in scales:
        metrics = evaluate_detector(detector, val, threshold, scale, classifier=classifier)
        metrics.extra |= settings | {"photos": "validation split " + val_list.name}
        out.append(metrics)
    if crowd is not None:
        metrics = evaluate_frames(detector, zip(crowd.images, crowd.scenes), threshold, classifier=classifier)
        metrics.dataset = "crowd"
        metrics.extra |= settings | {"photos": f"crowd-like set {crowd.spec.name} (issue 26)",
                                     "crowd": crowd.summary()}
        out.append(metrics)
    return out
