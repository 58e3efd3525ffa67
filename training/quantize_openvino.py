"""int8 versions of the served models for OpenVINO (the `openvino-int8` back end of shared/backends.py), by NNCF
post-training quantization calibrated on training photos only.

    python -m training.quantize_openvino [--detector VERSION] [--classifier VERSION] [--photos 300] [--crops 600]

The detector is quantized as it is served (the ONNX graph with its uint8 image input, shared/detectors/onnx_input),
calibrated on annotated ilc2021 photos at the scale the detector's policy serves them; the classifier (the TFLite
file as OpenVINO reads it, any batch size) on crops of their labelled faces. Photos of the held-out list
(training/splits/ilc2021_val.txt) are never used. Each int8 model is written beside its source file in the
version's folder as `<stem>-int8.xml/.bin` (shared.backends.int8_file); `python benchmarks/backends.py --write`
then runs the accuracy guard, and `auto` picks `openvino-int8` only where it passed.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared.backends import int8_file
from shared.classifier import DEFAULT_MARGIN, FaceClassifier, preprocess_crops
from shared.detectors import detector_from_version
from shared.detectors.base import resize_by
from shared.detectors.onnx_input import with_image_input
from shared.imaging import read_image
from shared.model_store import ModelStore, ModelVersion
from training.quantize import scene_crops
from training.splits import read_list
from training.voc import load_voc

REPO = Path(__file__).resolve().parents[1]
SCENES = REPO.parent / "shared" / "data" / "scenes" / "ilc2021"
HELDOUT = REPO / "training" / "splits" / "ilc2021_val.txt"


def _quantize(model: Any, samples: Sequence[np.ndarray], out: Path, float_types: Sequence[str] = (),
              float_names: Sequence[str] = ()) -> Path:
    """NNCF int8 (mixed preset: symmetric weights, asymmetric activations) of an OpenVINO model, saved as IR;
    operations of `float_types`, and those whose names match a `float_names` pattern, stay in float."""
    import nncf
    import openvino as ov

    ignored = nncf.IgnoredScope(types=list(float_types), patterns=list(float_names), validate=False)
    quantized = nncf.quantize(model, nncf.Dataset(list(samples)), preset=nncf.QuantizationPreset.MIXED,
                              subset_size=len(samples), ignored_scope=ignored)
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    return out


def detector_samples(version: ModelVersion, photos: Sequence[Path]) -> list[np.ndarray]:
    """Network inputs of the detector for `photos`, scaled as the detector serves them."""
    detector = detector_from_version(version, backend="onnxruntime")
    samples = []
    for path in photos:
        image = read_image(path)
        h, w = image.shape[:2]
        samples.append(detector.network_input(resize_by(image, detector.scale_for(w, h))))
    return samples


def quantize_detector(version: ModelVersion, photos: Sequence[Path]) -> Path:
    """The version's detector in int8, calibrated on `photos`; returns the IR's path."""
    import openvino as ov

    detector = detector_from_version(version, backend="onnxruntime")
    graph = with_image_input(version.file(), detector.input_mean())
    model = ov.Core().read_model(graph, b"")
    # depthwise convolutions stay in float: OpenVINO 2026.4's CPU plugin crashed (segmentation fault) running the
    # detector with int8 depthwise convolutions at input heights 544, 608, 736 (a 1280x720 frame), 928 and 992;
    # so do the output heads (box, score, landmark convolutions): with them in int8 face AP fell 0.0088
    return _quantize(model, detector_samples(version, photos), int8_file(version.file()), ("GroupConvolution",),
                     (".*_head.*",))


def quantize_classifier(version: ModelVersion, crops: Sequence[np.ndarray], batch: int = 8) -> list[Path]:
    """Each of the version's classifier files in int8, calibrated on face crops (BGR, input size); their IR paths."""
    import openvino as ov

    classifier = FaceClassifier.from_version(version, backend="tflite")
    batches = [preprocess_crops(crops[i:i + batch], classifier.preprocessing) for i in range(0, len(crops), batch)]
    out = []
    for path in version.model_files():
        model = ov.Core().read_model(str(path))
        shape = model.inputs[0].get_partial_shape()
        shape[0] = -1
        model.reshape({model.inputs[0]: shape})
        out.append(_quantize(float_weights(model), batches, int8_file(path)))
    return out


def float_weights(model: Any) -> Any:
    """The model with its fp16 weights (TFLite files store them so, with a Convert to fp32 after each) as fp32
    constants: NNCF's weight quantizers then sit on constants, and the saved int8 model stores int8 weights."""
    import openvino.opset13 as ops

    for op in model.get_ops():
        if op.get_type_name() == "Convert" and op.input_value(0).get_node().get_type_name() == "Constant":
            weights = op.input_value(0).get_node().get_data().astype(np.float32)
            op.output(0).replace(ops.constant(weights).output(0))
    model.validate_nodes_and_infer_types()
    return model


def training_photos(limit: int, seed: int = 0) -> list[Path]:
    """Up to `limit` annotated ilc2021 photos outside the held-out list, chosen with a fixed seed."""
    photos = load_voc(SCENES, exclude=set(read_list(HELDOUT)))
    chosen = random.Random(seed).sample(photos, min(limit, len(photos)))
    return [p.image for p in sorted(chosen, key=lambda p: p.stem)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector", help="detector version (default: the promoted one)")
    parser.add_argument("--classifier", help="classifier version (default: the promoted one)")
    parser.add_argument("--photos", type=int, default=300, help="training photos calibrating the detector")
    parser.add_argument("--crops", type=int, default=600, help="face crops calibrating the classifier")
    args = parser.parse_args()
    if not SCENES.is_dir():
        print(f"error: {SCENES} not found", file=sys.stderr)
        return 2
    store = ModelStore(REPO / "models")
    detector, classifier = store.load("detector", args.detector), store.load("classifier", args.classifier)
    print("wrote", quantize_detector(detector, training_photos(args.photos)), flush=True)
    meta = classifier.meta
    crops, _used = scene_crops(SCENES, set(read_list(HELDOUT)), meta["input_size"],
                               meta.get("crop_margin", DEFAULT_MARGIN), args.crops)
    print("wrote", *quantize_classifier(classifier, crops), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
