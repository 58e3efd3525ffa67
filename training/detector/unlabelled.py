"""Faces a base detector is sure of that no annotation covers (people the annotators skipped), per photo.

Both detector trainers (train.py, yunet_train.py) ignore these regions instead of teaching the model that they
are background.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from shared.imaging import ImageError, read_image
from training.detector.data import Scene
from training.detector.targets import iou_matrix

log = logging.getLogger(__name__)
MAX_IOU = 0.3  # a found face overlapping an annotation this much or more is that annotation


def unlabelled_boxes(scenes: list[Scene], detect: Callable[[np.ndarray], np.ndarray],
                     progress: bool = False) -> list[np.ndarray]:
    """Per photo, the boxes (N x 4, float32) `detect` finds in it that overlap no annotated face; an unreadable
    photo has none."""
    found = []
    for scene in tqdm(scenes, desc="finding unlabelled faces", unit="photo", leave=False, disable=not progress):
        try:
            boxes = np.asarray(detect(read_image(scene.image)), np.float32).reshape(-1, 4)
        except ImageError:
            boxes = np.zeros((0, 4), np.float32)
        if len(boxes) and len(scene.boxes):
            boxes = boxes[iou_matrix(boxes, scene.boxes).max(1) < MAX_IOU]
        found.append(boxes)
    log.info("%d unlabelled faces in %d photos will be ignored", sum(map(len, found)), len(scenes))
    return found
