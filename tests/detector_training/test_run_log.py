"""What both detector trainers share: the unlabelled-face search and the run bookkeeping (RunLog)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.detector.data import Scene
from training.detector.run_log import RunLog
from training.detector.unlabelled import unlabelled_boxes


def test_found_faces_that_overlap_an_annotation_are_left_out(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((40, 40, 3), np.uint8))
    annotated = Scene(tmp_path / "a.png", np.array([[0, 0, 10, 10]], np.float32), ("with_mask",))
    bare = Scene(tmp_path / "a.png", np.zeros((0, 4), np.float32), ())
    broken = Scene(tmp_path / "missing.png", np.zeros((0, 4), np.float32), ())
    found = np.array([[1, 1, 10, 10], [20, 20, 30, 30]], np.float32)  # the first is the annotated face
    boxes = unlabelled_boxes([annotated, bare, broken], lambda image: found)
    assert boxes[0].tolist() == [[20, 20, 30, 30]] and boxes[1].tolist() == found.tolist()
    assert boxes[2].shape == (0, 4) and all(b.dtype == np.float32 for b in boxes)


@dataclass
class Config:
    size: int = 64


def test_progress_lines_history_and_summary(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "training.detector.run_log")
    run = RunLog(total=5, steps_per_epoch=2, parts=("box", "cls"), count="pos", log_every=2)
    logged = [run.step(1.0 + i, 0.5, 0.25 * i, 10.0) for i in range(5)]
    assert logged == [False, True, False, True, True]  # every 2nd step and the last
    assert run.history[0] == {"step": 2, "loss": 1.5, "box": 0.5, "cls": 0.125}
    assert [h["step"] for h in run.history] == [2, 4, 5]
    assert "step 2/5 loss 1.500 (box 0.500 cls 0.125, 10 pos/batch)" in caplog.text
    summary = run.summary(Config(), photos=10)
    assert summary["config"] == {"size": 64} and summary["steps"] == 5 and summary["epochs_done"] == 2.5
    assert summary["train_photos"] == 10 and summary["stopped_early"] is False


def test_divergence_and_the_time_limit() -> None:
    run = RunLog(total=10, steps_per_epoch=5, parts=("box",), count="fg", log_every=1)
    with pytest.raises(RuntimeError, match="training diverged at step 1"):
        run.step(float("nan"), 0.0, 0.0)
    timed = RunLog(total=10, steps_per_epoch=5, parts=("box",), count="fg", log_every=1, max_minutes=1.0)
    assert not timed.time_up()
    timed.start -= 61
    assert timed.time_up() and timed.summary(Config(), 1)["stopped_early"]
    assert not RunLog(total=1, steps_per_epoch=1, parts=(), count="fg", log_every=1, start=0.0).time_up()
