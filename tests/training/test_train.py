"""`maskwatch train` end to end on a small generated data set (random init, tiny input)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maskwatch.cli import main
from shared.classifier import FaceClassifier
from shared.model_store import ModelStore
from tests.training.conftest import COLOURS, square_image


@pytest.fixture(scope="module")
def trained(squares_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelStore, int]:
    out = tmp_path_factory.mktemp("trained")
    code = main(["train", str(squares_dataset), "--out", str(out), "--no-pretrained", "--input-size", "32",
                 "--views", "2", "--epochs", "25", "--finetune-epochs", "2", "--batch-size", "16",
                 "--patience", "8", "--name", "squares-v1", "--promote", "--cache", str(out / "cache"),
                 "--threads", "1"])
    return ModelStore(out), code


def test_train_writes_a_valid_promoted_version(trained: tuple[ModelStore, int]) -> None:
    store, code = trained
    assert code == 0
    assert store.current("classifier") == "squares-v1"
    version = store.load("classifier")
    meta = version.meta
    assert meta["labels"] == sorted(COLOURS) and meta["input_size"] == 32
    assert meta["preprocessing"] == "torch" and meta["crop_margin"] == 0.2
    for name in ("model.tflite", "metrics.json", "model_card.md", "confusion_matrix.png", "curves.png",
                 "split/train.txt", "split/val.txt", "data_summary.json"):
        assert name in meta["files"], name
    train = set((version.path / "split" / "train.txt").read_text().split())
    val = set((version.path / "split" / "val.txt").read_text().split())
    assert len(train) + len(val) == 72 and not train & val
    card = (version.path / "model_card.md").read_text()
    assert "unfrozen, lr 0.0001, weights averaged with momentum 0.999)" in card  # the default
    metrics = json.loads((version.path / "metrics.json").read_text())
    by_root = metrics["validation_by_root"]
    assert list(by_root) == [Path(meta["config"]["roots"][0]).name] and by_root[list(by_root)[0]] == \
        {"n": len(val), "accuracy": metrics["validation"]["accuracy"]}
    assert f"By data root: {list(by_root)[0]} " in card


def test_trained_model_serves_and_agrees_with_keras(trained: tuple[ModelStore, int]) -> None:
    store, _ = trained
    version = store.load("classifier")
    metrics = json.loads((version.path / "metrics.json").read_text())
    assert metrics["validation"]["accuracy"] >= 0.9
    assert metrics["tflite_vs_keras"]["top1_agreement"] >= 0.95
    assert metrics["phase1"]["epochs"] >= 1
    classifier = FaceClassifier.from_version(version)
    rng = np.random.default_rng(42)
    crops = [square_image(colour, rng, 32) for colour in COLOURS.values() for _ in range(5)]
    predicted = [classifier.labels[i] for i in classifier.predict(crops).argmax(1)]
    expected = [name for name in COLOURS for _ in range(5)]
    assert np.mean([p == e for p, e in zip(predicted, expected)]) >= 0.8


def test_training_is_reproducible(trained: tuple[ModelStore, int], squares_dataset: Path) -> None:
    store, _ = trained
    assert main(["train", str(squares_dataset), "--out", str(store.root), "--no-pretrained", "--input-size", "32",
                 "--views", "2", "--epochs", "25", "--finetune-epochs", "2", "--batch-size", "16",
                 "--patience", "8", "--name", "squares-v1", "--cache", str(store.root / "cache"),
                 "--threads", "1"]) == 0
    assert store.current("classifier") == "squares-v1"  # not promoted without --promote
    again = store.load("classifier", "squares-v1-2")
    one = (store.kind_dir("classifier") / "squares-v1" / "split" / "val.txt").read_text()
    assert (again.path / "split" / "val.txt").read_text() == one
    m1 = json.loads((store.kind_dir("classifier") / "squares-v1" / "metrics.json").read_text())
    m2 = json.loads((again.path / "metrics.json").read_text())
    assert m1["history"]["loss"][:3] == pytest.approx(m2["history"]["loss"][:3], rel=1e-3)


def test_deeper_finetuning_trains_more_blocks(trained: tuple[ModelStore, int], squares_dataset: Path) -> None:
    store, _ = trained
    cache = store.root / "cache"
    before = set(cache.iterdir())
    assert main(["train", str(squares_dataset), "--out", str(store.root), "--no-pretrained", "--input-size", "32",
                 "--views", "1", "--epochs", "25", "--finetune-epochs", "2", "--finetune-from", "11",
                 "--ema", "0", "--batch-size", "16", "--patience", "8", "--name", "squares-deep",
                 "--cache", str(cache), "--threads", "1"]) == 0
    version = store.load("classifier", "squares-deep")
    assert version.meta["config"]["finetune_from"] == 11
    metrics = json.loads((version.path / "metrics.json").read_text())
    assert metrics["phase2"]["epochs"] >= 1 and metrics["validation"]["accuracy"] >= 0.9
    assert set(cache.iterdir()) - before  # features cut at another block are cached apart
    card = (version.path / "model_card.md").read_text()
    assert "phase 2 (blocks 11-16 and Conv_1 unfrozen, lr 0.0001):" in card and "kept)" in card


def test_refit_trains_every_image_for_the_given_epochs(tmp_path: Path, squares_dataset: Path) -> None:
    """--val-fraction 0: no split, no early stopping, the exact epoch counts, a valid and servable version."""
    assert main(["train", str(squares_dataset), "--out", str(tmp_path), "--no-pretrained", "--input-size", "32",
                 "--views", "1", "--epochs", "7", "--finetune-epochs", "2", "--val-fraction", "0",
                 "--batch-size", "16", "--name", "refit", "--cache", str(tmp_path / "cache"),
                 "--threads", "1"]) == 0
    version = ModelStore(tmp_path).load("classifier", "refit")
    assert len((version.path / "split" / "train.txt").read_text().split()) == 72
    assert (version.path / "split" / "val.txt").read_text().split() == []
    metrics = json.loads((version.path / "metrics.json").read_text())
    assert metrics["validation"] is None and version.meta["val_accuracy"] is None
    assert metrics["phase1"]["epochs"] == 7 and metrics["phase2"] == {"epochs": 2, "seconds": pytest.approx(
        metrics["phase2"]["seconds"]), "kept": True}
    assert "val_loss" not in metrics["history"] and len(metrics["history"]["loss"]) == 9
    assert metrics["tflite_vs_keras"]["n"] == 72 and metrics["tflite_vs_keras"]["top1_agreement"] >= 0.95
    card = (version.path / "model_card.md").read_text()
    assert "2 epochs (last weights kept: no validation)" in card and "TFLite vs Keras on 72 training crops" in card
    assert "confusion_matrix.png" not in version.meta["files"]
    rng = np.random.default_rng(7)
    crops = [square_image(colour, rng, 32) for colour in COLOURS.values() for _ in range(5)]
    predicted = FaceClassifier.from_version(version).predict(crops).argmax(1)
    assert np.mean(predicted == np.repeat(np.arange(len(COLOURS)), 5)) >= 0.8


def test_train_refuses_bad_options(tmp_path: Path, squares_dataset: Path, capsys) -> None:
    assert main(["train", str(squares_dataset), "--out", str(tmp_path)]) == 2
    assert "--no-pretrained" in capsys.readouterr().err
    assert main(["train", str(squares_dataset), "--out", str(tmp_path), "--pretrained", "/nope.h5"]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing"), "--out", str(tmp_path), "--no-pretrained"]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    (tmp_path / "one" / "only").mkdir(parents=True)
    assert main(["train", str(tmp_path / "one"), "--out", str(tmp_path), "--no-pretrained"]) == 2
    assert "no images found" in capsys.readouterr().err
    assert main(["train", str(squares_dataset), "--out", str(tmp_path), "--no-pretrained",
                 "--finetune-from", "17"]) == 2
    assert "--finetune-from must be a MobileNetV2 block from 1 to 16" in capsys.readouterr().err
    assert main(["train", str(squares_dataset), "--out", str(tmp_path), "--no-pretrained", "--ema", "1"]) == 2
    assert "--ema must be a momentum in [0, 1)" in capsys.readouterr().err
    assert main(["train", str(squares_dataset), "--out", str(tmp_path), "--no-pretrained", "--val-fraction", "0",
                 "--val", str(squares_dataset)]) == 2
    assert "--val-fraction 0 and --val exclude each other" in capsys.readouterr().err
    assert main(["train", str(squares_dataset), "--out", str(tmp_path), "--no-pretrained", "--val-fraction", "1"]) == 2
    assert "--val-fraction must be in [0, 1)" in capsys.readouterr().err


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_fit_keeps_the_validated_weights(ema: float) -> None:
    """With or without weight averaging, the weights kept are exactly those that scored the best val_loss."""
    from tensorflow import keras

    from training.train import TrainConfig, _fit

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=256) > 0).astype(int)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    start = model.get_weights()
    cfg = TrainConfig(roots=[], out="", batch_size=32, patience=2)
    history = _fit(model, x[:192], y[:192], x[192:], y[192:], cfg, epochs=6, lr=0.5, weights=None, ema=ema)
    kept = model.evaluate(x[192:], y[192:], verbose=0, return_dict=True)["loss"]
    assert kept == pytest.approx(min(history["val_loss"]), rel=1e-4)
    moved = np.abs(model.get_weights()[0] - start[0]).max()
    assert moved > 0.05  # it trained


def test_sample_weights_balance_classes_and_roots() -> None:
    from training.errors import TrainingError
    from training.train import sample_weights

    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2])  # 3, 6 and 3 samples
    roots = np.array(["a", "a", "b", "a", "a", "a", "a", "a", "b", "b", "b", "b"])

    def class_totals(w: np.ndarray) -> np.ndarray:
        return np.bincount(labels, weights=w)

    for mode in ("class", "sqrt", "root-class"):
        assert sample_weights(labels, roots, mode).mean() == pytest.approx(1.0)
    assert class_totals(sample_weights(labels, roots, "class")) == pytest.approx([4, 4, 4])
    sqrt_totals = class_totals(sample_weights(labels, roots, "sqrt"))
    assert sqrt_totals[1] / sqrt_totals[0] == pytest.approx(np.sqrt(2)) and sqrt_totals[0] == sqrt_totals[2]
    # five root x class cells: a|0 (2), b|0 (1), a|1 (5), b|1 (1), b|2 (3), each with total 12/5
    cell_w = sample_weights(labels, roots, "root-class")
    assert cell_w[:2].sum() == pytest.approx(cell_w[2]) == pytest.approx(12 / 5)
    assert sample_weights(labels, roots, "none") is None
    with pytest.raises(TrainingError, match="unknown balance mode"):
        sample_weights(labels, roots, "uniform")
