"""The one face-crop function (inference and training crops alike), and the small JPEG crops messages carry."""

from __future__ import annotations

import base64
import binascii
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


CROP_LONG_SIDE = 128  # Face.crop: long side at most this many pixels
THUMBNAIL_LONG_SIDE = 96  # PersonRecord.thumbnail
CROP_JPEG_QUALITY = 80


def face_crop_jpeg(image: np.ndarray, box: Sequence[float], long_side: int = CROP_LONG_SIDE,
                   margin: float = DEFAULT_MARGIN) -> str:
    """The face in `box` with `margin` around it, clipped to the image, shrunk to `long_side`, as base64 JPEG.

    Small faces are not enlarged. Pass an already blurred image when privacy blur is on.
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = square_box(box, margin)
    region = image[max(0, y1) : min(h, y2), max(0, x1) : min(w, x2)]
    if region.size == 0:
        region = np.zeros((1, 1, 3), dtype=np.uint8)
    return _jpeg_base64(_shrink(region, long_side))


def shrink_jpeg(data: str, long_side: int = THUMBNAIL_LONG_SIDE) -> str | None:
    """A base64 JPEG shrunk so its long side is at most `long_side`; None when `data` is not a JPEG."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None
    if max(image.shape[:2]) <= long_side:
        return data
    return _jpeg_base64(_shrink(image, long_side))


def _shrink(image: np.ndarray, long_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    if scale >= 1:
        return image
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _jpeg_base64(image: np.ndarray) -> str:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, CROP_JPEG_QUALITY])
    if not ok:
        raise ValueError("could not encode a face crop as JPEG")
    return base64.b64encode(encoded.tobytes()).decode("ascii")
