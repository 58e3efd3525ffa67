"""RetinaFace MobileNet-0.25 re-created in Keras, with weights read from and written back to its ONNX export.

The stock ONNX graph has every BatchNorm folded into its convolution, so the Keras model is plain
convolutions with biases. Layer names follow the ONNX node names (`onnx_key`), which is how weights
are matched in both directions; the SSH modules reuse one convolution twice, as the export does.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import onnx
from onnx import numpy_helper

LEAKY = 0.1
# MobileNet-0.25 body: (out channels, stride) of each depthwise-separable block, per stage.
STAGES: dict[str, list[tuple[int, int]]] = {
    "stage1": [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1)],
    "stage2": [(128, 2), (128, 1), (128, 1), (128, 1), (128, 1), (128, 1)],
    "stage3": [(256, 2), (256, 1)],
}
FPN_CHANNELS = 64
ANCHORS_PER_CELL = (2, 2, 2)  # anchors per cell of each level (stride 8, 16, 32) in the stock export
HEADS = (("bbox_head", 4), ("class_head", 2), ("landmark_head", 10))


def _name(key: str) -> str:
    return key.replace(".", "_")


def onnx_key(node: onnx.NodeProto) -> str:
    """Weight key of an ONNX Conv node: its top module and own module, e.g. 'ssh1.conv3X3.0'."""
    parts = [p for p in node.name.split("/") if p]
    return f"{parts[0]}.{parts[-2]}"


def _conv(x, key: str, filters: int, kernel: int = 1, stride: int = 1, act: bool = True):
    if kernel == 3:
        x = keras.layers.ZeroPadding2D(1, name=_name(key) + "_pad")(x)
    x = keras.layers.Conv2D(filters, kernel, stride, name=_name(key))(x)
    return keras.layers.LeakyReLU(LEAKY, name=_name(key) + "_act")(x) if act else x


def _dw(x, key: str, stride: int):
    x = keras.layers.ZeroPadding2D(1, name=_name(key) + "_pad")(x)
    x = keras.layers.DepthwiseConv2D(3, stride, name=_name(key))(x)
    return keras.layers.LeakyReLU(LEAKY, name=_name(key) + "_act")(x)


def _ssh(x, level: int):
    p = f"ssh{level}"
    c3 = _conv(x, f"{p}.conv3X3.0", FPN_CHANNELS // 2, 3, act=False)
    shared_pad = keras.layers.ZeroPadding2D(1, name=f"{p}_conv5X5_1_0_pad")
    shared = keras.layers.Conv2D(FPN_CHANNELS // 4, 3, name=f"{p}_conv5X5_1_0")
    act = keras.layers.LeakyReLU(LEAKY, name=f"{p}_conv5X5_1_0_act")
    c5_1 = act(shared(shared_pad(x)))
    c5 = _conv(c5_1, f"{p}.conv5X5_2.0", FPN_CHANNELS // 4, 3, act=False)
    c7_1 = act(shared(shared_pad(x)))  # the export calls conv5X5_1 again where conv7X7_1 would be
    c7_2 = _conv(c7_1, f"{p}.conv7X7_2.0", FPN_CHANNELS // 4, 3)
    c7 = _conv(c7_2, f"{p}.conv7x7_3.0", FPN_CHANNELS // 4, 3, act=False)
    out = keras.layers.Concatenate(name=f"{p}_concat")([c3, c5, c7])
    return keras.layers.ReLU(name=f"{p}_relu")(out)


def build_retinaface(input_shape: tuple[int | None, int | None] = (None, None),
                     anchors: tuple[int, ...] = ANCHORS_PER_CELL) -> keras.Model:
    """RetinaFace graph: NHWC BGR-minus-mean input -> (loc [N,A,4], conf logits [N,A,2], landmarks [N,A,10]);
    `anchors`: anchors per cell of each level."""
    inp = keras.Input((*input_shape, 3), name="image")
    x = _conv(inp, "fx.stage1.0.0", 8, 3, 2)
    feats = []
    index = {"stage1": 1, "stage2": 0, "stage3": 0}
    for stage, blocks in STAGES.items():
        for i, (filters, stride) in enumerate(blocks, start=index[stage]):
            x = _dw(x, f"fx.{stage}.{i}.0.0", stride)
            x = _conv(x, f"fx.{stage}.{i}.1.0", filters)
        feats.append(x)
    o1 = _conv(feats[0], "fpn.output1.0", FPN_CHANNELS)
    o2 = _conv(feats[1], "fpn.output2.0", FPN_CHANNELS)
    o3 = _conv(feats[2], "fpn.output3.0", FPN_CHANNELS)
    up3 = keras.layers.UpSampling2D(2, interpolation="nearest", name="fpn_up3")(o3)
    o2 = _conv(keras.layers.Add(name="fpn_add2")([o2, up3]), "fpn.merge2.0", FPN_CHANNELS, 3)
    up2 = keras.layers.UpSampling2D(2, interpolation="nearest", name="fpn_up2")(o2)
    o1 = _conv(keras.layers.Add(name="fpn_add1")([o1, up2]), "fpn.merge1.0", FPN_CHANNELS, 3)
    levels = [_ssh(o, i + 1) for i, o in enumerate((o1, o2, o3))]
    outputs = []
    for head, width in HEADS:
        parts = []
        for i, level in enumerate(levels):
            y = _conv(level, f"{head}.{head}.{i}", anchors[i] * width, act=False)
            parts.append(keras.layers.Reshape((-1, width), name=f"{head}_{i}_flat")(y))
        outputs.append(keras.layers.Concatenate(axis=1, name=head.split("_")[0])(parts))
    return keras.Model(inp, outputs, name="retinaface_mnet025")


def transfer_anchors(source: keras.Model, target: keras.Model, source_sizes: tuple[tuple[int, ...], ...],
                     target_sizes: tuple[tuple[int, ...], ...]) -> None:
    """Copy `source`'s weights into `target`, whose levels may have other anchor sizes: each head's output block
    of a target anchor starts as that of the source anchor of its level nearest in size (log scale), so the
    anchors both have keep their behaviour and a new anchor starts from its nearest neighbour."""
    heads = {_name(f"{head}.{head}.{i}"): (width, i) for head, width in HEADS for i in range(len(target_sizes))}
    for layer in target.layers:
        if not layer.weights:
            continue
        weights = source.get_layer(layer.name).get_weights()
        width, level = heads.get(layer.name, (0, 0))
        if width and source_sizes[level] != target_sizes[level]:  # (16, 32) -> (8, 16) keeps the shape, not the order
            old = np.log(np.asarray(source_sizes[level], np.float64))
            blocks = [int(np.abs(old - np.log(size)).argmin()) for size in target_sizes[level]]
            kernel, bias = weights
            pick = np.concatenate([np.arange(b * width, (b + 1) * width) for b in blocks])
            weights = [kernel[..., pick], bias[pick]]
        layer.set_weights(weights)


def _conv_nodes(graph: onnx.GraphProto) -> list[tuple[str, str, str]]:
    """(key, weight initializer, bias initializer) of every Conv node, following Identity aliases."""
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    return [
        (onnx_key(n), alias.get(n.input[1], n.input[1]), alias.get(n.input[2], n.input[2]))
        for n in graph.node if n.op_type == "Conv"
    ]


def _layer_for(model: keras.Model, key: str) -> keras.layers.Layer:
    name = _name(key)
    if name.endswith("_0_1"):  # second call of a shared SSH convolution
        name = name[:-2]
    return model.get_layer(name)


def load_onnx_weights(model: keras.Model, onnx_path: str | Path) -> int:
    """Copy the ONNX convolution weights into the Keras model; returns how many layers were set."""
    graph = onnx.load(str(onnx_path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    done: set[str] = set()
    for key, w_name, b_name in _conv_nodes(graph):
        layer = _layer_for(model, key)
        if layer.name in done:
            continue
        weight = inits[w_name]
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kernel = weight.transpose(2, 3, 0, 1)  # [C,1,kh,kw] -> [kh,kw,C,1]
        else:
            kernel = weight.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        layer.set_weights([kernel, inits[b_name]])
        done.add(layer.name)
    expected = sum(1 for layer in model.layers if layer.weights)
    if len(done) != expected:
        raise ValueError(f"loaded {len(done)} of {expected} weighted layers from {onnx_path}")
    return len(done)


def export_onnx(model: keras.Model, template: str | Path, out: str | Path) -> Path:
    """Write the Keras weights into a copy of the template ONNX graph (same ops, new initializers)."""
    proto = onnx.load(str(template))
    inits = {t.name: t for t in proto.graph.initializer}
    for key, w_name, b_name in _conv_nodes(proto.graph):
        kernel, bias = _layer_for(model, key).get_weights()
        if kernel.shape[-1] == 1 and isinstance(_layer_for(model, key), keras.layers.DepthwiseConv2D):
            weight = kernel.transpose(2, 3, 0, 1)
        else:
            weight = kernel.transpose(3, 2, 0, 1)
        for name, value in ((w_name, weight), (b_name, bias)):
            target = inits[name]
            target.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name))
    onnx.checker.check_model(proto)
    out = Path(out)
    onnx.save(proto, str(out))
    return out
