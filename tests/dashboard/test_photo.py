"""Upload handling in process: reading bodies within limits, status codes, switching to a new model."""

from __future__ import annotations

import asyncio
import shutil
import time
import tracemalloc
from pathlib import Path

import cv2
import pytest
from starlette.requests import Request

from services.dashboard.photo import PhotoDetector, UploadRejected, check_image
from services.dashboard.upload import read_upload
from shared.imaging import image_header, jpeg_reduction
from shared.model_store import ModelStore
from tests.media import PHONE_SCENE, PhonePhoto, assert_same_faces, jpeg_header_only, phone_photo, png_header_only


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


@pytest.fixture(scope="module")
def phone(scene_photos: list[Path]) -> PhonePhoto:
    """An 8000x6000 phone JPEG (stored on its side, EXIF orientation 6) of a scene with several faces."""
    return phone_photo(cv2.imread(str(scene_photos[PHONE_SCENE])))


def expected_boxes(detector: PhotoDetector, scene: Path, phone: PhonePhoto) -> list[list[float]]:
    """The faces found in the scene photo itself, in the phone photo's displayed pixels."""
    faces = detector.detect(scene.read_bytes(), scene.name).faces
    return [[f.box[0] * phone.scale, f.box[1] * phone.scale + phone.top, f.box[2] * phone.scale,
             f.box[3] * phone.scale + phone.top] for f in faces]


def test_a_phone_photo_over_the_budget_is_decoded_reduced_with_faces_in_its_pixels(
        tiny_store, scene_photos: list[Path], phone: PhonePhoto) -> None:
    detector = PhotoDetector(tiny_store, max_pixels=12_000_000)  # 48 MP: refused with 413 before
    expected = expected_boxes(detector, scene_photos[PHONE_SCENE], phone)
    tracemalloc.start()
    try:
        result = detector.detect(phone.jpeg, "phone.jpg")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (result.width, result.height) == (8000, 6000)  # as displayed: EXIF orientation honoured
    assert peak < 8000 * 6000 * 3 / 4  # decoded at 1/4 size: the 144 MB full image never exists
    assert_same_faces([f.box for f in result.faces], expected)


@pytest.mark.parametrize(("data", "message"), [
    (png_header_only(8000, 6000), "image too large: 8000x6000 pixels exceeds the limit of 12000000"),
    (jpeg_header_only(40_000, 40_000), "image too large: 40000x40000 pixels exceeds the limit of 12000000 "
                                       "even at 1/8 size"),
])
def test_what_cannot_be_reduced_within_the_budget_is_refused_from_the_header(tiny_store, data: bytes,
                                                                            message: str) -> None:
    with pytest.raises(UploadRejected) as info:
        check_image(data, 12_000_000)
    assert (info.value.status, str(info.value)) == (413, message)
    with pytest.raises(UploadRejected) as info:
        PhotoDetector(tiny_store, max_pixels=12_000_000).detect(data, "x")
    assert (info.value.status, str(info.value)) == (413, message)


def test_a_200_megapixel_phone_jpeg_header_is_read_past_pillows_bomb_limit() -> None:
    header = image_header(jpeg_header_only(16_320, 12_240))
    assert (header.format, header.width, header.height) == ("JPEG", 16_320, 12_240)
    assert jpeg_reduction(header, 12_000_000, 1920 * 1080) == 8
