"""Training benchmarks: honest vs naive training and input sizes, each evaluated on the held-out ilc2021 photos.

Runs `maskwatch train` and `maskwatch eval` as a user would and writes
benchmarks/results/training_<study>.json. Needs ../shared/data and the ImageNet weights file.

    nice -n 10 python benchmarks/training_runs.py sizes   --crops /work/cache/ilc2021-train-crops
    nice -n 10 python benchmarks/training_runs.py naive
    nice -n 10 python benchmarks/training_runs.py evaluate VERSION_DIR [--name honest]
    nice -n 10 python benchmarks/training_runs.py labels VERSION_DIR --name NAME   (corrected and original labels)

`--crops` is the output of `maskwatch dataset crops ../shared/data/scenes/ilc2021 DIR
--exclude training/splits/ilc2021_val.txt --detections --background 2`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
WEIGHTS = REPO.parent / "shared" / "weights" / "mobilenet_v2_1.0_224_imagenet_from_torchvision_no_top.weights.h5"
RESULTS = REPO / "benchmarks" / "results"
HELDOUT = REPO / "training" / "splits" / "ilc2021_val.txt"
DETECTOR = "retinaface-masked-ilc2021-640"  # the shipped detector: every classifier is compared behind it


def maskwatch(*args: str) -> str:
    """Run a maskwatch command, echo its output, fail loudly on a non-zero exit."""
    cmd = [sys.executable, "-m", "maskwatch.cli", *args]
    print("+", " ".join(cmd), flush=True)
    done = subprocess.run(cmd, cwd=REPO, text=True, stdout=subprocess.PIPE)
    print(done.stdout, flush=True)
    if done.returncode:
        raise SystemExit(f"command failed ({done.returncode}): {' '.join(args)}")
    return done.stdout


def held_out_eval(version_dir: Path, extra_folders: list[str] = (), original_labels: bool = False) -> dict:
    """`maskwatch eval` on the held-out ilc2021 photos (labels corrected by training/labels/, or as annotated);
    returns the JSON report."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        maskwatch("eval", str(version_dir), *extra_folders, "--scenes", str(DATA / "scenes" / "ilc2021"),
                  "--photos", str(HELDOUT), "--detector", DETECTOR, "--json", str(report),
                  *(["--original-labels"] if original_labels else []))
        return json.loads(report.read_text())


def summarise(version_dir: Path, report: dict, seconds: float | None) -> dict:
    """The numbers docs/training.md quotes."""
    meta = json.loads((version_dir / "meta.json").read_text())
    # An ensemble (`maskwatch models combine`) or a quantized copy has no training metrics of its own.
    metrics_file = version_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else \
        {"validation": None, "phase1": {}, "phase2": {}}
    scenes = report["scenes"]
    matched = scenes["matched_faces"]
    per = matched["per_class"]
    own = metrics["validation"]
    return {
        "version": version_dir.name, "input_size": meta["input_size"],
        "members": meta.get("members"),
        "model_bytes": sum((version_dir / rel).stat().st_size for rel in meta.get("model_files", [meta["model_file"]])),
        "train_seconds": seconds if seconds is not None else metrics.get("training_seconds"),
        "own_validation_accuracy": own and own["accuracy"],  # None for a refit (--val-fraction 0)
        "own_validation_macro_f1": own and own["macro_f1"],
        "own_validation_by_root": metrics.get("validation_by_root"),
        "own_validation_loss": min((metrics[phase]["best_val_loss"] for phase in ("phase1", "phase2")
                                    if "best_val_loss" in metrics[phase]), default=None),  # how runs are chosen
        "heldout_label_accuracy": matched["accuracy"], "heldout_macro_f1": matched["macro_f1"],
        "heldout_compliance_accuracy": scenes["compliance_accuracy"],
        "heldout_mask_incorrect_recall": per.get("mask_incorrect", {}).get("recall"),
        "heldout_without_mask_precision": per.get("without_mask", {}).get("precision"),
        "heldout_map50": scenes["map50"], "heldout_face_ap50": scenes["face_ap50"],
        "heldout_ap50": scenes["ap50"], "heldout_matched_faces": matched["n"],
        "heldout_undetected": scenes["undetected"], "tflite_vs_keras": metrics.get("tflite_vs_keras"),
        "detector": scenes["detector"],
        "folders": report.get("folders"),
    }


def train(out: Path, roots: list[str], *options: str) -> tuple[Path, float]:
    started = time.time()
    text = maskwatch("train", *roots, "--out", str(out), "--pretrained", str(WEIGHTS), *options)
    name = text.strip().splitlines()[-1].split()[2]
    return out / "classifier" / name, round(time.time() - started, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=("sizes", "naive", "evaluate", "labels"))
    parser.add_argument("version", nargs="?", help="for 'evaluate': a version folder")
    parser.add_argument("--name", default="honest")
    parser.add_argument("--crops", default="/work/cache/ilc2021-train-crops")
    parser.add_argument("--out", default="/work/cache/bench-store")
    parser.add_argument("--cache", default="/work/cache/features")
    parser.add_argument("--sizes", default="224,160,128")
    args = parser.parse_args()
    out, faces = Path(args.out), DATA / "faces"
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.study == "labels":
        version = Path(args.version)
        result = {args.name: {"corrected_labels": summarise(version, held_out_eval(version), None),
                              "original_labels": summarise(version, held_out_eval(version, original_labels=True),
                                                           None)}}
        path = RESULTS / f"labels_{args.name}.json"
    elif args.study == "evaluate":
        version = Path(args.version)
        result = {args.name: summarise(version, held_out_eval(version), None)}
        path = RESULTS / f"training_{args.name}.json"
    elif args.study == "naive":
        version, seconds = train(out, [str(faces / "chandrikadeb7")], "--split", "random", "--input-size", "224",
                                 "--finetune-epochs", "0", "--views", "3", "--quantize", "none",
                                 "--cache", args.cache, "--description", "naive: random split, one leaky set")
        result = {"naive": summarise(version, held_out_eval(version), seconds)}
        path = RESULTS / "training_naive.json"
    else:
        roots = [str(faces / "fm12k"), str(faces / "chandrikadeb7"), args.crops]
        result = {}
        for size in map(int, args.sizes.split(",")):
            version, seconds = train(out, roots, "--input-size", str(size), "--views", "1",
                                     "--finetune-epochs", "0", "--cache", args.cache)
            result[str(size)] = summarise(version, held_out_eval(version), seconds)
            RESULTS.joinpath("training_input_size.json").write_text(json.dumps(result, indent=2) + "\n")
        path = RESULTS / "training_input_size.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    keys = ("heldout_label_accuracy", "heldout_mask_incorrect_recall", "heldout_without_mask_precision",
            "train_seconds")
    rows = {f"{k} {side}": v for k, sides in result.items() for side, v in sides.items()} if args.study == "labels" \
        else result
    print(json.dumps({k: {x: v[x] for x in keys} for k, v in rows.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
