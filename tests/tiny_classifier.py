"""Builds a tiny, deterministic TFLite face classifier for plumbing tests."""

from __future__ import annotations

import tempfile

from shared.model_store import ModelStore, ModelVersion
from shared.schemas import MASK_LABELS


def build_tiny_classifier(store: ModelStore, name: str, labels: tuple[str, ...] = MASK_LABELS,
                          input_size: int = 32, favour: str | None = None) -> ModelVersion:
    """Write a seeded random-weight classifier version `name` into `store` and return it.

    `favour` names a label that every crop gets (a large output bias), for tests that need a known answer.
    """
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((input_size, input_size, 3))
    x = tf.keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    bias = [10.0 if label == favour else 0.0 for label in labels]
    outputs = tf.keras.layers.Dense(len(labels), activation="softmax",
                                    bias_initializer=tf.keras.initializers.Constant(bias))(x)
    model = tf.keras.Model(inputs, outputs)
    folder = store.kind_dir("classifier") / name
    folder.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, verbose=False)
        tflite = tf.lite.TFLiteConverter.from_saved_model(tmp).convert()
    (folder / "model.tflite").write_bytes(tflite)
    meta = {"model_file": "model.tflite", "labels": list(labels), "input_size": input_size,
            "preprocessing": "torch", "crop_margin": 0.2, "description": "tiny test model"}
    return store.finalize("classifier", folder, meta)
