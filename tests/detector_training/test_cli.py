"""`maskwatch train-detector` and `eval-detector` end to end on generated photos (a few training steps)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tensorflow")

from maskwatch.cli import main  # noqa: E402
from shared.face_detector import RetinaFaceDetector  # noqa: E402
from training.detector.cli import beats  # noqa: E402


def test_train_detector_writes_an_evaluated_version(detector_store, generated_voc, tmp_path, capsys) -> None:
    voc, val_list = generated_voc
    rc = main([
        "train-detector", str(voc), "--val-list", str(val_list), "--models", str(detector_store.root),
        "--name", "ft-test", "--size", "64", "--batch-size", "2", "--epochs", "1", "--threads", "1",
        "--workdir", str(tmp_path / "work"),
    ])
    out = capsys.readouterr().out
    assert rc == 0, out
    version = detector_store.load("detector", "ft-test")  # complete, checksums valid
    assert version.meta["format"] == "retinaface-onnx" and version.meta["base_version"] == "retinaface-stock"
    training = json.loads((version.path / "training.json").read_text())
    assert training["steps"] == 3 and training["train_photos"] == 7  # 7 photos // batch 2
    assert all(h["loss"] > 0 for h in training["history"])
    metrics = json.loads((version.path / "metrics.json").read_text())
    assert metrics["val_photos"] == 3
    assert set(metrics["candidate"]["recall"]) <= {"with_mask", "without_mask", "mask_incorrect"}
    expected = "ft-test" if beats(metrics["candidate"], metrics["base"]) else "retinaface-stock"
    assert detector_store.current("detector") == expected
    assert "retinaface-stock" in out and "ft-test" in out
    assert (tmp_path / "work" / "last.weights.h5").is_file()
    # the new version serves through the unchanged runtime
    RetinaFaceDetector.from_version(version)

    rows = tmp_path / "rows.json"
    rc = main(["eval-detector", str(voc), "--val-list", str(val_list), "--models", str(detector_store.root),
               "--detector", "retinaface-stock", "--detector", "ft-test", "--json", str(rows)])
    assert rc == 0
    scored = json.loads(rows.read_text())
    assert scored["ft-test"]["ap50"] == pytest.approx(metrics["candidate"]["ap50"], abs=1e-4)
    assert scored["retinaface-stock"]["images"] == 3


def test_train_detector_refuses_bad_input(detector_store, generated_voc, tmp_path, capsys) -> None:
    voc, val_list = generated_voc
    common = ["--val-list", str(val_list), "--models", str(detector_store.root)]
    assert main(["train-detector", str(tmp_path / "missing"), *common]) == 2
    assert main(["train-detector", str(voc), *common, "--size", "50"]) == 2
    assert main(["train-detector", str(voc), *common, "--name", "retinaface-stock"]) == 2
    assert main(["train-detector", str(voc), *common, "--base", "nope"]) == 2
    assert main(["eval-detector", str(voc), *common, "--detector", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5 and all(line.startswith("error: ") for line in err)
