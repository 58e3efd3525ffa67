"""Augmentation keeps boxes on the faces they belong to."""

from __future__ import annotations

import cv2
import numpy as np

from training.detector.augment import MIN_BOX, augment, low_resolution

MEAN = (104.0, 117.0, 127.0)


def test_boxes_follow_the_faces() -> None:
    image = np.zeros((300, 400, 3), np.uint8)
    boxes = np.array([[50, 60, 130, 160], [250, 100, 330, 200]], np.float32)
    for x1, y1, x2, y2 in boxes.astype(int):
        image[y1:y2, x1:x2] = 255
    learned = 0
    for seed in range(30):
        out, out_boxes, kept, skip = augment(image, boxes, 128, np.random.default_rng(seed), MEAN, (0.3, 1.0))
        assert out.shape == (128, 128, 3) and out.dtype == np.uint8
        assert len(out_boxes) == len(kept) == len(skip)
        assert np.all(out_boxes >= 0) and np.all(out_boxes <= 128)
        for (x1, y1, x2, y2), skipped in zip(out_boxes, skip):
            if min(x2 - x1, y2 - y1) < MIN_BOX:
                assert skipped
            if skipped:
                continue
            learned += 1
            cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2)
            # the box centre lies on the white face (colour jitter moves it, but never to dark)
            assert out[cy, cx].mean() > 110, seed
            # and the box keeps most of the face (it was not cut much by the crop)
            assert 0.7 * 0.8 <= (x2 - x1) / (y2 - y1) <= 0.8 / 0.7, seed
    assert learned > 20


def test_faces_cut_by_the_crop_are_not_learned_from() -> None:
    image = np.zeros((1000, 1000, 3), np.uint8)
    boxes = np.array([[100, 100, 900, 900]], np.float32)  # one huge face: windows under 800 px cut it
    outcomes = set()
    for seed in range(40):
        _, out_boxes, kept, skip = augment(image, boxes, 64, np.random.default_rng(seed), MEAN, (0.04, 0.2))
        if len(kept):
            w, h = out_boxes[0, 2:] - out_boxes[0, :2]
            outcomes.add(bool(skip[0]))
            if not skip[0]:
                assert min(w, h) / max(w, h) >= 0.7  # at most slightly cut
    assert outcomes == {True, False}


def test_photos_without_faces_give_no_boxes() -> None:
    image = np.full((200, 200, 3), 128, np.uint8)
    out, out_boxes, kept, skip = augment(image, np.zeros((0, 4), np.float32), 96, np.random.default_rng(0), MEAN)
    assert out.shape == (96, 96, 3) and out_boxes.shape == (0, 4) and len(kept) == 0


def test_low_resolution_round_trip_removes_detail_and_keeps_the_frame() -> None:
    # a 1-px checkerboard is pure detail: any downscale by >= 1.5x averages it to grey
    board = (np.indices((120, 160)).sum(0) % 2 * 255).astype(np.uint8)
    image = np.repeat(board[..., None], 3, axis=2)
    for seed in range(5):
        out = low_resolution(image, np.random.default_rng(seed))
        assert out.shape == image.shape and out.dtype == np.uint8
        assert out.std() < 0.25 * image.std()  # the detail is gone
        assert abs(out.mean() - image.mean()) < 10  # the picture is not
    # and augment applies it to the share asked for: with lowres=1 the edges of 4-px squares are softer on
    # average than without it (blur, JPEG and colour jitter are random on both sides, hence the mean)
    coarse = ((np.indices((240, 320)) // 4).sum(0) % 2 * 255).astype(np.uint8)
    coarse = np.repeat(coarse[..., None], 3, axis=2)
    boxes = np.array([[20, 20, 60, 60]], np.float32)

    def edges(lowres: float) -> float:
        outs = [augment(coarse, boxes, 64, np.random.default_rng(s), MEAN, (1.0, 1.0), lowres=lowres)[0]
                for s in range(20)]
        return float(np.mean([cv2.Laplacian(o[..., 0].astype(np.float32), cv2.CV_32F).std() for o in outs]))

    assert edges(1.0) < 0.5 * edges(0.0)
