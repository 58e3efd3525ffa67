"""How many faces classify-once can reuse when the settled state it reads lags behind (shared/settled.py).

    python benchmarks/settled_reuse.py [--stride 5] [--lags 0,1] [--min-votes 3,2]
        [--out benchmarks/results/settled_reuse.json]

Replays the airport clip (../shared/data/video/airport.mp4, stretched to 640x480) at the pace of the stack at
saturation: every `--stride`th frame of the 25 fps clip, numbered as the answered frames of a 10 fps camera
whose worker answers every other frame (0, 2, 4, ...; 0.2 s apart). Each frame's faces take their labels from
the people tracker's settled state as it was `lag` answered frames before the frame before it (lag 0: the
state right after the previous frame was tracked, as in `maskwatch detect`; the stack reads a state 1-2
answered frames older at saturation), and the tracker sees every frame. For each lag and `min_votes` (the
votes a track needs to be settled) it reports the share of faces that reused a label and why the others were
classified: their track was not settled in the state read, its re-check was due, the face had grown, or it
did not overlap its track's box enough (shared/settled.py's rules).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.cameras import VIDEO, read_clip  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from shared.backends import ISA_FLAGS, cpu_info  # noqa: E402
from shared.people import PeopleTracker  # noqa: E402
from shared.pipeline import Pipeline, load_pipeline  # noqa: E402
from shared.schemas import Face, FrameResult  # noqa: E402
from shared.settled import GROWTH, MATCH_IOU, RECHECK_FRAMES, RECHECK_MAX_FRAMES, FrameHints, SettledTracks  # noqa: E402
from shared.zones import box_iou  # noqa: E402

ANSWERED_EVERY = 2  # numbered frames between two answered ones (a worker at saturation answers every other)
CAMERA_FPS = 10.0


def why_classified(face: Face, state: SettledTracks | None, frame: int) -> str:
    """Why a face that did not reuse a label was classified, by the rules of shared/settled.py."""
    track = next((t for t in state.tracks if t.id == face.track_id), None) if state is not None else None
    if track is None:
        return "track not settled in the state read"
    if track.seen + 1 >= RECHECK_FRAMES or frame - track.checked >= RECHECK_MAX_FRAMES:
        return "re-check due"
    x1, y1, x2, y2 = face.box
    if (x2 - x1) * (y2 - y1) > GROWTH * track.area:
        return "face grew"
    if box_iou(np.array([face.box], np.float32), np.array([track.box], np.float32))[0, 0] < MATCH_IOU:
        return "moved off its track's box"
    return "another face took the track"


def replay(pipeline: Pipeline, frames: list[np.ndarray], found: list, lag: int, min_votes: int) -> dict:
    """One replay of the sampled frames; the share of faces reused and the reasons of the others."""
    people, states, reasons = PeopleTracker("clip", CAMERA_FPS), [], Counter()  # as the tracker service sets it
    for n, (image, detections) in enumerate(zip(frames, found)):
        number = n * ANSWERED_EVERY
        state = states[-1 - lag] if len(states) > lag else None
        faces = pipeline.classify([(image, detections)], [FrameHints(state, number) if state else None])[0]
        tracked, _ended = people.update(FrameResult(source="clip", frame=number, width=image.shape[1],
                                                    height=image.shape[0], faces=faces), number / CAMERA_FPS)
        for face in tracked.faces:
            reasons["reused" if face.reused else why_classified(face, state, number)] += 1
        states.append(people.settled(min_votes))
    total = sum(reasons.values())
    return {"lag": lag, "min_votes": min_votes, "faces": total, "reused_share": round(reasons["reused"] / total, 3),
            "classified_because": {k: round(v / total, 3) for k, v in reasons.most_common() if k != "reused"}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, default=5, help="every so many frames of the 25 fps clip")
    parser.add_argument("--lags", default="0,1", help="how many answered frames older the state read is")
    parser.add_argument("--min-votes", default="3,2", help="votes a track needs to be settled")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "settled_reuse.json")
    args = parser.parse_args()
    frames = read_clip(VIDEO)[0][::args.stride]
    pipeline = load_pipeline()
    found = [pipeline.detect(image) for image in frames]
    runs = []
    for min_votes in (int(v) for v in args.min_votes.split(",")):
        for lag in (int(v) for v in args.lags.split(",")):
            runs.append(replay(pipeline, frames, found, lag, min_votes))
            print(runs[-1], flush=True)
    name, flags = cpu_info()
    isa = sorted(f for f in flags if f in ISA_FLAGS)
    write_report(args.out, {"benchmark": "settled_reuse", "cpu": name, "isa": isa,
                            "stride": args.stride, "frames": len(frames), "runs": runs,
                            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
