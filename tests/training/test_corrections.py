"""Label corrections: the committed ilc2021 file and the loader that applies it."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import training.corrections as corrections
from tests.training.conftest import write_voc
from training.corrections import default_corrections, read_corrections
from training.errors import TrainingError
from training.voc import load_voc


def _write(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([list(corrections.COLUMNS), *rows])


@pytest.fixture()
def scenes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    labels = tmp_path / "labels"
    labels.mkdir()
    monkeypatch.setattr(corrections, "LABELS_DIR", labels)
    root = tmp_path / "myset"
    image = np.full((120, 160, 3), 128, np.uint8)
    write_voc(root, "a", image, [("without_mask", (10, 10, 50, 60)), ("without_mask", (80.4, 20, 120, 70))])
    write_voc(root, "b", image, [("mask_incorrect", (30, 30, 70, 80))])
    return root


def test_loader_applies_the_folders_corrections(scenes: Path) -> None:
    _write(corrections.LABELS_DIR / "myset_corrections.csv", [
        ["a.jpg", "80 20 120 70", "without_mask", "mask_incorrect", "mask pulled down under the chin"],
        ["b.jpg", "30 30 70 80", "mask_incorrect", "not_face", "no face in the box"]])
    corrected = {p.stem: [(o.label, o.box) for o in p.objects] for p in load_voc(scenes)}
    assert corrected == {"a": [("without_mask", (10, 10, 50, 60)), ("mask_incorrect", (80.4, 20, 120, 70))],
                         "b": []}
    original = {p.stem: [o.label for o in p.objects] for p in load_voc(scenes, original_labels=True)}
    assert original == {"a": ["without_mask", "without_mask"], "b": ["mask_incorrect"]}


def test_a_stale_or_malformed_correction_is_a_one_line_error(scenes: Path) -> None:
    path = corrections.LABELS_DIR / "myset_corrections.csv"
    _write(path, [["a.jpg", "80 20 120 70", "with_mask", "mask_incorrect", "old label does not match"]])
    with pytest.raises(TrainingError, match="a.jpg has no with_mask box 80 20 120 70"):
        load_voc(scenes)
    _write(path, [["a.jpg", "80 20 120", "without_mask", "with_mask", ""]])
    with pytest.raises(TrainingError, match=r":2: a row needs"):
        load_voc(scenes)
    path.write_text("photo,label\n")
    with pytest.raises(TrainingError, match="expected the columns"):
        load_voc(scenes)


def test_committed_ilc2021_corrections_all_apply(shared_data: Path) -> None:
    path = default_corrections(shared_data / "scenes" / "ilc2021")
    assert path is not None and path.name == "ilc2021_corrections.csv"
    rows = [c for cs in read_corrections(path).values() for c in cs]
    assert all(c.reason and c.old_label != c.new_label for c in rows)
    before = Counter(o.label for p in load_voc(shared_data / "scenes" / "ilc2021", original_labels=True)
                     for o in p.objects)
    after = Counter(o.label for p in load_voc(shared_data / "scenes" / "ilc2021") for o in p.objects)
    moved = Counter()
    for c in rows:
        moved[c.old_label] -= 1
        moved[c.new_label] += 1
    assert {k: after.get(k, 0) - before.get(k, 0) for k in moved} == \
        {k: v for k, v in moved.items() if k != "not_face"} | ({"not_face": 0} if "not_face" in moved else {})
