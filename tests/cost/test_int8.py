"""The `openvino-int8` back end: NNCF int8 models made by training/quantize_openvino.py load and answer as the
float models do."""

from __future__ import annotations

import numpy as np
import pytest

from shared.backends import int8_file
from shared.classifier import FaceClassifier
from shared.model_store import ModelError, ModelStore

pytest.importorskip("openvino")


def test_an_int8_classifier_is_made_beside_the_float_one_and_agrees_with_it(tmp_path) -> None:
    pytest.importorskip("nncf")  # the quantizer (extra openvino-quantize); serving int8 models needs only openvino
    from tests.tiny_classifier import build_tiny_classifier
    from training.quantize_openvino import quantize_classifier

    store = ModelStore(tmp_path)
    version = build_tiny_classifier(store, "tiny")
    with pytest.raises(ModelError, match="no int8 model model-int8.xml"):
        FaceClassifier.from_version(version, backend="openvino-int8")
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(48)]
    written = quantize_classifier(version, crops[:32])
    assert written == [int8_file(version.file())] and written[0].with_suffix(".bin").is_file()
    int8 = FaceClassifier.from_version(version, backend="openvino-int8")
    reference = FaceClassifier.from_version(version, backend="tflite")
    assert int8.backend == "openvino-int8"
    got, want = int8.predict(crops[32:]), reference.predict(crops[32:])
    assert got.shape == want.shape == (16, 3)
    assert np.abs(got - want).max() < 0.05


def test_the_shipped_int8_detector_finds_the_float_detectors_faces_on_a_real_photo(scene_photos) -> None:
    import cv2

    from shared.detectors import detector_from_version
    from tests.conftest import REPO

    version = ModelStore(REPO / "models").load("detector")
    image = cv2.imread(str(scene_photos[4]))
    reference = detector_from_version(version, backend="onnxruntime").detect(image)
    int8 = detector_from_version(version, backend="openvino-int8")
    assert int8.backend == "openvino-int8"
    found = int8.detect(image)
    assert len(reference.scores) >= 4 and abs(len(found.scores) - len(reference.scores)) <= 1
    for box, score in zip(found.boxes, found.scores):
        best = int(np.argmax([_iou(box, other) for other in reference.boxes]))
        assert _iou(box, reference.boxes[best]) > 0.85 and abs(score - reference.scores[best]) < 0.1
    for height in (480, 544, 736):  # heights at which int8 depthwise convolutions crashed OpenVINO 2026.4
        int8.forward(int8.network_input(np.zeros((height, 640, 3), np.uint8)))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
