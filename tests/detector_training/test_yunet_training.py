"""YuNet fine-tuning: SimOTA assignment, a few steps on generated photos, export and the CLI end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from maskwatch.cli import main  # noqa: E402
from shared.detectors import detector_from_version  # noqa: E402
from shared.detectors.yunet import prior_points  # noqa: E402
from shared.model_store import ModelStore  # noqa: E402
from tests.conftest import REPO  # noqa: E402
from training.detector.data import split_scenes  # noqa: E402
from training.detector.yunet_train import YuNetTrainConfig, decode, simota, train_yunet  # noqa: E402

STOCK = REPO / "models" / "detector" / "yunet-n-stock"


def test_simota_assigns_priors_inside_each_face_only() -> None:
    priors = torch.from_numpy(prior_points((8, 16, 32), 128, 128))
    gt = torch.tensor([[16.0, 16.0, 48.0, 56.0], [80.0, 70.0, 100.0, 96.0]])
    pred = decode(torch.zeros(len(priors), 4), priors)  # every prior predicts a box of its own stride
    fg, gt_index, iou = simota(pred, torch.full((len(priors),), 0.5), priors, gt)
    assert fg.any() and set(gt_index.tolist()) == {0, 1}
    for g in range(2):
        pts = priors[fg][gt_index == g]
        cx, cy = (gt[g, 0] + gt[g, 2]) / 2, (gt[g, 1] + gt[g, 3]) / 2
        assert ((pts[:, 0] - cx).abs() < 2.5 * pts[:, 2]).all() and ((pts[:, 1] - cy).abs() < 2.5 * pts[:, 2]).all()
    assert (iou > 0).all()
    empty = simota(pred, torch.full((len(priors),), 0.5), priors, torch.zeros((0, 4)))
    assert not empty[0].any()


def test_a_few_steps_on_generated_photos_change_the_weights(generated_voc, tmp_path: Path) -> None:
    voc, val_list = generated_voc
    train, _ = split_scenes([voc], val_list)
    cfg = YuNetTrainConfig(size=96, batch=2, epochs=1, threads=1, log_every=1, mosaic=0.5)
    model, summary = train_yunet(train, STOCK / "model.onnx", tmp_path / "work", cfg,
                                 unlabelled=[np.zeros((0, 4), np.float32)] * len(train))
    assert summary["steps"] == len(train) // 2 == 3
    assert all(np.isfinite(h["loss"]) and h["loss"] > 0 for h in summary["history"])
    stock = torch.load(tmp_path / "work" / "last.pt")
    from training.detector.yunet_model import YuNetTorch

    base = YuNetTorch(STOCK / "model.onnx").state_dict()
    moved = [k for k in base if not torch.allclose(base[k], stock[k])]
    assert moved and all("kps" not in k for k in moved if stock[k].shape[0] == 10)


def test_train_detector_cli_fine_tunes_yunet(generated_voc, tmp_path: Path, capsys) -> None:
    voc, val_list = generated_voc
    shutil.copytree(STOCK, tmp_path / "store" / "detector" / STOCK.name)
    store = ModelStore(tmp_path / "store")
    rc = main(["train-detector", str(voc), "--val-list", str(val_list), "--models", str(store.root),
               "--base", "yunet-n-stock", "--name", "yunet-test", "--size", "64", "--batch-size", "2",
               "--epochs", "1", "--threads", "1", "--workdir", str(tmp_path / "work"), "--no-promote"])
    out = capsys.readouterr().out
    assert rc == 0, out
    version = store.load("detector", "yunet-test")
    assert version.meta["format"] == "yunet-onnx" and version.meta["base_version"] == "yunet-n-stock"
    assert (version.path / "LICENSE").read_text() == (STOCK / "LICENSE").read_text()
    assert json.loads((version.path / "training.json").read_text())["steps"] == 3
    detector = detector_from_version(version)
    assert len(detector.detect(np.full((96, 128, 3), 128, np.uint8))) == 0
    assert store.current("detector") is None  # --no-promote
