"""The shipped default classifier on a handful of held-out ilc2021 photos it never saw."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.classifier import FaceClassifier
from shared.crops import crop_face
from shared.imaging import read_image
from shared.model_store import REPO_MODELS, ModelStore
from shared.schemas import MASK_LABELS
from training.splits import ILC2021_VAL, read_list
from training.voc import load_voc


def test_shipped_model_is_promoted_small_and_complete() -> None:
    version = ModelStore(REPO_MODELS).load("classifier")
    assert set(MASK_LABELS) <= set(version.meta["labels"])
    assert version.file().stat().st_size < 10_000_000
    assert (version.path / "model_card.md").is_file()


def test_shipped_model_labels_heldout_faces(shared_data: Path) -> None:
    version = ModelStore(REPO_MODELS).load("classifier")
    classifier = FaceClassifier.from_version(version, threads=1)
    stems = set(read_list(ILC2021_VAL)[:40])
    photos = load_voc(shared_data / "scenes" / "ilc2021", stems=stems)
    truth, crops = [], []
    for photo in photos:
        image = read_image(photo.image)
        for obj in photo.objects:
            crops.append(crop_face(image, obj.box, classifier.input_size, classifier.crop_margin))
            truth.append(obj.label)
    predicted = [classifier.labels[i] for i in classifier.predict(crops).argmax(1)]
    accuracy = float(np.mean([p == t for p, t in zip(predicted, truth)]))
    assert len(truth) >= 60
    assert accuracy >= 0.85, f"accuracy {accuracy:.3f} on {len(truth)} held-out faces"
