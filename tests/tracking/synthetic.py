"""Synthetic faces and clips with a known script, for the tracking tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from shared.schemas import Face, FrameResult


def face(x: float, y: float, label: str = "with_mask", confidence: float = 0.9, score: float = 0.95,
         size: int = 60) -> Face:
    """A classified face whose box has its top-left corner at (x, y)."""
    x, y = int(round(x)), int(round(y))
    return Face(box=[x, y, x + size, y + size], score=score, label=label, confidence=confidence,
                probs={label: confidence})


def frame(index: int, faces: list[Face], camera: str = "cam", fps: float = 25.0) -> FrameResult:
    """A frame result of a 640x360 camera at `fps`."""
    return FrameResult(source=camera, camera=camera, frame=index, time=index / fps, width=640, height=360,
                       faces=faces)


@dataclass
class Walker:
    """One face crossing the picture: visible in frames [start, end), moving (dx, dy) pixels per frame."""

    image: np.ndarray
    start: int
    end: int
    x: float
    y: float
    dx: float
    dy: float = 0.0
    width: int = 110

    def position(self, index: int) -> tuple[int, int]:
        """Top-left corner of the pasted face in frame `index`."""
        steps = index - self.start
        return int(round(self.x + self.dx * steps)), int(round(self.y + self.dy * steps))


def write_clip(path: Path, walkers: list[Walker], frames: int, fps: float = 25.0,
               size: tuple[int, int] = (640, 360)) -> Path:
    """Render the walkers over a textured background into an MP4 file."""
    rng = np.random.default_rng(7)
    background = cv2.GaussianBlur(rng.integers(60, 140, (size[1], size[0], 3), dtype=np.uint8), (0, 0), 3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened(), "no MP4 encoder in this OpenCV build"
    try:
        for index in range(frames):
            image = background.copy()
            for walker in walkers:
                if walker.start <= index < walker.end:
                    crop = cv2.resize(walker.image, (walker.width, round(walker.width * walker.image.shape[0]
                                                                         / walker.image.shape[1])))
                    x, y = walker.position(index)
                    image[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
            writer.write(image)
    finally:
        writer.release()
    return path
