"""PhotoDetector in process: status codes for bad images and switching to a newly promoted model."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from services.dashboard.photo import PhotoDetector, UploadRejected
from shared.model_store import ModelStore
from tests.media import png_header_only


@pytest.fixture
def own_store(tiny_store, tmp_path: Path) -> ModelStore:
    """A private copy of the tiny store with a second classifier version `tiny-b`."""
    root = tmp_path / "store"
    shutil.copytree(tiny_store.root, root)
    shutil.copytree(root / "classifier" / "tiny-test", root / "classifier" / "tiny-b")
    return ModelStore(root)


def test_a_newly_promoted_classifier_is_used_without_restart(own_store: ModelStore,
                                                             scene_photos: list[Path]) -> None:
    detector = PhotoDetector(own_store, max_pixels=50_000_000)
    data = scene_photos[0].read_bytes()
    first = detector.detect(data, "a.jpg")
    assert first.model_version == "tiny-test+retinaface-stock"
    own_store.promote("classifier", "tiny-b")
    deadline = time.monotonic() + 10
    result = first
    while result.model_version == first.model_version and time.monotonic() < deadline:
        time.sleep(0.5)
        result = detector.detect(data, "a.jpg")
    assert result.model_version == "tiny-b+retinaface-stock"
    assert [f.box for f in result.faces] == [f.box for f in first.faces]  # same weights, same answer


@pytest.mark.parametrize(("data", "status"), [
    (b"", 400), (b"GIF89a not really", 415), (png_header_only(8000, 8000), 413),
])
def test_bad_images_map_to_http_statuses(tiny_store, data: bytes, status: int) -> None:
    detector = PhotoDetector(tiny_store, max_pixels=10_000_000)
    with pytest.raises(UploadRejected) as info:
        detector.detect(data, "x")
    assert info.value.status == status and "\n" not in str(info.value)
