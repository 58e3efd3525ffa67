"""The shared crop function: square, margin-padded, edge-replicated, fixed size."""

from __future__ import annotations

import cv2
import numpy as np

from shared.crops import crop_face, square_box


def test_square_box_grows_by_margin_around_centre() -> None:
    assert square_box([10, 20, 30, 60], margin=0.0) == (0, 20, 40, 60)
    x1, y1, x2, y2 = square_box([10, 20, 30, 60], margin=0.25)
    assert (x2 - x1, y2 - y1) == (60, 60)
    assert ((x1 + x2) / 2, (y1 + y2) / 2) == (20, 40)


def test_crop_inside_image_keeps_content() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    image[40:60, 40:60] = 255
    crop = crop_face(image, [40, 40, 60, 60], size=20, margin=0.0)
    assert crop.shape == (20, 20, 3)
    assert crop.min() == 255


def test_crop_at_border_replicates_edges() -> None:
    image = np.full((50, 50, 3), 7, np.uint8)
    crop = crop_face(image, [-10, -10, 20, 20], size=32, margin=0.2)
    assert crop.shape == (32, 32, 3)
    assert (crop == 7).all()


def test_crop_fully_outside_is_still_a_valid_crop() -> None:
    image = np.full((50, 50, 3), 9, np.uint8)
    assert crop_face(image, [200, 200, 220, 220], size=16).shape == (16, 16, 3)


def test_face_crop_jpeg_is_small_and_keeps_small_faces_small() -> None:
    import base64

    from shared.crops import face_crop_jpeg, shrink_jpeg
    from shared.schemas import Face, FrameResult

    image = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    big = face_crop_jpeg(image, [100, 100, 500, 400])
    decoded = cv2.imdecode(np.frombuffer(base64.b64decode(big), np.uint8), cv2.IMREAD_COLOR)
    assert max(decoded.shape[:2]) == 128
    small = cv2.imdecode(np.frombuffer(base64.b64decode(face_crop_jpeg(image, [10, 10, 40, 40])), np.uint8), 1)
    assert small.shape[:2] == (42, 42)  # a 30 px face with a 20 % margin on each side: not enlarged
    thumb = cv2.imdecode(np.frombuffer(base64.b64decode(shrink_jpeg(big)), np.uint8), cv2.IMREAD_COLOR)
    assert max(thumb.shape[:2]) == 96
    assert shrink_jpeg("not base64!") is None and shrink_jpeg(base64.b64encode(b"junk").decode()) is None

    face = Face(box=[1, 2, 3, 4], score=0.9, label="with_mask", confidence=0.8, probs={}, crop=big)
    result = FrameResult(source="c", width=10, height=10, faces=[face])
    assert '"crop"' in result.to_json() and '"crop"' not in result.without_crops().to_json()
    assert result.faces[0].crop == big  # the original keeps its crop
