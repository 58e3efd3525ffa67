"""A real RTSP server for the camera tests: GStreamer's gst-rtsp-server (Debian gir1.2-gst-rtsp-server-1.0).

Runs under the system Python that has PyGObject (/usr/bin/python3), not the project's virtualenv:

    python3 tests/rtsp_server.py encode IN.avi OUT.mp4          # any clip GStreamer decodes -> H.264 MP4
    python3 tests/rtsp_server.py serve OUT.mp4 --port 8554 --path /cam

`serve` plays the H.264 clip in real time to every client (each from its start, over RTP/UDP or
interleaved in the RTSP TCP connection), prints `ready` once it listens, and runs until killed.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402 (gi.require_version must come first)


def encode(source: str, target: str) -> int:
    """Re-encode `source` as baseline H.264 in MP4, a key frame every 10 frames (clients join fast)."""
    pipeline = Gst.parse_launch(
        f'filesrc location="{source}" ! decodebin ! videoconvert ! video/x-raw,format=I420 ! '
        "x264enc speed-preset=ultrafast tune=zerolatency key-int-max=10 ! video/x-h264,profile=baseline ! "
        f'mp4mux ! filesink location="{target}"')
    pipeline.set_state(Gst.State.PLAYING)
    message = pipeline.get_bus().timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if message is None or message.type == Gst.MessageType.ERROR:
        detail = message.parse_error()[0].message if message else "timed out"
        print(f"encode failed: {detail}", file=sys.stderr)
        return 1
    return 0


def serve(clip: str, port: int, path: str) -> int:
    """Serve `clip` at rtsp://127.0.0.1:PORT/PATH until SIGTERM/SIGINT."""
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f'( filesrc location="{clip}" ! qtdemux ! rtph264pay name=pay0 pt=96 config-interval=1 )')
    factory.set_shared(False)  # every client (and every reconnect) gets the clip from its start
    server.get_mount_points().add_factory(path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print("ready", flush=True)
    loop.run()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("encode")
    e.add_argument("source")
    e.add_argument("target")
    s = sub.add_parser("serve")
    s.add_argument("clip")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--path", default="/cam")
    args = parser.parse_args()
    Gst.init(None)
    if args.command == "encode":
        return encode(args.source, args.target)
    return serve(args.clip, args.port, args.path)


if __name__ == "__main__":
    sys.exit(main())
