"""The pipeline: detector + classifier in one batch, JSON-ready faces, not_face dropped."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from shared.model_store import ModelError, ModelStore
from shared.pipeline import load_pipeline
from shared.schemas import MASK_LABELS, NOT_FACE
from tests.conftest import REPO
from tests.tiny_classifier import build_tiny_classifier


def test_faces_on_a_real_photo(tiny_store: ModelStore, scene_photos) -> None:
    pipeline = load_pipeline(tiny_store)
    image = cv2.imread(str(scene_photos[4]))
    faces = pipeline.process(image)
    assert len(faces) >= 2
    for face in faces:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= image.shape[1] and 0 <= y1 < y2 <= image.shape[0]
        assert set(face.probs) == set(MASK_LABELS)
        assert face.label == max(face.probs, key=face.probs.get)
        assert face.confidence == face.probs[face.label]
        assert abs(sum(face.probs.values()) - 1) < 1e-2
    assert pipeline.times.calls == 1 and pipeline.times.detect > 0


def test_not_face_is_dropped(tmp_path, scene_photos) -> None:
    shutil.copytree(REPO / "models" / "detector", tmp_path / "detector")
    store = ModelStore(tmp_path)
    build_tiny_classifier(store, "all-not-face", labels=(*MASK_LABELS, NOT_FACE), favour=NOT_FACE)
    build_tiny_classifier(store, "all-masked", labels=(*MASK_LABELS, NOT_FACE), favour="with_mask")
    image = cv2.imread(str(scene_photos[4]))
    assert load_pipeline(store, "all-not-face").process(image) == []
    masked = load_pipeline(store, "all-masked").process(image)
    assert masked and {f.label for f in masked} == {"with_mask"}


def test_no_faces_on_blank_image(tiny_store: ModelStore) -> None:
    assert load_pipeline(tiny_store).process(np.zeros((120, 160, 3), np.uint8)) == []


def test_missing_model_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ModelError, match="no classifier model promoted"):
        load_pipeline(ModelStore(tmp_path))
