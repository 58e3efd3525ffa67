"""One pipeline of `benchmarks/compare.py`, in its own process: times frame sets on request.

Started by compare.py with PYTHONPATH pointing at the checkout whose `shared` package it measures (this
file only uses `load_pipeline`, `Pipeline.process` and `Pipeline.times`, which the baseline revision has
too). It reads the frame sets (JPEG bytes) from a pickle, prints `ready`, then answers each stdin line
`SET N` with one JSON line: seconds spent decoding, detecting and classifying N frames of that set, and
the faces found. Kinds: `maskwatch` (the checkout's pipeline, optionally overlapped), `tracked` (the same
pipeline as `maskwatch detect` runs a video: motion gate, classify-once, people tracker, the next frame detected
on a second thread; the faces that reused a track's label and the frames the gate answered as unchanged are
counted too) and `seed` (the same face detector
at 2x upscale, Keras MobileNetV2 224 with `model.predict` per frame).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

SEED_INPUT = 224


class SeedPipeline:
    """The seed design: detector at min_face 8 (2x upscale), Keras MobileNetV2 224, one model.predict a frame."""

    def __init__(self, models: Path, weights: Path) -> None:
        from tensorflow import keras

        from shared.face_detector import RetinaFaceDetector
        from shared.model_store import ModelStore

        self.detector = RetinaFaceDetector.from_version(ModelStore(models).load("detector"), min_face=8)
        base = keras.applications.MobileNetV2(input_shape=(SEED_INPUT, SEED_INPUT, 3), include_top=False,
                                              weights=None)
        base.load_weights(str(weights))
        x = keras.layers.GlobalAveragePooling2D()(base.output)
        x = keras.layers.Dense(128, activation="relu")(x)
        self.model = keras.Model(base.input, keras.layers.Dense(3, activation="softmax")(x))
        self.detect_s = self.classify_s = 0.0

    def process(self, image: np.ndarray) -> int:
        from shared.crops import crop_face

        t0 = time.perf_counter()
        found = self.detector.detect(image)
        t1 = time.perf_counter()
        if len(found):
            crops = np.stack([crop_face(image, box, SEED_INPUT)[..., ::-1] for box in found.boxes])
            self.model.predict(crops.astype(np.float32) / 127.5 - 1, verbose=0)
        self.detect_s += t1 - t0
        self.crops += len(found)
        self.classify_s += time.perf_counter() - t1
        return len(found)


class TrackedPipeline:
    """Today's video path, as `maskwatch detect` runs a clip: the motion gate decides whether a frame needs the
    detector, faces continuing a settled track reuse its label (shared/settled.py), and the people tracker follows
    every frame. Each timed request starts afresh (new gate and tracks), as a new clip would; frames are
    `fps` apart."""

    def __init__(self, pipe: object, fps: float) -> None:
        self.pipe, self.fps = pipe, fps
        self.unchanged = self.reused = 0
        self.reset()

    @property
    def times(self) -> object:
        return self.pipe.times

    @property
    def crops(self) -> int:
        return self.pipe.crops

    @property
    def model_version(self) -> str:
        return self.pipe.model_version

    def reset(self) -> None:
        from shared.motion import MotionGate
        from shared.people import PeopleTracker

        self.gate, self.people = MotionGate(), PeopleTracker("clip", self.fps)

    def run(self, frames: list[bytes]) -> tuple[int, float]:
        """Track the JPEG frames as `maskwatch detect` does (decoded and gated in order on this thread, the next
        frame detected on a second thread while this one is classified and tracked); returns the faces tracked
        and the seconds decoding."""
        from shared.overlap import OverlappedPipeline
        from shared.schemas import FrameResult
        from shared.settled import FrameHints

        decoded: dict[int, np.ndarray] = {}  # read ahead by the gate, taken by the pipeline
        decode = 0.0

        def needs_detector(index: int) -> bool:
            nonlocal decode
            t0 = time.perf_counter()
            decoded[index] = cv2.imdecode(np.frombuffer(frames[index], np.uint8), cv2.IMREAD_COLOR)
            decode += time.perf_counter() - t0
            return index == 0 or self.gate.needs_detector(decoded[index], index / self.fps)

        faces = 0
        with OverlappedPipeline(self.pipe, ahead=1, max_batch=1) as overlapped:
            for done in overlapped.run(range(len(frames)), decoded.pop, lambda i: FrameHints(self.people.settled(), i),
                                       needs_detector):
                t, (h, w) = done.item / self.fps, done.image.shape[:2]
                result = FrameResult(source="clip", frame=done.item, time=t, width=w, height=h)
                if done.faces is None:
                    result.unchanged = True
                    self.unchanged += 1
                else:
                    result.faces = done.faces
                    self.reused += sum(bool(f.reused) for f in done.faces)
                tracked, _ended = self.people.update(result, t)
                faces += len(tracked.faces)
        return faces, decode


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=("maskwatch", "tracked", "seed"), default="maskwatch")
    parser.add_argument("--fps", type=float, default=12.5, help="tracked: frames per second of the clip frames")
    parser.add_argument("--frames", type=Path, required=True)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--classifier", default=None)
    parser.add_argument("--detector", default=None)
    parser.add_argument("--overlap", action="store_true")
    parser.add_argument("--detector-threads", type=int, default=0)
    parser.add_argument("--classifier-threads", type=int, default=0)
    parser.add_argument("--weights", type=Path)
    args = parser.parse_args()
    sets = pickle.loads(args.frames.read_bytes())
    if args.kind == "seed":
        pipe = SeedPipeline(args.models, args.weights)
    else:
        from shared.model_store import ModelStore
        from shared.pipeline import load_pipeline

        options = {"threads": args.detector_threads} if args.detector_threads else {}
        if args.classifier_threads:
            options["classifier_threads"] = args.classifier_threads
        pipe = load_pipeline(ModelStore(args.models), args.classifier, args.detector, min_face=16, **options)
    if isinstance(pipe, SeedPipeline):
        pipe.crops = 0
    else:
        count_crops(pipe)
    if args.kind == "tracked":
        pipe = TrackedPipeline(pipe, args.fps)
    overlap = None
    if args.overlap:
        from shared.overlap import OverlappedPipeline

        overlap = OverlappedPipeline(pipe)
    for frames in sets.values():  # warm-up: every input size once, untimed
        process(pipe, overlap, frames[:2])
    ready = {"ready": True, "models": getattr(pipe, "model_version", "seed")}
    if isinstance(pipe, SeedPipeline):
        from macs import keras_macs  # benchmarks/macs.py: this folder is on sys.path

        ready["classifier_macs"] = keras_macs(pipe.model)
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        name, count = line.split()
        if isinstance(pipe, TrackedPipeline):
            pipe.reset()
        print(json.dumps(process(pipe, overlap, sets[name][: int(count)])), flush=True)
    return 0


def count_crops(pipe: object) -> None:
    """Count the faces the detector hands to the classifier (not_face ones included), in any revision."""
    detect = pipe.detector.detect
    pipe.crops = 0

    def counted(image: np.ndarray) -> object:
        found = detect(image)
        pipe.crops += len(found)
        return found

    pipe.detector.detect = counted


def process(pipe: object, overlap: object, frames: list[bytes]) -> dict:
    """Decode and process the frames; seconds per stage (decode, detect, classify, total) and faces."""
    detect0, classify0 = _stage_times(pipe)
    crops0 = pipe.crops
    counted0 = {k: getattr(pipe, k) for k in ("reused", "unchanged") if hasattr(pipe, k)}
    decode = 0.0
    faces = 0
    start = time.perf_counter()
    if isinstance(pipe, TrackedPipeline):
        faces, decode = pipe.run(frames)
    elif overlap is None:
        for jpeg in frames:
            t0 = time.perf_counter()
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            decode += time.perf_counter() - t0
            found = pipe.process(image)
            faces += found if isinstance(found, int) else len(found)
    else:
        for done in overlap.run(frames, lambda jpeg: cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)):
            faces += len(done.faces)
    total = time.perf_counter() - start
    detect1, classify1 = _stage_times(pipe)
    return {"frames": len(frames), "faces": faces, "crops": pipe.crops - crops0, "total_s": total, "decode_s": decode,
            "detect_s": detect1 - detect0, "classify_s": classify1 - classify0,
            **{k: getattr(pipe, k) - v for k, v in counted0.items()}}


def _stage_times(pipe: object) -> tuple[float, float]:
    if isinstance(pipe, SeedPipeline):
        return pipe.detect_s, pipe.classify_s
    return pipe.times.detect, pipe.times.classify


if __name__ == "__main__":
    sys.exit(main())
