"""`maskwatch train-detector` and `maskwatch eval-detector`: fine-tune and score the face detector."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger("maskwatch.detector_training")
BASE_VERSION = "retinaface-stock"


def register(sub: argparse._SubParsersAction) -> None:
    """Add `train-detector` and `eval-detector`."""
    p = sub.add_parser(
        "train-detector", help="fine-tune the RetinaFace face detector on annotated photos (VOC)",
        description="Fine-tune RetinaFace (starting from a detector version's weights) on annotated scene "
        "photos, write a new detector version, evaluate it against the base on the held-out photos and "
        "promote it when it beats the base.",
    )
    p.add_argument("voc_dirs", nargs="+", type=Path, metavar="VOC_DIR", help="folders with images/ and annotations/")
    p.add_argument("--base", default=BASE_VERSION, help=f"detector version to start from (default {BASE_VERSION})")
    p.add_argument("--name", help="new version name (default retinaface-masked-<UTC time>)")
    p.add_argument("--size", type=int, default=384, help="square training input in pixels (default 384)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--scale-range", type=float, nargs=2, default=(0.5, 2.0), metavar=("LO", "HI"),
                   help="training scale jitter relative to the photos' own pixels (default 0.5 2.0)")
    p.add_argument("--max-minutes", type=float, default=0.0, help="stop training after this long (0 = no limit)")
    p.add_argument("--workdir", type=Path, help="checkpoints and logs (default <store>/detector/.work-<name>)")
    p.add_argument("--no-promote", action="store_true", help="never promote, even when the new version wins")
    p.add_argument("--seed", type=int, default=0)
    _common(p)
    p.set_defaults(func=train_command)

    e = sub.add_parser(
        "eval-detector", help="face AP@0.5, recall per class and false positives per image of detector versions",
        description="Score detector versions on the held-out annotated photos (class-agnostic face AP@0.5, "
        "recall per mask class at IoU 0.5, false positives per image at the score threshold).",
    )
    e.add_argument("voc_dirs", nargs="+", type=Path, metavar="VOC_DIR")
    e.add_argument("--detector", action="append", metavar="VERSION",
                   help="version to score (repeatable; default: the promoted one)")
    e.add_argument("--threshold", type=float, default=0.5, help="operating score threshold (default 0.5)")
    e.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    _common(e)
    e.set_defaults(func=eval_command)


def _common(p: argparse.ArgumentParser) -> None:
    from training.splits import ILC2021_VAL

    p.add_argument("--val-list", type=Path, default=ILC2021_VAL, help="held-out photo stems (default: %(default)s)")
    p.add_argument("--min-face", type=int, default=16, help="detector min_face for evaluation (default 16)")
    p.add_argument("--models", type=Path, help="model store root (default $MASKWATCH_MODELS, ./models or the repo's)")
    p.add_argument("--threads", type=int, default=2)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def format_metrics(rows: dict[str, dict]) -> str:
    """A plain-text table: one row per detector version."""
    lines = [f"{'version':<34} {'AP@0.5':>7} {'masked':>7} {'bare':>7} {'incorrect':>9} {'FP/img':>7} {'ms/img':>7}"]
    for name, m in rows.items():
        r = m["recall"]
        lines.append(
            f"{name:<34} {m['ap50']:>7.3f} {r.get('with_mask', 0):>7.3f} {r.get('without_mask', 0):>7.3f} "
            f"{r.get('mask_incorrect', 0):>9.3f} {m['fp_per_image']:>7.2f} {m['ms_per_image']:>7.1f}"
        )
    return "\n".join(lines)


def beats(candidate: dict, base: dict) -> bool:
    """Higher face AP, no lower masked-face recall and no more false positives per image than the base."""
    return (
        candidate["ap50"] > base["ap50"]
        and candidate["recall"].get("with_mask", 0) >= base["recall"].get("with_mask", 0)
        and candidate["fp_per_image"] <= base["fp_per_image"]
    )


def _limit_threads(threads: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already running in this process (tests): keep its settings
        log.debug("TensorFlow thread counts already fixed")


def train_command(args: argparse.Namespace) -> int:
    """Train, export, evaluate against the base, promote when better."""
    from shared.face_detector import RetinaFaceSpec
    from shared.model_store import ModelError, ModelStore
    from training.detector.data import split_scenes
    from training.detector.evaluate import evaluate_detector, open_detector
    from training.detector.export import finish_version, start_version, write_model
    from training.errors import TrainingError

    if args.size < 64 or args.size % 32 or args.batch_size < 1 or args.epochs < 1 or args.lr <= 0:
        return _fail("--size must be a multiple of 32 (>= 64); --batch-size, --epochs and --lr must be positive")
    if not 0 < args.scale_range[0] <= args.scale_range[1]:
        return _fail("--scale-range needs 0 < LO <= HI")
    store = ModelStore(args.models)
    try:
        base = store.load("detector", args.base)
        train_set, val_set = split_scenes(args.voc_dirs, args.val_list)
    except (ModelError, TrainingError) as exc:
        return _fail(str(exc))
    if not train_set:
        return _fail("no training photos left after holding out the validation list")
    name = args.name or time.strftime("retinaface-masked-%Y%m%d-%H%M", time.gmtime())
    try:
        folder = start_version(store, name)
    except ModelError as exc:
        return _fail(str(exc))
    workdir = args.workdir or store.kind_dir("detector") / f".work-{name}"
    log.info("fine-tuning %s on %d photos (%d held out) into %s", base.name, len(train_set), len(val_set), name)

    _limit_threads(args.threads)
    from training.detector.train import TrainConfig, train

    spec = RetinaFaceSpec.from_meta(base.meta)
    cfg = TrainConfig(size=args.size, batch=args.batch_size, epochs=args.epochs, lr=args.lr,
                      scale_range=tuple(args.scale_range), max_minutes=args.max_minutes, seed=args.seed)
    model, summary = train(train_set, base.file(), workdir, cfg, spec)
    write_model(model, base, folder)

    metrics = {"min_face": args.min_face, "val_photos": len(val_set), "val_list": args.val_list.name}
    if val_set:
        log.info("evaluating %s and %s on %d held-out photos", base.name, name, len(val_set))
        for key, path in (("base", base.file()), ("candidate", folder / "model.onnx")):
            detector = open_detector(path, min_face=args.min_face, threads=args.threads, spec=spec)
            metrics[key] = evaluate_detector(detector, val_set).as_dict()
    summary.update(base_version=base.name, train_photos=len(train_set))
    version = finish_version(store, folder, base, summary, metrics)
    print(f"detector version {version.name} written to {version.path} ({summary['minutes']} min training)")
    if not val_set:
        print("no held-out photos: not evaluated, not promoted")
        return 0
    print(format_metrics({base.name: metrics["base"], version.name: metrics["candidate"]}))
    if beats(metrics["candidate"], metrics["base"]) and not args.no_promote:
        store.promote("detector", version.name)
        print(f"promoted {version.name} (beats {base.name} on the held-out photos)")
    else:
        print(f"not promoted ({'--no-promote' if args.no_promote else 'does not beat ' + base.name})")
    return 0


def eval_command(args: argparse.Namespace) -> int:
    """Score each named detector version on the held-out photos."""
    from shared.model_store import ModelError, ModelStore
    from training.detector.evaluate import evaluate_version
    from training.errors import TrainingError

    if not 0 < args.threshold < 1:
        return _fail("--threshold must be between 0 and 1")
    store = ModelStore(args.models)
    rows = {}
    try:
        for version in args.detector or [None]:
            m = evaluate_version(store, version, args.voc_dirs, args.val_list, args.min_face, args.threshold,
                                 args.threads)
            rows[m.extra["version"]] = m.as_dict()
    except (ModelError, TrainingError) as exc:
        return _fail(str(exc))
    print(format_metrics(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0
