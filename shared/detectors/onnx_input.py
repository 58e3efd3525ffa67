"""Give a detector graph a uint8 image input: the cast, mean subtraction and NCHW transpose run in ONNX Runtime.

Done in NumPy, turning a frame into a float NCHW blob meant strided transposes and a copy ONNX Runtime made of
the non-contiguous result; inside the graph it runs on the session's threads (detection 16.1 -> 14.8 ms at 640x480
and 52.9 -> 45.3 ms at 1280x720, benchmarks/results/compare_code_vs_e085e71.json).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

INPUT_NAME = "maskwatch_image_bgr_u8"


def with_image_input(path: str | Path, mean_bgr: Sequence[float]) -> bytes:
    """The serialized graph of `path` whose input is a [1, H, W, 3] uint8 BGR image instead of a float NCHW blob.

    The original float input is computed inside the graph as transpose(float(image) - mean_bgr). Raises
    ValueError for a file that is not an ONNX graph with one image input.
    """
    # imported here: `onnx` takes seconds to load, and of the processes that import the detectors (the
    # dashboard among them) only those that open a detector use it; the dashboard answers sooner
    import onnx
    from google.protobuf.message import DecodeError
    from onnx import TensorProto, helper, numpy_helper

    try:
        model = onnx.load(str(path))
    except DecodeError:
        raise ValueError(f"{path} is not an ONNX model") from None
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ValueError(f"{path}: expected one image input, found {len(inputs)}")
    original = inputs[0].name
    nodes = [helper.make_node("Cast", [INPUT_NAME], ["maskwatch_image_f32"], to=TensorProto.FLOAT)]
    hwc = "maskwatch_image_f32"
    if any(mean_bgr):
        graph.initializer.append(numpy_helper.from_array(np.asarray(mean_bgr, np.float32), "maskwatch_mean_bgr"))
        nodes.append(helper.make_node("Sub", [hwc, "maskwatch_mean_bgr"], ["maskwatch_image_centred"]))
        hwc = "maskwatch_image_centred"
    nodes.append(helper.make_node("Transpose", [hwc], [original], perm=[0, 3, 1, 2]))
    graph.input.remove(inputs[0])
    graph.input.insert(0, helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, [1, "height", "width", 3]))
    for node in reversed(nodes):
        graph.node.insert(0, node)
    return model.SerializeToString()
