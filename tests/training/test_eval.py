"""`maskwatch eval`: known answers on generated folders and scenes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskwatch.cli import main
from shared.classifier import FaceClassifier
from shared.face_detector import Detections
from shared.model_store import ModelStore
from shared.pipeline import Pipeline
from tests.training.colour_model import build_colour_classifier
from tests.training.conftest import write_voc
from training.error_review import ErrorReview
from training.evaluate import compliance_accuracy, evaluate_scenes, match_detections
from training.voc import load_voc

BGR = {"red": (0, 0, 230), "green": (0, 230, 0), "blue": (230, 0, 0)}


@pytest.fixture(scope="module")
def colour_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    root = tmp_path_factory.mktemp("colour-store")
    shutil.copytree(Path(__file__).resolve().parents[2] / "models" / "detector", root / "detector")
    store = ModelStore(root)
    build_colour_classifier(store, "colours")
    return store


def test_folder_eval_reports_known_numbers(colour_store: ModelStore, tmp_path: Path, capsys) -> None:
    # 4 red, 4 green, 2 blue images; one "green" image is really red, one "blue" is really green.
    truth_and_colour = [("red", "red")] * 4 + [("green", "green")] * 3 + [("green", "red")] + \
                       [("blue", "blue"), ("blue", "green")]
    for i, (label, colour) in enumerate(truth_and_colour):
        (tmp_path / "data" / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "data" / label / f"{i}.png"), np.full((20, 30, 3), BGR[colour], np.uint8))
    (tmp_path / "data" / "red" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    report_path = tmp_path / "report.json"
    version = colour_store.kind_dir("classifier") / "colours"
    assert main(["eval", str(version), str(tmp_path / "data"), "--json", str(report_path),
                 "--errors", str(tmp_path / "errors")]) == 0
    out = capsys.readouterr().out
    assert "accuracy=0.8000" in out and "2 wrongly labelled faces" in out
    errors = json.loads((tmp_path / "errors" / "errors.json").read_text())
    assert sorted((e["photo"], e["truth"], e["predicted"], e["box"]) for e in errors) == \
        [("data/blue/9.png", "blue", "green", []), ("data/green/7.png", "green", "red", [])]
    assert all(e["confidence"] == max(e["probs"].values()) for e in errors)
    saved = cv2.imread(str(tmp_path / "errors" / next(e["file"] for e in errors if e["truth"] == "blue")))
    assert np.abs(saved[16, 16].astype(int) - BGR["green"]).max() < 30  # the crop the classifier saw
    report = json.loads(report_path.read_text())["folders"]
    assert report["accuracy"] == 0.8 and report["skipped"] == 1
    assert report["per_class"]["red"] == {"precision": 0.8, "recall": 1.0, "f1": 0.8889, "support": 4}
    assert report["per_class"]["blue"]["recall"] == 0.5
    assert report["labels"] == ["blue", "green", "red"]
    assert report["confusion"] == [[1, 1, 0], [0, 3, 1], [0, 0, 4]]
    assert (tmp_path / "report-folders-confusion.png").stat().st_size > 1000


class FixedDetector:
    """Returns prepared boxes per call (the scene metrics are tested, not the detector)."""

    name = "fixed"

    def __init__(self, per_image: list[np.ndarray]) -> None:
        self.per_image = list(per_image)

    def detect(self, image: np.ndarray) -> Detections:
        boxes = np.asarray(self.per_image.pop(0), np.float32).reshape(-1, 4)
        return Detections(boxes, np.linspace(0.99, 0.9, len(boxes)).astype(np.float32))


def test_scene_eval_matches_classifies_and_scores(colour_store: ModelStore, tmp_path: Path) -> None:
    root = tmp_path / "voc"
    photo = np.full((120, 160, 3), 255, np.uint8)
    photo[10:50, 10:50] = BGR["red"]
    photo[60:100, 100:140] = BGR["green"]
    write_voc(root, "a", photo, [("red", (10, 10, 50, 50)), ("green", (100, 60, 140, 100))])
    write_voc(root, "b", photo, [("red", (10, 10, 50, 50)), ("blue", (100, 60, 140, 100))])
    detector = FixedDetector([
        [[11, 10, 50, 51], [100, 60, 140, 100]],  # both faces found
        [[10, 10, 50, 50], [0, 100, 20, 119]],    # one found, the "blue" one (really green) missed, one stray box
    ])
    classifier = FaceClassifier.from_version(colour_store.load("classifier", "colours"))
    report = evaluate_scenes(Pipeline(detector, classifier), load_voc(root))
    assert report["photos"] == 2 and report["gt_faces"] == 4
    assert report["undetected"] == {"blue": 1, "green": 0, "red": 0}
    matched = report["matched_faces"]
    assert matched["n"] == 3 and matched["accuracy"] == 1.0
    assert report["ap50"]["red"] == 1.0 and report["ap50"]["green"] == 1.0 and report["ap50"]["blue"] == 0.0
    assert report["detection_recall"]["blue"] == 0.0
    assert report["false_positives_per_image"] == {"detector": 0.5, "after_not_face": 0.5}  # the stray box
    assert 0.7 < report["face_ap50"] < 0.8  # 3 of 4 faces found, one stray box ranked last


def test_scene_eval_saves_wrongly_labelled_faces(colour_store: ModelStore, tmp_path: Path) -> None:
    root = tmp_path / "voc"
    photo = np.full((120, 160, 3), 255, np.uint8)
    photo[10:50, 10:50] = BGR["red"]
    photo[60:100, 100:140] = BGR["green"]
    write_voc(root, "a", photo, [("red", (10, 10, 50, 50)), ("blue", (100, 60, 140, 100))])  # green labelled blue
    classifier = FaceClassifier.from_version(colour_store.load("classifier", "colours"))
    review = ErrorReview(tmp_path / "errors", classifier.input_size, classifier.crop_margin)
    report = evaluate_scenes(Pipeline(FixedDetector([[[10, 10, 50, 50], [100, 60, 140, 100]]]), classifier),
                             load_voc(root), review)
    assert report["matched_faces"]["accuracy"] == 0.5
    index = json.loads(review.close().read_text())
    assert [(e["photo"], e["box"], e["truth"], e["predicted"]) for e in index] == \
        [("a.jpg", [100, 60, 140, 100], "blue", "green")]
    crop = cv2.imread(str(tmp_path / "errors" / index[0]["file"]))
    assert index[0]["file"] == "000-blue-as-green-a.jpg" and crop.shape[:2] == (classifier.input_size,) * 2
    assert np.abs(crop[crop.shape[0] // 2, crop.shape[1] // 2].astype(int) - BGR["green"]).max() < 30
    assert cv2.imread(str(tmp_path / "errors" / "sheet.jpg")).shape[0] > classifier.input_size


def test_compliance_accuracy_counts_only_the_compliance_boundary() -> None:
    truth = ["with_mask", "with_mask", "without_mask", "mask_incorrect", "without_mask"]
    preds = ["with_mask", "mask_incorrect", "mask_incorrect", "without_mask", "with_mask"]
    assert compliance_accuracy(truth, preds) == 0.6  # two of the five cross it
    assert compliance_accuracy([], []) is None


def test_match_detections_is_one_to_one() -> None:
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float)
    dets = np.array([[0, 0, 10, 10], [1, 0, 10, 10], [20, 0, 30, 10]], float)
    assert match_detections(dets, np.array([0.9, 0.95, 0.5]), gt) == [(1, 0), (2, 1)]
    assert match_detections(np.zeros((0, 4)), np.zeros(0), gt) == []


def test_eval_refuses_bad_input(colour_store: ModelStore, tmp_path: Path, voc_dir: Path, capsys) -> None:
    version = str(colour_store.kind_dir("classifier") / "colours")
    assert main(["eval", version]) == 2
    assert main(["eval", str(tmp_path / "classifier" / "nope"), str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["eval", version, "--scenes", str(tmp_path / "missing")]) == 2
    assert "VOC folder not found" in capsys.readouterr().err
    assert main(["eval", version, "--scenes", str(voc_dir), "--models", str(colour_store.root),
                 "--detector", "no-such-detector"]) == 2
    assert "detector version 'no-such-detector' not found" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("x")
    assert main(["eval", version, "--scenes", str(voc_dir), "--models", str(colour_store.root),
                 "--errors", str(tmp_path / "a-file")]) == 2
    assert "cannot write label errors to" in capsys.readouterr().err
