"""The Keras re-creation matches the stock ONNX, and exported weights serve the same boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

tf = pytest.importorskip("tensorflow")

from shared.face_detector import RetinaFaceDetector  # noqa: E402
from training.detector.model import build_retinaface, export_onnx, load_onnx_weights  # noqa: E402


def _keras_outputs(model, blob: np.ndarray) -> list[np.ndarray]:
    loc, logits, pts = model(blob.transpose(0, 2, 3, 1), training=False)
    return [np.asarray(loc), tf.nn.softmax(logits).numpy(), np.asarray(pts)]


def test_keras_model_reproduces_stock_onnx(stock_onnx: Path) -> None:
    model = build_retinaface()
    assert load_onnx_weights(model, stock_onnx) == 56
    blob = np.random.default_rng(0).uniform(-120, 130, (1, 3, 96, 128)).astype(np.float32)
    reference = ort.InferenceSession(str(stock_onnx)).run(None, {"input": blob})
    for ours, theirs in zip(_keras_outputs(model, blob), reference):
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() < 1e-4


def test_exported_onnx_serves_the_training_model(stock_onnx: Path, tmp_path: Path) -> None:
    model = build_retinaface()
    load_onnx_weights(model, stock_onnx)
    rng = np.random.default_rng(1)
    for layer in model.layers:  # move every weight so a missed or mis-transposed tensor shows
        if layer.weights:
            layer.set_weights([w * rng.uniform(0.9, 1.1, w.shape).astype(np.float32) for w in layer.get_weights()])
    exported = export_onnx(model, stock_onnx, tmp_path / "model.onnx")
    blob = rng.uniform(-120, 130, (1, 3, 64, 96)).astype(np.float32)
    served = ort.InferenceSession(str(exported)).run(None, {"input": blob})
    stock = ort.InferenceSession(str(stock_onnx)).run(None, {"input": blob})
    assert np.abs(served[0] - stock[0]).max() > 1e-3  # the export really carries new weights
    for ours, theirs in zip(_keras_outputs(model, blob), served):
        assert np.abs(ours - theirs).max() < 1e-4

    # Same boxes through the serving detector's post-processing on a fixed image.
    image = np.full((120, 160, 3), 90, np.uint8)
    image[30:90, 50:100] = (140, 170, 220)
    detector = RetinaFaceDetector(exported, score_threshold=1e-3)
    from_onnx = detector.detect(image)
    mean = np.asarray(detector.input_mean(), np.float32)
    # same padding and post-processing, Keras network on the NCHW float blob the ONNX graph gets
    detector.forward = lambda image: _keras_outputs(model, (image.astype(np.float32) - mean).transpose(0, 3, 1, 2))
    from_keras = detector.detect(image)
    assert len(from_onnx) == len(from_keras) > 0
    np.testing.assert_allclose(from_onnx.boxes, from_keras.boxes, atol=1e-2)
    np.testing.assert_allclose(from_onnx.scores, from_keras.scores, atol=1e-4)


def test_load_rejects_a_model_with_missing_layers(stock_onnx: Path) -> None:
    import keras

    inp = keras.Input((None, None, 3))
    tiny = keras.Model(inp, keras.layers.Conv2D(8, 3, name="fx_stage1_0_0")(inp))
    with pytest.raises((ValueError, KeyError)):
        load_onnx_weights(tiny, stock_onnx)


def test_a_new_anchor_starts_as_its_nearest_and_serves_from_the_exported_graph(stock_onnx: Path,
                                                                               tmp_path: Path) -> None:
    from shared.face_detector import RetinaFaceSpec, anchor_grid
    from training.detector.model import transfer_anchors

    stock = build_retinaface()
    load_onnx_weights(stock, stock_onnx)
    old, new = ((16, 32), (64, 128), (256, 512)), ((8, 16, 32), (64, 128), (256, 512))
    model = build_retinaface(anchors=(3, 2, 2))
    transfer_anchors(stock, model, old, new)
    blob = np.random.default_rng(2).uniform(-120, 130, (1, 3, 64, 96)).astype(np.float32)
    before, after = _keras_outputs(stock, blob), _keras_outputs(model, blob)
    cells = (64 // 8) * (96 // 8)
    level0_before = [out[:, :cells * 2].reshape(1, cells, 2, -1) for out in before]
    level0_after = [out[:, :cells * 3].reshape(1, cells, 3, -1) for out in after]
    for b, a in zip(level0_before, level0_after):
        np.testing.assert_allclose(a[:, :, 1:], b, atol=1e-5)  # the 16 and 32 px anchors behave as before
        np.testing.assert_allclose(a[:, :, 0], b[:, :, 0], atol=1e-5)  # the 8 px one starts as the 16 px one
    for b, a in zip(before, after):  # the coarser levels are untouched
        np.testing.assert_allclose(a[:, cells * 3:], b[:, cells * 2:], atol=1e-5)

    exported = export_onnx(model, stock_onnx, tmp_path / "model.onnx")
    served = ort.InferenceSession(str(exported)).run(None, {"input": blob})
    assert served[0].shape[1] == len(anchor_grid(RetinaFaceSpec(anchor_sizes=new), 96, 64))
    for ours, theirs in zip(after, served):
        assert np.abs(ours - theirs).max() < 1e-4
