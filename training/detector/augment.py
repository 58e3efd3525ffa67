"""Training augmentation for real cameras: scale jitter and crops, flips, colour, blur, JPEG compression."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

MIN_BOX = 6.0  # pixels in the training input: smaller faces are ignored, neither positive nor negative
MIN_VISIBLE = 0.7  # faces cut by the crop to less than this share of their area are ignored too
SCALE_RANGE = (0.5, 2.0)  # training scale relative to the photo's own pixels (the detector runs at 1.0)
LOWRES_FACTOR = (1.5, 3.5)  # how much detail a low-resolution round trip removes (down, then back up)


def random_crop(
    image: np.ndarray, boxes: np.ndarray, side: float, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random square window of `side` pixels (larger than the photo pads it): its origin, and the indices
    and shifted boxes of the faces centred in it."""
    h, w = image.shape[:2]
    for _ in range(20):
        x0 = rng.uniform(min(0, w - side), max(0, w - side))
        y0 = rng.uniform(min(0, h - side), max(0, h - side))
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        inside = np.all((centres > [x0, y0]) & (centres < [x0 + side, y0 + side]), axis=1)
        if inside.any() or len(boxes) == 0:
            break
    kept = np.flatnonzero(inside)
    return np.array([x0, y0]), kept, np.clip(boxes[kept] - [x0, y0, x0, y0], 0, side)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)


def photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, saturation and hue jitter, sometimes blur and JPEG re-compression."""
    img = image.astype(np.float32)
    if rng.random() < 0.8:
        img = img * rng.uniform(0.6, 1.4) + rng.uniform(-32, 32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.float32)
        hsv[..., 1] *= rng.uniform(0.5, 1.5)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-10, 10)) % 180
        img = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
    if rng.random() < 0.05:
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if rng.random() < 0.25:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < 0.35:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 90))])
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return img


def low_resolution(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The image as a small photo upscaled back to its size: what the scale policy feeds the detector for a
    low-resolution photo (area downscale by 1.5-3.5x, then linear or cubic upscale)."""
    h, w = image.shape[:2]
    factor = rng.uniform(*LOWRES_FACTOR)
    small = cv2.resize(image, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA)
    up = cv2.INTER_LINEAR if rng.random() < 0.5 else cv2.INTER_CUBIC
    return cv2.resize(small, (w, h), interpolation=up)


def augment(
    image: np.ndarray, boxes: np.ndarray, size: int, rng: np.random.Generator, mean_bgr: tuple[float, float, float],
    scale_range: tuple[float, float] = SCALE_RANGE, lowres: float = 0.0,
    paste: Callable[[np.ndarray, np.ndarray, np.ndarray, np.random.Generator], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A `size` x `size` training image, its boxes, their input indices and a mask of boxes not to learn from.

    Boxes not to learn from are faces that end up tinier than MIN_BOX or mostly cut off by the crop
    (a clipped box would teach the model to fire on face parts). A share `lowres` of the images goes
    through a low-resolution round trip (`low_resolution`). `paste(image, boxes, area, rng)` may add faces to
    the cropped image (in place) inside `area`, the photo's part of it, and return their boxes: those follow
    the kept ones in the boxes and the mask, and `kept` still indexes the input boxes only.
    """
    # log-uniform scale jitter around the scale the detector runs at: small faces get smaller, big ones bigger
    scale = float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))))
    side = size / scale
    origin, kept, crop_boxes = random_crop(image, boxes, side, rng)
    # warpAffine crops, pads (with the mean, i.e. zero after normalisation) and resizes in one step.
    matrix = np.array([[scale, 0, -origin[0] * scale], [0, scale, -origin[1] * scale]], np.float32)
    out = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                         borderValue=tuple(float(m) for m in mean_bgr))
    out_boxes = crop_boxes * scale
    h, w = image.shape[:2]
    area = np.clip(np.array([-origin[0], -origin[1], w - origin[0], h - origin[1]]) * scale, 0, size)
    if rng.random() < 0.5:
        out = out[:, ::-1].copy()
        out_boxes = np.stack([size - out_boxes[:, 2], out_boxes[:, 1], size - out_boxes[:, 0], out_boxes[:, 3]], 1)
        area = np.array([size - area[2], area[1], size - area[0], area[3]])
    cut = _area(crop_boxes) < MIN_VISIBLE * _area(boxes[kept])
    if paste is not None:
        pasted = paste(out, out_boxes, area, rng)
        out_boxes = np.vstack([out_boxes.reshape(-1, 4), pasted])
        cut = np.concatenate([cut, np.zeros(len(pasted), bool)])
    if lowres and rng.random() < lowres:  # no draw when off: a seed gives the same images as before
        out = low_resolution(out, rng)
    out = photometric(out, rng)
    sides = np.minimum(out_boxes[:, 2] - out_boxes[:, 0], out_boxes[:, 3] - out_boxes[:, 1])
    return out, out_boxes.astype(np.float32).reshape(-1, 4), kept, (sides < MIN_BOX) | cut
