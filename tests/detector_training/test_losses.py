"""The detection loss rewards right answers and ignores what it is told to ignore."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from training.detector.losses import detection_loss  # noqa: E402


def _batch():
    labels = np.zeros((2, 50), np.int32)
    labels[0, :3] = 1
    labels[1, 5] = 1
    labels[1, 6] = -1
    loc_t = np.zeros((2, 50, 4), np.float32)
    loc_t[labels == 1] = 0.5
    return loc_t, labels


def _logits(labels: np.ndarray, right: bool) -> np.ndarray:
    face = (labels == 1) if right else (labels != 1)
    return np.stack([np.where(face, -4.0, 4.0), np.where(face, 4.0, -4.0)], -1).astype(np.float32)


def test_correct_predictions_cost_less() -> None:
    loc_t, labels = _batch()
    good, box_good, _ = detection_loss(tf.constant(loc_t), tf.constant(_logits(labels, True)), loc_t, labels)
    bad, box_bad, _ = detection_loss(tf.constant(loc_t + 1), tf.constant(_logits(labels, False)), loc_t, labels)
    assert float(box_good) == pytest.approx(0.0, abs=1e-6)
    assert float(bad) > 10 * float(good)
    assert float(box_bad) > 0


def test_ignored_anchors_do_not_count() -> None:
    loc_t, labels = _batch()
    logits = _logits(labels, True)
    base, _, _ = detection_loss(tf.constant(loc_t), tf.constant(logits), loc_t, labels)
    logits[1, 6] = [9.0, -9.0]  # confidently "background" on an ignored anchor
    same, _, _ = detection_loss(tf.constant(loc_t), tf.constant(logits), loc_t, labels)
    assert float(same) == pytest.approx(float(base))


def test_hard_negatives_are_mined() -> None:
    loc_t, labels = _batch()
    logits = _logits(labels, True)
    base, _, _ = detection_loss(tf.constant(loc_t), tf.constant(logits), loc_t, labels)
    logits[0, 40] = [-5.0, 5.0]  # one confident false positive
    worse, _, cls = detection_loss(tf.constant(loc_t), tf.constant(logits), loc_t, labels)
    assert float(worse) > float(base) + 2.0
