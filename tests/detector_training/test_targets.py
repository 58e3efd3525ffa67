"""Anchor encode/decode round-trip and RetinaFace anchor matching."""

from __future__ import annotations

import numpy as np

from shared.face_detector import RetinaFaceSpec, anchor_grid, decode_boxes, encode_boxes
from training.detector.targets import IGNORE, anchor_boxes, iou_matrix, match_anchors

SPEC = RetinaFaceSpec()


def test_encode_decode_round_trip() -> None:
    anchors = anchor_grid(SPEC, 128, 96)
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 128, (len(anchors), 2))
    sizes = rng.uniform(4, 300, (len(anchors), 2))
    boxes = np.hstack([centres - sizes / 2, centres + sizes / 2]).astype(np.float32)
    decoded = decode_boxes(encode_boxes(boxes, anchors, SPEC.variances), anchors, SPEC.variances)
    np.testing.assert_allclose(decoded, boxes, atol=1e-3)


def test_a_box_on_an_anchor_matches_it_with_zero_offsets() -> None:
    anchors = anchor_grid(SPEC, 64, 64)
    target = anchor_boxes(anchors[10:11])
    labels, loc = match_anchors(target, np.array([False]), anchors, SPEC)
    assert labels[10] == 1
    np.testing.assert_allclose(loc[10], 0, atol=1e-5)
    positives = np.flatnonzero(labels == 1)
    assert np.all(iou_matrix(anchor_boxes(anchors[positives]), target)[:, 0] >= 0.2)
    assert np.all(loc[labels == 0] == 0)


def test_small_face_still_gets_its_best_anchor() -> None:
    anchors = anchor_grid(SPEC, 64, 64)
    box = np.array([[20, 20, 29, 29]], np.float32)  # 9 px: below the 0.35 IoU of any 16 px anchor
    labels, _ = match_anchors(box, np.array([False]), anchors, SPEC)
    assert (labels == 1).sum() >= 1


def test_ignored_faces_are_neither_face_nor_background() -> None:
    anchors = anchor_grid(SPEC, 64, 64)
    boxes = np.array([[4, 4, 20, 20], [40, 40, 56, 56]], np.float32)
    labels, _ = match_anchors(boxes, np.array([False, True]), anchors, SPEC)
    near_second = iou_matrix(anchor_boxes(anchors), boxes[1:])[:, 0] >= 0.35
    near_first = iou_matrix(anchor_boxes(anchors), boxes[:1])[:, 0] >= 0.35
    assert np.all(labels[near_second] == IGNORE)
    assert np.all(labels[near_first] == 1)


def test_no_faces_means_all_background() -> None:
    anchors = anchor_grid(SPEC, 64, 64)
    labels, loc = match_anchors(np.zeros((0, 4), np.float32), np.zeros(0, bool), anchors, SPEC)
    assert np.all(labels == 0) and np.all(loc == 0)
