"""`maskwatch dataset crops`: labelled crops and not_face backgrounds cut with the pipeline's crop function."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from maskwatch.cli import main
from shared.crops import crop_face
from training.mining import background_boxes
from training.voc import load_voc


def _files(root: Path) -> dict[str, list[str]]:
    return {d.name: sorted(p.name for p in d.iterdir()) for d in sorted(root.iterdir())}


def test_crops_match_the_pipeline_crop_function(voc_dir: Path, tmp_path: Path) -> None:
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("p3\n")
    out = tmp_path / "crops"
    assert main(["dataset", "crops", str(voc_dir), str(out), "--exclude", str(exclude), "--size", "64",
                 "--background", "2"]) == 0
    files = _files(out)
    assert files["with_mask"] == ["p1__gt0.jpg"]
    assert files["without_mask"] == ["p1__gt1.jpg"]
    assert files["mask_incorrect"] == ["p2__gt0.jpg"]
    assert not any(name.startswith("p3") for names in files.values() for name in names)
    assert 1 <= len(files["not_face"]) <= 4
    photo = cv2.imread(str(voc_dir / "images" / "p1.jpg"))
    expected = crop_face(photo, (120, 30, 170, 90), 64)
    got = cv2.imread(str(out / "without_mask" / "p1__gt1.jpg"))
    assert got.shape == (64, 64, 3)
    assert np.abs(got.astype(int) - expected.astype(int)).mean() < 3  # equal up to JPEG loss


def test_background_boxes_never_touch_faces() -> None:
    faces = np.array([[100, 100, 150, 160], [300, 50, 340, 100]], float)
    boxes = background_boxes((400, 500, 3), faces, 20, np.random.default_rng(0), margin=0.2)
    assert len(boxes) >= 10
    for x1, y1, x2, y2 in boxes:
        assert 0 <= x1 < x2 <= 500 and 0 <= y1 < y2 <= 400
        for fx1, fy1, fx2, fy2 in faces:
            assert x2 <= fx1 or x1 >= fx2 or y2 <= fy1 or y1 >= fy2


def test_only_list_and_bad_folders(voc_dir: Path, tmp_path: Path, capsys) -> None:
    only = tmp_path / "only.txt"
    only.write_text("p2\n")
    assert load_voc(voc_dir, stems={"p2"})[0].stem == "p2"
    out = tmp_path / "crops"
    assert main(["dataset", "crops", str(voc_dir), str(out), "--only", str(only), "--background", "0"]) == 0
    assert _files(out) == {"mask_incorrect": ["p2__gt0.jpg"]}
    assert main(["dataset", "crops", str(tmp_path / "missing"), str(out)]) == 2
    assert "VOC folder not found" in capsys.readouterr().err
    (voc_dir / "annotations" / "p1.xml").write_text("<annotation><object>")
    assert main(["dataset", "crops", str(voc_dir), str(out)]) == 2
    err = capsys.readouterr().err
    assert "unreadable VOC annotation" in err and len(err.strip().splitlines()) == 1


def test_heldout_command_prints_the_seeded_list(voc_dir: Path, capsys) -> None:
    assert main(["dataset", "heldout", str(voc_dir), "--fraction", "0.34"]) == 0
    assert len(capsys.readouterr().out.split()) == 1
