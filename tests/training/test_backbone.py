"""MobileNetV2 builders: the symmetric-padding variant loads the local ImageNet weights file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.backbone import PretrainedError, build_backbone, build_head, split_backbone, split_layer

WEIGHTS_NAME = "mobilenet_v2_1.0_224_imagenet_from_torchvision_no_top.weights.h5"


@pytest.fixture(scope="module")
def weights_file() -> Path:
    from tests.conftest import SHARED_WEIGHTS

    path = SHARED_WEIGHTS / WEIGHTS_NAME
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


def test_symmetric_backbone_loads_imagenet_weights(weights_file: Path) -> None:
    import h5py

    model = build_backbone(96, weights_file)
    assert model.output.shape[1:] == (3, 3, 1280)
    kernel = model.get_layer("Conv1").get_weights()[0]
    with h5py.File(weights_file) as fh:  # Keras 3 stores layers by type and order: Conv1 is the first conv
        np.testing.assert_array_equal(kernel, fh["layers/conv2d/vars/0"][()])
        np.testing.assert_array_equal(model.get_layer("Conv_1_bn").get_weights()[0],
                                      fh["layers/batch_normalization_51/vars/0"][()])
    fresh = build_backbone(96, None)
    assert not np.allclose(kernel, fresh.get_layer("Conv1").get_weights()[0])
    stock = build_backbone(96, weights_file, variant="stock")
    assert np.allclose(kernel, stock.get_layer("Conv1").get_weights()[0])


def test_pretrained_features_separate_images(weights_file: Path, scene_photos: list[Path]) -> None:
    """Real ImageNet features: two crops of one photo are closer than crops of two different photos."""
    from shared.classifier import preprocess_crops
    from shared.crops import crop_face
    from shared.imaging import read_image

    model = build_backbone(96, weights_file)
    a, b = read_image(scene_photos[0]), read_image(scene_photos[1])
    crops = [crop_face(a, (0, 0, a.shape[1], a.shape[0]), 96, 0.0),
             crop_face(a[:, ::-1].copy(), (0, 0, a.shape[1], a.shape[0]), 96, 0.0),
             crop_face(b, (0, 0, b.shape[1], b.shape[0]), 96, 0.0)]
    f = model(preprocess_crops(crops, "torch")).numpy().mean((1, 2))
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    assert f[0] @ f[1] > f[0] @ f[2]


@pytest.mark.parametrize("first_block", [14, 11, 6, 1])
def test_split_backbone_computes_the_same_function(first_block: int) -> None:
    model = build_backbone(64, None)
    bottom, top = split_backbone(model, first_block)
    x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(top(bottom(x)).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-4)
    trained = {layer.name.split("_")[1] for layer in top.layers if layer.name.startswith("block_")}
    assert min(int(b) for b in trained) == first_block
    head = build_head(3, (1280,))
    probs = head(model(x).numpy().mean((1, 2))).numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_split_layer_names_the_block_output() -> None:
    assert split_layer(14) == "block_13_project_BN"  # stride 2: no residual
    assert split_layer(13) == "block_12_add"
    assert split_layer(1) == "expanded_conv_project_BN"
    with pytest.raises(ValueError, match="1-16"):
        split_layer(17)


def test_missing_or_wrong_weights_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(PretrainedError, match="not found"):
        build_backbone(64, tmp_path / "nope.weights.h5")
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(PretrainedError) as info:
        build_backbone(64, bad)
    assert "\n" not in str(info.value)
