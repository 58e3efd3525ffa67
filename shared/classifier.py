"""Face classification with a TFLite MobileNetV2 exported by the training job."""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from shared.backends import OpenVinoModel, choose, model_for, precision_of
from shared.crops import DEFAULT_MARGIN
from shared.model_store import ModelError, ModelVersion

log = logging.getLogger(__name__)

KEEP_BATCH_SIZES = 8  # interpreters kept, one per batch size; larger batches run in chunks of this size
TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)
# Each mode as one multiply-add per RGB channel, x * scale + offset, as OpenCV scalars (4 channels, the last unused).
_AFFINE: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    mode: ((*(float(v) for v in scale.astype(np.float32)), 0.0), (*(float(v) for v in offset.astype(np.float32)), 0.0))
    for mode, (scale, offset) in {
        "torch": (1 / (255.0 * TORCH_STD), -TORCH_MEAN / TORCH_STD),
        "keras": (np.full(3, 1 / 127.5), np.full(3, -1.0)),
        "raw": (np.ones(3), np.zeros(3)),
    }.items()
}


def preprocess_crops(crops_bgr: Sequence[np.ndarray], mode: str) -> np.ndarray:
    """Stack BGR uint8 crops into the RGB float batch a model expects ('torch', 'keras' or 'raw').

    The channel swap and the per-channel multiply-add run in OpenCV on the stacked crops seen as one tall
    image (NumPy's broadcast over the 3-channel axis cost about 0.4 ms a face).
    """
    if mode not in _AFFINE:
        raise ModelError(f"unknown preprocessing {mode!r}")
    scale, offset = _AFFINE[mode]
    stacked = np.stack(crops_bgr)
    n, h, w, _ = stacked.shape
    rgb = cv2.cvtColor(stacked.reshape(n * h, w, 3), cv2.COLOR_BGR2RGB).astype(np.float32)
    return cv2.add(cv2.multiply(rgb, scale), offset).reshape(n, h, w, 3)


class BatchRunner:
    """A TFLite model with one input and one output that takes batches of any size.

    Resizing an interpreter's input re-plans it (about as long as classifying a face), and the number
    of faces changes from frame to frame, so one interpreter is kept per batch size; batches larger than
    `keep` run in chunks of `keep`, so at most `keep` sizes ever occur (larger batches are no cheaper per
    face on a CPU).
    """

    def __init__(self, interpreter: Interpreter, make: Callable[[], Interpreter] | None = None,
                 keep: int = KEEP_BATCH_SIZES) -> None:
        self.interpreter = interpreter
        self._make, self._keep = make, keep
        self._input = interpreter.get_input_details()[0]["index"]
        self._output = interpreter.get_output_details()[0]["index"]
        self._by_size: OrderedDict[int, Interpreter] = OrderedDict()

    def _for_size(self, batch: np.ndarray) -> Interpreter:
        size = len(batch)
        interpreter = self._by_size.get(size)
        if interpreter is not None:
            self._by_size.move_to_end(size)
            return interpreter
        if self._by_size and self._make is None:  # one interpreter only: re-plan it
            self._by_size.clear()
        interpreter = self._make() if self._by_size and self._make else self.interpreter
        interpreter.resize_tensor_input(self._input, list(batch.shape))
        interpreter.allocate_tensors()
        self._by_size[size] = interpreter
        if len(self._by_size) > self._keep:
            self._by_size.popitem(last=False)
        return interpreter

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch through the interpreter planned for its size (in chunks when it is larger)."""
        if self._make is not None and len(batch) > self._keep:
            return np.concatenate([self(batch[i:i + self._keep]) for i in range(0, len(batch), self._keep)])
        interpreter = self._for_size(batch)
        interpreter.set_tensor(self._input, batch)
        interpreter.invoke()
        return interpreter.get_tensor(self._output).copy()


class FaceClassifier:
    """Classifies square face crops; one `predict` call runs one batch through the interpreter.

    Several model files make an ensemble: each runs the batch and their probabilities are averaged.
    `threads` defaults to the machine's cores (at most 4); the runtime's own default is one thread.
    """

    def __init__(
        self,
        model_path: str | Sequence[str],
        labels: Sequence[str],
        input_size: int,
        preprocessing: str = "torch",
        crop_margin: float = DEFAULT_MARGIN,
        threads: int | None = None,
        name: str = "classifier",
        backend: str = "tflite",
    ) -> None:
        self.labels = list(labels)
        self.input_size, self.preprocessing = int(input_size), preprocessing
        self.crop_margin, self.name = float(crop_margin), name
        if threads is None:
            threads = min(4, os.cpu_count() or 1)
        paths = [model_path] if isinstance(model_path, str) else list(model_path)
        self.backend = backend
        self.runners: list[Callable[[np.ndarray], np.ndarray]] = []
        for path in paths:
            if backend.startswith("openvino"):  # shared/backends.py: any batch size in one compiled model
                model = OpenVinoModel(model_for(backend, path), precision_of(backend), threads, batch_dynamic=True)
                self.runners.append(lambda batch, model=model: model.run([batch])[0])
                continue
            try:
                make = partial(Interpreter, model_path=path, num_threads=threads)
                self.runners.append(BatchRunner(make(), make))
            except (ValueError, RuntimeError) as exc:
                raise ModelError(f"cannot load classifier {path}: {exc}") from None

    @classmethod
    def from_version(cls, version: ModelVersion, backend: str = "auto", **options: Any) -> FaceClassifier:
        """Build from a classifier version of the model store, on the back end `choose` picks (shared/backends.py)."""
        meta = version.meta
        built: dict[str, FaceClassifier] = {}

        def load(name: str) -> FaceClassifier:
            return cls([str(path) for path in version.model_files()], labels=meta["labels"],
                       input_size=meta["input_size"], preprocessing=meta.get("preprocessing", "torch"),
                       crop_margin=meta.get("crop_margin", DEFAULT_MARGIN), name=version.name, backend=name,
                       **options)

        def build(name: str) -> Callable[[], object]:
            built[name] = classifier = load(name)
            crops = [np.zeros((classifier.input_size, classifier.input_size, 3), np.uint8)] * 4
            return lambda: classifier.predict(crops)

        choice = choose("classifier", version, backend, build)
        log.info("classifier %s runs on %s: %s", version.name, choice.backend, choice.reason)
        return built.get(choice.backend) or load(choice.backend)

    def predict(self, crops_bgr: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities (N x len(labels)) for N square BGR crops of `input_size`."""
        if not crops_bgr:
            return np.zeros((0, len(self.labels)), np.float32)
        batch = preprocess_crops(crops_bgr, self.preprocessing)
        probs = self.runners[0](batch)
        for runner in self.runners[1:]:
            probs += runner(batch)
        return (probs / len(self.runners)).astype(np.float32, copy=False)
