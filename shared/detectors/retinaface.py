"""RetinaFace (MobileNet-0.25) run through ONNX Runtime with our own anchor decoding."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from shared.detectors.base import ScaledOnnxDetector
from shared.detectors.registry import register

ANCHOR_MIN_SIZE = 16  # pixels: the smallest RetinaFace anchor


@dataclass(frozen=True)
class RetinaFaceSpec:
    """Anchor layout and input normalisation of a RetinaFace export."""

    strides: tuple[int, ...] = (8, 16, 32)
    anchor_sizes: tuple[tuple[int, ...], ...] = ((16, 32), (64, 128), (256, 512))
    variances: tuple[float, float] = (0.1, 0.2)
    mean_bgr: tuple[float, float, float] = (104.0, 117.0, 127.0)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> RetinaFaceSpec:
        """Read the spec from a detector version's meta.json (missing keys keep the defaults)."""
        spec = meta.get("retinaface", {})
        default = cls()
        return cls(
            strides=tuple(spec.get("strides", default.strides)),
            anchor_sizes=tuple(tuple(s) for s in spec.get("anchor_sizes", default.anchor_sizes)),
            variances=tuple(spec.get("variances", default.variances)),
            mean_bgr=tuple(spec.get("mean_bgr", default.mean_bgr)),
        )


@lru_cache(maxsize=16)
def anchor_grid(spec: RetinaFaceSpec, width: int, height: int) -> np.ndarray:
    """Anchors (cx, cy, w, h) in pixels for a padded input of width x height, in the network's output order."""
    parts = []
    for stride, sizes in zip(spec.strides, spec.anchor_sizes):
        nx, ny = math.ceil(width / stride), math.ceil(height / stride)
        xx, yy = np.meshgrid(np.arange(nx), np.arange(ny))
        centers = (np.stack([xx.ravel(), yy.ravel()], axis=1) + 0.5) * stride
        wh = np.array([[s, s] for s in sizes], dtype=np.float64)
        parts.append(
            np.hstack([np.repeat(centers, len(sizes), axis=0), np.tile(wh, (nx * ny, 1))])
        )
    return np.vstack(parts).astype(np.float32)


def decode_boxes(loc: np.ndarray, anchors: np.ndarray, variances: tuple[float, float]) -> np.ndarray:
    """Turn regression offsets into [x1, y1, x2, y2] boxes (pixels)."""
    centers = anchors[:, :2] + loc[:, :2] * variances[0] * anchors[:, 2:]
    sizes = anchors[:, 2:] * np.exp(loc[:, 2:] * variances[1])
    return np.hstack([centers - sizes / 2, centers + sizes / 2])


def encode_boxes(boxes: np.ndarray, anchors: np.ndarray, variances: tuple[float, float]) -> np.ndarray:
    """Inverse of `decode_boxes`: regression targets for boxes matched to anchors."""
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    sizes = np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-6)
    offsets = (centers - anchors[:, :2]) / (variances[0] * anchors[:, 2:])
    scales = np.log(sizes / anchors[:, 2:]) / variances[1]
    return np.hstack([offsets, scales])


def decode_landmarks(pts: np.ndarray, anchors: np.ndarray, variance: float) -> np.ndarray:
    """Turn landmark offsets (N x 10) into N x 5 x 2 pixel points."""
    pts = pts.reshape(-1, 5, 2)
    return anchors[:, None, :2] + pts * variance * anchors[:, None, 2:]


@register("retinaface-onnx")
class RetinaFaceDetector(ScaledOnnxDetector):
    """RetinaFace ONNX: faces of `min_face` pixels are scaled to the smallest anchor (16 px)."""

    native_min_face = ANCHOR_MIN_SIZE

    spec: RetinaFaceSpec

    @classmethod
    def spec_from_meta(cls, meta: dict[str, Any]) -> RetinaFaceSpec:
        """Anchor layout and mean from meta.json."""
        return RetinaFaceSpec.from_meta(meta)

    def input_mean(self) -> tuple[float, float, float]:
        """RetinaFace's BGR mean (from meta.json)."""
        return tuple(float(v) for v in self.spec.mean_bgr)

    def infer(self, image: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw boxes, scores and landmarks (scores above `floor`, before NMS) in the given image's pixels."""
        padded = self.network_input(image)
        loc, conf, pts = (out[0] for out in self.forward(padded))
        scores = conf[:, 1]
        keep = np.flatnonzero(scores > floor)
        anchors = anchor_grid(self.spec, padded.shape[2], padded.shape[1])[keep]
        # The network regresses in units normalised by the input size; anchors are in pixels, so
        # normalised offsets and pixel anchors give pixel boxes directly.
        boxes = decode_boxes(loc[keep], anchors, self.spec.variances)
        marks = decode_landmarks(pts[keep], anchors, self.spec.variances[0])
        return boxes, scores[keep], marks
