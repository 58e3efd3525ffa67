"""`maskwatch detect` end to end, as a user runs it: real files, real decoding, real outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from shared.schemas import FrameResult
from tests.media import PHONE_SCENE, MjpegServer, assert_same_faces, phone_photo, png_header_only, write_clip
from tests.rtsp import RtspServer, require_gst_rtsp, write_h264_clip
from tests.stack.helpers import free_port

FIELDS = {"type", "source", "frame", "time", "width", "height", "faces"}
FACE_FIELDS = {"box", "score", "label", "confidence", "probs"}


def maskwatch(store, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "MASKWATCH_MODELS": str(store.root)}
    return subprocess.run([sys.executable, "-m", "maskwatch.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def read_jsonl(path: Path) -> list[dict]:
    """The frame lines (person lines of tracked videos are checked in tests/tracking)."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines = [line for line in lines if line["type"] == "frame"]
    for line in lines:
        FrameResult.model_validate(line)
        assert FIELDS <= set(line)
        for face in line["faces"]:
            assert FACE_FIELDS <= set(face)
    return lines


@pytest.fixture(scope="module")
def photo(scene_photos) -> np.ndarray:
    return cv2.imread(str(scene_photos[4]))


def test_photo_prints_a_table(tiny_store, scene_photos) -> None:
    out = maskwatch(tiny_store, "detect", str(scene_photos[4]))
    assert out.returncode == 0, out.stderr
    assert "face(s)" in out.stdout and "label" in out.stdout
    assert any(label in out.stdout for label in ("with_mask", "without_mask", "mask_incorrect"))
    assert "faces:" in out.stderr and "Traceback" not in out.stderr


def test_folder_is_recursive_and_sorted_with_json_and_saved_copies(tiny_store, photo, tmp_path) -> None:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "b.jpg"), photo)
    cv2.imwrite(str(folder / "a.png"), photo)
    cv2.imwrite(str(folder / "sub" / "c.jpg"), photo)
    (folder / "notes.txt").write_text("not an image")
    out = maskwatch(tiny_store, "detect", str(folder), "--json", str(tmp_path / "o.jsonl"),
                    "--save-dir", str(tmp_path / "ann"))
    assert out.returncode == 0, out.stderr
    lines = read_jsonl(tmp_path / "o.jsonl")
    assert [Path(x["source"]).name for x in lines] == ["a.png", "b.jpg", "c.jpg"]
    assert all(x["frame"] is None and x["width"] == photo.shape[1] and x["faces"] for x in lines)
    saved = sorted(p.name for p in (tmp_path / "ann").iterdir())
    assert saved == ["a.png", "b.jpg", "c.jpg"]
    annotated = cv2.imread(str(tmp_path / "ann" / "b.jpg"))
    assert annotated.shape == photo.shape
    assert np.abs(annotated.astype(int) - photo.astype(int)).mean() > 0.5  # boxes were drawn


def test_glob_and_json_to_stdout(tiny_store, photo, tmp_path) -> None:
    for name in ("x1.jpg", "x2.jpg", "y.jpg"):
        cv2.imwrite(str(tmp_path / name), photo)
    out = maskwatch(tiny_store, "detect", str(tmp_path / "x*.jpg"), "--json", "-")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [Path(x["source"]).name for x in lines] == ["x1.jpg", "x2.jpg"]


def test_video_with_stride_json_and_reencoded_copy(tiny_store, photo, tmp_path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", photo, frames=20, fps=10)
    out = maskwatch(tiny_store, "detect", str(clip), "--stride", "2", "--json", str(tmp_path / "v.jsonl"),
                    "--save-dir", str(tmp_path / "ann"))
    assert out.returncode == 0, out.stderr
    lines = read_jsonl(tmp_path / "v.jsonl")
    assert [x["frame"] for x in lines] == list(range(0, 20, 2))
    assert lines[1]["time"] == pytest.approx(0.2)
    assert all(x["faces"] for x in lines)
    cap = cv2.VideoCapture(str(tmp_path / "ann" / "clip.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 10
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(5)
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == \
        (photo.shape[1], photo.shape[0])
    cap.release()


def test_live_http_stream(tiny_store, photo, tmp_path) -> None:
    with MjpegServer(photo, fps=20, frames=6) as server:
        out = maskwatch(tiny_store, "detect", server.url, "--json", str(tmp_path / "s.jsonl"), timeout=60)
    lines = read_jsonl(tmp_path / "s.jsonl")
    assert len(lines) >= 3 and all(x["faces"] for x in lines)
    assert lines[0]["time"] > 1e9  # live sources carry wall-clock time
    # the stream ends after 6 frames: reported as one line, not a traceback
    assert "stream ended" in out.stderr and "Traceback" not in out.stderr


def test_rtsp_stream(tiny_store, photo, tmp_path) -> None:
    require_gst_rtsp()
    h, w = photo.shape[0] // 2 * 2, photo.shape[1] // 2 * 2  # H.264 wants even sizes
    clip = write_h264_clip(tmp_path / "scene.mp4", np.ascontiguousarray(photo[:h, :w]), count=20)
    with RtspServer(clip, free_port(range(18654, 18754)), tmp_path / "rtsp.log") as server:
        out = maskwatch(tiny_store, "detect", server.url.replace("rtsp://", "rtsp://cam:pw123@"),
                        "--json", str(tmp_path / "r.jsonl"), timeout=60)
    lines = read_jsonl(tmp_path / "r.jsonl")
    assert len(lines) >= 10 and all(x["faces"] for x in lines)  # the photo's faces, decoded from RTSP/H.264
    assert (lines[0]["width"], lines[0]["height"]) == (w, h) and lines[0]["time"] > 1e9
    assert lines[0]["source"] == server.url.replace("rtsp://", "rtsp://***@")
    # the 2 s clip ends: one line and exit status 1, no traceback, no password
    assert out.returncode == 1 and "stream ended" in out.stderr and "Traceback" not in out.stderr
    assert "pw123" not in out.stderr + out.stdout


def test_rtsp_stream_that_stops_sending(tiny_store, photo, tmp_path) -> None:
    require_gst_rtsp()
    h, w = photo.shape[0] // 2 * 2, photo.shape[1] // 2 * 2
    clip = write_h264_clip(tmp_path / "scene.mp4", np.ascontiguousarray(photo[:h, :w]), count=300)  # 30 s
    out_file = tmp_path / "r.jsonl"
    with RtspServer(clip, free_port(range(18654, 18754)), tmp_path / "rtsp.log") as server:
        env = {**os.environ, "MASKWATCH_MODELS": str(tiny_store.root)}
        proc = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "detect", server.url, "--timeout", "1",
                                 "--json", str(out_file), "--no-progress"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out_file.exists() or len(out_file.read_text().splitlines()) < 3):
            time.sleep(0.2)
        server.freeze()  # the connection stays open, nothing more is sent
        frozen = time.monotonic()
        try:
            _stdout, stderr = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert time.monotonic() - frozen < 15  # the read timeout, not the end of the 30 s clip
    assert proc.returncode == 1 and "stopped answering" in stderr and "Traceback" not in stderr
    assert len(read_jsonl(out_file)) >= 3  # what came before the stall is kept


def test_bad_inputs_one_line_each_and_the_rest_processed(tiny_store, photo, tmp_path) -> None:
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), photo)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    truncated = tmp_path / "truncated.jpg"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(100_000, 100_000))
    wrong = tmp_path / "doc.pdf"
    wrong.write_bytes(b"%PDF-1.4")
    empty = tmp_path / "empty"
    empty.mkdir()
    broken_video = tmp_path / "broken.mp4"
    broken_video.write_bytes(b"\x00\x00\x00\x18ftypmp42 garbage" * 10)
    clip = write_clip(tmp_path / "clip.mp4", photo, frames=40)
    cut_video = tmp_path / "cut.mp4"
    cut_video.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    bad = [corrupt, truncated, bomb, wrong, empty, broken_video, cut_video, tmp_path / "missing.jpg",
           "99", "http://127.0.0.1:9/none.mjpg"]
    out = maskwatch(tiny_store, "detect", str(good), *map(str, bad), "--json", str(tmp_path / "o.jsonl"))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == len(bad), out.stderr
    for item in bad:
        assert sum(Path(str(item)).name in e or str(item) in e for e in errors) >= 1, (item, errors)
    assert any("too large" in e for e in errors)
    assert any("truncated" in e for e in errors)
    lines = read_jsonl(tmp_path / "o.jsonl")
    assert Path(lines[0]["source"]).name == "good.jpg"
    assert f"failed sources: {len(bad)}" in out.stderr


def test_without_a_model_it_says_so(tmp_path, photo) -> None:
    cv2.imwrite(str(tmp_path / "p.jpg"), photo)
    env = {**os.environ, "MASKWATCH_MODELS": str(tmp_path / "empty-store")}
    out = subprocess.run([sys.executable, "-m", "maskwatch.cli", "detect", str(tmp_path / "p.jpg")],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2
    assert "no usable model" in out.stderr and "Traceback" not in out.stderr


def test_bad_options_are_refused(tiny_store, tmp_path) -> None:
    out = maskwatch(tiny_store, "detect", "x.jpg", "--stride", "0")
    assert out.returncode == 2 and "--stride" in out.stderr


def test_ctrl_c_keeps_what_was_written(tiny_store, photo, tmp_path) -> None:
    clip = write_clip(tmp_path / "long.mp4", photo, frames=400, fps=25, shift=0)
    env = {**os.environ, "MASKWATCH_MODELS": str(tiny_store.root)}
    proc = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "detect", str(clip), "--json",
                             str(tmp_path / "o.jsonl"), "--save-dir", str(tmp_path / "ann"), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            # a shell that starts the tests in the background ignores SIGINT, and a child
                            # Python that inherits SIG_IGN never raises KeyboardInterrupt: give Ctrl-C back
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            out = tmp_path / "o.jsonl"
            if out.exists() and out.read_text().count("\n") >= 5:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    lines = read_jsonl(tmp_path / "o.jsonl")
    assert 5 <= len(lines) < 400
    cap = cv2.VideoCapture(str(tmp_path / "ann" / "long.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) >= 5
    cap.release()


def test_show_without_display_says_why(tiny_store, photo, tmp_path) -> None:
    cv2.imwrite(str(tmp_path / "p.jpg"), photo)
    out = maskwatch(tiny_store, "detect", str(tmp_path / "p.jpg"), "--show")
    assert out.returncode == 0
    assert "--show: no window can be opened here" in out.stderr


def test_a_jpeg_over_max_pixels_is_decoded_smaller_and_answered_in_its_pixels(tiny_store, scene_photos,
                                                                              tmp_path) -> None:
    scene = scene_photos[PHONE_SCENE]
    phone = phone_photo(cv2.imread(str(scene)))
    (tmp_path / "phone.jpg").write_bytes(phone.jpeg)
    out = maskwatch(tiny_store, "detect", str(scene), str(tmp_path / "phone.jpg"), "--max-pixels", "1000000",
                    "--json", str(tmp_path / "out.jsonl"), "--save-dir", str(tmp_path / "saved"), "--no-progress")
    assert out.returncode == 0, out.stderr  # refused before: 48 megapixels over a 1-megapixel budget
    own, big = read_jsonl(tmp_path / "out.jsonl")
    assert (big["width"], big["height"]) == (8000, 6000)
    expected = [[f["box"][0] * phone.scale, f["box"][1] * phone.scale + phone.top, f["box"][2] * phone.scale,
                 f["box"][3] * phone.scale + phone.top] for f in own["faces"]]
    assert_same_faces([f["box"] for f in big["faces"]], expected)
    assert cv2.imread(str(next((tmp_path / "saved").rglob("phone*")))).shape == (750, 1000, 3)  # drawn at 1/8
