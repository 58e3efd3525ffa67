"""RetinaFace detector: anchor maths, input scaling, and faces found on real photos."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from shared.face_detector import (
    RetinaFaceDetector,
    RetinaFaceSpec,
    anchor_grid,
    decode_boxes,
    encode_boxes,
)
from shared.model_store import ModelStore
from tests.conftest import REPO

STOCK_ONNX = REPO / "models" / "detector" / "retinaface-stock" / "model.onnx"


@pytest.fixture(scope="module")
def detector() -> RetinaFaceDetector:
    return RetinaFaceDetector.from_version(ModelStore(REPO / "models").load("detector", "retinaface-stock"))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_anchor_grid_layout() -> None:
    spec = RetinaFaceSpec()
    anchors = anchor_grid(spec, 64, 32)
    # strides 8, 16, 32 over 64x32 -> 8*4 + 4*2 + 2*1 cells, two sizes each
    assert anchors.shape == ((32 + 8 + 2) * 2, 4)
    assert anchors[0].tolist() == [4.0, 4.0, 16.0, 16.0]
    assert anchors[1].tolist() == [4.0, 4.0, 32.0, 32.0]
    assert anchors[-1].tolist() == [48.0, 16.0, 512.0, 512.0]


def test_encode_decode_round_trip() -> None:
    rng = np.random.default_rng(0)
    anchors = anchor_grid(RetinaFaceSpec(), 128, 96)[:50]
    xy = rng.uniform(0, 100, (50, 2))
    boxes = np.hstack([xy, xy + rng.uniform(5, 80, (50, 2))]).astype(np.float32)
    codes = encode_boxes(boxes, anchors, (0.1, 0.2))
    assert np.allclose(decode_boxes(codes, anchors, (0.1, 0.2)), boxes, atol=1e-3)


def test_min_face_sets_input_scale(detector: RetinaFaceDetector) -> None:
    assert detector.scale_for(640, 360) == 1.0
    detector_small = RetinaFaceDetector(STOCK_ONNX, min_face=8)
    assert detector_small.scale_for(640, 360) == 2.0
    assert detector_small.scale_for(4000, 3000) == 1.0  # past the pixel budget: not upscaled, sliced instead
    budget = RetinaFaceDetector(STOCK_ONNX, min_face=8, max_pixels=640 * 480)
    assert budget.scale_for(320, 240) == 2.0 and budget.scale_for(640, 480) == 1.0
    with pytest.raises(ValueError):
        RetinaFaceDetector(STOCK_ONNX, min_face=1)


def test_blank_image_has_no_faces(detector: RetinaFaceDetector) -> None:
    assert len(detector.detect(np.full((240, 320, 3), 128, np.uint8))) == 0


def ground_truth(annotation: Path) -> np.ndarray:
    root = ET.parse(annotation).getroot()
    return np.array([[float(o.find("bndbox").find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")]
                     for o in root.findall("object")])


def test_finds_annotated_faces_on_real_photos(detector: RetinaFaceDetector, shared_data: Path) -> None:
    import cv2

    scenes = shared_data / "scenes" / "ilc2021"
    matched = total = 0
    for stem in ("ilc2021_00002", "ilc2021_00004", "ilc2021_00005"):
        image = cv2.imread(str(scenes / "images" / f"{stem}.jpg"))
        found = detector.detect(image)
        truth = ground_truth(scenes / "annotations" / f"{stem}.xml")
        h, w = image.shape[:2]
        assert ((found.boxes[:, [0, 2]] >= 0) & (found.boxes[:, [0, 2]] <= w)).all()
        # landmarks of each face lie near its box
        for box, marks in zip(found.boxes, found.landmarks):
            pad = 0.3 * (box[2] - box[0])
            assert (marks[:, 0] > box[0] - pad).all() and (marks[:, 0] < box[2] + pad).all()
        total += len(truth)
        matched += sum(any(iou(t, f) >= 0.5 for f in found.boxes) for t in truth)
    assert total > 0 and matched / total >= 0.6
