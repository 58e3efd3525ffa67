"""YuNet (libfacedetection) run through ONNX Runtime: anchor-free heads at strides 8, 16 and 32."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from shared.detectors.base import ScaledOnnxDetector
from shared.detectors.registry import register

STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class YuNetSpec:
    """Head layout of a YuNet export (strides of its output levels)."""

    strides: tuple[int, ...] = STRIDES

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> YuNetSpec:
        """Read the spec from a detector version's meta.json (missing keys keep the defaults)."""
        return cls(strides=tuple(meta.get("yunet", {}).get("strides", STRIDES)))


@lru_cache(maxsize=32)
def prior_points(strides: tuple[int, ...], width: int, height: int) -> np.ndarray:
    """Prior points (x, y, stride) of a padded input, in the network's output order (row-major per level)."""
    parts = []
    for s in strides:
        nx, ny = width // s, height // s
        xx, yy = np.meshgrid(np.arange(nx), np.arange(ny))
        parts.append(np.stack([xx.ravel() * s, yy.ravel() * s, np.full(nx * ny, s)], axis=1))
    return np.vstack(parts).astype(np.float32)


def decode_yunet(bbox: np.ndarray, kps: np.ndarray, priors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes [x1, y1, x2, y2] and 5 landmarks from YuNet regression outputs (as OpenCV's FaceDetectorYN does)."""
    s = priors[:, 2:3]
    centre = priors[:, :2] + bbox[:, :2] * s
    size = np.exp(np.minimum(bbox[:, 2:4], 10.0)) * s
    boxes = np.hstack([centre - size / 2, centre + size / 2])
    marks = priors[:, None, :2] + kps.reshape(-1, 5, 2) * s[:, None]
    return boxes, marks


@register("yunet-onnx")
class YuNetDetector(ScaledOnnxDetector):
    """YuNet-n/s ONNX (dynamic input size); score = sqrt(class score x objectness), as in OpenCV."""

    native_min_face = 10  # pixels: the smallest face YuNet finds reliably at its own scale

    spec: YuNetSpec

    def __init__(self, model_path: str | Path, spec: YuNetSpec | None = None, **options: Any) -> None:
        super().__init__(model_path, spec, **options)
        wanted = [f"{head}_{s}" for head in ("cls", "obj", "bbox", "kps") for s in self.spec.strides]
        missing = [n for n in wanted if n not in self.output_names]
        if missing:
            raise ValueError(f"{model_path}: not a YuNet export (no output {missing[0]})")
        self.output_names = wanted

    @classmethod
    def spec_from_meta(cls, meta: dict[str, Any]) -> YuNetSpec:
        """Output strides from meta.json."""
        return YuNetSpec.from_meta(meta)

    def infer(self, image: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw boxes, scores and landmarks (scores above `floor`, before NMS) in the given image's pixels."""
        padded = self.network_input(image)
        ph, pw = padded.shape[1:3]
        out = dict(zip(self.output_names, self.forward(padded)))
        cls, obj, bbox, kps = (np.concatenate([out[f"{head}_{s}"][0] for s in self.spec.strides])
                               for head in ("cls", "obj", "bbox", "kps"))
        scores = np.sqrt(np.clip(cls[:, 0], 0, 1) * np.clip(obj[:, 0], 0, 1))
        keep = np.flatnonzero(scores > floor)
        priors = prior_points(self.spec.strides, pw, ph)[keep]
        boxes, marks = decode_yunet(bbox[keep], kps[keep], priors)
        return boxes, scores[keep], marks
