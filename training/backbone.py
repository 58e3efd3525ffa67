"""MobileNetV2 backbones and the classification head.

Two backbones share Keras's layer names, so one weights file loads into either:

- `stock`: `keras.applications.MobileNetV2` (Keras pads its stride-2 convolutions bottom/right only);
  used with `weights="imagenet"` on machines that can download Keras's own file.
- `symmetric`: the same graph with (1, 1) zero padding before the five stride-2 convolutions,
  which reproduces torchvision exactly when loaded with the torchvision-converted weights file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The first block that phase 2 fine-tunes by default; everything below it stays frozen.
DEFAULT_FINETUNE_FROM = 7
EXPANSIONS = (1, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6)
FILTERS = (16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320)
STRIDES = (1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1)
# He initialisation keeps random-weight activations at a usable scale (Keras's Glorot default makes them
# vanish to ~1e-9 through 17 blocks, below float16 precision); loaded weights replace it anyway.
INIT = "he_normal"


def _depthwise_init() -> Any:
    """He initialisation for a 3x3 depthwise kernel (fan-in 9; Keras would count every channel)."""
    from tensorflow import keras

    return keras.initializers.RandomNormal(stddev=(2 / 9) ** 0.5)


class PretrainedError(RuntimeError):
    """Pre-trained weights are missing or do not fit; one line for the user."""


def _bn(layers: Any, name: str) -> Any:
    return layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name=name)


def _block(layers: Any, x: Any, block_id: int) -> Any:
    """One inverted-residual block, named like keras.applications."""
    inputs, stride = x, STRIDES[block_id]
    in_channels = x.shape[-1]
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
    if block_id:
        x = layers.Conv2D(EXPANSIONS[block_id] * in_channels, 1, use_bias=False, kernel_initializer=INIT,
                          name=prefix + "expand")(x)
        x = _bn(layers, prefix + "expand_BN")(x)
        x = layers.ReLU(6.0, name=prefix + "expand_relu")(x)
    if stride == 2:
        x = layers.ZeroPadding2D((1, 1), name=prefix + "pad")(x)
    x = layers.DepthwiseConv2D(3, strides=stride, use_bias=False, name=prefix + "depthwise",
                               depthwise_initializer=_depthwise_init(), padding="same" if stride == 1 else "valid")(x)
    x = _bn(layers, prefix + "depthwise_BN")(x)
    x = layers.ReLU(6.0, name=prefix + "depthwise_relu")(x)
    x = layers.Conv2D(FILTERS[block_id], 1, use_bias=False, kernel_initializer=INIT, name=prefix + "project")(x)
    x = _bn(layers, prefix + "project_BN")(x)
    if in_channels == FILTERS[block_id] and stride == 1:
        return layers.Add(name=prefix + "add")([inputs, x])
    return x


def symmetric_mobilenet_v2(input_size: int) -> Any:
    """MobileNetV2 (alpha 1.0, no top) with torchvision's symmetric padding; Keras layer names."""
    from tensorflow import keras

    layers = keras.layers
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.ZeroPadding2D((1, 1), name="Conv1_pad")(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="valid", use_bias=False, kernel_initializer=INIT, name="Conv1")(x)
    x = _bn(layers, "bn_Conv1")(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    for block_id in range(len(FILTERS)):
        x = _block(layers, x, block_id)
    x = layers.Conv2D(1280, 1, use_bias=False, kernel_initializer=INIT, name="Conv_1")(x)
    x = _bn(layers, "Conv_1_bn")(x)
    x = layers.ReLU(6.0, name="out_relu")(x)
    return keras.Model(inputs, x, name="mobilenetv2_symmetric")


def build_backbone(input_size: int, pretrained: str | Path | None, variant: str = "symmetric") -> Any:
    """A MobileNetV2 feature extractor (N x s x s x 1280).

    `pretrained`: a local weights file, "imagenet" (Keras download; stock variant), or None (random).
    """
    from tensorflow import keras

    if variant == "stock" or pretrained == "imagenet":
        weights = None if pretrained is None else str(pretrained)
        if weights and weights != "imagenet" and not Path(weights).is_file():
            raise PretrainedError(f"pre-trained weights file {weights} not found")
        try:
            return keras.applications.MobileNetV2(
                input_shape=(input_size, input_size, 3), include_top=False, weights=weights)
        except Exception as exc:  # download failures and shape mismatches
            raise PretrainedError(f"cannot load ImageNet weights ({weights}): {_one_line(exc)}") from None
    if variant != "symmetric":
        raise ValueError(f"unknown backbone variant {variant!r}")
    model = symmetric_mobilenet_v2(input_size)
    if pretrained is not None:
        path = Path(pretrained)
        if not path.is_file():
            raise PretrainedError(
                f"pre-trained weights file {path} not found (pass --pretrained PATH or --no-pretrained)")
        try:
            model.load_weights(str(path))
        except Exception as exc:
            raise PretrainedError(f"cannot load weights {path}: {_one_line(exc)}") from None
    return model


def split_layer(first_trainable_block: int) -> str:
    """Name of the layer that outputs the block before `first_trainable_block` (1-16): where the backbone is cut."""
    if not 1 <= first_trainable_block < len(FILTERS):
        raise ValueError(f"the first fine-tuned block must be 1-{len(FILTERS) - 1}, not {first_trainable_block}")
    block = first_trainable_block - 1
    if block == 0:
        return "expanded_conv_project_BN"
    residual = FILTERS[block - 1] == FILTERS[block] and STRIDES[block] == 1
    return f"block_{block}_add" if residual else f"block_{block}_project_BN"


def split_backbone(backbone: Any, first_trainable_block: int = DEFAULT_FINETUNE_FROM) -> tuple[Any, Any]:
    """Cut the backbone before `first_trainable_block`: (frozen bottom, trainable top) as two models."""
    from tensorflow import keras

    cut = split_layer(first_trainable_block)
    mid = backbone.get_layer(cut).output
    bottom = keras.Model(backbone.input, mid, name="bottom")
    top_input = keras.Input(mid.shape[1:], name="mid")
    names = [layer.name for layer in backbone.layers]
    start = names.index(cut) + 1
    tensors: dict[str, Any] = {cut: top_input}
    x = top_input
    for layer in backbone.layers[start:]:
        inbound = layer._inbound_nodes[0].input_tensors  # noqa: SLF001 - Keras has no public API
        args = [tensors[t._keras_history[0].name] for t in inbound]  # noqa: SLF001
        x = layer(args if len(args) > 1 else args[0])
        tensors[layer.name] = x
    top = keras.Model(top_input, x, name="top")
    return bottom, top


def build_head(n_classes: int, in_shape: tuple[int, ...], dropout: float = 0.5, units: int = 128) -> Any:
    """The head from the original design: average pool -> dense 128 ReLU -> dropout -> softmax."""
    from tensorflow import keras

    layers = keras.layers
    inputs = keras.Input(in_shape, name="features")
    x = layers.GlobalAveragePooling2D(name="pool")(inputs) if len(in_shape) == 3 else inputs
    x = layers.Dense(units, activation="relu", name="head_dense")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="head")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
