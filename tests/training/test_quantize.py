"""int8 post-training quantization of a classifier version: the rebuilt Keras graph, the new version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from shared.classifier import FaceClassifier
from shared.model_store import REPO_MODELS, ModelError, ModelStore
from training.quantize import keras_from_tflite, quantize_version
from training.splits import ILC2021_VAL, read_list

FLOAT = "20261127-0414-mnv2-160"


def test_keras_rebuilt_from_tflite_gives_the_same_probabilities() -> None:
    version = ModelStore(REPO_MODELS).load("classifier", FLOAT)
    model = keras_from_tflite(version.file(), 160, len(version.meta["labels"]))
    batch = np.random.default_rng(0).normal(size=(3, 160, 160, 3)).astype(np.float32)
    served = FaceClassifier(str(version.file()), version.meta["labels"], 160, threads=1).runners[0](batch)
    np.testing.assert_allclose(model.predict(batch, verbose=0), served, atol=1e-4)


@pytest.mark.slow
def test_quantized_version_follows_the_float_one(tmp_path: Path, shared_data: Path) -> None:
    shutil.copytree(REPO_MODELS / "classifier" / FLOAT, tmp_path / "classifier" / FLOAT)
    store = ModelStore(tmp_path)
    heldout = read_list(ILC2021_VAL)
    version = quantize_version(store, FLOAT, "q", shared_data / "scenes" / "ilc2021", heldout,
                               calibration=32, check=64)
    assert version.meta["quantization"] == "int8" and version.meta["source_version"] == FLOAT
    assert version.file().stat().st_size < store.load("classifier", FLOAT).file().stat().st_size * 0.7
    report = json.loads((version.path / "quantization.json").read_text())
    assert report["calibration_crops"] == 32 and report["excluded_heldout_photos"] == len(set(heldout))
    assert report["float_vs_int8_on_check_crops"]["top1_agreement"] >= 0.9
    assert "int8" in (version.path / "model_card.md").read_text()
    with pytest.raises(ModelError, match="already exists"):
        quantize_version(store, FLOAT, "q", shared_data / "scenes" / "ilc2021", heldout, calibration=32)
