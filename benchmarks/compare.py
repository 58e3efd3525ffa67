"""Side-by-side speed: today's pipeline, the pipeline of an earlier git revision, and the seed-style pipeline.

    python benchmarks/compare.py [--rev 6d38dcb] [--frames 60] [--seed-frames 12] [--rounds 3]
    nice -n -10 python benchmarks/compare.py --out benchmarks/results/compare.json

In one run, on the same frames (the airport clip at 640x360, stretched to 640x480 and 1280x720, and
held-out ilc2021 photos; all as JPEG bytes, so every pipeline decodes them too), it times:

- `current`: this checkout with its promoted models, one frame after the other;
- `current-overlap`: the same with `shared.overlap` (detection of the next frames on a second thread
  while this one is classified, ready frames classified in one batch);
- `current-tracked`: the same models the way `maskwatch detect` runs a video (issue 30): motion gate,
  faces of settled tracks reuse their label, people tracker, the next frame detected on a second thread;
  each timed batch of frames starts with fresh tracks, so the first votes of every track are paid for again
  in every round (`tracked_fps_vs_seed`);
- `current-float` (when the promoted classifier is quantized): the same code with the float classifier
  it came from (`source_version`), to separate the code's gain from the model's;
- `current+VERSION` for each `--also VERSION`: the same code with another classifier (an int8 build's
  speed depends on the CPU's instruction set, so measure it on the machine that will run it);
- `baseline`: revision --rev checked out with `git worktree add` into a temporary folder, with its own
  promoted models, run in a subprocess that imports that revision's `shared` package;
- `seed`: the same face detector at 2x upscale, Keras MobileNetV2 224 with `model.predict` per frame
  (ImageNet weights from ../shared/weights; the head is untrained, only its cost matters).

Each pipeline is its own process; measurements are interleaved (round after round, set after set, every
pipeline in turn), so load from other work hits all of them alike. The seed pipeline runs the first
--seed-frames frames of each set. For the clip sets, `fps_at_matmul_peak` is the frames/s today's models
would reach if every multiply-add ran at numpy's measured matrix-multiply rate: the hardware's ceiling.
Results: benchmarks/results/compare.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import platform
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.macs import matmul_gflops, onnx_conv_macs, tflite_macs  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from shared.model_store import ModelError, ModelStore  # noqa: E402

log = logging.getLogger("benchmarks.compare")
SHARED = REPO.parent / "shared"
DEFAULT_VIDEO = SHARED / "data" / "video" / "airport.mp4"
DEFAULT_SCENES = SHARED / "data" / "scenes" / "ilc2021" / "images"
DEFAULT_WEIGHTS = SHARED / "weights" / "mobilenet_v2_1.0_224_imagenet_from_torchvision_no_top.weights.h5"
HELDOUT = REPO / "training" / "splits" / "ilc2021_val.txt"
SIZES = {"640x360": None, "640x480": (640, 480), "1280x720": (1280, 720)}
RUNNER = REPO / "benchmarks" / "compare_runner.py"


def frame_sets(video: Path, photos_dir: Path, count: int) -> dict[str, list[bytes]]:
    """JPEG bytes per set: `count` clip frames (every 2nd) at each size, and `count` held-out photos."""
    cap = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, image = cap.read()
        if not ok:
            break
        if int(cap.get(cv2.CAP_PROP_POS_FRAMES)) % 2 == 0:
            frames.append(image)
    cap.release()
    if not frames:
        raise SystemExit(f"error: no frames in {video}")
    sets = {}
    for name, size in SIZES.items():
        sets[name] = [cv2.imencode(".jpg", cv2.resize(f, size) if size else f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
                      .tobytes() for f in frames]
    stems = HELDOUT.read_text().split()[:count]
    paths = [photos_dir / f"{stem}.jpg" for stem in stems]
    sets["photos"] = [path.read_bytes() for path in paths if path.is_file()]
    return sets


class Runner:
    """A compare_runner.py subprocess for one pipeline."""

    def __init__(self, name: str, pythonpath: Path, args: list[str], frames: Path) -> None:
        self.name = name
        env = {**os.environ, "PYTHONPATH": str(pythonpath), "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.proc = subprocess.Popen([sys.executable, str(RUNNER), "--frames", str(frames), *args], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=pythonpath)
        self.ready = self._reply()

    def _reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"error: pipeline {self.name} stopped (see its messages above)")
        return json.loads(line)

    def time(self, frame_set: str, count: int) -> dict:
        self.proc.stdin.write(f"{frame_set} {count}\n")
        self.proc.stdin.flush()
        return self._reply()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


def summarize(rows: list[dict]) -> dict:
    """Sum the rounds of one pipeline on one set: frames/s, ms per frame and stage, classifier ms per face.

    Faces per frame are the faces answered (not_face dropped); ms per face divides the classify stage (crops
    and classifier) by the crops classified, i.e. every detection.
    """
    frames = sum(r["frames"] for r in rows)
    faces = sum(r["faces"] for r in rows)
    crops = sum(r["crops"] for r in rows)
    total = sum(r["total_s"] for r in rows)
    ms = {k: round(1000 * sum(r[f"{k}_s"] for r in rows) / frames, 2) for k in ("decode", "detect", "classify")}
    ms["total"] = round(1000 * total / frames, 2)
    return {"frames": frames, "faces_per_frame": round(faces / frames, 2), "frames_per_s": round(frames / total, 2),
            "frames_per_s_per_round": [round(r["frames"] / r["total_s"], 2) for r in rows], "ms_per_frame": ms,
            "crops_per_frame": round(crops / frames, 2),
            "classify_ms_per_face": round(1000 * sum(r["classify_s"] for r in rows) / max(crops, 1), 3),
            **{f"{k}_per_frame": round(sum(r[k] for r in rows) / frames, 2) for k in ("reused", "unchanged")
               if k in rows[0]}}


def model_macs(store: ModelStore, classifier: str | None = None) -> dict:
    """Multiply-adds of a store's promoted (or named) classifier per face and detector per frame at each size."""
    cls, det = store.load("classifier", classifier), store.load("detector")
    macs = {"classifier": cls.name, "classifier_macs_per_face": tflite_macs(cls.file()), "detector": det.name}
    for name, size in {**SIZES, "640x360": (640, 360)}.items():
        macs[f"detector_macs_{name}"] = onnx_conv_macs(det.file(), *size)
    return macs


def cpu_model() -> str:
    """The CPU's model name (int8 speed depends on its instruction set), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", default="6d38dcb", help="baseline git revision (default: before issue 19)")
    parser.add_argument("--frames", type=int, default=60, help="frames per set and round")
    parser.add_argument("--seed-frames", type=int, default=12, help="frames per set and round for the seed pipeline")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--photos", type=Path, default=DEFAULT_SCENES, help="folder of the held-out photos")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="ImageNet weights for the seed model")
    parser.add_argument("--no-seed", action="store_true")
    parser.add_argument("--also", action="append", default=[], metavar="CLASSIFIER",
                        help="also time today's pipeline with this classifier version (repeatable)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "compare.json")
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # still removes the temporary worktree
    for path in (args.video, args.photos, *([] if args.no_seed else [args.weights])):
        if not path.exists():
            print(f"error: {path} not found", file=sys.stderr)
            return 2
    try:
        store = ModelStore(REPO / "models")
        promoted = store.load("classifier")
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="maskwatch-compare-")))
        frames_file = tmp / "frames.pkl"
        sets = frame_sets(args.video, args.photos, args.frames)
        frames_file.write_bytes(pickle.dumps(sets))
        base_tree = tmp / "baseline"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(base_tree), args.rev],
                       check=True)
        stack.callback(subprocess.run, ["git", "-C", str(REPO), "worktree", "remove", "--force", str(base_tree)],
                       check=False)
        rev = subprocess.run(["git", "-C", str(base_tree), "log", "-1", "--format=%h %cI %s"], check=True,
                             capture_output=True, text=True).stdout.strip()
        plans = [("current", REPO, ["--models", str(REPO / "models")]),
                 ("current-tracked", REPO, ["--kind", "tracked", "--models", str(REPO / "models")]),
                 ("current-overlap", REPO, ["--models", str(REPO / "models"), "--overlap",
                                     "--detector-threads", "1", "--classifier-threads", "1"])]
        source = promoted.meta.get("source_version")
        if source:
            plans.append(("current-float", REPO, ["--models", str(REPO / "models"), "--classifier", source]))
        plans += [(f"current+{v}", REPO, ["--models", str(REPO / "models"), "--classifier", v])
                  for v in args.also if v != source]
        plans.append(("baseline", base_tree, ["--models", str(base_tree / "models")]))
        if not args.no_seed:
            plans.append(("seed", REPO, ["--kind", "seed", "--models", str(REPO / "models"),
                                         "--weights", str(args.weights)]))
        runners = {}
        for name, path, extra in plans:
            log.info("starting %s ...", name)
            runners[name] = Runner(name, path, extra, frames_file)
            stack.callback(runners[name].close)
        gflops = round(matmul_gflops(), 1)
        rows: dict[str, dict[str, list[dict]]] = {n: {s: [] for s in sets} for n in runners}
        loads = [os.getloadavg()[0]]
        for round_no in range(1, args.rounds + 1):
            for set_name in sets:
                for name, runner in runners.items():
                    count = args.seed_frames if name == "seed" else args.frames
                    rows[name][set_name].append(runner.time(set_name, count))
                log.info("round %d/%d, %s: %s", round_no, args.rounds, set_name, ", ".join(
                    f"{n} {r[set_name][-1]['frames'] / r[set_name][-1]['total_s']:.1f} fps" for n, r in rows.items()))
            loads.append(os.getloadavg()[0])
        gflops_end = round(matmul_gflops(), 1)
        results = {n: {s: summarize(r) for s, r in per_set.items()} for n, per_set in rows.items()}
        base_macs = model_macs(ModelStore(base_tree / "models"))
    report_macs = {"current": model_macs(store), "baseline": base_macs,
                   **({"current-float": model_macs(store, source)} if source else {}),
                   **({"seed_classifier_macs_per_face": runners["seed"].ready.get("classifier_macs")}
                      if "seed" in runners else {})}
    best = {s: max(("current", "current-overlap"), key=lambda n: results[n][s]["frames_per_s"]) for s in sets}
    ratios = {}
    for s in sets:
        b = best[s]
        ratios[s] = {
            "best_current": b,
            "fps_vs_baseline": round(results[b][s]["frames_per_s"] / results["baseline"][s]["frames_per_s"], 2),
            "classify_ms_per_face_vs_baseline": round(results["current"][s]["classify_ms_per_face"]
                                                      / results["baseline"][s]["classify_ms_per_face"], 3),
        }
        macs = report_macs["current"].get(f"detector_macs_{s}")
        if macs:  # the clip sets (photos vary in size): frames/s if every multiply-add ran at the matmul peak
            macs += results["current"][s]["crops_per_frame"] * report_macs["current"]["classifier_macs_per_face"]
            ratios[s]["fps_at_matmul_peak"] = round(gflops * 1e9 / (2 * macs), 1)
        if "seed" in results:
            ratios[s]["fps_vs_seed"] = round(results[b][s]["frames_per_s"] / results["seed"][s]["frames_per_s"], 1)
            ratios[s]["tracked_fps_vs_seed"] = round(results["current-tracked"][s]["frames_per_s"]
                                                     / results["seed"][s]["frames_per_s"], 1)
    report = {
        "benchmark": "compare", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "baseline_revision": rev,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "cpu_model": cpu_model(),
                    "numpy_matmul_gflops_start": gflops, "numpy_matmul_gflops_end": gflops_end,
                    "load_avg_1m": [round(x, 2) for x in loads], "nice": os.nice(0)},
        "settings": {"frames_per_set_and_round": args.frames, "seed_frames": args.seed_frames, "rounds": args.rounds,
                     "sets": {s: len(f) for s, f in sets.items()}},
        "models": {n: r.ready.get("models") for n, r in runners.items()},
        "macs": report_macs,
        "results": results, "ratios": ratios,
    }
    print_report(report)
    write_report(args.out, report)
    return 0


def print_report(report: dict) -> None:
    """A table per set: frames/s, ms per stage, classifier ms per face; then the ratios."""
    m = report["machine"]
    print(f"machine: {m['cpus']} cpus, numpy matmul {m['numpy_matmul_gflops_start']}-{m['numpy_matmul_gflops_end']}"
          f" GFLOP/s, load {m['load_avg_1m']}; baseline {report['baseline_revision']}")
    for name, macs in report["macs"].items():
        print(f"  multiply-adds {name}: {macs}")
    for set_name, ratio in report["ratios"].items():
        print(f"\n{set_name}")
        print(f"  {'pipeline':38} {'fps':>7} {'decode':>7} {'detect':>7} {'classify':>8} {'ms/face':>8} faces/frame")
        for name, per_set in report["results"].items():
            r = per_set[set_name]
            ms = r["ms_per_frame"]
            print(f"  {name:38} {r['frames_per_s']:7.1f} {ms['decode']:7.1f} {ms['detect']:7.1f} {ms['classify']:8.1f}"
                  f" {r['classify_ms_per_face']:8.2f} {r['faces_per_frame']}")
        print(f"  ratios: {ratio}")


if __name__ == "__main__":
    sys.exit(main())
