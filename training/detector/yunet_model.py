"""YuNet in PyTorch, mirrored from its ONNX export: weights are read from and written back into the same graph.

The ONNX graph has BatchNorm folded into its convolutions, so the PyTorch mirror is the graph's own
convolutions (one `nn.Conv2d` per Conv node) run in the graph's order; `export_onnx` writes trained
weights into a copy of the graph, so the serving detector (`shared.detectors.yunet`) is unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn
from torch.nn import functional as F

HEADS = ("cls", "obj", "bbox", "kps")
BODY_OPS = {"Conv", "Relu", "MaxPool", "Resize", "Add"}


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _head_sources(graph: onnx.GraphProto) -> dict[str, str]:
    """Graph output (e.g. 'cls_8') -> the Conv output it reshapes (back through Sigmoid/Reshape/Transpose)."""
    producer = {out: node for node in graph.node for out in node.output}
    sources = {}
    for output in graph.output:
        name = output.name
        while producer[name].op_type in ("Sigmoid", "Reshape", "Transpose"):
            name = producer[name].input[0]
        sources[output.name] = name
    return sources


class YuNetTorch(nn.Module):
    """The YuNet graph as a PyTorch module; `forward` gives raw (pre-sigmoid) outputs per head, levels concatenated."""

    def __init__(self, onnx_path: str | Path) -> None:
        super().__init__()
        model = onnx.load(str(onnx_path))
        inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.input_name = model.graph.input[0].name
        self.sources = _head_sources(model.graph)
        self.strides = sorted({int(k.split("_")[1]) for k in self.sources})
        needed = set(self.sources.values())
        self.nodes: list[tuple[str, str, list[str], str, dict]] = []
        self.convs = nn.ModuleDict()
        for node in model.graph.node:
            if node.op_type not in BODY_OPS:
                continue
            attrs = _attrs(node)
            if node.op_type == "Conv":
                w = inits[node.input[1]]
                conv = nn.Conv2d(w.shape[1] * attrs.get("group", 1), w.shape[0], tuple(attrs["kernel_shape"]),
                                 stride=tuple(attrs.get("strides", (1, 1))), padding=tuple(attrs["pads"][:2]),
                                 groups=attrs.get("group", 1))
                conv.weight.data = torch.from_numpy(w.copy())
                conv.bias.data = torch.from_numpy(inits[node.input[2]].copy())
                self.convs[node.name] = conv
            self.nodes.append((node.op_type, node.name, list(node.input), node.output[0], attrs))
        missing = needed - {n[3] for n in self.nodes}
        if missing:
            raise ValueError(f"{onnx_path}: unexpected YuNet graph (no producer for {sorted(missing)[0]})")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: N x 3 x H x W BGR 0-255 (H, W multiples of 32) -> head -> N x priors x channels (raw)."""
        values = {self.input_name: x}
        for op, name, inputs, output, attrs in self.nodes:
            a = values[inputs[0]]
            if op == "Conv":
                values[output] = self.convs[name](a)
            elif op == "Relu":
                values[output] = F.relu(a)
            elif op == "MaxPool":
                values[output] = F.max_pool2d(a, attrs["kernel_shape"], attrs["strides"])
            elif op == "Resize":
                values[output] = F.interpolate(a, scale_factor=2.0, mode="nearest")
            else:  # Add
                values[output] = a + values[inputs[1]]
        out = {}
        for head in HEADS:
            levels = [values[self.sources[f"{head}_{s}"]] for s in self.strides]
            out[head] = torch.cat([t.permute(0, 2, 3, 1).reshape(t.shape[0], -1, t.shape[1]) for t in levels], 1)
        return out

    def trainable(self) -> list[nn.Parameter]:
        """Every weight but the landmark head's (10 channels: the photos have no landmark labels)."""
        return [p for conv in self.convs.values() if conv.out_channels != 10 for p in conv.parameters()]


def export_onnx(model: YuNetTorch, base_onnx: str | Path, out: str | Path) -> Path:
    """Write the model's weights into a copy of the base ONNX graph."""
    graph = onnx.load(str(base_onnx))
    inits = {i.name: i for i in graph.graph.initializer}
    for node in graph.graph.node:
        if node.op_type == "Conv" and node.name in model.convs:
            conv = model.convs[node.name]
            for key, tensor in ((node.input[1], conv.weight), (node.input[2], conv.bias)):
                arr = tensor.detach().cpu().numpy().astype(np.float32)
                inits[key].CopyFrom(numpy_helper.from_array(arr, key))
    onnx.checker.check_model(graph)
    onnx.save(graph, str(out))
    return Path(out)
