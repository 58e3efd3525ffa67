"""Augmentation keeps boxes on the faces they belong to."""

from __future__ import annotations

import numpy as np

from training.detector.augment import MIN_BOX, augment

MEAN = (104.0, 117.0, 127.0)


def test_boxes_follow_the_faces() -> None:
    image = np.zeros((300, 400, 3), np.uint8)
    boxes = np.array([[50, 60, 130, 160], [250, 100, 330, 200]], np.float32)
    for x1, y1, x2, y2 in boxes.astype(int):
        image[y1:y2, x1:x2] = 255
    for seed in range(30):
        out, out_boxes, kept, small = augment(image, boxes, 128, np.random.default_rng(seed), MEAN)
        assert out.shape == (128, 128, 3) and out.dtype == np.uint8
        assert len(out_boxes) == len(kept) == len(small)
        assert np.all(out_boxes >= 0) and np.all(out_boxes <= 128)
        for (x1, y1, x2, y2), tiny in zip(out_boxes, small):
            assert tiny == (min(x2 - x1, y2 - y1) < MIN_BOX)
            if tiny:
                continue
            cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2)
            # the box centre lies on the white face (colour jitter moves it, but never to dark)
            assert out[cy, cx].mean() > 110, seed


def test_photos_without_faces_give_no_boxes() -> None:
    image = np.full((200, 200, 3), 128, np.uint8)
    out, out_boxes, kept, small = augment(image, np.zeros((0, 4), np.float32), 96, np.random.default_rng(0), MEAN)
    assert out.shape == (96, 96, 3) and out_boxes.shape == (0, 4) and len(kept) == 0
