"""A TFLite classifier with known answers: the label is the dominant colour channel of the crop."""

from __future__ import annotations

from shared.model_store import ModelStore, ModelVersion

COLOUR_LABELS = ("red", "green", "blue")  # RGB channel order


def build_colour_classifier(store: ModelStore, name: str, labels: tuple[str, ...] = COLOUR_LABELS,
                            input_size: int = 32) -> ModelVersion:
    """Average pool over raw RGB -> fixed identity dense layer -> softmax; written as a store version."""
    import numpy as np
    import tensorflow as tf

    inputs = tf.keras.Input((input_size, input_size, 3))
    pooled = tf.keras.layers.GlobalAveragePooling2D()(inputs)
    dense = tf.keras.layers.Dense(len(labels), activation="softmax")
    outputs = dense(pooled)
    weights = np.zeros((3, len(labels)), np.float32)
    weights[np.arange(3), np.arange(3) % len(labels)] = 0.1
    dense.set_weights([weights, np.zeros(len(labels), np.float32)])
    model = tf.keras.Model(inputs, outputs)
    folder = store.kind_dir("classifier") / name
    folder.mkdir(parents=True)
    (folder / "model.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    meta = {"model_file": "model.tflite", "labels": list(labels), "input_size": input_size,
            "preprocessing": "raw", "crop_margin": 0.2}
    return store.finalize("classifier", folder, meta)
