"""Upload handling in process: reading bodies within limits, status codes, switching to a new model."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from starlette.requests import Request

from services.dashboard.photo import PhotoDetector, UploadRejected
from services.dashboard.upload import read_upload
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
    detector_version = own_store.current("detector")
    assert first.model_version == f"tiny-test+{detector_version}"
    own_store.promote("classifier", "tiny-b")
    deadline = time.monotonic() + 10
    result = first
    while result.model_version == first.model_version and time.monotonic() < deadline:
        time.sleep(0.5)
        result = detector.detect(data, "a.jpg")
    assert result.model_version == f"tiny-b+{detector_version}"
    assert [f.box for f in result.faces] == [f.box for f in first.faces]  # same weights, same answer


@pytest.mark.parametrize(("data", "status"), [
    (b"", 400), (b"GIF89a not really", 415), (png_header_only(8000, 8000), 413),
])
def test_bad_images_map_to_http_statuses(tiny_store, data: bytes, status: int) -> None:
    detector = PhotoDetector(tiny_store, max_pixels=10_000_000)
    with pytest.raises(UploadRejected) as info:
        detector.detect(data, "x")
    assert info.value.status == status and "\n" not in str(info.value)


def _chunked_request(body: bytes, chunk: int = 64 * 1024) -> Request:
    """A request whose body arrives in chunks without a Content-Length (chunked transfer encoding)."""
    parts = [body[i:i + chunk] for i in range(0, len(body), chunk)]

    async def receive() -> dict:
        data = parts.pop(0) if parts else b""
        return {"type": "http.request", "body": data, "more_body": bool(parts)}

    scope = {"type": "http", "method": "POST", "path": "/api/v1/detect", "query_string": b"",
             "headers": [(b"content-type", b"multipart/form-data; boundary=xyz")]}
    return Request(scope, receive)


def _multipart(field: str, data: bytes) -> bytes:
    return (f'--xyz\r\nContent-Disposition: form-data; name="{field}"; filename="a.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n").encode() + data + b"\r\n--xyz--\r\n"


def test_chunked_upload_over_the_limit_is_cut_off_with_413() -> None:
    request = _chunked_request(_multipart("file", b"\0" * (3 * 2**20)))
    with pytest.raises(UploadRejected) as info:
        asyncio.run(read_upload(request, max_bytes=2**20))
    assert info.value.status == 413


def test_chunked_upload_within_the_limit_is_read_in_memory(scene_photos: list[Path]) -> None:
    data = scene_photos[0].read_bytes()
    name, got = asyncio.run(read_upload(_chunked_request(_multipart("file", data), chunk=1000), max_bytes=2**20))
    assert (name, got) == ("a.jpg", data)


def test_a_broken_promote_keeps_the_running_model_as_the_detector_does(own_store: ModelStore,
                                                                      scene_photos: list[Path],
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    detector = PhotoDetector(own_store, max_pixels=50_000_000, interval=0.0)
    data = scene_photos[0].read_bytes()
    first = detector.detect(data, "a.jpg")
    (own_store.kind_dir("classifier") / "tiny-b" / "model.tflite").write_bytes(b"garbage")  # fails its checksum
    (own_store.kind_dir("classifier") / "CURRENT").write_text("tiny-b\n")
    after = detector.detect(data, "a.jpg")
    assert after.model_version == first.model_version  # still answering with the model that works
    assert [f.box for f in after.faces] == [f.box for f in first.faces]
    (line,) = [r.getMessage() for r in caplog.records if "new model version not loaded" in r.getMessage()]
    assert "keeping tiny-test+" in line and "\n" not in line


def test_the_first_load_waits_for_the_first_upload(tmp_path: Path) -> None:
    from shared.model_store import ModelError

    detector = PhotoDetector(ModelStore(tmp_path / "empty"), max_pixels=50_000_000)  # starts without models
    with pytest.raises(ModelError):
        detector.pipeline()
