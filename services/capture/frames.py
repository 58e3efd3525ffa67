"""Sampled frames as the capture readers deliver them: JPEG bytes split from a reader's pipe.

Public API:
- `SampledFrame(camera, jpeg, ts, width, height)`: one frame; `.image(reduce, gray)` decodes it (reduced
  sizes 2, 4, 8 decode much faster: what a per-frame hook such as motion gating wants).
- `FrameHook`: `hook(frame) -> bool`, called once per sampled frame before it is published (False: skip it).
- `JpegSplitter(max_bytes)`: `.feed(data) -> list[bytes]` splits a byte stream of concatenated JPEGs.
- `jpeg_size(jpeg) -> (width, height)`: read from the frame header, without decoding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

SOI, EOI = b"\xff\xd8", b"\xff\xd9"
_REDUCED = {1: (cv2.IMREAD_COLOR, cv2.IMREAD_GRAYSCALE),
            2: (cv2.IMREAD_REDUCED_COLOR_2, cv2.IMREAD_REDUCED_GRAYSCALE_2),
            4: (cv2.IMREAD_REDUCED_COLOR_4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
            8: (cv2.IMREAD_REDUCED_COLOR_8, cv2.IMREAD_REDUCED_GRAYSCALE_8)}
# start-of-frame markers (baseline, extended, progressive, lossless, ...): they carry height and width
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


class FrameTooLarge(ValueError):
    """A reader sent more bytes than `max_bytes` without ending a frame."""


@dataclass(frozen=True)
class SampledFrame:
    """One frame of one camera, sampled to the camera's fps and scaled to `capture.max_side`."""

    camera: str
    jpeg: bytes
    ts: float  # wall-clock time it arrived from the reader
    width: int
    height: int

    def image(self, reduce: int = 1, gray: bool = False) -> np.ndarray | None:
        """The decoded frame (BGR or gray), `reduce` (1, 2, 4 or 8) times smaller; None if undecodable."""
        flags = _REDUCED[reduce][1 if gray else 0]
        return cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), flags)


FrameHook = Callable[[SampledFrame], bool]


class JpegSplitter:
    """Splits a stream of concatenated JPEG images (ffmpeg's image2pipe output) into whole images.

    An image ends at the first EOI marker after its SOI: JPEG entropy-coded data never contains one
    (0xFF is always stuffed), and the encoder writes no embedded thumbnails.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes read from the pipe; returns the images completed by them (raises FrameTooLarge)."""
        self._buffer += data
        images: list[bytes] = []
        while True:
            start = self._buffer.find(SOI)
            if start < 0:
                del self._buffer[:max(0, len(self._buffer) - 1)]  # keep a possible half marker
                break
            end = self._buffer.find(EOI, start + 2)
            if end < 0:
                del self._buffer[:start]
                break
            images.append(bytes(self._buffer[start:end + 2]))
            del self._buffer[:end + 2]
        if len(self._buffer) > self.max_bytes:
            self._buffer.clear()
            raise FrameTooLarge(f"a frame over {self.max_bytes} bytes")
        return images


def jpeg_size(jpeg: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame segment; (0, 0) when there is none."""
    i = 2
    while i + 9 < len(jpeg):
        if jpeg[i] != 0xFF:
            return 0, 0
        marker = jpeg[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(jpeg[i + 2:i + 4], "big")
        if marker in _SOF:
            return int.from_bytes(jpeg[i + 7:i + 9], "big"), int.from_bytes(jpeg[i + 5:i + 7], "big")
        i += 2 + length
    return 0, 0
