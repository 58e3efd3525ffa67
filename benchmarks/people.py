"""People on a real clip: tracking cost, people counted, and how much per-track voting steadies labels.

    python benchmarks/people.py [--video ../shared/data/video/airport.mp4] [--stride 1] [--frames 0]

Writes benchmarks/results/people.json. Uses the promoted models of the store. "Label flips" count the
times a track's label changes from one of its frames to the next: per-frame classifier labels versus
the voted `track_label` that maskwatch publishes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter, defaultdict
from pathlib import Path

from tqdm import tqdm

from shared.model_store import ModelStore
from shared.people import PeopleTracker
from shared.pipeline import load_pipeline
from shared.schemas import FrameResult, PersonRecord
from shared.sources import classify, frame_count, iter_frames

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "video" / "airport.mp4"


def _flips(labels: list[str]) -> int:
    return sum(a != b for a, b in zip(labels, labels[1:]))


def run(video: Path, stride: int, limit: int, store: ModelStore) -> dict:
    """Detect, classify and track the clip; return the report."""
    pipeline = load_pipeline(store)
    source = classify(str(video))
    raw: dict[int, list[str]] = defaultdict(list)
    voted: dict[int, list[str]] = defaultdict(list)
    records: list[PersonRecord] = []
    people, track_s, frames = None, 0.0, 0
    total = -(-(frame_count(source) or 0) // stride) or None
    if limit and total:
        total = min(total, limit)
    for item in tqdm(iter_frames(source, stride), total=total, unit="frame"):
        if limit and frames >= limit:
            break
        people = people or PeopleTracker(video.name, item.fps / stride)
        h, w = item.image.shape[:2]
        result = FrameResult(source=video.name, frame=item.index, time=item.time, width=w, height=h,
                             faces=pipeline.process(item.image))
        t0 = time.perf_counter()
        tracked, ended = people.update(result, item.time)
        track_s += time.perf_counter() - t0
        records += ended
        frames += 1
        for face in tracked.faces:
            if face.track_id is not None:
                raw[face.track_id].append(face.label)
                voted[face.track_id].append(face.track_label)
    records += people.flush()
    counted = {r.track_id for r in records}
    raw_flips = sum(_flips(raw[t]) for t in counted)
    voted_flips = sum(_flips(voted[t]) for t in counted)
    face_frames = sum(len(raw[t]) for t in counted)
    disagree = sum(a != b for t in counted for a, b in zip(raw[t], voted[t]))
    return {
        "video": video.name, "stride": stride, "frames": frames, "model_version": pipeline.model_version,
        "people": len(records), "people_per_label": dict(Counter(r.label for r in records)),
        "frames_per_person_median": sorted(r.frames for r in records)[len(records) // 2] if records else 0,
        "tracked_face_frames": face_frames,
        "label_flips_per_frame_labels": raw_flips, "label_flips_voted": voted_flips,
        "frames_where_vote_overrode_the_frame_label": disagree,
        "tracking_ms_per_frame": round(1000 * track_s / max(frames, 1), 3),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--frames", type=int, default=0, help="stop after this many processed frames (0: all)")
    parser.add_argument("--models", type=Path, help="model store (default $MASKWATCH_MODELS or ./models)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "people.json")
    args = parser.parse_args()
    report = run(args.video, args.stride, args.frames, ModelStore(args.models) if args.models else ModelStore())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
