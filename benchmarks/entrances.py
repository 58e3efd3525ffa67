"""Entrances: line crossings, zones, ignore zones and static faces on clips with known ground truth, the airport
clip beside a count by eye, people counts with and without the ignore/static rules, and tracker throughput with
20 zones and 10 lines against none.

    nice python benchmarks/entrances.py [--models DIR] [--cache DIR] [--repeats 5]

Writes benchmarks/results/entrances.json. Uses the promoted models of the store; every clip is detected once
(real video decoding, detector and classifier; detections cached in --cache) and then tracked with each
setting, with the same code the tracker service and `maskwatch detect --config --camera` run
(shared/entrances.py `track_frame`).

Clips:
- `door` (generated, 95 s at 10 fps, 640x360): faces from the fm12k set walk over a textured background
  across a counting line `door` (y = 0.5, `in: down`) with a zone `inside` (the lower half): crossing down,
  crossing up, lingering 4 s on the line, in and back out, turned away (not visible) for 2 s while
  crossing, passing outside the zone, walking inside it without crossing, two crossing at once, and a
  static face on a "poster" in the top-right corner for the whole clip. The script is the ground truth.
- `airport` (../shared/data/video/airport.mp4, 661 frames at 25 fps): a vertical line `middle` (x = 0.5,
  `in: right`); maskwatch's count beside the count by eye in benchmarks/results/entrances_airport_by_eye.csv.
- `airport+poster`: the airport frames with a face photo pasted as a poster (top left), played three
  times in a row (79 s, so the poster stays longer than `tracker.static_after_s`); each pass gives the
  same detections, so it is detected once and replayed with shifted times.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import platform
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from benchmarks.report import write_report
from shared.entrances import EntranceCounter, end_tracks, track_frame
from shared.model_store import ModelStore
from shared.people import PeopleTracker
from shared.pipeline import load_pipeline
from shared.schemas import FrameResult, LineCrossing, PersonRecord
from shared.sources import classify, iter_frames
from shared.tracker_config import TrackerConfig
from shared.zones import CameraGeometry

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
AIRPORT = SHARED / "video" / "airport.mp4"
FACES = SHARED / "faces" / "fm12k"
BY_EYE = REPO / "benchmarks" / "results" / "entrances_airport_by_eye.csv"
FPS = 10.0
SIZE = (640, 360)
DOOR_FRAMES = 950
DOOR = {"name": "door", "points": [[0.02, 0.5], [0.98, 0.5]], "in": "down"}
INSIDE = {"name": "inside", "points": [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]}
POSTER_ZONE = {"name": "poster", "points": [[0.82, 0.0], [1.0, 0.0], [1.0, 0.36], [0.82, 0.36]], "ignore": True}
MIDDLE = {"name": "middle", "points": [[0.5, 0.0], [0.5, 1.0]], "in": "right"}
AIRPORT_POSTER = (150, 0, 64)  # pasted poster face: left, top, width (px), on the ceiling of every shot
AIRPORT_POSTER_ZONE = {"name": "poster", "points": [[0.2, 0.0], [0.36, 0.0], [0.36, 0.26], [0.2, 0.26]],
                       "ignore": True}
STATIC_OFF = 1e9  # static_after_s that never fires (the static rule off)
BY_EYE_METHOD = (
    "Every 10th frame (2.5 a second) viewed once as crops of x 120-520 px with the line drawn, shot by shot "
    "(cuts found at frames 101, 321 and 456 by frame differences); a crossing is a face whose centre moves from "
    "one side of the line to the other within a shot. Faces smaller than about 20 px (the far crowd) could not "
    "be followed and were not judged; a scene cut is not a crossing. Nobody walks across the middle of this "
    "clip: it is a queue and two interviews, so the by-eye count is 0 and every crossing maskwatch reports is "
    "a false one (the first interviewee's face stands on the line for 2 s: the hysteresis case)."
)


# -- the generated door clip ---------------------------------------------------------------------------------
@dataclass
class Actor:
    """A face following keyframes (frame, centre x, centre y), invisible in `hidden` frames."""

    name: str
    image: str  # fm12k file: with_mask/... or without_mask/...
    keys: list[tuple[int, float, float]]
    hidden: tuple[int, int] = (0, 0)
    width: int = 84
    sway: float = 0.0  # +- px around the keyframe path between the 2nd and 3rd keyframe (lingering)

    def centre(self, frame: int) -> tuple[float, float] | None:
        """The face centre in `frame`, or None when it is not in view."""
        if not self.keys[0][0] <= frame <= self.keys[-1][0] or self.hidden[0] <= frame < self.hidden[1]:
            return None
        for (f0, x0, y0), (f1, x1, y1) in zip(self.keys, self.keys[1:]):
            if f0 <= frame <= f1:
                k = (frame - f0) / max(1, f1 - f0)
                x, y = x0 + k * (x1 - x0), y0 + k * (y1 - y0)
                if self.sway and len(self.keys) > 2 and (f0, x0, y0) == self.keys[1]:
                    y += self.sway * (1 if (frame // 3) % 2 else -1)
                    x += self.sway * 0.4 * (1 if (frame // 5) % 2 else -1)
                return x, y
        return None


DOOR_ACTORS = [
    Actor("poster", "without_mask/fm12k_without_mask_00011.jpg", [(0, 586, 62), (DOOR_FRAMES - 1, 586, 62)], width=70),
    Actor("A down", "with_mask/fm12k_with_mask_00001.jpg", [(20, 100, 45), (60, 100, 320)]),
    Actor("B up", "without_mask/fm12k_without_mask_00006.jpg", [(80, 250, 320), (120, 250, 45)]),
    Actor("C lingers on the line", "with_mask/fm12k_with_mask_00003.jpg",
          [(140, 420, 45), (170, 420, 180), (210, 420, 180), (240, 420, 320)], sway=8.0),
    Actor("D in and back out", "without_mask/fm12k_without_mask_00002.jpg",
          [(260, 200, 45), (290, 200, 300), (320, 200, 45)]),
    Actor("E turns away 2 s while crossing", "with_mask/fm12k_with_mask_00005.jpg",
          [(340, 330, 45), (400, 330, 320)], hidden=(360, 380)),
    Actor("F passes outside the zone", "without_mask/fm12k_without_mask_00005.jpg", [(420, 45, 85), (480, 470, 85)]),
    Actor("G walks inside the zone", "with_mask/fm12k_with_mask_00007.jpg", [(500, 595, 285), (560, 45, 285)]),
    Actor("H1 down beside H2", "with_mask/fm12k_with_mask_00009.jpg", [(600, 150, 45), (640, 150, 320)]),
    Actor("H2 up beside H1", "without_mask/fm12k_without_mask_00004.jpg", [(600, 470, 320), (640, 470, 45)]),
]
# ground truth of the door clip
DOOR_TRUTH = {"entries": 5, "exits": 3, "people": 9, "inside_people": 8, "poster_people": 0}


def render_door(path: Path) -> Path:
    """Write the generated door clip (MJPG .avi: decodes the same everywhere)."""
    rng = np.random.default_rng(7)
    background = cv2.GaussianBlur(rng.integers(60, 140, (SIZE[1], SIZE[0], 3), dtype=np.uint8), (0, 0), 3)
    faces = {}
    for actor in DOOR_ACTORS:
        image = cv2.imread(str(FACES / actor.image))
        if image is None:
            raise SystemExit(f"{FACES / actor.image}: missing (the ../shared data set is needed)")
        faces[actor.name] = cv2.resize(image, (actor.width, round(actor.width * image.shape[0] / image.shape[1])))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    for frame in range(DOOR_FRAMES):
        image = background.copy()
        for actor in DOOR_ACTORS:
            centre = actor.centre(frame)
            if centre is not None:
                face = faces[actor.name]
                x, y = int(round(centre[0] - face.shape[1] / 2)), int(round(centre[1] - face.shape[0] / 2))
                x, y = min(max(0, x), SIZE[0] - face.shape[1]), min(max(0, y), SIZE[1] - face.shape[0])
                image[y : y + face.shape[0], x : x + face.shape[1]] = face
        writer.write(image)
    writer.release()
    return path


# -- detection (once per clip, cached) -----------------------------------------------------------------------
def detect(pipeline, video: Path, cache: Path, paste: Callable[[np.ndarray], np.ndarray] | None = None,
           tag: str = "") -> list[FrameResult]:
    """Every frame's untracked FrameResult (cached by file content, models and `tag`)."""
    digest = hashlib.sha256(video.read_bytes()).hexdigest()[:16]
    cached = cache / f"{video.stem}{tag}-{digest}-{pipeline.model_version}.jsonl"
    if cached.exists():
        return [FrameResult.model_validate_json(line) for line in cached.read_text().splitlines()]
    out = []
    for item in tqdm(iter_frames(classify(str(video))), desc=f"detect {video.name}{tag}", unit="frame"):
        image = paste(item.image) if paste else item.image
        h, w = image.shape[:2]
        out.append(FrameResult(source=video.name, frame=item.index, time=item.time, width=w, height=h,
                               faces=pipeline.process(image), model_version=pipeline.model_version))
    cache.mkdir(parents=True, exist_ok=True)
    cached.write_text("".join(r.to_json() + "\n" for r in out))
    return out


def poster_paster() -> Callable[[np.ndarray], np.ndarray]:
    """Pastes a face photo as a poster into a frame (top left of the airport clip)."""
    face = cv2.imread(str(FACES / "without_mask" / "fm12k_without_mask_00011.jpg"))
    left, top, width = AIRPORT_POSTER
    face = cv2.resize(face, (width, round(width * face.shape[0] / face.shape[1])))

    def paste(image: np.ndarray) -> np.ndarray:
        image = image.copy()
        image[top : top + face.shape[0], left : left + face.shape[1]] = face
        return image

    return paste


def looped(frames: list[FrameResult], times: int, fps: float) -> list[FrameResult]:
    """The frames played `times` times in a row (times continue)."""
    span = len(frames) / fps
    return [r.model_copy(update={"frame": i * len(frames) + r.frame, "time": i * span + (r.time or 0.0)})
            for i in range(times) for r in frames]


# -- counting ------------------------------------------------------------------------------------------------
def count(frames: list[FrameResult], fps: float, geometry: dict, **tracker) -> dict:
    """Track the frames with these settings; the counts and the crossings."""
    config = TrackerConfig(**tracker)
    people = PeopleTracker("clip", fps, **config.people_options())
    counter = EntranceCounter("clip", CameraGeometry.model_validate(geometry), **config.entrance_options())
    messages: list[PersonRecord | LineCrossing] = []
    for result in frames:
        messages += track_frame(people, counter, result, result.time or 0.0)[1]
    messages += end_tracks(people, counter, people.flush())
    records = [m for m in messages if isinstance(m, PersonRecord)]
    crossings = [m for m in messages if isinstance(m, LineCrossing)]
    counted = [r for r in records if not r.static]
    return {
        "people": len(counted), "static_people": len(records) - len(counted),
        "people_per_label": dict(Counter(r.label for r in counted)),
        "entries": sum(c.direction == "in" for c in crossings), "exits": sum(c.direction == "out" for c in crossings),
        "entries_per_label": dict(Counter(c.label for c in crossings if c.direction == "in")),
        "zone_people": dict(Counter(z for r in counted for z in r.zones)),
        "crossings": [{"time": c.time, "line": c.line, "direction": c.direction, "label": c.label,
                       "track_id": c.track_id} for c in crossings],
        "records": records,
    }


def public(result: dict) -> dict:
    """A count without the records (for the JSON report)."""
    return {k: v for k, v in result.items() if k != "records"}


def door_benchmark(pipeline, cache: Path) -> dict:
    """The generated clip: exact entries and exits, the static poster never counted, zone people."""
    cache.mkdir(parents=True, exist_ok=True)
    frames = detect(pipeline, render_door(cache / "door.avi"), cache)
    geometry = {"zones": [INSIDE], "lines": [DOOR]}
    runs = {
        "default rules (static_after_s 60, lost_after_s 2.5)": count(frames, FPS, geometry),
        "static rule off": count(frames, FPS, geometry, static_after_s=STATIC_OFF),
        "ignore zone around the poster, static rule off": count(
            frames, FPS, {**geometry, "zones": [INSIDE, POSTER_ZONE]}, static_after_s=STATIC_OFF),
        "previous lost_after_s 1.0": count(frames, FPS, geometry, lost_after_s=1.0),
    }
    default = runs["default rules (static_after_s 60, lost_after_s 2.5)"]
    poster_box_x = DOOR_ACTORS[0].keys[0][1]
    poster_people = sum(1 for r in default["records"] if not r.static and abs((r.best_box[0] + r.best_box[2]) / 2
                                                                            - poster_box_x) < 30
                        and r.best_box[1] < 120)
    got = {"entries": default["entries"], "exits": default["exits"], "people": default["people"],
           "inside_people": default["zone_people"].get("inside", 0), "poster_people": poster_people}
    truth_labels = {a.name: a.image.split("/")[0] for a in DOOR_ACTORS}
    return {
        "frames": len(frames), "fps": FPS, "ground_truth": DOOR_TRUTH, "got_default_rules": got,
        "exact": got == DOOR_TRUTH, "actors": {a.name: truth_labels[a.name] for a in DOOR_ACTORS},
        "runs": {name: public(r) for name, r in runs.items()},
    }


def airport_benchmark(pipeline, cache: Path) -> dict:
    """The airport clip with a vertical line: maskwatch against the count by eye; people with/without rules."""
    fps = _video_fps(AIRPORT)
    frames = detect(pipeline, AIRPORT, cache)
    line = count(frames, fps, {"lines": [MIDDLE]})
    eye = _by_eye()
    airport = {"default rules": count(frames, fps, {}),
               "static rule off": count(frames, fps, {}, static_after_s=STATIC_OFF),
               "previous lost_after_s 1.0": count(frames, fps, {}, lost_after_s=1.0)}
    tag = "+poster-" + "-".join(map(str, AIRPORT_POSTER))
    posters = looped(detect(pipeline, AIRPORT, cache, poster_paster(), tag=tag), 3, fps)
    poster = {
        "no rules (static off, no ignore zone)": count(posters, fps, {}, static_after_s=STATIC_OFF),
        "static rule (default static_after_s 60)": count(posters, fps, {}),
        "ignore zone around the poster": count(posters, fps, {"zones": [AIRPORT_POSTER_ZONE]},
                                               static_after_s=STATIC_OFF),
    }
    plain = looped(frames, 3, fps)
    poster["the same three passes without the poster (static off)"] = count(plain, fps, {}, static_after_s=STATIC_OFF)
    return {
        "line": MIDDLE, "frames": len(frames), "fps": round(fps, 3),
        "maskwatch": {"entries": line["entries"], "exits": line["exits"], "crossings": line["crossings"]},
        "by_eye": eye,
        "difference": {"entries": line["entries"] - eye["entries"], "exits": line["exits"] - eye["exits"]},
        "people_airport": {name: public(r) for name, r in airport.items()},
        "people_airport_with_poster_3_passes": {name: public(r) for name, r in poster.items()},
    }


def many_zones_and_lines() -> dict:
    """20 zones (2 of them ignore zones) and 10 lines spread over the frame."""
    rng = np.random.default_rng(3)
    zones = []
    for i in range(20):
        x, y = rng.uniform(0.0, 0.7), rng.uniform(0.0, 0.7)
        w, h = rng.uniform(0.1, 0.3), rng.uniform(0.1, 0.3)
        zones.append({"name": f"zone-{i}", "points": [[x, y], [x + w, y], [x + w, y + h], [x + w / 2, y + h * 1.2],
                                                      [x, y + h]], "ignore": i >= 18})
    lines = [{"name": f"line-{i}", "points": [[0.05, 0.05 + 0.09 * i], [0.95, 0.1 + 0.08 * i]], "in": "down"}
             for i in range(10)]
    return {"zones": zones, "lines": lines}


SETTINGS = {"none (no zones, no lines)": {}, "20 zones (2 ignore) and 10 lines": many_zones_and_lines()}


def throughput(pipeline, cache: Path, repeats: int) -> dict:
    """CPU ms per frame of the tracking step (ByteTrack, votes, entrance counter): 20 zones and 10 lines vs none."""
    frames = looped(detect(pipeline, AIRPORT, cache), 3, 25.0)
    cpu: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(repeats):  # side by side: alternate the settings in every repeat
        for name, geometry in SETTINGS.items():
            c0 = time.process_time()
            count(frames, 25.0, geometry)
            cpu[name].append((time.process_time() - c0) * 1000 / len(frames))
    medians = {name: round(statistics.median(ms), 4) for name, ms in cpu.items()}
    base, loaded = medians.values()
    return {"frames": len(frames), "repeats": repeats,
            "what": "CPU ms per frame (process time) of track_frame: PeopleTracker + EntranceCounter, median",
            "cpu_ms_per_frame_median": medians,
            "cpu_ms_per_frame_runs": {n: [round(v, 4) for v in ms] for n, ms in cpu.items()},
            "relative_throughput": round(base / loaded, 3)}


def service_throughput(pipeline, cache: Path, redis_url: str, repeats: int) -> dict:
    """Frames per CPU second one tracker service replica publishes (Redis in and out, checkpoints), side by side
    (CPU time, not wall time: the machine is shared, and wall times swing tenfold)."""
    import redis

    from services.tracker.service import TrackerService
    from shared import keys
    from shared.config import Config
    from shared.detections import publish_detection

    frames = detect(pipeline, AIRPORT, cache)[:500]  # the detections stream keeps about 600 entries
    client = redis.Redis.from_url(redis_url)
    rates: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(repeats):
        for name, geometry in SETTINGS.items():
            client.flushdb()
            client.sadd(keys.CAMERAS_SET, "bench")
            base = time.time() - 60
            for result in frames:
                frame_id = client.xadd(keys.frames_stream("bench"), {"f": result.frame}).decode()
                pipe = client.pipeline(transaction=True)
                publish_detection(pipe, "bench", frame_id, result.model_copy(
                    update={"camera": "bench", "captured_at": base + (result.time or 0.0)}), b"jpeg")
                pipe.execute()
            config = Config.model_validate({"redis_url": redis_url,  # one step takes a 500-frame batch: a long lease
                                            "tracker": {"reorder_window_s": 0.0, "lease_ttl_s": 60.0},
                                            "cameras": [{"id": "bench", "url": "x.mp4", "fps": 25, **geometry}]})
            service = TrackerService(client, config, "bench")
            c0 = time.process_time()
            while int(client.hget(keys.camera_state("bench"), "frames_tracked") or 0) < len(frames):
                service.step(block_ms=10)
            rates[name].append(len(frames) / (time.process_time() - c0))
            service.shutdown()
    client.flushdb()
    medians = {name: round(statistics.median(r), 1) for name, r in rates.items()}
    base, loaded = medians.values()
    return {"frames": len(frames), "repeats": repeats, "redis": redis_url.rsplit("@", 1)[-1],
            "what": "frames per CPU second (process time) of TrackerService.step, from the detections stream to "
                    "the results stream with checkpoints, median",
            "frames_per_cpu_s_median": medians,
            "frames_per_cpu_s_runs": {n: [round(v, 1) for v in r] for n, r in rates.items()},
            "relative_throughput": round(loaded / base, 3)}


def _video_fps(path: Path) -> float:
    capture = cv2.VideoCapture(str(path))
    try:
        return float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
    finally:
        capture.release()


def _by_eye() -> dict:
    """The count by eye (benchmarks/results/entrances_airport_by_eye.csv: one row per shot of the clip)."""
    with BY_EYE.open() as fh:
        rows = list(csv.DictReader(fh))
    return {"entries": sum(int(r["entries"]) for r in rows), "exits": sum(int(r["exits"]) for r in rows),
            "shots": len(rows), "file": str(BY_EYE.relative_to(REPO)), "method": BY_EYE_METHOD}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, help="model store (default $MASKWATCH_MODELS or ./models)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/maskwatch-entrances"), help="detections cache")
    parser.add_argument("--repeats", type=int, default=5, help="throughput repeats per setting")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5",
                        help="a Redis database the tracker-service throughput run may flush")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "entrances.json")
    args = parser.parse_args()
    if not AIRPORT.exists():
        raise SystemExit(f"{AIRPORT}: missing (the ../shared data set is needed)")
    pipeline = load_pipeline(ModelStore(args.models) if args.models else ModelStore())
    report = {
        "model_version": pipeline.model_version,
        "door": door_benchmark(pipeline, args.cache),
        "airport": airport_benchmark(pipeline, args.cache),
        "throughput": throughput(pipeline, args.cache, args.repeats),
        "service_throughput": service_throughput(pipeline, args.cache, args.redis, args.repeats),
        "machine": {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_end": [round(v, 2) for v in os.getloadavg()]},
    }
    write_report(args.out, report)


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor() or platform.machine()
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
                platform.machine())


if __name__ == "__main__":
    main()
