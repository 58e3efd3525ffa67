"""What the tracker's checkpoint costs to write: orjson (services/tracker/camera.py) against the json module.

    python benchmarks/checkpoint.py [--stride 5] [--repeats 200] [--out benchmarks/results/checkpoint.json]

The tracker writes each camera's checkpoint with every published step. This replays the airport clip
(../shared/data/video/airport.mp4, stretched to 640x480, every `--stride`th frame) through the shipped detector,
classifier and people tracker, and after each frame times the checkpoint of the people tracker's state (the
bulk of a camera's checkpoint: tracks, votes, ended people) encoded as stored, zlib included, both ways. The two
must give the same JSON. Reports the median milliseconds per checkpoint and its size, at the frame with the most
tracks and over all frames.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.cameras import VIDEO, read_clip  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from services.tracker.camera import encode_checkpoint  # noqa: E402
from shared.backends import ISA_FLAGS, cpu_info  # noqa: E402
from shared.people import PeopleTracker  # noqa: E402
from shared.pipeline import load_pipeline  # noqa: E402
from shared.schemas import FrameResult  # noqa: E402


def with_json(state: dict) -> bytes:
    """The stored form as the json module wrote it before orjson."""
    return zlib.compress(json.dumps(state, separators=(",", ":")).encode(), 1)


def median_ms(encode, state: dict, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        encode(state)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, default=5, help="every so many frames of the 25 fps clip")
    parser.add_argument("--repeats", type=int, default=200, help="encodings timed per checkpoint and way")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "checkpoint.json")
    args = parser.parse_args()
    pipeline, people = load_pipeline(), PeopleTracker("clip", 25.0 / args.stride)
    rows = []
    for n, image in enumerate(read_clip(VIDEO)[0][::args.stride]):
        faces = pipeline.classify([(image, pipeline.detect(image))])[0]
        people.update(FrameResult(source="clip", frame=n, width=image.shape[1], height=image.shape[0], faces=faces),
                      n * args.stride / 25.0)
        state = {"people": people.state()}
        if zlib.decompress(encode_checkpoint(state)) != zlib.decompress(with_json(state)):
            raise SystemExit(f"error: frame {n}: orjson and json wrote different checkpoints")
        rows.append({"frame": n, "tracks": len(state["people"]["tracks"]),
                     "json_bytes": len(zlib.decompress(with_json(state))),
                     "json_ms": round(median_ms(with_json, state, args.repeats), 4),
                     "orjson_ms": round(median_ms(encode_checkpoint, state, args.repeats), 4)})
    biggest = max(rows, key=lambda r: r["json_bytes"])
    summary = {way: round(float(np.median([r[way] for r in rows])), 4) for way in ("json_ms", "orjson_ms")}
    print(f"largest checkpoint (frame {biggest['frame']}, {biggest['json_bytes']} bytes of JSON): json "
          f"{biggest['json_ms']} ms, orjson {biggest['orjson_ms']} ms; median over {len(rows)} frames: json "
          f"{summary['json_ms']} ms, orjson {summary['orjson_ms']} ms")
    name, flags = cpu_info()
    write_report(args.out, {"benchmark": "checkpoint", "cpu": name, "isa": sorted(f for f in flags if f in ISA_FLAGS),
                            "stride": args.stride, "repeats": args.repeats, "largest": biggest,
                            "median_over_frames": summary, "frames": rows,
                            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
