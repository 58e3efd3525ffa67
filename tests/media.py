"""Generated test media: clips made from real photos, broken files, and a loopback MJPEG stream."""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def write_clip(path: Path, image: np.ndarray, frames: int = 30, fps: float = 10.0, shift: int = 2) -> Path:
    """Write an MP4 of `image` drifting right by `shift` pixels a frame (a face moving across the view)."""
    h, w = image.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(frames):
        matrix = np.float32([[1, 0, i * shift], [0, 1, 0]])
        writer.write(cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE))
    writer.release()
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels but holds no pixel data (a decompression bomb probe)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def jpeg_header_only(width: int, height: int) -> bytes:
    """A JPEG whose frame header claims width x height pixels but holds no image data."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 12, 3) + b"\x01\x00\x02\x00\x03\x00\x00\x3f\x00"
    return b"\xff\xd8" + sof + sos + b"\xff\xd9"


@dataclass(frozen=True)
class PhonePhoto:
    """A large phone-style JPEG made from a scene photo: where the scene sits in it, as displayed."""

    jpeg: bytes
    width: int
    height: int
    scale: float  # displayed pixels per scene pixel
    top: int  # the scene's top edge in the displayed image


def phone_photo(scene: np.ndarray, width: int = 8000, height: int = 6000, quality: int = 85) -> PhonePhoto:
    """`scene` upscaled to `width` wide on a grey `width` x `height` canvas, stored on its side with EXIF
    orientation 6 (rotate 90 degrees clockwise to display), as phones held upright write their photos."""
    scale = width / scene.shape[1]
    upscaled = cv2.resize(scene, (width, round(scene.shape[0] * scale)), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((height, width, 3), 128, np.uint8)
    top = (height - upscaled.shape[0]) // 2
    canvas[top:top + upscaled.shape[0]] = upscaled
    stored = cv2.rotate(canvas, cv2.ROTATE_90_COUNTERCLOCKWISE)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(stored[:, :, ::-1]).save(buffer, format="JPEG", quality=quality, exif=exif.tobytes())
    return PhonePhoto(buffer.getvalue(), width, height, scale, top)


PHONE_SCENE = 0  # the scene phone-photo tests upscale; ilc2021_00001: several faces of 40-90 px


def iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two [x1, y1, x2, y2] boxes."""
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def assert_same_faces(got: list[list[int]], expected: list[list[float]]) -> None:
    """At least 80% of the expected faces found (IoU 0.5) and about as many faces as expected."""
    assert len(expected) >= 2, "the scene needs several faces"
    matched = [e for e in expected if any(iou(g, e) >= 0.5 for g in got)]
    assert len(matched) >= 0.8 * len(expected) and abs(len(got) - len(expected)) <= max(1, len(expected) // 5), \
        (got, expected)


class MjpegServer:
    """Serves frames as multipart MJPEG on http://127.0.0.1:PORT/stream.mjpg until stopped or cut.

    Setting `stall` keeps every connection (and new ones) open but sends nothing: a hung camera.
    """

    def __init__(self, image: np.ndarray, fps: float = 10.0, frames: int | None = None, port: int = 0) -> None:
        self.jpeg = cv2.imencode(".jpg", image)[1].tobytes()
        self.fps, self.frames = fps, frames
        self.cut = threading.Event()
        self.stall = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                sent = 0
                try:
                    while not server.cut.is_set() and (server.frames is None or sent < server.frames):
                        if server.stall.is_set():
                            time.sleep(0.05)
                            continue
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                        self.wfile.write(f"Content-Length: {len(server.jpeg)}\r\n\r\n".encode())
                        self.wfile.write(server.jpeg + b"\r\n")
                        sent += 1
                        time.sleep(1 / server.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> MjpegServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def write_y4m(path: Path, image: np.ndarray, frames: int = 20, fps: int = 10, shift: int = 2) -> Path:
    """Write a Y4M clip (Chromium's fake camera input) of `image` drifting right by `shift` pixels a frame."""
    h, w = image.shape[:2]
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            matrix = np.float32([[1, 0, i * shift], [0, 1, 0]])
            moved = cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
            out.write(b"FRAME\n" + cv2.cvtColor(moved, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path
