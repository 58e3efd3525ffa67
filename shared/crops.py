"""The one face-crop function, used for inference and for cutting training crops alike."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

DEFAULT_MARGIN = 0.2


def square_box(box: Sequence[float], margin: float = DEFAULT_MARGIN) -> tuple[int, int, int, int]:
    """Grow [x1, y1, x2, y2] by `margin` of its size on each side and make it square around its centre."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(x2 - x1, y2 - y1, 1.0) * (1 + 2 * margin)
    half = side / 2
    return (round(cx - half), round(cy - half), round(cx + half), round(cy + half))


def crop_face(
    image: np.ndarray, box: Sequence[float], size: int, margin: float = DEFAULT_MARGIN
) -> np.ndarray:
    """Cut a square, margin-padded face crop of `size` x `size` pixels (edges replicated outside the image)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = square_box(box, margin)
    pad_l, pad_t = max(0, -x1), max(0, -y1)
    pad_r, pad_b = max(0, x2 - w), max(0, y2 - h)
    inner = image[max(0, y1) : min(h, y2), max(0, x1) : min(w, x2)]
    if inner.size == 0:
        inner = np.zeros((1, 1, 3), dtype=image.dtype)
        pad_l = pad_t = pad_r = pad_b = 0
    if pad_l or pad_t or pad_r or pad_b:
        inner = cv2.copyMakeBorder(inner, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if inner.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(inner, (size, size), interpolation=interp)
