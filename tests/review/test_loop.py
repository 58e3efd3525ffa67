"""The labelling loop end to end: sampled faces -> queue -> labelled over the API -> export -> train ->
--promote-if-better promotes the better model and refuses a worse one.

Faces are real (../shared face crops, found by the real detector) tinted by class, so a tiny model learns
them in seconds: with_mask red, without_mask green, mask_incorrect blue.
"""

from __future__ import annotations

import base64
import csv
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import redis

from shared.crops import crop_face
from shared.model_store import ModelStore
from shared.review.config import ReviewConfig
from shared.review.queue import ReviewQueue
from shared.review.sampler import ReviewSampler
from shared.schemas import Face, FrameResult, PersonRecord
from tests.conftest import TEST_REDIS_PORT
from tests.dashboard.conftest import Dashboard, start_dashboard, stop_process
from tests.review.conftest import REVIEW_DB
from tests.training.colour_model import build_colour_classifier
from tests.training.conftest import write_voc

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
URL = f"redis://127.0.0.1:{TEST_REDIS_PORT}/{REVIEW_DB}"
TINT_BGR = {"with_mask": (0.25, 0.25, 1.0), "without_mask": (0.25, 1.0, 0.25), "mask_incorrect": (1.0, 0.25, 0.25)}
BOX = (95, 85, 225, 235)  # where the face sits on its 320 x 320 canvas


def _scene(face: np.ndarray, label: str) -> np.ndarray:
    canvas = np.full((320, 320, 3), 128, np.uint8)
    canvas[80:240, 80:240] = (cv2.resize(face, (160, 160)) * np.array(TINT_BGR[label])).astype(np.uint8)
    return canvas


@pytest.fixture()
def loop_dashboard(tiny_store, review_redis: redis.Redis, tmp_path: Path) -> Iterator[Dashboard]:
    dash = start_dashboard(tiny_store.root, URL, tmp_path / "dashboard.log")
    yield dash
    stop_process(dash.process)


def _maskwatch(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "maskwatch.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_review_loop_trains_and_promotes_only_a_better_model(shared_data: Path, review_redis: redis.Redis,
                                                               loop_dashboard: Dashboard, tmp_path: Path) -> None:
    faces = [cv2.imread(str(p)) for p in sorted((shared_data / "faces" / "fm12k" / "without_mask").glob("*.jpg"))[:36]]
    labels = list(TINT_BGR)
    # validation photos: 12 faces, 4 per class
    val = tmp_path / "val"
    for i, face in enumerate(faces[:12]):
        write_voc(val, f"v{i:02d}", _scene(face, labels[i % 3]), [(labels[i % 3], BOX)])
    (tmp_path / "val.txt").write_text("".join(f"v{i:02d}\n" for i in range(12)))
    store = ModelStore(tmp_path / "store")
    shutil.copytree(REPO / "models" / "detector", store.kind_dir("detector"))
    # the promoted classifier and a second candidate both confuse every class (wrong colour -> label maps)
    build_colour_classifier(store, "wrong-a", labels=("without_mask", "mask_incorrect", "with_mask"))
    build_colour_classifier(store, "wrong-b", labels=("mask_incorrect", "with_mask", "without_mask"))
    store.promote("classifier", "wrong-a")

    # a camera's tracker: 24 people, 3 frames each, the model unsure of every one
    sampler = ReviewSampler(ReviewConfig(enabled=True, sample_every=0), "door", review_redis)
    truth = {}
    for person, face in enumerate(faces[12:], start=1):
        truth[person] = labels[person % 3]
        crop = crop_face(_scene(face, truth[person]), BOX, 128)
        jpeg = base64.b64encode(cv2.imencode(".jpg", crop)[1].tobytes()).decode()
        for frame in range(3):
            seen = Face(box=list(BOX), score=0.9, label="with_mask", confidence=0.5, track_id=person, crop=jpeg,
                        probs={"with_mask": 0.5, "without_mask": 0.3, "mask_incorrect": 0.2})
            sampler.on_frame(FrameResult(source="door", camera="door", frame=frame, time=person + frame / 10,
                                         width=320, height=320, faces=[seen], model_version="wrong-a"))
        sampler.on_person(PersonRecord(camera="door", track_id=person, label="with_mask", first_seen=person,
                                       last_seen=person + 0.2, frames=3, best_box=list(BOX)))

    with loop_dashboard.client() as http:
        items = http.get("/api/v1/review", params={"limit": 100}).json()["items"]
        assert len(items) == 24 and {i["reasons"][0] for i in items} == {"low_confidence"}
        for item in items:
            assert http.post(f"/api/v1/review/{item['id']}", json={"label": truth[item["track_id"]]}).status_code == 200

    out = tmp_path / "reviewed"
    printed = _maskwatch("review", "export", str(out), "--redis", URL)
    assert "24 labelled faces" in printed and ReviewQueue(review_redis).counts() == {"queued": 0, "labelled": 0}
    assert {p.name: len(list(p.glob("*.jpg"))) for p in out.iterdir() if p.is_dir()} == \
        {"with_mask": 8, "without_mask": 8, "mask_incorrect": 8}
    manifest = list(csv.DictReader((out / "manifest.csv").open()))
    assert len(manifest) == 24 and {(r["source"], r["model_version"], r["model_label"]) for r in manifest} == \
        {("door", "wrong-a", "with_mask")}
    assert all((out / r["file"]).is_file() and r["file"].startswith(r["label"] + "/") for r in manifest)

    printed = _maskwatch("train", str(out), "--out", str(store.root), "--no-pretrained", "--input-size", "32",
                         "--views", "2", "--epochs", "30", "--finetune-epochs", "0", "--batch-size", "8",
                         "--val-fraction", "0", "--name", "reviewed", "--promote-if-better", "--threads", "1",
                         "--val-scenes", str(val), "--val-photos", str(tmp_path / "val.txt"))
    assert "decision: promote" in printed and "recall with_mask" in printed
    old, new = (float(v) for v in next(line for line in printed.splitlines()
                                         if line.startswith("label accuracy")).split()[-2:])
    assert old == 0.0 and new >= 0.5  # the wrong colour map gets none right; chance is 1/3
    assert store.current("classifier") == "reviewed"

    printed = _maskwatch("models", "promote", "wrong-b", "--if-better", "--models", str(store.root),
                         "--val-scenes", str(val), "--val-photos", str(tmp_path / "val.txt"), "--threads", "1")
    assert "decision: keep reviewed" in printed and "not promoted" in printed
    assert store.current("classifier") == "reviewed"
