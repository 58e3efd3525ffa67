"""Input sources for one-off runs: image files, folders, globs, video files, camera indices and URLs."""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np

from shared.imaging import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, ImageError, read_image_within
from shared.redaction import redact_url

__all__ = ["Frame", "Source", "SourceError", "classify", "describe", "expand", "frame_count", "iter_frames",
           "open_video", "redact_url", "video_fps"]

VIDEO_SUFFIXES: frozenset[str] = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"})
STREAM_PREFIXES: tuple[str, ...] = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
OPEN_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 10.0
FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
# RTSP over TCP (interleaved in the RTSP connection): no lost UDP packets, works through NAT and firewalls.
# OpenCV reads this variable at every open; a value set by the user wins (format "key;value|key;value").
DEFAULT_FFMPEG_OPTIONS = "rtsp_transport;tcp"
os.environ.setdefault(FFMPEG_OPTIONS_ENV, DEFAULT_FFMPEG_OPTIONS)


class SourceError(RuntimeError):
    """A source that cannot be used; the message is one line for the user."""


class SourceKind(StrEnum):
    """What a source is: a still image, a video file, a local camera (its index) or a network stream."""

    IMAGE = "image"
    VIDEO = "video"
    CAMERA = "camera"
    STREAM = "stream"


@dataclass(frozen=True)
class Source:
    """One thing to process."""

    kind: SourceKind
    location: str

    @property
    def is_live(self) -> bool:
        """Cameras and network streams have no end and no frame count."""
        return self.kind in (SourceKind.CAMERA, SourceKind.STREAM)


@dataclass
class Frame:
    """A decoded frame with its position in the source."""

    image: np.ndarray
    index: int | None
    time: float | None
    fps: float | None = None
    scale: float = 1.0  # image pixels per pixel of the original (a huge JPEG decoded at a reduced size)
    size: tuple[int, int] | None = None  # the original's (width, height) when scale is not 1


def classify(location: str) -> Source:
    """Decide what kind of source a path, index or URL is (no I/O beyond a stat)."""
    if location.isdigit():
        return Source(SourceKind.CAMERA, location)
    if location.lower().startswith(STREAM_PREFIXES):
        return Source(SourceKind.STREAM, location)
    suffix = Path(location).suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return Source(SourceKind.VIDEO, location)
    return Source(SourceKind.IMAGE, location)


def expand(argument: str) -> tuple[list[Source], str | None]:
    """Expand one command-line argument into sources, or return an error line when it yields none."""
    if argument.isdigit() or argument.lower().startswith(STREAM_PREFIXES):
        return [classify(argument)], None
    path = Path(argument)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and _is_media(p))
        if not files:
            return [], f"{redact_url(argument)}: folder holds no images or videos"
        return [classify(str(p)) for p in files], None
    if any(ch in argument for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(argument, recursive=True) if Path(p).is_file())
        files = [p for p in files if _is_media(p)]
        if not files:
            return [], f"{redact_url(argument)}: pattern matches no images or videos"
        return [classify(str(p)) for p in files], None
    if not path.exists():
        return [], f"{redact_url(argument)}: no such file, folder, camera index or URL"
    if not _is_media(path):
        return [], f"{redact_url(argument)}: unsupported file type {path.suffix or '(none)'}"
    return [classify(argument)], None


def open_video(location: str, open_timeout: float = OPEN_TIMEOUT_S,
               read_timeout: float = READ_TIMEOUT_S) -> cv2.VideoCapture:
    """Open a video file, camera index or stream URL; raises SourceError on failure.

    A stream that does not answer within `open_timeout` seconds fails to open; one that stops sending
    makes `read()` fail after about `read_timeout` seconds of silence (OpenCV's FFmpeg interrupt callback).
    """
    if location.isdigit():
        cap = cv2.VideoCapture(int(location))
        what = f"camera {location}"
    else:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, round(open_timeout * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, round(read_timeout * 1000)]
        cap = cv2.VideoCapture(location, cv2.CAP_FFMPEG, params)
        what = redact_url(location)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"{what}: cannot open (missing, unsupported, corrupt or unreachable)")
    return cap


def iter_frames(source: Source, stride: int = 1, max_pixels: int = DEFAULT_MAX_PIXELS,
                timeout: float = READ_TIMEOUT_S) -> Iterator[Frame]:
    """Yield the frames of a source (every `stride`-th for videos and streams); raises SourceError.

    `timeout` bounds opening a stream and every wait for its next frame (seconds).
    """
    if source.kind == SourceKind.IMAGE:
        try:
            decoded = read_image_within(source.location, max_pixels)
            yield Frame(decoded.image, None, None, scale=decoded.scale, size=(decoded.width, decoded.height))
        except ImageError as exc:
            raise SourceError(str(exc)) from None
        return
    yield from _iter_video(source, max(1, stride), timeout)


def frame_count(source: Source) -> int | None:
    """Number of frames a video file reports, or None for images and live sources."""
    if source.kind != SourceKind.VIDEO:
        return None
    cap = cv2.VideoCapture(source.location)
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    return count if count > 0 else None


def video_fps(cap: cv2.VideoCapture, default: float = 25.0) -> float:
    """Frames per second a capture reports, or `default` when it reports nonsense."""
    fps = cap.get(cv2.CAP_PROP_FPS)
    return fps if 0 < fps < 1000 else default


def _iter_video(source: Source, stride: int, timeout: float) -> Iterator[Frame]:
    cap = open_video(source.location, timeout, timeout)
    try:
        fps = video_fps(cap)
        expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if source.kind == SourceKind.VIDEO else 0
        index = -1
        while True:
            ok, image = cap.read()
            if not ok or image is None:
                break
            index += 1
            if index % stride:
                continue
            t = time.time() if source.is_live else index / fps
            yield Frame(image, index, t, fps)
        if index < 0:
            raise SourceError(f"{redact_url(source.location)}: no frame could be decoded (corrupt or empty video)")
        if source.is_live:
            raise SourceError(f"{redact_url(source.location)}: stream ended or stopped answering after frame {index}")
        if expected and index + 1 < expected * 0.98 - 1:
            raise SourceError(
                f"{source.location}: video ended early at frame {index + 1} of {expected} (truncated or corrupt)"
            )
    finally:
        cap.release()


def _is_media(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES


def describe(source: Source) -> str:
    """Printable name of a source (URLs without credentials)."""
    return redact_url(os.fspath(source.location))  # a file path comes back unchanged unless it holds user:pw@
