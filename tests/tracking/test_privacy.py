"""blur_faces: faces become unrecognisable, the rest of the picture stays as it was."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from shared.face_detector import RetinaFaceDetector
from shared.model_store import ModelStore
from shared.privacy import blur_faces
from tests.conftest import REPO


def _textured(h: int = 240, w: int = 320) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _detail(image: np.ndarray) -> float:
    """Mean absolute difference between horizontal neighbours."""
    return float(np.abs(np.diff(image.astype(int), axis=1)).mean())


def test_face_region_loses_detail_and_the_rest_is_untouched() -> None:
    image = _textured()
    out = blur_faces(image, [[100, 60, 180, 160]], margin=0.0)
    assert out.shape == image.shape and out.dtype == image.dtype
    assert not np.shares_memory(out, image)
    face_before, face_after = image[60:160, 100:180], out[60:160, 100:180]
    # Fine detail (pixel-to-pixel differences) is gone, not just slightly softened.
    assert _detail(face_after) < 0.1 * _detail(face_before)
    outside = np.ones(image.shape[:2], bool)
    outside[60:160, 100:180] = False
    assert np.array_equal(out[outside], image[outside])


def test_boxes_outside_or_degenerate_are_safe() -> None:
    image = _textured()
    out = blur_faces(image, [[-50, -50, 30, 30], [300, 200, 400, 300], [10, 10, 10, 10], [500, 500, 600, 600]])
    assert out.shape == image.shape
    assert not np.array_equal(out[0:30, 0:30], image[0:30, 0:30])
    assert not np.array_equal(out[220:, 300:], image[220:, 300:])
    assert np.array_equal(out[100:200, 100:200], image[100:200, 100:200])
    assert np.array_equal(blur_faces(image, []), image)


def test_blurred_face_is_no_longer_found_by_the_detector(shared_data: Path) -> None:
    detector = RetinaFaceDetector.from_version(ModelStore(REPO / "models").load("detector"))
    face = cv2.imread(str(shared_data / "faces/fm12k/without_mask/fm12k_without_mask_00002.jpg"))
    scene = np.full((360, 640, 3), 90, np.uint8)
    scene[100:210, 200:310] = cv2.resize(face, (110, 110))
    found = detector.detect(scene)
    assert len(found) == 1
    assert len(detector.detect(blur_faces(scene, found.boxes))) == 0
