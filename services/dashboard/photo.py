"""Photo detection for the upload API: one pipeline, loaded on first use, reloaded when a model is promoted.

Every upload's cost is bounded before a pixel is decoded: its size is read from the header (any format);
a JPEG over the pixel budget (a 48-megapixel phone photo) is decoded at 1/2, 1/4 or 1/8 size, other formats
over it are refused (413), and the image the detector sees has at most `detect_pixels` pixels. Faces are
answered in the pixels of the original image, as displayed (EXIF orientation applied).
"""

from __future__ import annotations

import math
import threading

from shared.detectors.base import resize_by
from shared.imaging import ImageError, ImageHeader, decode_within, image_header, jpeg_reduction
from shared.live_pipeline import LivePipeline
from shared.model_store import ModelStore
from shared.pipeline import Pipeline, scale_faces
from shared.schemas import FrameResult

DEFAULT_DETECT_PIXELS = 1920 * 1080  # a 1080p frame: one detector pass and its memory, whatever the photo's size


class UploadRejected(ValueError):
    """An upload the API refuses; `status` is the HTTP status and the message its one-line detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def check_image(data: bytes, max_pixels: int,
                detect_pixels: int = DEFAULT_DETECT_PIXELS) -> tuple[ImageHeader, int]:
    """The header and the pixels decoding will cost; refuses non-images (415) and images that cannot be
    decoded within the pixel budget (413). Pass the header on to `PhotoDetector.detect`."""
    try:
        header = image_header(data)
        reduction = jpeg_reduction(header, max_pixels, detect_pixels)
    except ImageError as exc:
        raise _rejected(exc) from None
    return header, header.pixels_at(reduction)


class PhotoDetector:
    """Decodes uploaded bytes and runs the promoted pipeline on them, one image at a time.

    Raises `UploadRejected` for unusable images and `ModelError` when no model loads.
    Nothing is stored: the bytes and the decoded image are dropped when `detect` returns.
    """

    def __init__(self, store: ModelStore, max_pixels: int, interval: float = 2.0,
                 detect_pixels: int = DEFAULT_DETECT_PIXELS) -> None:
        self.store, self.max_pixels, self.detect_pixels = store, max_pixels, detect_pixels
        # the detector's hot reload; uploads are one-off photos: the version's photo policy
        self.models = LivePipeline(store, interval=interval, lazy=True, policy="photos")
        self._lock = threading.Lock()

    def pipeline(self) -> Pipeline:
        """The promoted pipeline: loaded on first use, switched after a promote, kept after a broken one."""
        return self.models.current()

    def detect(self, data: bytes, filename: str, header: ImageHeader | None = None) -> FrameResult:
        """The result for one encoded image, as `maskwatch detect --json` writes it (original pixels);
        `header`: the one `check_image` read (not read again)."""
        if not data:
            raise UploadRejected(400, "empty upload: the file field holds no bytes")
        try:
            decoded = decode_within(data, self.max_pixels, self.detect_pixels, header)
        except ImageError as exc:
            raise _rejected(exc) from None
        image, scale = decoded.image, decoded.scale
        pixels = image.shape[0] * image.shape[1]
        if self.detect_pixels and pixels > self.detect_pixels:
            image = resize_by(image, math.sqrt(self.detect_pixels / pixels))
            scale = image.shape[1] / decoded.width
        with self._lock:
            pipeline = self.pipeline()
            faces = pipeline.process(image)
        return FrameResult(source=filename, width=decoded.width, height=decoded.height,
                           faces=scale_faces(faces, 1 / scale), model_version=pipeline.model_version)


def _rejected(exc: ImageError) -> UploadRejected:
    message = str(exc)
    if message.startswith("image too large"):
        return UploadRejected(413, message)
    return UploadRejected(415 if message.startswith("not a readable image") else 400, message)
