"""The detection pipeline: find faces, crop them, classify the crops in one batch."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared.classifier import FaceClassifier
from shared.crops import crop_face
from shared.face_detector import FaceDetector, RetinaFaceDetector
from shared.model_store import ModelStore
from shared.schemas import NOT_FACE, Face


@dataclass
class StageTimes:
    """Seconds spent per stage, accumulated over calls."""

    detect: float = 0.0
    classify: float = 0.0
    calls: int = 0


@dataclass
class Pipeline:
    """Face detector + face classifier; faces classified as `not_face` are dropped."""

    detector: FaceDetector
    classifier: FaceClassifier
    drop_labels: frozenset[str] = frozenset({NOT_FACE})
    times: StageTimes = field(default_factory=StageTimes)

    @property
    def model_version(self) -> str:
        """Names of the detector and classifier versions in use."""
        return f"{self.classifier.name}+{self.detector.name}"

    def process(self, image: np.ndarray) -> list[Face]:
        """Detect and classify every face in a BGR uint8 image."""
        t0 = time.perf_counter()
        found = self.detector.detect(image)
        t1 = time.perf_counter()
        size, margin = self.classifier.input_size, self.classifier.crop_margin
        crops = [crop_face(image, box, size, margin) for box in found.boxes]
        probs = self.classifier.predict(crops)
        t2 = time.perf_counter()
        self.times.detect += t1 - t0
        self.times.classify += t2 - t1
        self.times.calls += 1
        labels = self.classifier.labels
        faces = []
        for box, score, row in zip(found.boxes, found.scores, probs):
            best = int(np.argmax(row))
            if labels[best] in self.drop_labels:
                continue
            faces.append(
                Face(
                    box=[int(round(v)) for v in box],
                    score=round(float(score), 4),
                    label=labels[best],
                    confidence=round(float(row[best]), 4),
                    probs={name: round(float(p), 4) for name, p in zip(labels, row)},
                )
            )
        return faces


def load_pipeline(
    store: ModelStore | None = None,
    classifier_version: str | None = None,
    detector_version: str | None = None,
    **detector_options: Any,
) -> Pipeline:
    """Build the pipeline from the model store (promoted versions unless named); raises ModelError."""
    store = store or ModelStore()
    classifier = FaceClassifier.from_version(store.load("classifier", classifier_version))
    detector = RetinaFaceDetector.from_version(store.load("detector", detector_version), **detector_options)
    return Pipeline(detector=detector, classifier=classifier)
