"""What capture's frame path costs per camera: ffmpeg's output format, and OpenCV's thread pool in capture.

    python benchmarks/capture_cost.py [--out benchmarks/results/capture_cost.json]

On the airport clip stretched to 640x480 (../shared/data/video/airport.mp4), one camera at 10 fps, unpaced:
- ffmpeg's CPU seconds for the whole clip with the reader's command as it is (raw YUV4MPEG2) and with the same
  command writing MJPEG at capture's JPEG quality (what the readers did before);
- capture's CPU per frame: splitting the pipe, the motion gate on the luma plane, and a JPEG of the frame
  with OpenCV's thread pool and on one thread (`services.lifecycle.single_threaded_opencv`).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.cameras import VIDEO, read_clip, write_video  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from services.capture.ffmpeg import reader_command  # noqa: E402
from services.capture.frames import SampledFrame, Y4mSplitter  # noqa: E402
from shared.backends import ISA_FLAGS, cpu_info  # noqa: E402
from shared.config import CameraConfig, CaptureConfig  # noqa: E402
from shared.imaging import encode_jpeg  # noqa: E402
from shared.motion import MotionGate  # noqa: E402


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ffmpeg_run(command: list[str]) -> tuple[bytes, float]:
    """The command's stdout and the CPU seconds it used."""
    before = children_cpu()
    out = subprocess.run(command, check=True, capture_output=True).stdout
    return out, round(children_cpu() - before, 3)


def split_ms(raw: bytes, frames: int, chunk: int = 1 << 16) -> float:
    """CPU milliseconds per frame to split the stream, fed as the pipe gives it."""
    splitter, start = Y4mSplitter(1 << 25), time.process_time()
    for offset in range(0, len(raw), chunk):
        splitter.feed(raw[offset:offset + chunk])
    return round((time.process_time() - start) / frames * 1000, 3)


def per_frame_ms(work, frames: list) -> float:
    """CPU milliseconds per frame of `work(frame)` (every thread of this process)."""
    start = time.process_time()
    for frame in frames:
        work(frame)
    return round((time.process_time() - start) / len(frames) * 1000, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "capture_cost.json")
    args = parser.parse_args()
    if not VIDEO.is_file():
        print(f"error: {VIDEO} not found", file=sys.stderr)
        return 2
    options = CaptureConfig()
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_video(Path(tmp) / "airport480.mp4", *read_clip(VIDEO))
        command = reader_command(CameraConfig(id="a", url=str(clip), fps=10, loop=False), options)
        vf = command.index("-vf") + 1
        command[vf] = command[vf].removeprefix("realtime,")  # unpaced: the same work, in less time
        raw, raw_cpu = ffmpeg_run(command)
        qscale = max(2, min(31, round((100 - options.jpeg_quality) / 5) + 2))  # the former readers' mapping
        mjpeg = [*command[:command.index("-pix_fmt")], "-c:v", "mjpeg", "-q:v", str(qscale), "-f", "image2pipe",
                 "pipe:1"]
        _jpegs, mjpeg_cpu = ffmpeg_run(mjpeg)
    frames = [SampledFrame("a", yuv, 0.0, options.jpeg_quality) for yuv in Y4mSplitter(1 << 25).feed(raw)]
    gate = MotionGate()

    def jpeg(frame: SampledFrame) -> bytes:
        return encode_jpeg(frame.image(), frame.jpeg_quality)  # what `SampledFrame.jpeg` does, uncached

    result = {
        "frames": len(frames),
        "ffmpeg_cpu_s": {"yuv4mpegpipe": raw_cpu, "mjpeg": mjpeg_cpu},
        "capture_ms_per_frame": {
            "split": split_ms(raw, len(frames)),
            "motion_gate": per_frame_ms(lambda f: gate.needs_detector(f.gray(), 0.0), frames),
            "jpeg_opencv_pool": per_frame_ms(jpeg, frames),
        },
    }
    cv2.setNumThreads(1)
    result["capture_ms_per_frame"]["jpeg_one_thread"] = per_frame_ms(jpeg, frames)
    model, flags = cpu_info()
    report = {"benchmark": "capture_cost", "cpu": model, "isa": sorted(f for f in flags if f in ISA_FLAGS),
              "result": result, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_report(args.out, report)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
