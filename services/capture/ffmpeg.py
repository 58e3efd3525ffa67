"""The `ffmpeg` command line that reads one camera: sampled to its fps, scaled, written to a pipe uncompressed.

Public API:
- `FFMPEG`: the ffmpeg executable (`$MASKWATCH_FFMPEG`, default `ffmpeg` on the PATH).
- `reader_command(camera, options) -> list[str]`.

Sampling uses a `select` filter that keeps the first frame of every 1/fps interval of the source's own
timestamps: it drops frames but never duplicates them (ffmpeg's `fps` filter would repeat frames after a
stall). Files play in real time, as a camera delivers them: a `realtime` filter before `select` holds each
decoded frame until its time, counted from the first frame, and files loop by seeking (`-stream_loop -1`).
Not `-re`: newer FFmpeg reads a file's start in a burst (`-readrate_initial_burst`, 6.1+), so a static
FFmpeg 9 sent the first two sampled frames 10 ms apart (capture's one-frame mailbox keeps only the newer)
and ended a 2 s clip after 1.5 s, where Debian's 5.1 paced them; the filter paces both alike.
The decoder runs on one thread (a camera's frames are small, and a machine watching many cameras has no
core to spare). Frames go out as YUV4MPEG2 (I420, even sizes): capture encodes a JPEG only for the frames it
publishes with a picture, with libjpeg-turbo, instead of ffmpeg's MJPEG encoder on every frame (the 26 s
airport clip at 10 fps: 0.40 CPU seconds of ffmpeg against 0.93 with MJPEG, FFmpeg 5.1, AMD EPYC; a 640x480
JPEG then costs OpenCV 0.8 ms, and only for frames with motion: `python benchmarks/capture_cost.py`).
"""

from __future__ import annotations

import os

from shared.config import CameraConfig, CaptureConfig, is_file_source

FFMPEG = os.environ.get("MASKWATCH_FFMPEG", "ffmpeg")


def input_args(camera: CameraConfig, options: CaptureConfig) -> list[str]:
    """The input options and `-i` of a camera (webcam index, video file, or stream URL)."""
    url = camera.url
    if url.isdigit():
        return ["-f", "v4l2", "-i", f"/dev/video{url}"]
    if is_file_source(url):
        return [*(["-stream_loop", "-1"] if camera.loop else []), "-i", url]
    probe = ["-analyzeduration", "500000", "-probesize", "500000"]  # first frame in ~1 s, not ffmpeg's 3-5 s
    if url.lower().startswith(("rtsp://", "rtsps://")):
        return ["-rtsp_transport", options.rtsp_transport, *probe, "-i", url]
    return [*probe, "-i", url]


def reader_command(camera: CameraConfig, options: CaptureConfig) -> list[str]:
    """The argv of the camera's reader process (YUV4MPEG2 on stdout, errors on stderr)."""
    fps, side = camera.fps, options.max_side
    bucket = f"floor(t*{fps!r}+1e-6)"
    select = f"select='isnan(prev_selected_t)+gt({bucket},floor(prev_selected_t*{fps!r}+1e-6))'"
    pace = ["realtime"] if is_file_source(camera.url) else []  # live sources arrive in real time
    even = f"trunc(min(iw,{side})/2)*2", f"trunc(min(ih,{side})/2)*2"  # 4:2:0 wants even sizes
    scale = f"scale='if(gt(iw,ih),{even[0]},-2)':'if(gt(iw,ih),-2,{even[1]})':flags=area"
    return [FFMPEG, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
            "-threads", "1", "-max_pixels", str(options.max_pixels), *input_args(camera, options),
            "-an", "-sn", "-dn", "-map", "0:v:0", "-vf", ",".join([*pace, select, scale]), "-fps_mode", "passthrough",
            "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", "-flush_packets", "1", "pipe:1"]
