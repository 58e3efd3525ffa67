"""Safe image decoding: size limits, corrupt data and unsupported types become `ImageError`."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
from PIL import Image, JpegImagePlugin

T = TypeVar("T")
DEFAULT_MAX_PIXELS = 50_000_000
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# JPEG decoded at 1/n size: libjpeg scales in the DCT, so the full-size image is never allocated
JPEG_REDUCTIONS: dict[int, int] = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                                   8: cv2.IMREAD_REDUCED_COLOR_8}
JPEG_FORMATS = frozenset({"JPEG", "MPO"})  # MPO: the multi-picture JPEG some phones write
EXIF_ORIENTATION = 0x0112
ROTATING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # a quarter turn: the displayed width is the stored height


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


@dataclass(frozen=True)
class ImageHeader:
    """What the header tells before any pixel is decoded; width and height as displayed (EXIF orientation)."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        """Pixels of the full-size image."""
        return self.width * self.height

    def pixels_at(self, reduction: int) -> int:
        """Pixels of the image decoded at 1/`reduction` size (libjpeg rounds each side up)."""
        return -(-self.width // reduction) * -(-self.height // reduction)


@dataclass(frozen=True)
class Decoded:
    """A decoded BGR image, possibly at a reduced size: `scale` is its pixels per pixel of the original,
    whose size (as displayed) is `width` x `height`."""

    image: np.ndarray
    scale: float
    width: int
    height: int


def image_header(data: bytes) -> ImageHeader:
    """Format and displayed size from the header alone (any format Pillow reads), without decoding pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                im = Image.open(io.BytesIO(data))
            except Image.DecompressionBombError as exc:  # over 179 MP: a 200 MP phone JPEG still fits at 1/8
                im = _jpeg_header(data, exc)
            with im:
                width, height = im.size
                rotated = im.format in JPEG_FORMATS and im.getexif().get(EXIF_ORIENTATION) in ROTATING_ORIENTATIONS
                return ImageHeader(im.format or "", *((height, width) if rotated else (width, height)))
    except ImageError:
        raise
    except Exception:
        raise ImageError("not a readable image (unsupported type or corrupt header)") from None


def _jpeg_header(data: bytes, bomb: Exception) -> Image.Image:
    """The header of a JPEG too large for Pillow's global bomb check (our budget applies instead)."""
    try:
        return JpegImagePlugin.JpegImageFile(io.BytesIO(data))
    except Exception:
        raise ImageError(f"image too large: {bomb}") from None


def jpeg_reduction(header: ImageHeader, max_pixels: int, min_pixels: int = 0) -> int:
    """The JPEG DCT reduction (1, 2, 4 or 8) to decode at: the largest one whose image keeps at least
    `min_pixels` (0: the smallest one) and fits `max_pixels`; raises ImageError when 1/8 is still over."""
    fitting = [n for n in JPEG_REDUCTIONS if header.pixels_at(n) <= max_pixels]
    if header.format not in JPEG_FORMATS:
        fitting = fitting[:1] if fitting[:1] == [1] else []
    if not fitting:
        reducible = " even at 1/8 size" if header.format in JPEG_FORMATS else ""
        raise ImageError(f"image too large: {header.width}x{header.height} pixels exceeds the limit of "
                         f"{max_pixels}{reducible}")
    keeping = [n for n in fitting if min_pixels and header.pixels_at(n) >= min_pixels]
    return max(keeping) if keeping else min(fitting)


def decode_within(data: bytes, max_pixels: int, min_pixels: int = 0, header: ImageHeader | None = None) -> Decoded:
    """Decode with at most `max_pixels` pixels ever allocated: a larger JPEG at 1/2, 1/4 or 1/8 size (libjpeg's
    DCT scaling, see `jpeg_reduction`), EXIF orientation applied; other formats over the budget are refused.
    `header`: the data's `image_header`, when the caller read it already."""
    if not data:
        raise ImageError("empty image data")
    header = header or image_header(data)
    image = _decode(data, JPEG_REDUCTIONS[jpeg_reduction(header, max_pixels, min_pixels)])
    return Decoded(image, image.shape[1] / header.width, header.width, header.height)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes into a BGR uint8 array at full size, refusing oversized or broken images."""
    if not data:
        raise ImageError("empty image data")
    width, height = image_size(data)
    if width * height > max_pixels:
        raise ImageError(f"image too large: {width}x{height} pixels exceeds the limit of {max_pixels}")
    return _decode(data, cv2.IMREAD_COLOR)


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file into a BGR array; problems raise `ImageError` naming the file."""
    return _read_file(path, lambda data: decode_image(data, max_pixels))


def read_image_within(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, min_pixels: int = 0) -> Decoded:
    """Read an image file as `decode_within` decodes it (a JPEG over `max_pixels` at a reduced size)."""
    return _read_file(path, lambda data: decode_within(data, max_pixels, min_pixels))


def _read_file(path: str | Path, decode: Callable[[bytes], T]) -> T:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return decode(data)
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from None


def _decode(data: bytes, flag: int) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if image is None:
        raise ImageError("corrupt or truncated image data")
    if _is_truncated(data):
        raise ImageError("truncated image data")
    return image


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
