"""RetinaFace anchor matching: which anchors learn which face, and their regression targets."""

from __future__ import annotations

import numpy as np

from shared.face_detector import RetinaFaceSpec, encode_boxes

POSITIVE_IOU = 0.35  # RetinaFace's matching threshold
FORCED_MIN_IOU = 0.2  # a face's best anchor is positive when it overlaps at least this much
IGNORE = -1


def anchor_boxes(anchors: np.ndarray) -> np.ndarray:
    """Anchors (cx, cy, w, h) as [x1, y1, x2, y2]."""
    return np.hstack([anchors[:, :2] - anchors[:, 2:] / 2, anchors[:, :2] + anchors[:, 2:] / 2])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` (N x 4) with every box in `b` (M x 4)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def match_anchors(
    boxes: np.ndarray, ignored: np.ndarray, anchors: np.ndarray, spec: RetinaFaceSpec,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels per anchor (1 face, 0 background, -1 ignored) and loc targets (A x 4, zero off faces)."""
    labels = np.zeros(len(anchors), np.int32)
    loc = np.zeros((len(anchors), 4), np.float32)
    if len(boxes) == 0:
        return labels, loc
    iou = iou_matrix(anchor_boxes(anchors), boxes)
    best_gt = iou.argmax(1)
    best_iou = iou[np.arange(len(anchors)), best_gt]
    keep = ~ignored
    if keep.any():
        learn = iou[:, keep]
        learn_ids = np.flatnonzero(keep)
        best_learn = learn_ids[learn.argmax(1)]
        best_learn_iou = learn.max(1)
        positive = best_learn_iou >= POSITIVE_IOU
        # every face keeps its best anchor, as in the RetinaFace reference matcher
        forced = learn.argmax(0)
        ok = learn[forced, np.arange(len(learn_ids))] >= FORCED_MIN_IOU
        positive[forced[ok]] = True
        best_learn[forced[ok]] = learn_ids[ok]
        labels[positive] = 1
        loc[positive] = encode_boxes(boxes[best_learn[positive]], anchors[positive], spec.variances)
    near_ignored = ignored[best_gt] & (best_iou >= FORCED_MIN_IOU) & (labels == 0)
    labels[near_ignored] = IGNORE
    return labels, loc
