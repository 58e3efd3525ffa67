"""Sampled frames as the capture readers deliver them: raw pictures split from a reader's YUV4MPEG2 pipe.

ffmpeg writes each sampled frame uncompressed (I420), so capture looks at every frame for the price of a copy
and encodes a JPEG only for the frames it publishes with their picture: a still frame (motion gating) costs
neither ffmpeg's JPEG encoder nor a decode in capture.

Public API:
- `SampledFrame(camera, yuv, ts, jpeg_quality=85)`: one frame as I420 (the Y plane, then U and V: an array of
  `height * 3 // 2` rows of `width`); `.width`, `.height`, `.gray()` (the Y plane, no copy), `.image()` (BGR)
  and `.jpeg` (encoded when first asked for, once).
- `FrameHook`: `hook(frame) -> bool`, called once per sampled frame before it is published (False: still).
- `Y4mSplitter(max_bytes)`: `.feed(data) -> list[np.ndarray]` splits a YUV4MPEG2 byte stream (ffmpeg's
  `yuv4mpegpipe`, 4:2:0, even sizes) into I420 frames; raises `BadStream` (or its `FrameTooLarge`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from shared.imaging import encode_jpeg

MAGIC = b"YUV4MPEG2"
LINE_MAX = 1024  # a stream header or FRAME line is far shorter


class BadStream(ValueError):
    """A reader's output is not a YUV4MPEG2 stream of 4:2:0 frames."""


class FrameTooLarge(BadStream):
    """A reader announced frames over `max_bytes`."""


@dataclass(frozen=True, eq=False)
class SampledFrame:
    """One frame of one camera, sampled to the camera's fps and scaled to `capture.max_side`."""

    camera: str
    yuv: np.ndarray  # I420, height * 3 // 2 rows of width bytes
    ts: float  # wall-clock time it arrived from the reader
    jpeg_quality: int = 85

    @property
    def width(self) -> int:
        """Width in pixels."""
        return int(self.yuv.shape[1])

    @property
    def height(self) -> int:
        """Height in pixels."""
        return int(self.yuv.shape[0] * 2 // 3)

    def gray(self) -> np.ndarray:
        """The luma plane (height x width), a view: what a per-frame hook such as motion gating wants."""
        return self.yuv[:self.height]

    def image(self) -> np.ndarray:
        """The frame as BGR."""
        return cv2.cvtColor(self.yuv, cv2.COLOR_YUV2BGR_I420)

    @cached_property
    def jpeg(self) -> bytes:
        """The frame as JPEG (`jpeg_quality`), encoded on first use."""
        return encode_jpeg(self.image(), self.jpeg_quality)


FrameHook = Callable[[SampledFrame], bool]


class Y4mSplitter:
    """Splits a YUV4MPEG2 stream (a header line, then `FRAME` lines each followed by one raw picture)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._shape: tuple[int, int] | None = None  # rows and columns of one I420 frame, from the header

    def feed(self, data: bytes) -> list[np.ndarray]:
        """Add bytes read from the pipe; returns the frames completed by them (I420 arrays)."""
        self._buffer += data
        frames: list[np.ndarray] = []
        if self._shape is None:
            end = self._line_end("no YUV4MPEG2 stream header")
            if end is None:
                return frames
            self._shape = self._parse_header(bytes(self._buffer[:end]))
            del self._buffer[:end + 1]
        rows, width = self._shape
        size = rows * width
        while True:
            end = self._line_end("a frame does not start with a FRAME line")
            if end is None:
                return frames
            if not self._buffer.startswith(b"FRAME"):
                raise BadStream("a frame does not start with a FRAME line")
            if len(self._buffer) < end + 1 + size:
                return frames
            # one copy out of the buffer (the view is gone before the buffer shrinks)
            frames.append(np.frombuffer(self._buffer, np.uint8, size, end + 1).reshape(rows, width).copy())
            del self._buffer[:end + 1 + size]

    def _line_end(self, missing: str) -> int | None:
        """Where the buffer's first line ends (None while incomplete); raises BadStream(missing) when no line
        can be that long."""
        end = self._buffer.find(b"\n", 0, LINE_MAX)
        if end >= 0:
            return end
        if len(self._buffer) >= LINE_MAX:
            raise BadStream(missing)
        return None

    def _parse_header(self, header: bytes) -> tuple[int, int]:
        tokens = header.split()
        if not tokens or tokens[0] != MAGIC:
            raise BadStream("not a YUV4MPEG2 stream")
        tags = {t[:1]: t[1:].decode(errors="replace") for t in tokens[1:] if t}
        try:
            width, height = int(tags.get(b"W", "")), int(tags.get(b"H", ""))
        except ValueError:
            raise BadStream("the YUV4MPEG2 header has no frame size") from None
        if not tags.get(b"C", "420").startswith("420"):
            raise BadStream(f"colour space {tags[b'C']} (4:2:0 expected)")
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise BadStream(f"frame size {width}x{height} (even sizes expected)")
        if width * height * 3 // 2 > self.max_bytes:
            raise FrameTooLarge(f"{width}x{height} frames are over {self.max_bytes} bytes")
        return height * 3 // 2, width
