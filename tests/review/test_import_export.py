"""`maskwatch review import VOC_DIR` and `review export --corrections`: the review tool on annotated photos."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import redis

import training.corrections as corrections
from maskwatch.cli import main
from shared.review.queue import ReviewQueue
from tests.conftest import TEST_REDIS_PORT
from tests.review.conftest import REVIEW_DB
from tests.training.conftest import write_voc
from training.voc import load_voc

URL = f"redis://127.0.0.1:{TEST_REDIS_PORT}/{REVIEW_DB}"


def test_import_queues_annotated_faces_and_export_turns_changes_into_corrections(
        tiny_store, review_redis: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    voc = tmp_path / "myset"
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    write_voc(voc, "a", image, [("without_mask", (10, 10, 50, 60)), ("with_mask", (80, 20, 120, 70))])
    write_voc(voc, "b", image, [("mask_incorrect", (30, 30, 70, 80))])
    assert main(["review", "import", str(voc), "--redis", URL, "--models", str(tiny_store.root),
                 "--labels", "without_mask,mask_incorrect"]) == 0
    assert "2 faces of 2 photos queued" in capsys.readouterr().out
    queue = ReviewQueue(review_redis)
    items = {(i.photo, tuple(i.box)): i for i in queue.items()}
    assert set(items) == {("a.jpg", (10, 10, 50, 60)), ("b.jpg", (30, 30, 70, 80))}
    first = items[("a.jpg", (10, 10, 50, 60))]
    assert first.annotated == "without_mask" and first.source == "import:myset" and first.crop
    assert first.reasons == ["annotation_differs" if first.model_label != "without_mask" else "annotated"]

    queue.label(first.id, "mask_incorrect")  # the reviewer says: a mask under the chin
    queue.label(items[("b.jpg", (30, 30, 70, 80))].id, "mask_incorrect")  # agrees with the annotation
    fixes = tmp_path / "labels" / "myset_corrections.csv"
    fixes.parent.mkdir()
    assert main(["review", "export", str(tmp_path / "out"), "--redis", URL, "--corrections", str(fixes)]) == 0
    assert "1 label corrections appended" in capsys.readouterr().out
    rows = list(csv.DictReader(fixes.open()))
    assert [(r["photo"], r["box"], r["old_label"], r["new_label"]) for r in rows] == \
        [("a.jpg", "10 10 50 60", "without_mask", "mask_incorrect")]
    monkeypatch.setattr(corrections, "LABELS_DIR", fixes.parent)
    assert [o.label for o in load_voc(voc)[0].objects] == ["mask_incorrect", "with_mask"]
    assert sorted(p.name for p in (tmp_path / "out" / "mask_incorrect").iterdir()) == \
        sorted(f"{i.id}.jpg" for i in items.values())


def test_review_commands_fail_with_one_line_errors(tmp_path: Path, capsys) -> None:
    dead = "redis://127.0.0.1:1/0"
    assert main(["review", "export", str(tmp_path / "out"), "--redis", dead]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: redis unavailable")
    assert main(["review", "import", str(tmp_path / "missing"), "--redis", dead]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing'}: VOC folder not found"
    (tmp_path / "bad.yaml").write_text("review: {enabled: maybe}\n")
    assert main(["review", "export", str(tmp_path / "out"), "--config", str(tmp_path / "bad.yaml")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
