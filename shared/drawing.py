"""Drawing faces on images: one colour per label, label and confidence above each box."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from shared.schemas import Face

LABEL_COLORS_BGR: dict[str, tuple[int, int, int]] = {
    "with_mask": (60, 180, 75),
    "without_mask": (40, 40, 230),
    "mask_incorrect": (0, 150, 255),
}
OTHER_COLOR_BGR = (200, 200, 200)


def label_color_hex(label: str) -> str:
    """CSS colour (#rrggbb) of a label, matching the colours drawn on images."""
    b, g, r = LABEL_COLORS_BGR.get(label, OTHER_COLOR_BGR)
    return f"#{r:02x}{g:02x}{b:02x}"


def draw_faces(image: np.ndarray, faces: Iterable[Face]) -> np.ndarray:
    """Return a copy of a BGR image with each face's box, label and confidence drawn on it."""
    out = image.copy()
    thickness = max(1, round(max(out.shape[:2]) / 400))
    font_scale = max(0.4, max(out.shape[:2]) / 1400)
    for face in faces:
        label = face.track_label or face.label
        color = LABEL_COLORS_BGR.get(label, OTHER_COLOR_BGR)
        x1, y1, x2, y2 = face.box
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness)
        text = f"{label} {face.confidence:.0%}"
        if face.track_id is not None:
            text = f"#{face.track_id} {text}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        ty = y1 - 4 if y1 - th - base - 4 >= 0 else y2 + th + 4
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 4, ty + base), color, cv2.FILLED)
        cv2.putText(out, text, (x1 + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return out
