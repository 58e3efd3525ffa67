"""Copy-paste of small faces: patches keep their face box, pasted faces land where the boxes say and cover no
face already in the picture, and training examples learn them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from shared.face_detector import RetinaFaceSpec
from training.detector.augment import augment
from training.detector.data import Scene
from training.detector.paste import (
    SIDE_RANGE,
    FacePatch,
    cut_patch,
    hard_negative_patches,
    paste_faces,
    patches_from_crops,
    patches_from_scenes,
)
from training.detector.train import TrainConfig, training_examples

MEAN = (104.0, 117.0, 127.0)


def white_face_patch() -> FacePatch:
    """A black patch with a white 60 px face in it (so where it lands can be read back)."""
    image = np.zeros((200, 200, 3), np.uint8)
    image[70:130, 80:140] = 255
    patch = cut_patch(image, np.array([80, 70, 140, 130], np.float32))
    assert patch is not None
    return patch


def test_a_patch_keeps_context_and_its_face_box() -> None:
    patch = white_face_patch()
    assert max(patch.image.shape[:2]) <= 48 * (1 + 2 * 0.35) + 1  # shrunk to a 48 px face, margin included
    x1, y1, x2, y2 = patch.box.round().astype(int)
    assert patch.image[y1 + 2:y2 - 2, x1 + 2:x2 - 2].min() > 250  # the box is still on the face
    assert patch.image[:max(1, y1 - 2)].max() < 5  # and the margin is the context around it
    assert cut_patch(np.zeros((100, 100, 3), np.uint8), np.array([10, 10, 30, 30], np.float32)) is None


def test_pasted_faces_land_in_their_boxes_and_cover_no_face() -> None:
    patch = white_face_patch()
    image = np.full((320, 320, 3), 60, np.uint8)
    existing = np.array([[100, 100, 220, 220]], np.float32)
    image[100:220, 100:220] = 0
    sides = []
    for seed in range(20):
        canvas = image.copy()
        boxes = paste_faces(canvas, existing, np.array([0, 0, 320, 320]), [patch], 8, np.random.default_rng(seed))
        assert canvas[101:219, 101:219].max() == 0  # the face already there was not covered
        for x1, y1, x2, y2 in boxes:
            assert 0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 320
            cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2)
            assert canvas[cy, cx].mean() > 120  # a white face where the box says (background 60, light matched)
            sides.append(min(x2 - x1, y2 - y1))
    assert len(sides) > 60
    assert SIDE_RANGE[0] - 0.6 <= min(sides) and max(sides) <= SIDE_RANGE[1] + 0.6
    # pasted faces do not overlap one another either: each box centre is white in its own place
    boxes = paste_faces(image.copy(), existing, np.array([0, 0, 320, 320]), [patch], 30, np.random.default_rng(1))
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    inside = [(centres[i] > boxes[j, :2]).all() and (centres[i] < boxes[j, 2:]).all()
              for i in range(len(boxes)) for j in range(len(boxes)) if i != j]
    assert not any(inside)


def test_background_patches_are_pasted_without_a_box() -> None:
    image = np.full((200, 200, 3), 60, np.uint8)
    background = FacePatch(np.full((40, 40, 3), 250, np.uint8), np.array([7, 7, 33, 33], np.float32), face=False)
    boxes = paste_faces(image, np.zeros((0, 4), np.float32), np.array([0, 0, 200, 200]), [background], 6,
                        np.random.default_rng(0))
    assert boxes.shape == (0, 4) and image.max() > 200  # pasted, but nothing to learn as a face


def test_augment_appends_pasted_faces_after_the_kept_ones() -> None:
    patch = white_face_patch()
    image = np.full((300, 400, 3), 90, np.uint8)
    boxes = np.array([[50, 60, 130, 160]], np.float32)

    areas = []

    def paste(img: np.ndarray, b: np.ndarray, area: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        areas.append(area)
        return paste_faces(img, b, area, [patch], 5, rng)

    grew = 0
    for seed in range(10):
        out, out_boxes, kept, skip = augment(image, boxes, 128, np.random.default_rng(seed), MEAN, (0.3, 1.0),
                                             paste=paste)
        assert len(out_boxes) == len(skip) >= len(kept)
        assert np.all(kept < len(boxes))
        grew += len(out_boxes) - len(kept)
        x1, y1, x2, y2 = areas[-1].astype(int)
        for bx1, by1, bx2, by2 in out_boxes[len(kept):]:  # pasted on the photo, not on its padding
            assert x1 <= bx1 and bx2 <= x2 + 1 and y1 <= by1 and by2 <= y2 + 1
        assert not skip[len(kept):][np.min(out_boxes[len(kept):, 2:] - out_boxes[len(kept):, :2], axis=1) >= 8].any()
    assert grew >= 10


def test_patches_come_from_labelled_photos_and_from_crops_with_one_face(tmp_path: Path) -> None:
    photo = np.full((240, 320, 3), 80, np.uint8)
    photo[40:120, 50:130] = 250
    cv2.imwrite(str(tmp_path / "p.jpg"), photo)
    scenes = [Scene(tmp_path / "p.jpg", np.array([[50, 40, 130, 120], [200, 200, 210, 210]], np.float32), ("a", "b")),
              Scene(tmp_path / "missing.jpg", np.array([[0, 0, 50, 50]], np.float32), ("a",))]
    patches = patches_from_scenes(scenes)
    assert len(patches) == 1 and patches[0].face  # the 10 px face is too small to shrink, the missing photo skipped
    unlabelled = [np.array([[200, 20, 300, 120]], np.float32), np.zeros((0, 4), np.float32)]
    mixed = patches_from_scenes(scenes, unlabelled, distractors=5, rng=np.random.default_rng(0))
    background = [p for p in mixed if not p.face]
    assert sum(p.face for p in mixed) == 1 and len(background) >= 3
    for p in background:  # background patches are cut away from labelled and unlabelled faces: plain grey
        assert p.image.min() >= 70 and p.image.max() <= 90

    crops = tmp_path / "crops" / "with_mask"
    crops.mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(crops / f"{i}.jpg"), photo)
    (crops / "broken.jpg").write_bytes(b"not a jpeg")
    calls = []

    def detect(image: np.ndarray) -> np.ndarray:
        calls.append(image.shape)
        return np.array([[50, 40, 130, 120]] * (1 if len(calls) % 2 else 2), np.float32)  # one face, then two

    found = patches_from_crops([tmp_path / "crops"], detect, 10, np.random.default_rng(0))
    assert len(calls) == 4 and len(found) == 2  # crops where two faces were found are not used


def test_training_examples_learn_the_pasted_faces(tmp_path: Path) -> None:
    spec = RetinaFaceSpec()
    cv2.imwrite(str(tmp_path / "empty.jpg"), np.full((200, 200, 3), 90, np.uint8))
    scenes, unlabelled = [Scene(tmp_path / "empty.jpg", np.zeros((0, 4), np.float32), ())], [np.zeros((0, 4))]
    plain = TrainConfig(size=128, scale_range=(1.0, 1.0))
    pasting = TrainConfig(size=128, scale_range=(1.0, 1.0), paste=1.0)
    without = training_examples(scenes, unlabelled, plain, spec, np.random.default_rng(0))
    with_faces = training_examples(scenes, unlabelled, pasting, spec, np.random.default_rng(0), [white_face_patch()])
    assert sum(int((next(without)[2] == 1).sum()) for _ in range(5)) == 0
    assert sum(int((next(with_faces)[2] == 1).sum()) for _ in range(5)) >= 5  # anchors learn the pasted faces


def test_hard_negatives_are_what_the_detector_finds_where_no_face_is(tmp_path: Path) -> None:
    photo = np.full((240, 320, 3), 80, np.uint8)
    photo[40:100, 40:100] = 250  # a labelled face
    photo[150:170, 200:220] = 30  # a small dark blob the over-firing detector takes for a face
    photo[20:60, 220:260] = 200  # a face nobody labelled, which the trusted detector sees
    cv2.imwrite(str(tmp_path / "p.png"), photo)
    scenes = [Scene(tmp_path / "p.png", np.array([[40, 40, 100, 100]], np.float32), ("with_mask",))]

    def over(_image: np.ndarray) -> np.ndarray:
        return np.array([[42, 38, 101, 99], [200, 150, 220, 170], [221, 21, 259, 61]], np.float32)

    def trusted(_image: np.ndarray) -> np.ndarray:
        return np.array([[220, 20, 260, 60]], np.float32)

    negatives = hard_negative_patches(scenes, over, trusted)
    assert len(negatives) == 1 and not negatives[0].face
    x1, y1, x2, y2 = negatives[0].box.round().astype(int)
    assert negatives[0].image[y1 + 2:y2 - 2, x1 + 2:x2 - 2].max() <= 40  # the dark blob, with its context
    assert negatives[0].image.max() >= 75
