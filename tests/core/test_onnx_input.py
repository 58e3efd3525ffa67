"""The detector graphs take a uint8 image: same outputs as the original float graph, clear errors for bad files."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from shared.detectors import detector_from_version
from shared.detectors.onnx_input import with_image_input
from shared.detectors.retinaface import RetinaFaceDetector
from shared.model_store import ModelError, ModelStore
from tests.conftest import REPO

STORE = ModelStore(REPO / "models")
MEAN = (104.0, 117.0, 127.0)


@pytest.mark.parametrize(("version", "mean"), [("retinaface-stock", MEAN), ("yunet-n-stock", (0.0, 0.0, 0.0))])
def test_uint8_graph_equals_the_float_graph(version: str, mean: tuple[float, float, float]) -> None:
    path = STORE.load("detector", version).file()
    image = np.random.default_rng(3).integers(0, 256, (1, 96, 128, 3), dtype=np.uint8)
    original = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    blob = (image.astype(np.float32) - np.asarray(mean, np.float32)).transpose(0, 3, 1, 2).copy()
    expected = original.run(None, {original.get_inputs()[0].name: blob})
    fused = ort.InferenceSession(with_image_input(path, mean), providers=["CPUExecutionProvider"])
    assert fused.get_inputs()[0].type == "tensor(uint8)"
    got = fused.run(None, {fused.get_inputs()[0].name: image})
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)


def test_padding_uses_the_mean_colour() -> None:
    detector = RetinaFaceDetector(REPO / "models" / "detector" / "retinaface-stock" / "model.onnx")
    padded = detector.network_input(np.zeros((50, 70, 3), np.uint8))
    assert padded.shape == (1, 64, 96, 3) and padded.flags["C_CONTIGUOUS"]
    assert (padded[0, :50, :70] == 0).all()
    assert (padded[0, 50:, :] == np.asarray(MEAN, np.uint8)).all() and (padded[0, :, 70:] == np.asarray(MEAN)).all()


@pytest.mark.parametrize("content", [b"not a model at all", b""])
def test_a_broken_model_file_is_one_clear_error(tmp_path, content: bytes) -> None:
    import shutil

    shutil.copytree(REPO / "models" / "detector" / "retinaface-stock", tmp_path / "detector" / "broken")
    (tmp_path / "detector" / "broken" / "model.onnx").write_bytes(content)
    store = ModelStore(tmp_path)
    meta = STORE.load("detector", "retinaface-stock").meta
    version = store.finalize("detector", tmp_path / "detector" / "broken",
                             {k: v for k, v in meta.items() if k != "files"})
    with pytest.raises(ModelError, match="detector version 'broken' cannot be loaded") as err:
        detector_from_version(version)
    assert "\n" not in str(err.value)
