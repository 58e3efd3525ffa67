"""Annotated scene photos as detector training data: face boxes per photo, split by photo."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.splits import ILC2021_VAL, read_list
from training.voc import VocPhoto, load_voc


@dataclass(frozen=True)
class Scene:
    """One annotated photo: its path, face boxes [x1, y1, x2, y2] (pixels, N x 4) and their labels."""

    image: Path
    boxes: np.ndarray
    labels: tuple[str, ...]

    @classmethod
    def from_voc(cls, photo: VocPhoto) -> Scene:
        """Every labelled object of a VOC photo is a face, whatever its mask label."""
        boxes = np.asarray([o.box for o in photo.objects], np.float32).reshape(-1, 4)
        return cls(photo.image, boxes, tuple(o.label for o in photo.objects))


def split_scenes(voc_dirs: list[Path], val_list: Path = ILC2021_VAL) -> tuple[list[Scene], list[Scene]]:
    """(train, validation) photos of the VOC folders; a photo is validation when its stem is in `val_list`."""
    held_out = set(read_list(val_list))
    photos = [p for d in voc_dirs for p in load_voc(d)]
    train = [Scene.from_voc(p) for p in photos if p.stem not in held_out]
    val = [Scene.from_voc(p) for p in photos if p.stem in held_out]
    return train, val
