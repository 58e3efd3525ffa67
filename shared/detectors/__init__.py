"""Face-detector plug-ins: one class per model format, found through `shared.detectors.registry`.

Importing this package registers every built-in format (`retinaface-onnx`, `yunet-onnx`).
"""

from shared.detectors import retinaface, yunet  # noqa: F401  (registers the formats)
from shared.detectors.base import Detections, FaceDetector, ScaledOnnxDetector, ScalePolicy
from shared.detectors.registry import (
    FORMATS,
    POLICIES,
    detector_class,
    detector_from_version,
    policy_defaults,
    register,
)

__all__ = ["FORMATS", "POLICIES", "Detections", "FaceDetector", "ScalePolicy", "ScaledOnnxDetector",
           "detector_class", "detector_from_version", "policy_defaults", "register"]
