"""Detector scoring: AP, recall per class and false positives per image on known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.face_detector import Detections
from training.detector.data import Scene, split_scenes
from training.detector.evaluate import evaluate_detector


class ScriptedDetector:
    """Answers each photo with boxes derived from its annotation."""

    name = "scripted"

    def __init__(self, answers: dict[int, Detections]) -> None:
        self.answers = answers

    def detect(self, image: np.ndarray) -> Detections:
        return self.answers[int(image[0, 0, 0])]


def _scenes(tmp_path: Path) -> list[Scene]:
    import cv2

    scenes = []
    for i, boxes in enumerate(([[10, 10, 40, 50], [60, 10, 90, 50]], [[20, 20, 60, 70]])):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), np.full((100, 100, 3), i, np.uint8))
        labels = ("with_mask", "without_mask")[: len(boxes)] if i == 0 else ("mask_incorrect",)
        scenes.append(Scene(path, np.asarray(boxes, np.float32), labels))
    return scenes


def test_perfect_detector(tmp_path: Path) -> None:
    scenes = _scenes(tmp_path)
    answers = {i: Detections(s.boxes, np.full(len(s.boxes), 0.9, np.float32)) for i, s in enumerate(scenes)}
    m = evaluate_detector(ScriptedDetector(answers), scenes)
    assert m.ap50 == pytest.approx(1.0)
    assert m.recall == {"with_mask": 1.0, "without_mask": 1.0, "mask_incorrect": 1.0}
    assert m.fp_per_image == 0.0 and m.images == 2


def test_misses_and_false_positives(tmp_path: Path) -> None:
    scenes = _scenes(tmp_path)
    answers = {
        # finds the masked face, misses the bare one, adds a false box and a low-score box
        0: Detections(np.array([[11, 11, 41, 50], [70, 70, 95, 95], [60, 10, 90, 50]], np.float32),
                      np.array([0.9, 0.8, 0.3], np.float32)),
        1: Detections(np.array([[20, 20, 60, 70]], np.float32), np.array([0.95], np.float32)),
    }
    m = evaluate_detector(ScriptedDetector(answers), scenes, score_threshold=0.5)
    assert m.recall["with_mask"] == 1.0 and m.recall["without_mask"] == 0.0 and m.recall["mask_incorrect"] == 1.0
    assert m.fp_per_image == pytest.approx(0.5)
    assert 0.5 < m.ap50 < 1.0  # the low-score box still counts for AP
    # the bare face is missed only because its box scores 0.3: found from threshold 0.3 down
    assert m.extra["misses"] == {"without_mask": {"overlap": 0, "low_score": 1, "not_found": 0}}
    sweep = m.extra["thresholds"]
    assert sweep["0.4"]["recall"]["without_mask"] == 0.0 and sweep["0.3"]["recall"]["without_mask"] == 1.0
    assert sweep["0.6"]["fp_per_image"] == pytest.approx(0.5) and sweep["0.2"]["fp_per_image"] == pytest.approx(0.5)


def test_misplaced_and_absent_boxes_are_told_apart(tmp_path: Path) -> None:
    scenes = _scenes(tmp_path)
    answers = {
        # masked face: a box shifted down by half its height (IoU 1/3); bare face: nothing near it
        0: Detections(np.array([[10, 30, 40, 70]], np.float32), np.array([0.9], np.float32)),
        1: Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)),
    }
    m = evaluate_detector(ScriptedDetector(answers), scenes)
    assert m.extra["misses"] == {
        "with_mask": {"overlap": 1, "low_score": 0, "not_found": 0},
        "without_mask": {"overlap": 0, "low_score": 0, "not_found": 1},
        "mask_incorrect": {"overlap": 0, "low_score": 0, "not_found": 1},
    }
    assert m.fp_per_image == pytest.approx(0.5)


def test_split_keeps_listed_photos_out_of_training(generated_voc) -> None:
    voc, val_list = generated_voc
    train, val = split_scenes([voc], val_list)
    held = set(val_list.read_text().split())
    assert {s.image.stem for s in val} == held
    assert not held & {s.image.stem for s in train}
    assert len(train) + len(val) == 10


def test_ap_at_looser_overlap_counts_faces_boxed_unlike_the_label(tmp_path: Path) -> None:
    scenes = _scenes(tmp_path)
    # every face found, each box grown to 1.5x the label's width and height (IoU 1/2.25 = 0.44)
    grown = {i: Detections(np.array([[(x1 + x2) / 2 - 0.75 * (x2 - x1), (y1 + y2) / 2 - 0.75 * (y2 - y1),
                                      (x1 + x2) / 2 + 0.75 * (x2 - x1), (y1 + y2) / 2 + 0.75 * (y2 - y1)]
                                     for x1, y1, x2, y2 in s.boxes], np.float32),
                           np.full(len(s.boxes), 0.9, np.float32)) for i, s in enumerate(scenes)}
    m = evaluate_detector(ScriptedDetector(grown), scenes)
    assert m.ap50 == pytest.approx(0.0)
    assert m.extra["ap_looser_iou"] == {"0.4": pytest.approx(1.0), "0.3": pytest.approx(1.0)}
