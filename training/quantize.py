"""Post-training int8 quantization of a classifier version, calibrated on real face crops.

The serving TFLite file is turned back into the Keras graph it was exported from (`keras_from_tflite`:
TFLite folds each BatchNormalization into its convolution, so the rebuilt graph keeps the BN layers as
an identity plus the folded bias), then converted again with a representative dataset of face crops cut
from the labelled boxes of annotated photos. Held-out photos are never used for calibration.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared.classifier import FaceClassifier, preprocess_crops
from shared.crops import crop_face
from shared.imaging import ImageError, read_image
from shared.model_store import ModelError, ModelStore, ModelVersion
from training.export import tflite_agreement
from training.voc import load_voc

MODEL_FILE = "model.tflite"
CALIBRATION_BATCH = 8
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def keras_from_tflite(path: str | Path, input_size: int, n_classes: int) -> Any:
    """The Keras classifier (symmetric MobileNetV2 + head) with the weights of an exported TFLite file."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from tensorflow import keras

    from training.backbone import build_head, symmetric_mobilenet_v2

    interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    interpreter.invoke()  # materialises the dequantised (float16 -> float32) weights
    ops = [op for op in interpreter._get_ops_details() if op["op_name"] in WEIGHT_OPS]  # noqa: SLF001
    backbone = symmetric_mobilenet_v2(input_size)
    head = build_head(n_classes, (1280,))
    image = keras.Input((input_size, input_size, 3), name="image")
    model = keras.Model(image, head(keras.layers.GlobalAveragePooling2D()(backbone(image))), name="classifier")
    conv_types = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
    convs = [layer for layer in backbone.layers if isinstance(layer, conv_types)]
    dense = [layer for layer in head.layers if isinstance(layer, keras.layers.Dense)]
    if len(ops) != len(convs) + len(dense):
        raise ModelError(f"{path}: {len(ops)} weight ops, expected {len(convs) + len(dense)} for MobileNetV2 + head")
    for op, layer in zip(ops, convs + dense):
        weights, bias = (interpreter.get_tensor(i) for i in op["inputs"][1:3])
        if op["op_name"] == "FULLY_CONNECTED":
            layer.set_weights([weights.T, bias])
            continue
        layer.set_weights([weights[0][..., None] if op["op_name"] == "DEPTHWISE_CONV_2D"
                           else weights.transpose(1, 2, 3, 0)])
        bn = backbone.layers[backbone.layers.index(layer) + 1]
        if not isinstance(bn, keras.layers.BatchNormalization):
            raise ModelError(f"{path}: layer {layer.name} is not followed by BatchNormalization")
        bn.set_weights([np.ones_like(bias), bias, np.zeros_like(bias), np.full_like(bias, 1 - bn.epsilon)])
    return model


def to_int8_tflite(model: Any, batches: Sequence[np.ndarray]) -> bytes:
    """Full-integer TFLite (int8 weights and activations; float input and output) calibrated on `batches`."""
    import tensorflow as tf

    def representative() -> Iterator[list[np.ndarray]]:
        for batch in batches:
            yield [batch]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def scene_crops(voc_root: str | Path, exclude: set[str], size: int, margin: float, limit: int,
                seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """Up to `limit` crops of labelled faces from annotated photos not in `exclude`, and the photos they came from."""
    photos = load_voc(voc_root, exclude=exclude)
    boxes = [(photo, obj.box) for photo in photos for obj in photo.objects]
    random.Random(seed).shuffle(boxes)
    chosen = sorted(boxes[:limit], key=lambda pb: pb[0].stem)
    crops, used, cache = [], [], {}
    for photo, box in chosen:
        if photo.stem not in cache:
            cache.clear()
            try:
                cache[photo.stem] = read_image(photo.image)
            except ImageError:
                continue
        crops.append(crop_face(cache[photo.stem], box, size, margin))
        used.append(photo.stem)
    return crops, used


def quantize_version(store: ModelStore, source: str, name: str, voc_root: str | Path, heldout: Sequence[str],
                     calibration: int = 512, check: int = 512, description: str = "") -> ModelVersion:
    """Write classifier version `name`: the int8 model of `source`, calibrated on crops of non-held-out photos.

    `check` further crops of the same photos (not used for calibration) measure how closely the int8
    model follows the float one; that goes into quantization.json and the model card.
    """
    base = store.load("classifier", source)
    if len(base.model_files()) != 1:
        raise ModelError(f"classifier {source!r} is an ensemble: quantize its members one by one")
    final = store.kind_dir("classifier") / name
    if final.exists():
        raise ModelError(f"classifier version {name!r} already exists in {store.kind_dir('classifier')}")
    meta = base.meta
    size, margin = int(meta["input_size"]), float(meta.get("crop_margin", 0.2))
    crops, photos = scene_crops(voc_root, set(heldout), size, margin, calibration + check)
    if len(crops) < calibration + 1:
        raise ModelError(f"only {len(crops)} face crops in {voc_root} outside the held-out list")
    batch = preprocess_crops(crops, meta.get("preprocessing", "torch"))
    order = np.random.default_rng(0).permutation(len(batch))
    calib, held = order[:calibration], order[calibration:]
    keras_model = keras_from_tflite(base.file(), size, len(meta["labels"]))
    int8 = to_int8_tflite(keras_model, [batch[calib[i:i + CALIBRATION_BATCH]]
                                        for i in range(0, len(calib), CALIBRATION_BATCH)])
    staging = final.parent / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / MODEL_FILE).write_bytes(int8)
    float_probs = FaceClassifier(str(base.file()), meta["labels"], size, meta.get("preprocessing", "torch"))
    int8_probs = FaceClassifier(str(staging / MODEL_FILE), meta["labels"], size, meta.get("preprocessing", "torch"))
    check_crops = [crops[i] for i in held]
    agreement = tflite_agreement(float_probs.predict(check_crops), int8_probs.predict(check_crops))
    report = {"source": source, "calibration_crops": int(len(calib)),
              "calibration_photos": len({photos[i] for i in calib}), "check_crops": int(len(held)),
              "float_vs_int8_on_check_crops": agreement, "voc_root": str(voc_root),
              "excluded_heldout_photos": len(set(heldout))}
    (staging / "quantization.json").write_text(json.dumps(report, indent=2) + "\n")
    description = description or f"{source} quantized to int8 (weights and activations)"
    (staging / "model_card.md").write_text(_card(name, base, report, description))
    new_meta = {k: v for k, v in meta.items() if k not in ("files", "version", "kind", "model_files")}
    new_meta.update({"model_file": MODEL_FILE, "description": description, "quantization": "int8",
                     "source_version": source, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    staging.rename(final)
    return store.finalize("classifier", final, new_meta)


def _card(name: str, base: ModelVersion, report: dict[str, Any], description: str) -> str:
    agreement = report["float_vs_int8_on_check_crops"]
    return "\n".join([
        f"# Face-mask classifier `{name}`",
        "",
        description + ".",
        "",
        f"The weights of `{base.name}` (its card: `models/classifier/{base.name}/model_card.md`; data, training,"
        " licence and limits are the same), post-training quantized by `maskwatch models quantize`: int8 weights"
        " and activations, float input and output (same preprocessing as the source).",
        f"Calibration: {report['calibration_crops']} crops of labelled faces from {report['calibration_photos']}"
        f" annotated photos of `{Path(report['voc_root']).name}`, none of the {report['excluded_heldout_photos']}"
        " held-out photos.",
        f"Against the float model on {agreement['n']} other crops of those photos: top-1 agreement "
        f"{agreement['top1_agreement']:.4f}, largest probability difference {agreement['max_abs_prob_diff']:.3f}.",
        "Held-out accuracy next to the float model: `benchmarks/results/quantize_heldout.json`"
        " (docs/speed.md says how it is measured).",
        "",
    ])
