"""Photo detection for the upload API: one pipeline, loaded on first use, reloaded when a model is promoted."""

from __future__ import annotations

import threading

from shared.imaging import ImageError, decode_image, image_size
from shared.live_pipeline import LivePipeline
from shared.model_store import ModelStore
from shared.pipeline import Pipeline
from shared.schemas import FrameResult


class UploadRejected(ValueError):
    """An upload the API refuses; `status` is the HTTP status and the message its one-line detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def check_image(data: bytes, max_pixels: int) -> None:
    """Refuse non-images (415) and images over the pixel limit (413) from the header alone."""
    try:
        width, height = image_size(data)
    except ImageError as exc:
        raise UploadRejected(413 if str(exc).startswith("image too large") else 415, str(exc)) from None
    if width * height > max_pixels:
        raise UploadRejected(413, f"image too large: {width}x{height} pixels exceeds the limit of {max_pixels}")


class PhotoDetector:
    """Decodes uploaded bytes and runs the promoted pipeline on them, one image at a time.

    Raises `UploadRejected` for unusable images and `ModelError` when no model loads.
    Nothing is stored: the bytes and the decoded image are dropped when `detect` returns.
    """

    def __init__(self, store: ModelStore, max_pixels: int, interval: float = 2.0) -> None:
        self.store, self.max_pixels = store, max_pixels
        self.models = LivePipeline(store, interval=interval, lazy=True)  # the detector's hot reload
        self._lock = threading.Lock()

    def pipeline(self) -> Pipeline:
        """The promoted pipeline: loaded on first use, switched after a promote, kept after a broken one."""
        return self.models.current()

    def detect(self, data: bytes, filename: str) -> FrameResult:
        """The result for one encoded image, as `maskwatch detect --json` writes it."""
        if not data:
            raise UploadRejected(400, "empty upload: the file field holds no bytes")
        check_image(data, self.max_pixels)
        try:
            image = decode_image(data, self.max_pixels)
        except ImageError as exc:
            raise UploadRejected(400, str(exc)) from None
        height, width = image.shape[:2]
        with self._lock:
            pipeline = self.pipeline()
            faces = pipeline.process(image)
        return FrameResult(source=filename, width=width, height=height, faces=faces,
                           model_version=pipeline.model_version)
