"""What every face detector shares: the `Detections` value, the `FaceDetector` interface and scale-aware inference.

A format plug-in subclasses `ScaledOnnxDetector` and implements `infer` (one network pass on an
already scaled image); the base class picks the input scale per image (`ScalePolicy`), slices frames
too large for one pass into overlapping tiles, and merges the passes into one box per face.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import cv2
import numpy as np
import onnxruntime as ort

from shared.backends import OpenVinoModel, choose, model_for, precision_of
from shared.detectors.onnx_input import with_image_input
from shared.detectors.tiling import cut_by_tile, merge_boxes, tile_grid

log = logging.getLogger(__name__)


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
class ScalePolicy:
    """The input scale of an image, from its size.

    Faces of `min_face` image pixels are scaled to `native_min_face`, the smallest face the network
    finds at its own scale; upscaling stops at `max_upscale` and at `max_pixels` scaled pixels (a
    400 px photo is upscaled, a 1080p frame is not). Downscaling only happens when `min_face` is
    larger than the network needs (cheaper).
    """

    min_face: float = 16.0
    native_min_face: float = 16.0
    max_pixels: int = 1920 * 1080
    max_upscale: float = 4.0

    def scale_for(self, width: int, height: int) -> float:
        """Input scale for a width x height image."""
        wanted = min(self.native_min_face / self.min_face, self.max_upscale)
        if wanted <= 1.0:
            return wanted
        budget = math.sqrt(self.max_pixels / max(width * height, 1))
        return max(1.0, min(wanted, budget))


def resize_by(image: np.ndarray, scale: float) -> np.ndarray:
    """The image scaled by `scale` (linear when enlarging, area when shrinking); itself at scale 1."""
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)


class ScaledOnnxDetector:
    """Base of the ONNX detector formats: session set-up, scale policy, sliced inference and NMS.

    Scaled inputs whose long side exceeds `max_side` are sliced into `tile` pixel tiles overlapping
    by `tile_overlap` pixels, plus one pass of the whole frame fitted into `max_side` for faces
    larger than the overlap; the passes are merged so that each face keeps one box.
    """

    format: ClassVar[str] = ""
    native_min_face: ClassVar[float] = 16.0

    def __init__(
        self,
        model_path: str | Path,
        spec: Any = None,
        score_threshold: float | None = 0.5,
        nms_threshold: float = 0.4,
        min_face: float | None = None,
        max_pixels: int | None = 1920 * 1080,
        max_upscale: float = 4.0,
        max_side: int = 1920,
        tile: int = 960,
        tile_overlap: int = 160,
        threads: int = 0,
        name: str = "",
        backend: str = "onnxruntime",
    ) -> None:
        min_face = self.native_min_face if min_face is None else min_face  # None: the version's/class default
        score_threshold = 0.5 if score_threshold is None else score_threshold
        max_pixels = 1920 * 1080 if max_pixels is None else max_pixels
        if min_face < 2:
            raise ValueError("min_face must be at least 2 pixels")
        if not 0 < tile_overlap < tile <= max_side:
            raise ValueError("tiles need 0 < tile_overlap < tile <= max_side")
        self.spec = spec if spec is not None else self.spec_from_meta({})
        self.score_threshold, self.nms_threshold = float(score_threshold), float(nms_threshold)
        self.min_face, self.max_side, self.tile, self.tile_overlap = min_face, max_side, tile, tile_overlap
        self.policy = ScalePolicy(float(min_face), float(self.native_min_face), int(max_pixels), float(max_upscale))
        self.name = name or Path(model_path).stem
        self.backend = backend
        if backend == "openvino-int8":  # shared/backends.py: the int8 model of the same serving graph
            self._openvino: OpenVinoModel | None = OpenVinoModel(model_for(backend, model_path), "f32", threads)
            return
        graph = with_image_input(model_path, self.input_mean())  # OSError, ValueError: callers report one line
        if backend.startswith("openvino"):
            self._openvino = OpenVinoModel(graph, precision_of(backend), threads)
            return
        self._openvino = None
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        # Idle threads must not spin: the classifier runs on the same cores right after detection.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def input_mean(self) -> tuple[float, float, float]:
        """BGR mean the network's input has subtracted (the format's normalisation); zero by default."""
        return (0.0, 0.0, 0.0)

    def network_input(self, image: np.ndarray) -> np.ndarray:
        """A BGR uint8 image padded (right and bottom, with the mean colour) to multiples of 32: [1, H, W, 3]."""
        h, w = image.shape[:2]
        ph, pw = math.ceil(h / 32) * 32, math.ceil(w / 32) * 32
        if (ph, pw) != (h, w):
            image = cv2.copyMakeBorder(image, 0, ph - h, 0, pw - w, cv2.BORDER_CONSTANT,
                                       value=[round(v) for v in self.input_mean()])
        return np.ascontiguousarray(image)[None]

    def forward(self, image: np.ndarray) -> list[np.ndarray]:
        """The network on one `network_input` image (ONNX Runtime: cast, mean and NCHW transpose in the graph);
        the training model can stand in for it."""
        if self._openvino is not None:
            return self._openvino.run([image])
        return self.session.run(self.output_names, {self.input_name: image})

    def infer(self, image: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One network pass: boxes (N x 4), scores (N) and landmarks (N x 5 x 2) above `floor`, before NMS,
        in the pixels of the image given."""
        raise NotImplementedError

    def scale_for(self, width: int, height: int) -> float:
        """Input scale the policy picks for a width x height image."""
        return self.policy.scale_for(width, height)

    def detect(self, image: np.ndarray) -> Detections:
        """Find faces in a BGR uint8 image; boxes come back in the image's own pixels."""
        h, w = image.shape[:2]
        scale = self.scale_for(w, h)
        if max(w, h) * scale <= self.max_side:
            boxes, scores, marks = self._pass(image, scale)
            return self._clip(boxes, scores, marks, w, h)
        parts = []
        region = self.tile / scale  # tiles in image pixels
        overlap = self.tile_overlap / scale
        for x1, y1, x2, y2 in tile_grid(w, h, math.ceil(region), math.ceil(overlap)):
            b, s, m = self._pass(image[y1:y2, x1:x2], scale)
            b, m = b + [x1, y1, x1, y1], m + [x1, y1]
            parts.append((b, s, m, cut_by_tile(b, (x1, y1, x2, y2), w, h)))
        b, s, m = self._pass(image, self.max_side / max(w, h))  # faces bigger than a tile's overlap
        parts.append((b, s, m, np.zeros(len(s), bool)))
        boxes, scores, marks, cut = (np.concatenate(p) for p in zip(*parts))
        keep = merge_boxes(boxes, scores, cut, self.nms_threshold)
        return self._clip(boxes[keep], scores[keep], marks[keep], w, h)

    def _pass(self, image: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Resize by `scale`, run the network, NMS; boxes and landmarks in the pixels of `image`."""
        boxes, scores, marks = self.infer(resize_by(image, scale), self.score_threshold)
        if len(scores) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
        xywh = np.hstack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
        idx = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), self.score_threshold, self.nms_threshold)
        idx = np.asarray(idx, dtype=int).reshape(-1)
        return boxes[idx] / scale, scores[idx], marks[idx] / scale

    @staticmethod
    def _clip(boxes: np.ndarray, scores: np.ndarray, marks: np.ndarray, width: int, height: int) -> Detections:
        boxes = boxes.astype(np.float32).reshape(-1, 4)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        return Detections(boxes, scores.astype(np.float32).reshape(-1), marks.astype(np.float32).reshape(-1, 5, 2))

    @classmethod
    def spec_from_meta(cls, meta: dict[str, Any]) -> Any:
        """The format's own settings (anchor layout, normalisation) from a version's meta.json."""
        return None

    @classmethod
    def from_version(cls, version: Any, backend: str = "auto", **options: Any) -> ScaledOnnxDetector:
        """Build from a detector version of the model store, on the back end `choose` picks (shared/backends.py)."""
        built: dict[str, ScaledOnnxDetector] = {}

        def build(name: str) -> Callable[[], object]:
            built[name] = detector = cls(version.file(), cls.spec_from_meta(version.meta), name=version.name,
                                         backend=name, **options)
            image = detector.network_input(np.zeros((480, 640, 3), np.uint8))
            return lambda: detector.forward(image)

        choice = choose("detector", version, backend, build)
        log.info("detector %s runs on %s: %s", version.name, choice.backend, choice.reason)
        return built.get(choice.backend) or cls(version.file(), cls.spec_from_meta(version.meta), name=version.name,
                                                backend=choice.backend, **options)
