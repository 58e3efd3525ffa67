"""The detection pipeline: find faces, crop them, classify the crops in one batch."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared.classifier import FaceClassifier
from shared.crops import crop_face
from shared.face_detector import Detections, FaceDetector, load_detector
from shared.model_store import ModelStore
from shared.schemas import NOT_FACE, Face
from shared.settled import FrameHints, SettledTrack


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

    def process(self, image: np.ndarray, hints: FrameHints | None = None) -> list[Face]:
        """Detect and classify every face in a BGR uint8 image (faces continuing settled `hints` tracks reuse
        their label)."""
        return self.classify([(image, self.detect(image))], [hints])[0]

    def process_many(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Detect faces in each image, then classify the crops of all of them in one batch."""
        return self.classify([(image, self.detect(image)) for image in images])

    def detect(self, image: np.ndarray) -> Detections:
        """The face detector's boxes for one image (timed as the detect stage)."""
        t0 = time.perf_counter()
        found = self.detector.detect(image)
        self.times.detect += time.perf_counter() - t0
        return found

    def classify(self, found: list[tuple[np.ndarray, Detections]],
                 hints: Sequence[FrameHints | None] | None = None) -> list[list[Face]]:
        """Crop and classify the detections of several images in one classifier batch; faces per image.

        With `hints` (one per image, or None), a face that continues a settled track takes the track's label
        (`Face.reused`) instead of being classified (shared/settled.py).
        """
        t0 = time.perf_counter()
        size, margin = self.classifier.input_size, self.classifier.crop_margin
        hints = hints or [None] * len(found)
        reused = [hint.match(dets.boxes) if hint is not None else [None] * len(dets)
                  for (_image, dets), hint in zip(found, hints)]
        crops = [crop_face(image, box, size, margin)
                 for (image, dets), known in zip(found, reused) for box, track in zip(dets.boxes, known)
                 if track is None]
        probs = iter(self.classifier.predict(crops)) if crops else iter(())
        self.times.classify += time.perf_counter() - t0
        self.times.calls += len(found)
        return [self._faces(dets, known, probs) for (_image, dets), known in zip(found, reused)]

    def _faces(self, found: Detections, known: list[SettledTrack | None], probs: Iterator[np.ndarray]) -> list[Face]:
        labels = self.classifier.labels
        faces = []
        for box, score, track in zip(found.boxes, found.scores, known):
            if track is not None:
                label, confidence, scores, reused = track.label, track.confidence, track.probs, True
            else:
                row = next(probs)
                best = int(np.argmax(row))
                label, confidence, reused = labels[best], float(row[best]), False
                scores = {name: round(float(p), 4) for name, p in zip(labels, row)}
            if label in self.drop_labels:
                continue
            faces.append(Face(box=[int(round(v)) for v in box], score=round(float(score), 4), label=label,
                              confidence=round(confidence, 4), probs=scores, reused=reused))
        return faces


def load_pipeline(
    store: ModelStore | None = None,
    classifier_version: str | None = None,
    detector_version: str | None = None,
    classifier_threads: int | None = None,
    classifier_backend: str = "auto",
    **detector_options: Any,
) -> Pipeline:
    """Build the pipeline from the model store (promoted versions unless named); raises ModelError.

    The detector may be of any registered format; options left as None take the version's defaults.
    Back ends: "auto" picks per model and CPU (shared/backends.py); `backend` among `detector_options`.
    """
    store = store or ModelStore()
    classifier = FaceClassifier.from_version(store.load("classifier", classifier_version), backend=classifier_backend,
                                             threads=classifier_threads)
    detector = load_detector(store, detector_version, **detector_options)
    return Pipeline(detector=detector, classifier=classifier)


def scale_faces(faces: list[Face], factor: float) -> list[Face]:
    """The faces with their boxes multiplied by `factor` (back to the original image after a reduced decode)."""
    if factor == 1.0:
        return faces
    return [face.model_copy(update={"box": [int(round(v * factor)) for v in face.box]}) for face in faces]
