"""Face detection: the `FaceDetector` interface, the `Detections` value and the detector of a store version.

Formats are plug-ins in `shared/detectors/` (one class each, registered by the `format` a version's
meta.json names); `load_detector` is what the pipeline and the services call.
"""

from __future__ import annotations

from typing import Any

from shared.detectors import Detections, FaceDetector, ScalePolicy, detector_from_version
from shared.detectors.retinaface import (
    ANCHOR_MIN_SIZE,
    RetinaFaceDetector,
    RetinaFaceSpec,
    anchor_grid,
    decode_boxes,
    decode_landmarks,
    encode_boxes,
)
from shared.detectors.yunet import YuNetDetector
from shared.model_store import ModelStore

__all__ = ["ANCHOR_MIN_SIZE", "Detections", "FaceDetector", "RetinaFaceDetector", "RetinaFaceSpec", "ScalePolicy",
           "YuNetDetector", "anchor_grid", "decode_boxes", "decode_landmarks", "encode_boxes", "load_detector"]


def load_detector(store: ModelStore | None = None, version: str | None = None, policy: str | None = None,
                  **options: Any) -> FaceDetector:
    """The detector of a store version (the promoted one when None), whatever its format, at the version's
    defaults for `policy` ("photos", "streams"; options given win); raises ModelError."""
    store = store or ModelStore()
    return detector_from_version(store.load("detector", version), policy=policy, **options)
