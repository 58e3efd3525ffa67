"""`maskwatch detect`: run the pipeline once over photos, folders, videos, cameras or stream URLs."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from maskwatch.detect_outputs import AnnotatedSink, JsonLinesSink, LiveWindow, Summary, face_table
from shared.config import CameraConfig, ConfigError, load_config
from shared.drawing import draw_faces
from shared.entrances import EntranceCounter, end_tracks, track_frame
from shared.face_detector import load_detector
from shared.imaging import DEFAULT_MAX_PIXELS
from shared.model_store import ModelError, ModelStore
from shared.motion import MotionConfig, MotionGate
from shared.overlap import OverlappedPipeline
from shared.pipeline import Pipeline, load_pipeline, scale_faces
from shared.privacy import blur_faces
from shared.schemas import FrameResult, LineCrossing, PersonRecord
from shared.settled import FrameHints
from shared.sources import (
    READ_TIMEOUT_S,
    Frame,
    Source,
    SourceError,
    SourceKind,
    describe,
    expand,
    frame_count,
    iter_frames,
)
from shared.stats import StatsAccumulator
from shared.tracker_config import TrackerConfig
from shared.zones import CameraGeometry

if TYPE_CHECKING:
    from shared.people import PeopleTracker

PERSON_CROP_SIZE = 160  # pixels: best-face crops saved per person


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `detect` subcommand."""
    p = sub.add_parser(
        "detect",
        help="detect faces and mask use in photos, folders, videos, cameras or streams",
        description="Detect faces and classify mask use. SOURCE: image file, folder (recursive), glob, "
        "video file, camera index (0) or rtsp/http URL.",
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--json", metavar="FILE", help="write JSON Lines (one object per image/frame); - for stdout")
    p.add_argument("--save-dir", type=Path, metavar="DIR", help="save annotated images and videos here")
    p.add_argument("--show", action="store_true", help="show a live window (q quits)")
    p.add_argument("--stride", type=int, default=1, help="process every N-th video frame (default 1)")
    p.add_argument("--min-face", type=float,
                   help="smallest face size in pixels to find (default: the detector version's own; small "
                   "images are upscaled within --upscale-pixels)")
    p.add_argument("--threshold", type=float, help="face detector score threshold (default: the version's own)")
    p.add_argument("--upscale-pixels", type=int, metavar="PX",
                   help="pixel budget for upscaling small images (default: the detector version's own)")
    p.add_argument("--nms", type=float, default=0.4, help="face detector NMS IoU threshold (default 0.4)")
    p.add_argument("--models", type=Path, help="model store folder (default $MASKWATCH_MODELS or ./models)")
    p.add_argument("--classifier", metavar="VERSION", help="classifier version (default: the promoted one)")
    p.add_argument("--detector", metavar="VERSION", help="face detector version (default: the promoted one)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help="larger JPEGs are decoded at 1/2, 1/4 or 1/8 size (faces still in the original's pixels); "
                   "other larger images are refused")
    p.add_argument("--timeout", type=float, default=READ_TIMEOUT_S, metavar="S",
                   help="give up on a camera or stream that does not answer or sends nothing for S seconds "
                        f"(default {READ_TIMEOUT_S:g})")
    p.add_argument("--stats", type=Path, metavar="FILE",
                   help="write people per period as CSV (videos, cameras and streams are tracked)")
    p.add_argument("--stats-period", type=float, default=60.0, metavar="S",
                   help="length of a --stats period in seconds (default 60)")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="cameras.yaml whose tracker settings and --camera's zones, lines and motion settings "
                   "apply to the videos")
    p.add_argument("--camera", metavar="ID", help="the camera of --config whose zones, lines and motion "
                   "settings to apply (default: its only camera)")
    p.add_argument("--blur-faces", action="store_true",
                   help="blur faces in annotated images, videos, the window and saved person crops")
    p.add_argument("--full", action="store_true",
                   help="videos and cameras: run the face detector on every frame and classify every face "
                   "(default: frames without motion keep the previous frame's faces, as --camera's motion: "
                   "settings say, and faces of a track whose label is settled are re-classified only every few "
                   "frames; docs/speed.md)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Process every source; one error line per bad source; non-zero exit when any failed."""
    if (args.stride < 1 or (args.min_face is not None and args.min_face < 2) or not 0 < args.nms <= 1
            or (args.threshold is not None and not 0 < args.threshold < 1)
            or (args.upscale_pixels is not None and args.upscale_pixels < 4096)):
        print("error: --stride >= 1, --min-face >= 2, 0 < --threshold < 1, 0 < --nms <= 1 and --upscale-pixels >= 4096 "
              "are required",
              file=sys.stderr)
        return 2
    if not 0 < args.stats_period < float("inf"):
        print("error: --stats-period must be a positive number of seconds", file=sys.stderr)
        return 2
    try:
        tracking = tracking_setup(args.config, args.camera)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sources: list[Source] = []
    failed = 0
    for argument in args.sources:
        found, error = expand(argument)
        if error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
        sources.extend(found)
    try:
        pipelines = policy_pipelines(args, streams=any(s.kind != SourceKind.IMAGE for s in sources))
    except ModelError as exc:
        print(f"error: no usable model: {exc}", file=sys.stderr)
        return 2
    runner = DetectRun(pipelines, args, tracking)
    try:
        for source in tqdm(sources, desc="sources", unit="src", file=sys.stderr,
                           disable=args.no_progress or len(sources) < 2):
            try:
                runner.process(source)
            except SourceError as exc:
                tqdm.write(f"error: {exc}", file=sys.stderr)  # on its own line, not after a progress bar
                failed += 1
            if runner.window.quit:
                break
    except KeyboardInterrupt:
        print("interrupted: results written so far are kept", file=sys.stderr)
        return 130
    finally:
        runner.close()
        if args.stats:
            try:
                print(f"statistics: {runner.stats.write_csv(args.stats)} row(s) written to {args.stats}",
                      file=sys.stderr)
            except OSError as exc:
                print(f"error: {args.stats}: cannot write statistics ({exc.strerror or exc})", file=sys.stderr)
                failed += 1
        runner.summary.failed = failed
        print(runner.summary.text(), file=sys.stderr)
    return 1 if failed else 0


def policy_pipelines(args: argparse.Namespace, streams: bool) -> dict[str, Pipeline]:
    """The pipeline for images (the detector version's photo policy) and, when `streams`, the one for videos,
    cameras and streams (its stream policy; the same classifier). Options given on the command line win."""
    store = ModelStore(args.models) if args.models else None
    options = {"min_face": args.min_face, "score_threshold": args.threshold, "nms_threshold": args.nms,
               "max_pixels": args.upscale_pixels}
    photos = load_pipeline(store, args.classifier, args.detector, policy="photos", **options)
    out = {"photos": photos}
    if streams:
        out["streams"] = Pipeline(load_detector(store, args.detector, policy="streams", **options), photos.classifier)
    return out


@dataclass(frozen=True)
class Tracking:
    """What --config and --camera bring to a run: the tracker settings and the camera (zones, lines, motion)."""

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    camera: CameraConfig | None = None

    @property
    def geometry(self) -> CameraGeometry:
        """The camera's zones and lines (none without --config)."""
        return self.camera.geometry if self.camera is not None else CameraGeometry()

    def motion_gate(self, full: bool) -> MotionGate:
        """A source's motion gate: the camera's `motion:` settings, the defaults without one, off with --full."""
        if full:
            return MotionGate(MotionConfig(enabled=False))
        return self.camera.motion_gate() if self.camera is not None else MotionGate()


def tracking_setup(config_path: Path | None, camera: str | None) -> Tracking:
    """The tracker settings and the camera to apply; raises ValueError with a one-line reason."""
    if config_path is None:
        if camera is not None:
            raise ValueError("--camera needs --config")
        return Tracking()
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    ids = [cam.id for cam in config.cameras] + list(config.invalid_cameras)
    if camera is None:
        if len(ids) != 1:
            raise ValueError(f"{config_path}: name the camera with --camera (one of: {', '.join(ids) or 'none'})")
        camera = ids[0]
    if camera in config.geometry_problems:
        raise ValueError(f"{config_path}: {config.geometry_problems[camera]}")
    if camera in config.invalid_cameras:
        raise ValueError(f"{config_path}: {config.invalid_cameras[camera]}")
    found = next((cam for cam in config.cameras if cam.id == camera), None)
    if found is None:
        raise ValueError(f"{config_path}: no camera {camera!r} (cameras: {', '.join(ids) or 'none'})")
    return Tracking(config.tracker, found)


class DetectRun:
    """One `maskwatch detect` run: the pipeline and the outputs it feeds."""

    def __init__(self, pipelines: dict[str, Pipeline], args: argparse.Namespace,
                 tracking: Tracking | None = None) -> None:
        self.pipelines = pipelines  # per detector policy: photos (images), streams (videos, cameras, streams)
        self.tracking = tracking or Tracking()
        self.stride, self.max_pixels, self.timeout = args.stride, args.max_pixels, args.timeout
        self.progress = not args.no_progress
        self.print_tables = args.json != "-"
        self.jsonl = JsonLinesSink(args.json) if args.json else None
        self.saver = AnnotatedSink(args.save_dir) if args.save_dir else None
        self.window = LiveWindow()
        self.show = args.show
        self.blur = args.blur_faces
        self.full = args.full
        self.stats = StatsAccumulator(args.stats_period, lines=bool(self.tracking.geometry.lines))
        self.summary = Summary()

    def process(self, source: Source) -> None:
        """Run every frame of one source through the pipeline and the outputs."""
        name = describe(source)
        frames = iter_frames(source, self.stride, self.max_pixels, self.timeout)
        if source.kind != SourceKind.IMAGE:
            total = frame_count(source)
            frames = tqdm(frames, desc=Path(name).name[:40], unit="frame", file=sys.stderr,
                          total=-(-total // self.stride) if total else None, disable=not self.progress)
        started_video = False
        pipeline = self.pipelines["photos" if source.kind == SourceKind.IMAGE else "streams"]
        people: PeopleTracker | None = None
        entrances: EntranceCounter | None = None
        gate = self.tracking.motion_gate(self.full)
        video = source.kind != SourceKind.IMAGE

        def needs_detector(frame: Frame) -> bool:
            return not video or gate.needs_detector(frame.image, frame.time)  # never the first frame

        def hints(frame: Frame) -> FrameHints | None:  # read after the frame before was tracked
            return FrameHints(people.settled(), frame.index) if people is not None and not self.full else None

        # the next frame is detected on a second thread while this one is classified and tracked
        overlapped = OverlappedPipeline(pipeline, ahead=1, max_batch=1)
        try:
            for done in overlapped.run(frames, lambda frame: frame.image, hints, needs_detector):
                if done.error is not None:
                    raise done.error
                frame = done.item
                h, w = frame.image.shape[:2]
                width, height = frame.size or (w, h)  # a huge JPEG, decoded smaller: answered in its pixels
                result = FrameResult(source=name, frame=frame.index, time=frame.time, width=width, height=height,
                                     model_version=pipeline.model_version)
                faces = done.faces or []  # in the decoded image's pixels
                if done.faces is None:
                    result.unchanged = True  # no motion: the tracker gives it the previous frame's faces
                else:
                    result.faces = scale_faces(faces, 1 / frame.scale)
                if video:
                    if people is None:
                        from shared.people import PeopleTracker  # supervision is slow to import: only for videos

                        people = PeopleTracker(name, (frame.fps or 10.0) / self.stride,
                                               **self.tracking.tracker.people_options(),
                                               crop_size=PERSON_CROP_SIZE if self.saver else None)
                        entrances = EntranceCounter(name, self.tracking.geometry,
                                                     **self.tracking.tracker.entrance_options())
                    result, ended = track_frame(people, entrances, result, frame.time,
                                                frame.image if self.saver else None)
                    self.stats.observe(name, frame.time)
                    self._people(source, ended, people.ended_crops)
                self.summary.add(result)
                if self.jsonl:
                    self.jsonl.write(result)
                if source.kind == SourceKind.IMAGE and self.print_tables:
                    print(face_table(result), flush=True)
                if self.saver or self.show:
                    drawn = result.faces if frame.scale == 1.0 else faces  # in the decoded image's pixels
                    image = blur_faces(frame.image, [f.box for f in drawn]) if self.blur else frame.image
                    annotated = draw_faces(image, drawn)
                    if self.saver and source.kind == SourceKind.IMAGE:
                        self.saver.save_image(source, annotated)
                    elif self.saver:
                        if not started_video:
                            self.saver.start_video(source, (frame.fps or 10.0) / self.stride, (w, h))
                            started_video = True
                        self.saver.write_frame(annotated)
                    if self.show:
                        self.window.show(annotated)
                        if self.window.quit:
                            break
        finally:
            overlapped.close()
            if people is not None:
                self._people(source, end_tracks(people, entrances, people.flush()), people.ended_crops)
            if self.saver:
                self.saver.end_video()

    def _people(self, source: Source, records: list[PersonRecord | LineCrossing],
                crops: dict[int, np.ndarray]) -> None:
        """Send the records of ended tracks and their crossings to the JSON Lines, the statistics, the summary
        and the crops."""
        for record in records:
            if self.jsonl:
                self.jsonl.write(record)
            if isinstance(record, LineCrossing):
                self.stats.add_crossing(record)
                self.summary.add_crossing(record)
                continue
            self.stats.add_person(record)
            self.summary.add_person(record)
            crop = crops.get(record.track_id)
            if self.saver and crop is not None:
                if self.blur:
                    crop = blur_faces(crop, [[0, 0, crop.shape[1], crop.shape[0]]])
                self.saver.save_person(source, record, crop)

    def close(self) -> None:
        """Flush and close every output."""
        if self.jsonl:
            self.jsonl.close()
        if self.saver:
            self.saver.end_video()
        self.window.close()
