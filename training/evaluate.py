"""`maskwatch eval`: a classifier version on crop folders, or the whole pipeline on annotated scene photos."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import supervision as sv
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tqdm import tqdm

from shared.classifier import FaceClassifier
from shared.face_detector import FaceDetector
from shared.imaging import ImageError, read_image
from shared.pipeline import Pipeline
from shared.schemas import COMPLIANT_LABELS, MASK_LABELS, NOT_FACE
from training.dataset import Sample, load_square
from training.error_review import ErrorReview
from training.metrics import classification_metrics, format_classification
from training.scales import face_sizes, format_bins, recall_by_size, scale_photo
from training.voc import VocPhoto

log = logging.getLogger(__name__)
MATCH_IOU = 0.5


def report_labels(*groups: Sequence[str]) -> list[str]:
    """Mask labels first (in their canonical order), then any other label seen, not_face last."""
    seen = {x for g in groups for x in g}
    rest = sorted(seen - set(MASK_LABELS) - {NOT_FACE})
    return [x for x in MASK_LABELS if x in seen] + rest + ([NOT_FACE] if NOT_FACE in seen else [])


def evaluate_folder(classifier: FaceClassifier, samples: Sequence[Sample], batch: int = 64,
                    review: ErrorReview | None = None) -> dict[str, Any]:
    """Classify every image of a folder dataset; accuracy, macro-F1, per-class P/R/F1, confusion.

    With `review`, every image whose label is wrong is saved there for review by eye.
    """
    y_true, y_pred, skipped = [], [], 0
    for start in tqdm(range(0, len(samples), batch), desc="classifying", unit="batch", mininterval=5):
        crops, kept = [], []
        for s in samples[start : start + batch]:
            try:
                crops.append(load_square(s.path, classifier.input_size))
                kept.append(s)
            except ImageError as exc:
                log.warning("skipped %s", exc)
                skipped += 1
        if not crops:
            continue
        probs = classifier.predict(crops)
        for crop, sample, row in zip(crops, kept, probs):
            y_true.append(sample.label)
            y_pred.append(classifier.labels[int(row.argmax())])
            if review is not None and y_pred[-1] != y_true[-1]:
                review.add_crop(crop, sample.listed, y_true[-1], y_pred[-1],
                                {name: round(float(p), 4) for name, p in zip(classifier.labels, row)})
    report = classification_metrics(y_true, y_pred, report_labels(y_true, classifier.labels))
    report["skipped"] = skipped
    return report


def compliance_accuracy(y_true: Sequence[str], y_pred: Sequence[str]) -> float | None:
    """Share of faces whose predicted label is on the same side of compliance (a compliant label or not) as
    the truth: what the dashboard's compliance rate depends on. None without faces."""
    if not y_true:
        return None
    same = sum((t in COMPLIANT_LABELS) == (p in COMPLIANT_LABELS) for t, p in zip(y_true, y_pred))
    return round(same / len(y_true), 4)


def match_detections(det_boxes: np.ndarray, det_scores: np.ndarray, gt_boxes: np.ndarray,
                     threshold: float = MATCH_IOU) -> list[tuple[int, int]]:
    """Greedy one-to-one matching, highest detection score first: (detection, ground truth) pairs."""
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return []
    iou = sv.box_iou_batch(np.asarray(det_boxes, float), np.asarray(gt_boxes, float))
    pairs, taken = [], set()
    for d in np.argsort(-np.asarray(det_scores)):
        for g in np.argsort(-iou[d]):
            if iou[d, g] < threshold:
                break
            if g not in taken:
                taken.add(int(g))
                pairs.append((int(d), int(g)))
                break
    return pairs


def coco_ap50(images: list[dict], gts: list[dict], dets: list[dict], categories: list[str],
              iou: float = MATCH_IOU) -> dict[str, float]:
    """AP at IoU 0.5 (or `iou`) per category (pycocotools, 101-point interpolation, up to 100 detections a photo)."""
    truth = COCO()
    truth.dataset = {"images": images, "annotations": gts,
                     "categories": [{"id": i + 1, "name": c} for i, c in enumerate(categories)]}
    with contextlib.redirect_stdout(io.StringIO()):
        truth.createIndex()
        if not dets:
            return {c: 0.0 for c in categories}
        result = truth.loadRes(dets)
        ev = COCOeval(truth, result, "bbox")
        ev.params.iouThrs = np.array([iou])
        ev.params.maxDets = [100]
        ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
        ev.evaluate()
        ev.accumulate()
    out = {}
    for k, cat_id in enumerate(ev.params.catIds):
        prec = ev.eval["precision"][0, :, k, 0, 0]
        prec = prec[prec > -1]
        has_gt = any(a["category_id"] == cat_id for a in gts)
        out[categories[cat_id - 1]] = round(float(prec.mean()), 4) if has_gt and prec.size else float("nan")
    return out


def evaluate_scenes(pipeline: Pipeline, photos: Sequence[VocPhoto], review: ErrorReview | None = None,
                    scale: float = 1.0, ap_detector: FaceDetector | None = None) -> dict[str, Any]:
    """Run the pipeline on annotated photos: mAP@0.5 per class, face AP, and label metrics on matched faces.

    Photos and boxes are downscaled by `scale` first (in memory). Recall per face size counts the faces
    the pipeline serves. With `ap_detector` (the same detector reporting scores down to ~0.05),
    `face_ap50_low_score` is the class-agnostic face AP not cut by the serving threshold.

    With `review`, every matched face whose label is wrong is saved there for review by eye.

    Every detection is classified (including `not_face`, which counts as a wrong label on a matched face
    and is dropped from the detection metrics, as the services drop it). False positives per image count
    detections that match no labelled face at IoU 0.5: all the detector's, and those left after `not_face`.
    """
    pipeline = Pipeline(pipeline.detector, pipeline.classifier, drop_labels=frozenset())
    gt_labels = sorted({o.label for p in photos for o in p.objects})
    categories = report_labels(gt_labels, [x for x in pipeline.classifier.labels if x != NOT_FACE])
    cat_id = {c: i + 1 for i, c in enumerate(categories)}
    images, gts, dets, face_gts, face_dets, low_dets = [], [], [], [], [], []
    sizes, found = [], []
    y_true, y_pred, undetected, skipped, n_dropped = [], [], {c: 0 for c in gt_labels}, 0, 0
    false_detected, false_served = 0, 0
    for image_id, photo in enumerate(tqdm(photos, desc="scenes", unit="photo", mininterval=5), start=1):
        try:
            image = read_image(photo.image)
        except ImageError as exc:
            log.warning("skipped %s", exc)
            skipped += 1
            continue
        image, gt_boxes = scale_photo(image, np.array([o.box for o in photo.objects], float).reshape(-1, 4), scale)
        h, w = image.shape[:2]
        images.append({"id": image_id, "width": w, "height": h})
        if ap_detector is not None:
            low = ap_detector.detect(image)
            low_dets.extend({"image_id": image_id, "category_id": 1, "score": float(s),
                             "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
                            for b, s in zip(low.boxes, low.scores))
        for o, b in zip(photo.objects, gt_boxes):
            ann = {"id": len(gts) + 1, "image_id": image_id, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                   "area": float((b[2] - b[0]) * (b[3] - b[1])), "iscrowd": 0}
            gts.append({**ann, "category_id": cat_id[o.label]})
            face_gts.append({**ann, "category_id": 1})
        faces = pipeline.process(image)
        boxes = np.array([f.box for f in faces], float).reshape(-1, 4)
        scores = np.array([f.score for f in faces])
        for f in faces:
            if f.label == NOT_FACE:
                n_dropped += 1
                continue
            x1, y1, x2, y2 = f.box
            det = {"image_id": image_id, "bbox": [x1, y1, x2 - x1, y2 - y1]}
            dets.append({**det, "category_id": cat_id[f.label], "score": f.score * f.confidence})
            face_dets.append({**det, "category_id": 1, "score": f.score})
        pairs = match_detections(boxes, scores, gt_boxes)
        matched = {g for _, g in pairs}
        stray = set(range(len(faces))) - {d for d, _ in pairs}
        false_detected += len(stray)
        false_served += sum(1 for d in stray if faces[d].label != NOT_FACE)
        for d, g in pairs:
            y_true.append(photo.objects[g].label)
            y_pred.append(faces[d].label)
            if review is not None and y_pred[-1] != y_true[-1]:
                review.add(image, photo.image.name, faces[d], y_true[-1])
        for g, o in enumerate(photo.objects):
            if g not in matched:
                undetected[o.label] += 1
        sizes.append(face_sizes(gt_boxes))
        found.append(np.array([g in matched for g in range(len(gt_boxes))], bool))
    ap = coco_ap50(images, gts, dets, categories)
    class_aps = [v for c, v in ap.items() if c in gt_labels and not np.isnan(v)]
    labels = report_labels(y_true, y_pred, pipeline.classifier.labels)
    total_gt = {c: sum(1 for p in photos for o in p.objects if o.label == c) for c in gt_labels}
    return {
        "photos": len(images), "skipped_photos": skipped, "gt_faces": len(gts),
        "matched_faces": classification_metrics(y_true, y_pred, labels),
        "compliance_accuracy": compliance_accuracy(y_true, y_pred),
        "undetected": undetected,
        "detection_recall": {c: round(1 - undetected[c] / total_gt[c], 4) if total_gt[c] else None
                             for c in gt_labels},
        "not_face_dropped": n_dropped,
        "false_positives_per_image": {"detector": round(false_detected / max(len(images), 1), 4),
                                      "after_not_face": round(false_served / max(len(images), 1), 4)},
        "ap50": ap, "map50": round(float(np.mean(class_aps)), 4) if class_aps else 0.0,
        "face_ap50": coco_ap50(images, face_gts, face_dets, ["face"])["face"],
        "face_ap50_low_score": coco_ap50(images, face_gts, low_dets, ["face"])["face"] if ap_detector else None,
        "scale": scale,
        "recall_by_size": recall_by_size(np.concatenate(sizes or [np.zeros(0)]),
                                         np.concatenate(found or [np.zeros(0, bool)])),
        "detector": pipeline.detector.name, "classifier": pipeline.classifier.name,
    }


def format_scenes(report: dict[str, Any]) -> str:
    """A readable summary of `evaluate_scenes`."""
    low = report.get("face_ap50_low_score")
    lines = [f"{report['photos']} photos at {report.get('scale', 1.0):g}x, {report['gt_faces']} labelled faces; "
             f"detector {report['detector']}, classifier {report['classifier']}",
             f"mAP@0.5 (classes): {report['map50']:.4f}   face AP@0.5 (class-agnostic): {report['face_ap50']:.4f}"
             + (f" at the serving threshold, {low:.4f} over scores down to 0.05" if low is not None else ""),
             "AP@0.5 per class: " + ", ".join(f"{c} {v:.4f}" for c, v in report["ap50"].items()),
             "detection recall per class: " + ", ".join(
                 f"{c} {v:.4f}" for c, v in report["detection_recall"].items() if v is not None),
             f"not detected (IoU < {MATCH_IOU}): {report['undetected']}; "
             f"detections classified not_face: {report['not_face_dropped']}",
             "false positives per image (no labelled face at IoU 0.5): detector "
             f"{report['false_positives_per_image']['detector']:.3f}, after dropping not_face "
             f"{report['false_positives_per_image']['after_not_face']:.3f}",
             "detection recall per face size (px): " + format_bins(report["recall_by_size"]),
             format_classification(report["matched_faces"], "labels on detected (matched) faces:")]
    if report.get("compliance_accuracy") is not None:
        lines.append(f"compliant or not ({', '.join(sorted(COMPLIANT_LABELS))} vs the rest) on matched faces: "
                     f"accuracy {report['compliance_accuracy']:.4f}")
    return "\n".join(lines)
