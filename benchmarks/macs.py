"""Multiply-adds of the models and the machine's measured GFLOP/s, for `benchmarks/compare.py`."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np


def tflite_macs(path: str | Path) -> int:
    """Multiply-adds of one image through a TFLite model (convolutions and fully connected layers)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    shapes = {t["index"]: t["shape"] for t in interpreter.get_tensor_details()}
    total = 0
    for op in interpreter._get_ops_details():  # noqa: SLF001 - no public API lists the ops
        name = op["op_name"]
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        weights, out = shapes[op["inputs"][1]], shapes[op["outputs"][0]]
        if name == "CONV_2D":  # weights [out_c, kh, kw, in_c]
            total += int(np.prod(out[1:])) * int(np.prod(weights[1:]))
        elif name == "DEPTHWISE_CONV_2D":  # weights [1, kh, kw, c]
            total += int(np.prod(out[1:])) * int(weights[1] * weights[2])
        else:  # weights [out, in]
            total += int(weights[0] * weights[1])
    return total


def onnx_conv_macs(path: str | Path, width: int, height: int) -> int:
    """Multiply-adds of the convolutions of an NCHW ONNX model for one input of width x height (padded to 32)."""
    import onnx

    model = onnx.load(str(path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, (1, 3, math.ceil(height / 32) * 32, math.ceil(width / 32) * 32)):
        dim.ClearField("dim_param")
        dim.dim_value = value
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type != "Conv" or node.input[1] not in weights or node.output[0] not in shapes:
            continue
        out, kernel = shapes[node.output[0]], weights[node.input[1]]  # kernel [out_c, in_c/group, kh, kw]
        total += int(np.prod(out[1:])) * int(np.prod(kernel[1:]))
    return total


def keras_macs(model: object) -> int:
    """Multiply-adds of one image through a Keras model's Conv2D, DepthwiseConv2D and Dense layers."""
    from tensorflow import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            total += int(np.prod(layer.output.shape[1:])) * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            total += int(np.prod(layer.output.shape[1:])) * kh * kw * int(layer.input.shape[-1])
        elif isinstance(layer, keras.layers.Dense):
            total += int(layer.input.shape[-1]) * layer.units
    return total


def matmul_gflops(n: int = 1024, seconds: float = 1.0) -> float:
    """float32 GFLOP/s of numpy's matrix multiply (its BLAS, all its threads) on n x n matrices."""
    a = np.random.default_rng(0).random((n, n), np.float32)
    b = a.T.copy()
    a @ b
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        runs += 1
    return 2 * n**3 * runs / (time.perf_counter() - start) / 1e9
