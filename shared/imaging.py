"""Safe image decoding: size limits, corrupt data and unsupported types become `ImageError`."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

DEFAULT_MAX_PIXELS = 50_000_000
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


class ImageError(ValueError):
    """An image that cannot be used; the message is one line meant for the user."""


def image_size(data: bytes) -> tuple[int, int]:
    """Return (width, height) from the header alone, without decoding the pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image too large: {exc}") from None
    except Exception:
        raise ImageError("not a readable image (unsupported type or corrupt header)") from None


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes into a BGR uint8 array, refusing oversized or broken images."""
    if not data:
        raise ImageError("empty image data")
    width, height = image_size(data)
    if width * height > max_pixels:
        raise ImageError(f"image too large: {width}x{height} pixels exceeds the limit of {max_pixels}")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError("corrupt or truncated image data")
    if _is_truncated(data):
        raise ImageError("truncated image data")
    return image


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file into a BGR array; problems raise `ImageError` naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return decode_image(data, max_pixels)
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from None


def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    """Encode a BGR image as JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageError("cannot encode image as JPEG")
    return buf.tobytes()


def _is_truncated(data: bytes) -> bool:
    """True for a JPEG that lacks its end-of-image marker (OpenCV decodes those silently)."""
    if data[:2] != b"\xff\xd8":
        return False
    return b"\xff\xd9" not in data[-1024:]
