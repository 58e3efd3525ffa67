"""Face detection: the `FaceDetector` interface and a RetinaFace (ONNX Runtime) implementation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import onnxruntime as ort

from shared.model_store import ModelVersion

ANCHOR_MIN_SIZE = 16  # pixels: the smallest RetinaFace anchor


@dataclass
class Detections:
    """Faces found in one image: boxes [x1, y1, x2, y2] (float pixels), scores and 5-point landmarks."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0, 5, 2), np.float32))

    def __len__(self) -> int:
        return len(self.scores)


class FaceDetector(Protocol):
    """Anything that finds faces in a BGR image."""

    name: str

    def detect(self, image: np.ndarray) -> Detections:
        """Find faces in a BGR uint8 image."""
        ...


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


class RetinaFaceDetector:
    """RetinaFace run through ONNX Runtime with our own pre- and post-processing.

    `min_face` (pixels) sets the input scale: faces that small are scaled up to the smallest anchor;
    `max_side` caps the scaled input so huge images stay fast.
    """

    def __init__(
        self,
        model_path: str | Path,
        spec: RetinaFaceSpec | None = None,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        min_face: int = 16,
        max_side: int = 1920,
        threads: int = 0,
        name: str = "retinaface",
    ) -> None:
        if min_face < 2:
            raise ValueError("min_face must be at least 2 pixels")
        self.spec = spec or RetinaFaceSpec()
        self.score_threshold, self.nms_threshold = score_threshold, nms_threshold
        self.min_face, self.max_side, self.name = min_face, max_side, name
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        # Idle threads must not spin: the classifier runs on the same cores right after detection.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    @classmethod
    def from_version(cls, version: ModelVersion, **options: Any) -> RetinaFaceDetector:
        """Build from a detector version of the model store."""
        return cls(version.file(), RetinaFaceSpec.from_meta(version.meta), name=version.name, **options)

    def scale_for(self, width: int, height: int) -> float:
        """Input scale for an image: upscale so `min_face` reaches the smallest anchor, capped by `max_side`."""
        scale = ANCHOR_MIN_SIZE / self.min_face
        return min(scale, self.max_side / max(width, height))

    def preprocess(self, image: np.ndarray, scale: float) -> np.ndarray:
        """Resize, pad to a multiple of 32, subtract the mean and return an NCHW float32 batch of one."""
        h, w = image.shape[:2]
        if scale != 1.0:
            image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
        sh, sw = image.shape[:2]
        ph, pw = math.ceil(sh / 32) * 32, math.ceil(sw / 32) * 32
        blob = np.zeros((ph, pw, 3), np.float32)
        blob[:sh, :sw] = image.astype(np.float32) - np.asarray(self.spec.mean_bgr, np.float32)
        return blob.transpose(2, 0, 1)[None]

    def detect(self, image: np.ndarray) -> Detections:
        """Find faces in a BGR uint8 image; boxes come back in the image's own pixels."""
        h, w = image.shape[:2]
        scale = self.scale_for(w, h)
        blob = self.preprocess(image, scale)
        loc, conf, pts = self.session.run(None, {self.input_name: blob})
        return self.postprocess(loc[0], conf[0], pts[0], blob.shape[3], blob.shape[2], scale, w, h)

    def postprocess(
        self, loc: np.ndarray, conf: np.ndarray, pts: np.ndarray,
        in_w: int, in_h: int, scale: float, width: int, height: int,
    ) -> Detections:
        """Decode raw network outputs, threshold, NMS and map back to image pixels."""
        scores = conf[:, 1]
        keep = np.flatnonzero(scores > self.score_threshold)
        if keep.size == 0:
            return Detections()
        anchors = anchor_grid(self.spec, in_w, in_h)[keep]
        # The network regresses in units normalised by the input size; anchors are in pixels, so
        # normalised offsets and pixel anchors give pixel boxes directly.
        boxes = decode_boxes(loc[keep], anchors, self.spec.variances)
        marks = decode_landmarks(pts[keep], anchors, self.spec.variances[0])
        scores = scores[keep]
        xywh = np.hstack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
        idx = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), self.score_threshold, self.nms_threshold)
        idx = np.asarray(idx, dtype=int).reshape(-1)
        boxes, scores, marks = boxes[idx] / scale, scores[idx], marks[idx] / scale
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        return Detections(boxes.astype(np.float32), scores.astype(np.float32), marks.astype(np.float32))
