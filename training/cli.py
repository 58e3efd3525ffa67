"""`maskwatch train | eval | models | dataset`: the training job's commands (heavy imports stay inside)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from shared.crops import DEFAULT_MARGIN
from shared.exit_codes import USAGE, fail
from training.backbone import DEFAULT_FINETUNE_FROM

log = logging.getLogger("maskwatch.training")
PRETRAINED_ENV = "MASKWATCH_PRETRAINED"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the training job's subcommands to the `maskwatch` parser."""
    _register_train(sub)
    _register_eval(sub)
    _register_models(sub)
    _register_dataset(sub)


def _models_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", metavar="DIR", help="model store root (default: $MASKWATCH_MODELS, ./models, "
                   "or the shipped models: `maskwatch models path`)")


def _register_train(sub: argparse._SubParsersAction) -> None:
    from training.export import QUANTIZE_MODES

    p = sub.add_parser("train", help="train a MobileNetV2 face-mask classifier into a model store",
                       description="Train on folder datasets (ROOT/<class>/*.jpg; several roots are merged).")
    p.add_argument("roots", nargs="+", metavar="ROOT", help="dataset folder(s) with one sub-folder per class")
    p.add_argument("--out", required=True, metavar="DIR", help="model store root to write the version into")
    p.add_argument("--val", action="append", default=[], metavar="DIR",
                   help="explicit validation folder (repeatable); default: a deduplicated stratified split")
    p.add_argument("--pretrained", default=os.environ.get(PRETRAINED_ENV), metavar="PATH",
                   help=f"ImageNet weights file (.weights.h5), or 'imagenet' to let Keras download its own "
                        f"(default: ${PRETRAINED_ENV})")
    p.add_argument("--no-pretrained", action="store_true", help="start from random weights")
    p.add_argument("--input-size", type=int, default=224, help="square input size in pixels (default 224)")
    p.add_argument("--split", choices=("group", "random"), default="group",
                   help="group: near-duplicates and crops of one photo stay on one side (default); "
                        "random: the naive, leaky split")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share of groups held out for validation (default 0.2); 0 trains on everything for "
                   "exactly --epochs and --finetune-epochs (no early stopping): a refit with a validated "
                   "run's epoch counts")
    p.add_argument("--dedup-distance", type=int, help="max perceptual-hash distance (bits of 64) of "
                   "near-duplicates (default 8)")
    p.add_argument("--views", type=int, default=3, help="cached views per training image: 1 plain + augmented")
    p.add_argument("--epochs", type=int, default=40, help="phase 1 (head) epochs, early stopping")
    p.add_argument("--finetune-epochs", type=int, default=12,
                   help="phase 2 (top blocks) epochs, early stopping (default 12); 0 = skip")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--finetune-lr", type=float, default=1e-4)
    p.add_argument("--finetune-from", type=int, default=DEFAULT_FINETUNE_FROM, metavar="BLOCK",
                   help="first MobileNetV2 block (1-16) that phase 2 trains; lower = deeper fine-tuning, "
                        f"larger feature cache (default {DEFAULT_FINETUNE_FROM})")
    p.add_argument("--ema", type=float, default=0.999, metavar="MOMENTUM",
                   help="phase 2 validates and keeps a moving average of the weights with this momentum "
                        "(default 0.999: about 1,000 steps; use less for tiny data sets; 0 = off)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--balance", choices=("class", "sqrt", "root-class", "none"), default="class",
                   help="loss weights: every class equal (default), sqrt (a class weighs the square root of "
                        "its size), every root x class cell equal (lifts small in-domain roots), or none")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quantize", choices=QUANTIZE_MODES, default="float16")
    p.add_argument("--cache", metavar="DIR", default=os.environ.get("MASKWATCH_CACHE"),
                   help="feature cache folder (default: $MASKWATCH_CACHE; none = no cache)")
    p.add_argument("--name", help="version name (default: <UTC time>-mnv2-<size>)")
    p.add_argument("--description", default="")
    p.add_argument("--promote", action="store_true", help="promote the new version when done")
    p.add_argument("--promote-if-better", action="store_true",
                   help="promote it only if it beats the promoted version on the validation photos "
                        "(label accuracy and mAP not lower, no class recall down by over a point)")
    _if_better_args(p)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=_train)


def _if_better_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--val-scenes", metavar="VOC_DIR", help="validation photos for the comparison (default: "
                   "$MASKWATCH_DATA_DIR/scenes/ilc2021 or ../shared/data/scenes/ilc2021)")
    p.add_argument("--val-photos", metavar="LIST", help="their stems (default: training/splits/ilc2021_val.txt)")
    p.add_argument("--val-detector", metavar="VERSION", help="detector for the comparison (default: promoted)")


def _train(args: argparse.Namespace) -> int:
    from shared.model_store import ModelStore
    from training.backbone import PretrainedError
    from training.errors import TrainingError
    from training.train import TrainConfig, run_training

    if args.no_pretrained:
        pretrained = None
    elif not args.pretrained:
        return _fail("no pre-trained weights: pass --pretrained PATH (a Keras .weights.h5 file), "
                     "--pretrained imagenet (download) or --no-pretrained")
    else:
        pretrained = args.pretrained
        if pretrained != "imagenet" and not Path(pretrained).is_file():
            return _fail(f"pre-trained weights file {pretrained} not found")
    cfg = TrainConfig(
        roots=[str(r) for r in args.roots], out=args.out, val_roots=[str(v) for v in args.val],
        input_size=args.input_size, pretrained=pretrained, split=args.split, val_fraction=args.val_fraction,
        **({"dedup_distance": args.dedup_distance} if args.dedup_distance is not None else {}), views=args.views,
        epochs=args.epochs, finetune_epochs=args.finetune_epochs, finetune_from=args.finetune_from,
        learning_rate=args.lr, finetune_learning_rate=args.finetune_lr,
        ema=args.ema,
        batch_size=args.batch_size, patience=args.patience, balance=args.balance,
        seed=args.seed, quantize=args.quantize, cache_dir=args.cache, name=args.name, promote=args.promote,
        threads=args.threads, description=args.description)
    if cfg.input_size < 32:
        return _fail("--input-size must be at least 32")
    if not 0 <= cfg.val_fraction < 1:
        return _fail("--val-fraction must be in [0, 1)")
    if cfg.val_fraction == 0 and cfg.val_roots:
        return _fail("--val-fraction 0 and --val exclude each other")
    if args.promote and args.promote_if_better:
        return _fail("--promote and --promote-if-better exclude each other")
    if not 0 <= cfg.ema < 1:
        return _fail("--ema must be a momentum in [0, 1), e.g. 0.999")
    if not 1 <= cfg.finetune_from <= 16:
        return _fail("--finetune-from must be a MobileNetV2 block from 1 to 16")
    try:
        version = run_training(cfg)
    except (TrainingError, PretrainedError) as exc:
        return _fail(str(exc))
    print(f"classifier version {version.name} written to {version.path}")
    if args.promote_if_better:
        return _promote_if_better(args, ModelStore(args.out), version.name)
    return 0


def _promote_if_better(args: argparse.Namespace, store: Any, name: str) -> int:
    from shared.model_store import ModelError
    from training.errors import TrainingError
    from training.promotion import promote_if_better

    try:
        verdict = promote_if_better(store, name, scenes=args.val_scenes, photos=args.val_photos,
                                    detector=args.val_detector, threads=args.threads)
    except (ModelError, TrainingError) as exc:
        return _fail(str(exc))
    print(f"classifier {name} " + ("promoted" if verdict.better else f"not promoted; {verdict.promoted} stays"))
    return 0


def _register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a classifier version on crop folders or annotated scenes")
    p.add_argument("version", help="a version folder (models/classifier/<version>) or a version name")
    p.add_argument("folders", nargs="*", metavar="DIR", help="classification folders (DIR/<class>/*.jpg)")
    p.add_argument("--scenes", metavar="VOC_DIR", help="annotated photos (images/ + annotations/)")
    p.add_argument("--photos", metavar="LIST", help="only these photo stems of --scenes (one a line), e.g. "
                   "training/splits/ilc2021_val.txt")
    p.add_argument("--original-labels", action="store_true", help="--scenes as annotated, without the committed "
                   "label corrections (training/labels/<folder>_corrections.csv)")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.add_argument("--errors", metavar="DIR", help="save each wrongly labelled face or image (the crop the "
                   "classifier saw), errors.json and a contact sheet here")
    p.add_argument("--detector", metavar="VERSION", help="detector version for --scenes (default: the promoted one)")
    p.add_argument("--min-face", type=float,
                   help="smallest face the detector looks for (pixels; default: the detector version's own)")
    p.add_argument("--scales", type=_scales, default=(1.0,), metavar="LIST",
                   help="with --scenes: also downscale the photos and boxes by these factors, e.g. 1,0.5,0.33")
    p.add_argument("--threads", type=int, default=2)
    _models_arg(p)
    p.set_defaults(func=_eval)


def _scales(text: str) -> tuple[float, ...]:
    from training.scales import parse_scales

    return parse_scales(text)


def _resolve_version(spec: str, models: str | None) -> Any:
    from shared.model_store import ModelStore

    path = Path(spec)
    if path.is_dir() and (path / "meta.json").exists() or path.parent.name == "classifier":
        return ModelStore(path.resolve().parent.parent).load("classifier", path.name)
    return ModelStore(models).load("classifier", spec)


def _eval(args: argparse.Namespace) -> int:
    from shared.classifier import FaceClassifier
    from shared.face_detector import load_detector
    from shared.imaging import ImageError
    from shared.model_store import ModelError, ModelStore
    from shared.pipeline import Pipeline
    from training.dataset import scan_folders
    from training.error_review import ErrorReview
    from training.errors import TrainingError
    from training.evaluate import evaluate_folder, evaluate_scenes, format_scenes
    from training.metrics import format_classification, plot_confusion
    from training.splits import read_list
    from training.voc import load_voc

    if not args.folders and not args.scenes:
        return _fail("nothing to evaluate: give classification folders and/or --scenes VOC_DIR")
    try:
        version = _resolve_version(args.version, args.models)
        classifier = FaceClassifier.from_version(version, threads=args.threads)
        out: dict[str, Any] = {"classifier": version.name}
        review = ErrorReview(args.errors, classifier.input_size, classifier.crop_margin) if args.errors else None
        if args.folders:
            report = evaluate_folder(classifier, scan_folders(args.folders), review=review)
            print(format_classification(report, f"{version.name} on {', '.join(args.folders)}:"))
            out["folders"] = report
        if args.scenes:
            stems = set(read_list(args.photos)) if args.photos else None
            photos = load_voc(args.scenes, stems=stems, original_labels=args.original_labels)
            store = ModelStore(args.models)
            detector = load_detector(store, args.detector, policy="photos", min_face=args.min_face,
                                     threads=args.threads)
            floor = load_detector(store, args.detector, policy="photos", min_face=args.min_face,
                                  threads=args.threads, score_threshold=0.05)
            reports = []
            for scale in args.scales:
                report = evaluate_scenes(Pipeline(detector, classifier), photos, review, scale, floor)
                print(format_scenes(report))
                reports.append(report)
            out["scenes"] = reports[0]
            if len(reports) > 1:
                out["scenes_by_scale"] = {f"{r['scale']:g}": r for r in reports}
        if review is not None:
            print(f"{len(review.errors)} wrongly labelled faces -> {review.close()}")
    except (ModelError, TrainingError, ImageError) as exc:
        return _fail(str(exc))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2) + "\n")
        for key in ("folders", "scenes"):
            if key in out:
                cm = out[key] if key == "folders" else out[key]["matched_faces"]
                plot_confusion(cm, path.with_name(f"{path.stem}-{key}-confusion.png"), f"{version.name}: {key}")
    return 0


def _register_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, show, promote or combine model versions")
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    for name, helptext in (("list", "versions and which one is promoted"),
                           ("show", "a version's meta.json and validation numbers"),
                           ("promote", "make a version the one the services run")):
        q = msub.add_parser(name, help=helptext)
        if name != "list":
            q.add_argument("version")
        if name == "promote":
            q.add_argument("--if-better", action="store_true", help="classifiers: only if it beats the promoted "
                           "version on the validation photos (see maskwatch train --promote-if-better)")
            _if_better_args(q)
            q.add_argument("--threads", type=int, default=2)
        q.add_argument("--kind", choices=("classifier", "detector"), default="classifier")
        _models_arg(q)
        q.set_defaults(func=_models)
    q = msub.add_parser("path", help="print the model store folder in use ($MASKWATCH_MODELS, ./models or "
                        "the shipped models)")
    _models_arg(q)
    q.set_defaults(func=_models_path)
    q = msub.add_parser("combine", help="a new classifier version that averages the probabilities of several")
    q.add_argument("versions", nargs="+", metavar="VERSION", help="classifier versions (at least two)")
    q.add_argument("--name", required=True, help="name of the new version")
    q.add_argument("--description", default="")
    q.add_argument("--promote", action="store_true", help="promote the new version")
    _models_arg(q)
    q.set_defaults(func=_combine)
    q = msub.add_parser("quantize", help="a new classifier version: int8 post-training quantization of a version")
    q.add_argument("version", help="the float classifier version")
    q.add_argument("--scenes", required=True, metavar="VOC_DIR", help="annotated photos to cut calibration crops from")
    q.add_argument("--exclude", metavar="LIST", default="training/splits/ilc2021_val.txt",
                   help="photo stems never used (the held-out list)")
    q.add_argument("--name", required=True, help="name of the new version")
    q.add_argument("--calibration", type=int, default=512, help="calibration crops")
    q.add_argument("--description", default="")
    q.add_argument("--promote", action="store_true", help="promote the new version")
    _models_arg(q)
    q.set_defaults(func=_quantize)


def _quantize(args: argparse.Namespace) -> int:
    from shared.model_store import ModelError, ModelStore
    from training.errors import TrainingError
    from training.quantize import quantize_version
    from training.splits import read_list

    store = ModelStore(args.models)
    try:
        version = quantize_version(store, args.version, args.name, args.scenes, read_list(args.exclude),
                                   calibration=args.calibration, description=args.description)
        if args.promote:
            store.promote("classifier", version.name)
    except (ModelError, TrainingError, OSError) as exc:
        return _fail(" ".join(str(exc).split()))
    agreement = json.loads((version.path / "quantization.json").read_text())["float_vs_int8_on_check_crops"]
    print(f"classifier {version.name} (int8 of {args.version}) written to {version.path}; top-1 agreement with "
          f"the float model {agreement['top1_agreement']:.4f} on {agreement['n']} crops"
          + (" and promoted" if args.promote else ""))
    return 0


def _models_path(args: argparse.Namespace) -> int:
    from shared.model_store import ModelStore

    print(ModelStore(args.models).root.resolve())
    return 0


def _combine(args: argparse.Namespace) -> int:
    from shared.model_store import ModelError, ModelStore
    from training.ensemble import combine_versions

    store = ModelStore(args.models)
    try:
        version = combine_versions(store, args.versions, args.name, args.description)
        if args.promote:
            store.promote("classifier", version.name)
    except ModelError as exc:
        return _fail(str(exc))
    print(f"classifier {version.name} (average of {', '.join(args.versions)}) written to {version.path}"
          + (" and promoted" if args.promote else ""))
    return 0


def _models(args: argparse.Namespace) -> int:
    from shared.model_store import ModelError, ModelStore

    store = ModelStore(args.models)
    try:
        if args.models_command == "list":
            current = store.current(args.kind)
            names = store.versions(args.kind)
            if not names:
                print(f"no {args.kind} versions in {store.kind_dir(args.kind)}")
            for name in names:
                try:
                    meta = store.load(args.kind, name).meta
                    acc = meta.get("val_accuracy")
                    info = f"input {meta.get('input_size', '-')}, val acc {acc}" if acc is not None else "ok"
                except ModelError as exc:
                    info = f"INVALID: {exc}"
                print(f"{'*' if name == current else ' '} {name:<32} {info}")
        elif args.models_command == "show":
            version = store.load(args.kind, args.version)
            print(json.dumps({k: v for k, v in version.meta.items() if k != "files"}, indent=2))
        elif args.if_better:
            if args.kind != "classifier":
                return _fail("--if-better compares classifiers only")
            return _promote_if_better(args, store, store.load("classifier", args.version).name)
        else:
            version = store.promote(args.kind, args.version)
            print(f"{args.kind} {version.name} promoted in {store.kind_dir(args.kind)}")
    except ModelError as exc:
        return _fail(str(exc))
    return 0


def _register_dataset(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="prepare training data")
    dsub = p.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    q = dsub.add_parser("crops", help="cut labelled face crops (and not_face backgrounds) out of VOC photos")
    q.add_argument("voc_dir")
    q.add_argument("out_dir")
    q.add_argument("--exclude", metavar="LIST", help="photo stems never to cut from (e.g. the held-out list)")
    q.add_argument("--only", metavar="LIST", help="cut only from these photo stems")
    q.add_argument("--size", type=int, default=224)
    q.add_argument("--margin", type=float, default=DEFAULT_MARGIN)
    q.add_argument("--background", type=int, default=1, metavar="N", help="not_face background crops per photo")
    q.add_argument("--detections", action="store_true",
                   help="also crop the face detector's boxes that match a labelled face (IoU >= 0.5)")
    q.add_argument("--false-positives", action="store_true",
                   help="with --detections: detections far from every labelled box become not_face "
                        "(only for fully annotated photos)")
    q.add_argument("--original-labels", action="store_true",
                   help="labels as annotated, without the committed label corrections")
    q.add_argument("--seed", type=int, default=0)
    _models_arg(q)
    q.set_defaults(func=_dataset_crops)
    h = dsub.add_parser("heldout", help="print the seeded held-out photo list of a VOC folder")
    h.add_argument("voc_dir")
    h.add_argument("--seed", type=int, default=2021)
    h.add_argument("--fraction", type=float, default=0.2)
    h.set_defaults(func=_dataset_heldout)


def _dataset_crops(args: argparse.Namespace) -> int:
    from shared.face_detector import load_detector
    from shared.model_store import ModelError, ModelStore
    from training.errors import TrainingError
    from training.mining import CropOptions, cut_crops
    from training.splits import read_list
    from training.voc import load_voc

    try:
        photos = load_voc(args.voc_dir, stems=set(read_list(args.only)) if args.only else None,
                          exclude=set(read_list(args.exclude)) if args.exclude else None,
                          original_labels=args.original_labels)
        detector = None
        if args.detections:
            detector = load_detector(ModelStore(args.models), threads=2)
        options = CropOptions(size=args.size, margin=args.margin, background_per_photo=args.background,
                              false_positives=args.false_positives, seed=args.seed)
        counts = cut_crops(photos, args.out_dir, options, detector)
    except (ModelError, TrainingError) as exc:
        return _fail(str(exc))
    print(f"{len(photos)} photos -> {args.out_dir}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def _dataset_heldout(args: argparse.Namespace) -> int:
    from training.errors import TrainingError
    from training.splits import heldout_stems
    from training.voc import photo_stems

    try:
        stems = heldout_stems(photo_stems(args.voc_dir), args.seed, args.fraction)
    except TrainingError as exc:
        return _fail(str(exc))
    sys.stdout.write("".join(f"{s}\n" for s in stems))
    return 0


def _fail(message: str) -> int:
    return fail(message, USAGE)
