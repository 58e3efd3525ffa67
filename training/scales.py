"""Evaluation at several image scales, and recall per face-size bin.

Photos and their boxes are downscaled in memory (`--scales 1,0.5,0.33`), so small-face accuracy is
measured on the same held-out photos; face size is the square root of the box area, in the pixels
of the (scaled) image the detector sees.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

SIZE_BINS: tuple[tuple[str, float, float], ...] = (
    ("<8", 0, 8), ("8-12", 8, 12), ("12-16", 12, 16), ("16-24", 16, 24),
    ("24-32", 24, 32), ("32-48", 32, 48), (">=48", 48, float("inf")),
)


def parse_scales(text: str) -> tuple[float, ...]:
    """'1,0.5,0.33' -> (1.0, 0.5, 0.33); argparse type (0 < scale <= 1)."""
    try:
        scales = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not scales or not all(0 < s <= 1 for s in scales):
        raise argparse.ArgumentTypeError("scales must be numbers in (0, 1], e.g. 1,0.5,0.33")
    return scales


def scale_photo(image: np.ndarray, boxes: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The image downscaled by `scale` (area interpolation, as a smaller camera would see it) and its boxes."""
    if scale == 1.0:
        return image, boxes
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    fx, fy = size[0] / w, size[1] / h
    return out, np.asarray(boxes, np.float64).reshape(-1, 4) * [fx, fy, fx, fy]


def face_sizes(boxes: np.ndarray) -> np.ndarray:
    """Square root of each box's area."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.sqrt(np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None))


def recall_by_size(sizes: np.ndarray, found: np.ndarray) -> dict[str, dict[str, float]]:
    """Per size bin: labelled faces, and the share found (None where a bin is empty)."""
    out = {}
    for label, lo, hi in SIZE_BINS:
        inside = (sizes >= lo) & (sizes < hi)
        n = int(inside.sum())
        out[label] = {"faces": n, "recall": round(float(found[inside].mean()), 4) if n else None}
    return out


def format_bins(bins: dict[str, dict[str, float]]) -> str:
    """'<8 0.12 (40)  8-12 0.55 (61) ...'."""
    cells = []
    for label, v in bins.items():
        recall = "-" if v["recall"] is None else f"{v['recall']:.2f}"
        cells.append(f"{label} {recall} ({v['faces']})")
    return "  ".join(cells)
