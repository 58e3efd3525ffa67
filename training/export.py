"""Serving export: Keras model -> TFLite (optionally quantised) and a check that both agree."""

from __future__ import annotations

from typing import Any

import numpy as np

QUANTIZE_MODES = ("none", "float16", "dynamic")


def to_tflite(model: Any, quantize: str = "float16") -> bytes:
    """Convert a Keras model to TFLite bytes; 'dynamic' = int8 weights, 'float16' = half-size weights."""
    import tensorflow as tf

    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"unknown quantisation {quantize!r} (expected one of {', '.join(QUANTIZE_MODES)})")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def tflite_agreement(keras_probs: np.ndarray, tflite_probs: np.ndarray) -> dict[str, float]:
    """How closely the exported model reproduces the Keras model on the same inputs."""
    if len(keras_probs) == 0:
        return {"n": 0, "top1_agreement": 1.0, "max_abs_prob_diff": 0.0}
    return {
        "n": int(len(keras_probs)),
        "top1_agreement": round(float(np.mean(keras_probs.argmax(1) == tflite_probs.argmax(1))), 4),
        "max_abs_prob_diff": round(float(np.abs(keras_probs - tflite_probs).max()), 5),
    }
