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
        "--workdir", str(tmp_path / "work"), "--anchors", "8,16,32", "64,128", "256,512",
    ])
    out = capsys.readouterr().out
    assert rc == 0, out
    version = detector_store.load("detector", "ft-test")  # complete, checksums valid
    assert version.meta["format"] == "retinaface-onnx" and version.meta["base_version"] == "retinaface-stock"
    training = json.loads((version.path / "training.json").read_text())
    assert training["steps"] == 3 and training["train_photos"] == 7  # 7 photos // batch 2
    # an 8 px anchor added at stride 8: the version serves with the anchors it was trained with
    assert version.meta["retinaface"]["anchor_sizes"] == [[8, 16, 32], [64, 128], [256, 512]]
    assert training["anchors"] == version.meta["retinaface"]["anchor_sizes"]
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
    assert main(["train-detector", str(voc), *common, "--paste", "1.5"]) == 2
    assert main(["train-detector", str(voc), *common, "--paste", "0.5", "--hard-negative-repeat", "0"]) == 2
    assert main(["train-detector", str(voc), *common, "--paste-crops", str(tmp_path / "no-crops")]) == 2
    assert main(["train-detector", str(voc), *common, "--hard-negatives", "nope"]) == 2
    assert main(["train-detector", str(voc), *common, "--anchors", "8,16,32", "64,128"]) == 2  # 3 levels
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 10 and all(line.startswith("error: ") for line in err)


def test_train_detector_pastes_faces_and_promotes_on_the_crowd_set(generated_voc, tmp_path, capsys) -> None:
    import shutil

    import cv2

    from shared.model_store import ModelStore
    from tests.conftest import REPO
    from training.detector.cli import wins
    from training.detector.crowd import CROWD_SPEC

    voc, val_list = generated_voc
    base = "retinaface-masked-ilc2021-small2"  # a base with serving policies
    shutil.copytree(REPO / "models" / "detector" / base, tmp_path / "store" / "detector" / base)
    store = ModelStore(tmp_path / "store")
    store.promote("detector", base)
    spec = tmp_path / "crowd.json"  # the shipped recipe over the generated validation photos (listed beside it)
    spec.write_text(json.dumps(json.loads(CROWD_SPEC.read_text()) | {"photos": val_list.name, "rounds": 2}))
    crops = tmp_path / "crops" / "with_mask"
    crops.mkdir(parents=True)
    image = cv2.imread(str(sorted((voc / "images").glob("*.jpg"))[0]))
    for i in range(3):
        cv2.imwrite(str(crops / f"{i}.jpg"), image)
    rc = main([
        "train-detector", str(voc), "--val-list", str(val_list), "--models", str(store.root), "--base", base,
        "--name", "paste-test", "--size", "64", "--batch-size", "2", "--epochs", "1", "--threads", "1",
        "--workdir", str(tmp_path / "work"), "--paste", "1", "--paste-crops", str(tmp_path / "crops"),
        "--crowd", str(spec),
    ])
    out = capsys.readouterr().out
    assert rc == 0, out
    version = store.load("detector", "paste-test")
    metrics = json.loads((version.path / "metrics.json").read_text())
    base_meta = store.load("detector", base).meta
    for key in ("crowd_base", "crowd_candidate"):
        assert metrics[key]["dataset"] == "crowd" and 0 <= metrics[key]["ap50"] <= 1
        assert metrics[key]["min_face"] == base_meta["policies"]["photos"]["min_face"]
    assert store.current("detector") == ("paste-test" if wins(metrics) else base)
    assert f"{base} @crowd" in out and "paste-test @crowd" in out  # the crowd rows of the table
    # served as its base until calibrated; the run remembers how it was trained
    assert version.meta["policies"] == base_meta["policies"] and version.meta["policies_from"] == base
    assert json.loads((version.path / "training.json").read_text())["config"]["paste"] == 1.0


def test_promotion_on_the_crowd_set_needs_a_crowd_win_and_no_1x_loss() -> None:
    from training.detector.cli import wins

    def row(ap: float, fp: float, masked: float = 0.9) -> dict:
        return {"ap50": ap, "fp_per_image": fp, "recall": {"with_mask": masked}}

    plain = {"base": row(0.89, 0.4), "candidate": row(0.89, 0.4)}
    assert not wins(plain)  # without crowd scores: strictly better 1x AP needed
    crowd = plain | {"crowd_base": row(0.77, 0.8), "crowd_candidate": row(0.80, 0.8)}
    assert wins(crowd)  # equal 1x, better crowd AP at no more false positives
    assert not wins(crowd | {"crowd_candidate": row(0.80, 0.9)})  # more crowd false positives
    assert not wins(crowd | {"candidate": row(0.88, 0.4)})  # loses 1x AP
    assert not wins(crowd | {"candidate": row(0.89, 0.4, masked=0.85)})  # loses masked recall
