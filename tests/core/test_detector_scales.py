"""Scale-aware inference and scale evaluation: the scale policy, tiles and their merge, size-bin recall."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pytest

from shared.detectors import ScaledOnnxDetector, ScalePolicy
from shared.detectors.tiling import merge_boxes, tile_grid
from shared.face_detector import Detections
from tests.conftest import REPO
from training.detector.data import Scene
from training.detector.evaluate import evaluate_detector
from training.scales import parse_scales, scale_photo

YUNET_ONNX = REPO / "models" / "detector" / "yunet-n-stock" / "model.onnx"


def test_scale_policy_upscales_small_photos_within_the_budget() -> None:
    policy = ScalePolicy(min_face=8, native_min_face=16, max_pixels=640 * 480, max_upscale=4)
    assert policy.scale_for(320, 240) == pytest.approx(2.0)  # wanted 2x, fits the budget exactly
    assert policy.scale_for(400, 300) == pytest.approx((640 * 480 / (400 * 300)) ** 0.5)  # budget-bound
    assert policy.scale_for(640, 480) == 1.0 and policy.scale_for(1920, 1080) == 1.0  # never below 1x
    assert ScalePolicy(min_face=32, native_min_face=16).scale_for(1920, 1080) == 0.5  # big faces only: cheaper
    assert ScalePolicy(min_face=2, native_min_face=16, max_pixels=10**9, max_upscale=3).scale_for(10, 10) == 3


def test_tiles_cover_the_frame_with_overlap() -> None:
    tiles = tile_grid(1000, 500, 400, 100)
    assert tiles[0][:2] == (0, 0) and tiles[-1][2:] == (1000, 500)
    xs = sorted({t[0] for t in tiles})
    assert all(b - a <= 300 for a, b in zip(xs, xs[1:]))  # consecutive tiles share >= 100 px
    assert tile_grid(300, 200, 400, 100) == [(0, 0, 300, 200)]


def test_merge_keeps_the_whole_box_over_a_cut_one() -> None:
    whole = [100, 100, 160, 170]
    half = [130, 100, 160, 170]  # the part of the same face left of a tile edge at x=160
    other = [300, 100, 340, 150]
    boxes = np.array([half, whole, other], np.float32)
    keep = merge_boxes(boxes, np.array([0.95, 0.8, 0.9]), np.array([True, False, False]), 0.4)
    assert sorted(keep.tolist()) == [1, 2]  # IoU(half, whole) is 0.5: containment catches it anyway


class WhiteBlobDetector(ScaledOnnxDetector):
    """Finds white blobs: what a tile sees of a white square is what it reports (a cut face is cut)."""

    native_min_face = 16

    def infer(self, image: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mask = (image.min(axis=2) > 200).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h, _ in stats[1:n]], np.float32).reshape(-1, 4)
        scores = np.linspace(0.9, 0.8, len(boxes)).astype(np.float32)
        return boxes, scores, np.zeros((len(boxes), 5, 2), np.float32)


def test_sliced_inference_keeps_one_box_for_a_face_cut_by_a_tile_edge() -> None:
    detector = WhiteBlobDetector(YUNET_ONNX, max_side=400, tile=240, tile_overlap=80, min_face=16)
    image = np.zeros((300, 800, 3), np.uint8)
    x_edge = tile_grid(800, 300, 240, 80)[0][2]  # right side of the first tile
    faces = [(x_edge - 30, 100, x_edge + 30, 170), (600, 40, 650, 100)]
    for x1, y1, x2, y2 in faces:
        image[y1:y2, x1:x2] = 255
    found = detector.detect(image)  # 800 px > max_side: tiles plus a whole-frame pass
    assert len(found) == 2
    got = sorted(found.boxes.tolist())
    for box, face in zip(got, sorted(faces)):
        assert np.allclose(box, face, atol=2)


def test_parse_scales() -> None:
    assert parse_scales("1,0.5,0.33") == (1.0, 0.5, 0.33)
    for bad in ("", "2", "0", "a,b"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_scales(bad)


class SizeLimitedDetector:
    """Finds exactly the labelled faces of at least `smallest` px (sqrt of area) in the image it is given."""

    name = "size-limited"

    def __init__(self, truth: dict[tuple[int, int], np.ndarray], smallest: float) -> None:
        self.truth, self.smallest = truth, smallest

    def detect(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        full = self.truth[int(image[0, 0, 0]) // 10]
        boxes = full * (w / 600)  # the test photos are 600 px wide
        sizes = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        keep = boxes[sizes >= self.smallest].astype(np.float32)
        return Detections(keep, np.full(len(keep), 0.9, np.float32))


def test_scale_evaluation_on_known_boxes(tmp_path: Path) -> None:
    truth = {0: np.array([[10, 10, 70, 70], [100, 100, 130, 130], [200, 50, 220, 70]], np.float32),
             1: np.array([[300, 200, 348, 248]], np.float32)}
    scenes = []
    for key, boxes in truth.items():
        path = tmp_path / f"{key}.png"
        cv2.imwrite(str(path), np.full((400, 600, 3), key * 10, np.uint8))
        scenes.append(Scene(path, boxes, ("with_mask",) * len(boxes)))
    detector = SizeLimitedDetector(truth, smallest=15)
    # sizes at 1x: 60, 30, 20, 48 -> all found; at 0.5x: 30, 15, 10, 24 -> the 10 px face is missed
    full = evaluate_detector(detector, scenes, 0.5, scale=1.0)
    half = evaluate_detector(detector, scenes, 0.5, scale=0.5)
    assert full.ap50 == pytest.approx(1.0) and full.recall["with_mask"] == 1.0
    assert half.recall["with_mask"] == 0.75 and half.scale == 0.5
    assert half.ap50 == pytest.approx(0.75, abs=0.02) and half.fp_per_image == 0.0
    assert half.recall_by_size["8-12"] == {"faces": 1, "recall": 0.0}
    assert half.recall_by_size["12-16"] == {"faces": 1, "recall": 1.0}  # 15 px
    assert half.recall_by_size["24-32"] == {"faces": 2, "recall": 1.0}  # 24 and 30 px
    assert half.recall_by_size["<8"]["recall"] is None
    assert full.recall_by_size[">=48"] == {"faces": 2, "recall": 1.0}


def test_scale_photo_scales_boxes_with_the_image() -> None:
    image = np.zeros((300, 400, 3), np.uint8)
    small, boxes = scale_photo(image, np.array([[40, 30, 80, 90]]), 0.5)
    assert small.shape == (150, 200, 3)
    assert boxes.tolist() == [[20, 15, 40, 45]]
