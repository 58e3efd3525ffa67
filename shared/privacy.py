"""Privacy: make faces unrecognisable in images that leave the detector (annotated output, crops, dashboard).

Public API:
- `PrivacyConfig` (the `privacy:` section of the config): `blur_faces` blurs the frames the stack shows.
- `blur_faces(image, boxes, margin=0.15) -> image`: a copy of a BGR image where each [x1, y1, x2, y2]
  box, grown by `margin` of its size on each side and clipped to the image, is pixelated to a coarse
  grid and then blurred, which removes identity while keeping the scene readable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict

BLOCKS = 6  # cells across the longer side of a face after pixelation


class PrivacyConfig(BaseModel):
    """The `privacy:` section of the config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    blur_faces: bool = False


def blur_faces(image: np.ndarray, boxes: Iterable[Sequence[float]], margin: float = 0.15) -> np.ndarray:
    """Return a copy of `image` with every face box pixelated and blurred."""
    out = image.copy()
    h, w = out.shape[:2]
    for box in boxes:
        x1, y1, x2, y2 = (float(v) for v in box)
        dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
        left, top = max(0, int(x1 - dx)), max(0, int(y1 - dy))
        right, bottom = min(w, int(np.ceil(x2 + dx))), min(h, int(np.ceil(y2 + dy)))
        if right - left < 2 or bottom - top < 2:
            continue
        region = out[top:bottom, left:right]
        rh, rw = region.shape[:2]
        scale = BLOCKS / max(rh, rw)
        small = cv2.resize(region, (max(1, round(rw * scale)), max(1, round(rh * scale))),
                           interpolation=cv2.INTER_AREA)
        coarse = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_NEAREST)
        kernel = max(3, (max(rh, rw) // BLOCKS) | 1)
        out[top:bottom, left:right] = cv2.GaussianBlur(coarse, (kernel, kernel), 0)
    return out
