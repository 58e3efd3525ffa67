"""The `ffmpeg` command line that reads one camera: sampled to its fps, scaled, written to a pipe as JPEGs.

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
Decoder and JPEG encoder run on one thread each (`-threads 1` on both sides of `-i`): a camera's frames are
small, and the encoder's slice threads cost a fifth more CPU than they save (0.97 against 0.77 CPU seconds
for the 26 s airport clip at 10 fps, FFmpeg 5.1, AMD EPYC) on a machine busy with many cameras.
"""

from __future__ import annotations

import os

from shared.config import CameraConfig, CaptureConfig, is_file_source

FFMPEG = os.environ.get("MASKWATCH_FFMPEG", "ffmpeg")


def jpeg_qscale(quality: int) -> int:
    """ffmpeg's MJPEG quantiser (2 best .. 31 worst) for a JPEG quality of 30..100 (85 -> 5)."""
    return max(2, min(31, round((100 - quality) / 5) + 2))


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
    """The argv of the camera's reader process (JPEGs on stdout, errors on stderr)."""
    fps, side = camera.fps, options.max_side
    bucket = f"floor(t*{fps!r}+1e-6)"
    select = f"select='isnan(prev_selected_t)+gt({bucket},floor(prev_selected_t*{fps!r}+1e-6))'"
    pace = ["realtime"] if is_file_source(camera.url) else []  # live sources arrive in real time
    scale = f"scale='if(gt(iw,ih),min(iw,{side}),-1)':'if(gt(iw,ih),-1,min(ih,{side}))':flags=area"
    return [FFMPEG, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
            "-threads", "1", "-max_pixels", str(options.max_pixels), *input_args(camera, options),
            "-an", "-sn", "-dn", "-map", "0:v:0", "-vf", ",".join([*pace, select, scale]), "-fps_mode", "passthrough",
            "-c:v", "mjpeg", "-q:v", str(jpeg_qscale(options.jpeg_quality)), "-threads", "1", "-flush_packets", "1",
            "-f", "image2pipe", "pipe:1"]
