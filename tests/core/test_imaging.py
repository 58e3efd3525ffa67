"""Safe decoding: good images decode; corrupt, truncated, huge and non-image data are refused in one line."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from shared.imaging import ImageError, ImageHeader, decode_image, encode_jpeg, jpeg_reduction, read_image
from tests.media import png_header_only


@pytest.fixture
def jpeg() -> bytes:
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :30] = (0, 0, 255)
    return encode_jpeg(image)


def test_decodes_jpeg_and_png(jpeg: bytes) -> None:
    image = decode_image(jpeg)
    assert image.shape == (40, 60, 3)
    assert image[20, 5, 2] > 200 and image[20, 50, 2] < 50
    png = cv2.imencode(".png", image)[1].tobytes()
    assert np.array_equal(decode_image(png), image)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"GIF89a not really", "not a readable image"),
        (b"hello world, plain text", "not a readable image"),
    ],
)
def test_refuses_non_images(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        decode_image(data)


def test_refuses_truncated_jpeg(jpeg: bytes) -> None:
    with pytest.raises(ImageError, match="truncated|corrupt"):
        decode_image(jpeg[: len(jpeg) // 2])


def test_refuses_images_over_the_pixel_limit(jpeg: bytes) -> None:
    with pytest.raises(ImageError, match="too large: 60x40"):
        decode_image(jpeg, max_pixels=1000)


def test_refuses_decompression_bomb_without_decoding() -> None:
    with pytest.raises(ImageError, match="too large"):
        decode_image(png_header_only(100_000, 100_000))


def test_read_image_names_the_file(tmp_path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8garbage")
    with pytest.raises(ImageError, match="bad.jpg"):
        read_image(bad)
    with pytest.raises(ImageError, match="missing.jpg: cannot read"):
        read_image(tmp_path / "missing.jpg")
    message = ""
    try:
        read_image(bad)
    except ImageError as exc:
        message = str(exc)
    assert "\n" not in message


@pytest.mark.parametrize(("size", "max_pixels", "min_pixels", "reduction"), [
    ((450, 292), 50_000_000, 0, 1),  # within the budget: full size
    ((8000, 6000), 50_000_000, 0, 1),
    ((8000, 6000), 12_000_000, 0, 2),  # the least reduction that fits
    ((8000, 6000), 12_000_000, 1920 * 1080, 4),  # the most that still keeps a 1080p frame's pixels
    ((1000, 800), 12_000_000, 1920 * 1080, 1),
    ((16_320, 12_240), 4_000_000, 0, 8),
])
def test_jpeg_reduction(size: tuple[int, int], max_pixels: int, min_pixels: int, reduction: int) -> None:
    assert jpeg_reduction(ImageHeader("JPEG", *size), max_pixels, min_pixels) == reduction
