"""The original design's augmentation (rotation 25 deg, zoom 0.1, shifts 0.1, shear 0.2, horizontal flip)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random affine transform; shear is a shear factor (0.2 = about 11 degrees)."""

    rotation: float = 25.0
    zoom: float = 0.1
    shift: float = 0.1
    shear: float = 0.2
    flip: bool = True

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One random transform of a square image (edges replicated, like Keras's 'nearest' fill)."""
        size = image.shape[0]
        c = size / 2
        angle = np.deg2rad(rng.uniform(-self.rotation, self.rotation))
        zoom = rng.uniform(1 - self.zoom, 1 + self.zoom)
        shear = rng.uniform(-self.shear, self.shear)
        tx, ty = rng.uniform(-self.shift, self.shift, 2) * size
        cos, sin = np.cos(angle), np.sin(angle)
        linear = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1, shear], [0, 1]]) * zoom
        if self.flip and rng.random() < 0.5:
            linear = linear @ np.array([[-1, 0], [0, 1]])
        offset = np.array([c + tx, c + ty]) - linear @ np.array([c, c])
        matrix = np.hstack([linear, offset[:, None]]).astype(np.float32)
        return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
