"""Every detector format loads through the registry and serves the boxes of its training model."""

from __future__ import annotations

import numpy as np
import pytest

from shared.detectors import FORMATS, detector_from_version
from shared.model_store import ModelError, ModelStore
from tests.conftest import REPO

STORE = ModelStore(REPO / "models")
SHIPPED = {"retinaface-onnx": "retinaface-stock", "yunet-onnx": "yunet-n-stock"}


def _photo() -> np.ndarray:
    """A fixed input with real faces: the dashboard screenshot committed in docs/."""
    import cv2

    return cv2.imread(str(REPO / "docs" / "screenshots" / "dashboard.png"))


def test_every_registered_format_has_a_shipped_version() -> None:
    assert set(FORMATS) == set(SHIPPED)
    for fmt, name in SHIPPED.items():
        detector = detector_from_version(STORE.load("detector", name))
        assert type(detector).format == fmt and detector.name == name
        assert len(detector.detect(np.full((120, 160, 3), 128, np.uint8))) == 0


def test_unknown_format_is_one_clear_error(tmp_path) -> None:
    import shutil

    shutil.copytree(REPO / "models" / "detector" / "yunet-n-stock", tmp_path / "detector" / "odd")
    store = ModelStore(tmp_path)
    meta = store.load("detector", "odd").meta
    store.finalize("detector", tmp_path / "detector" / "odd",
                   {k: v for k, v in meta.items() if k not in ("files",)} | {"format": "caffe-ssd"})
    with pytest.raises(ModelError, match="unknown detector format 'caffe-ssd'"):
        detector_from_version(store.load("detector", "odd"))


def _same_boxes(served, trained) -> None:
    image = _photo()
    a, b = served.detect(image), trained.detect(image)
    assert len(a) == len(b) > 0
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-2)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


def test_retinaface_serves_the_keras_training_model() -> None:
    tf = pytest.importorskip("tensorflow")
    from training.detector.model import build_retinaface, load_onnx_weights

    version = STORE.load("detector", "retinaface-stock")
    model = build_retinaface()
    load_onnx_weights(model, version.file())

    served = detector_from_version(version, score_threshold=0.3)

    def keras_forward(image: np.ndarray) -> list[np.ndarray]:  # the training input: NHWC BGR minus the mean
        centred = image.astype(np.float32) - np.asarray(served.input_mean(), np.float32)
        loc, logits, pts = model(centred, training=False)
        return [np.asarray(loc), tf.nn.softmax(logits).numpy(), np.asarray(pts)]

    trained = detector_from_version(version, score_threshold=0.3)
    trained.forward = keras_forward
    _same_boxes(served, trained)


def test_yunet_serves_the_pytorch_training_model() -> None:
    torch = pytest.importorskip("torch")
    from training.detector.yunet_model import YuNetTorch

    version = STORE.load("detector", "yunet-n-stock")
    model = YuNetTorch(version.file()).eval()
    served = detector_from_version(version, score_threshold=0.3)
    names = served.output_names

    def torch_forward(image: np.ndarray) -> list[np.ndarray]:  # the training input: NCHW float BGR
        with torch.no_grad():
            out = model(torch.from_numpy(image.transpose(0, 3, 1, 2).astype(np.float32)))
        sizes = [(image.shape[1] // s) * (image.shape[2] // s) for s in model.strides]
        parts = {}
        for head, tensor in out.items():
            t = torch.sigmoid(tensor) if head in ("cls", "obj") else tensor
            for s, chunk in zip(model.strides, torch.split(t, sizes, dim=1)):
                parts[f"{head}_{s}"] = chunk.numpy()
        return [parts[n] for n in names]

    trained = detector_from_version(version, score_threshold=0.3)
    trained.forward = torch_forward
    _same_boxes(served, trained)
