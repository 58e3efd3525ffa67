"""`maskwatch train-detector` and `maskwatch eval-detector`: fine-tune and score the face detector."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from shared.backends import BACKENDS
from shared.exit_codes import USAGE, fail

if TYPE_CHECKING:
    from shared.model_store import ModelVersion

log = logging.getLogger("maskwatch.detector_training")

CROWD_SPEC_PATH = Path(__file__).resolve().parent.parent / "splits" / "crowd_ilc2021.json"  # crowd.CROWD_SPEC
BASE_VERSION = "retinaface-stock"


def parse_scales(text: str) -> tuple[float, ...]:
    """argparse type for --scales (imported lazily: the CLI starts without loading numpy/OpenCV)."""
    from training.scales import parse_scales as parse

    return parse(text)


def parse_sizes(text: str) -> tuple[int, ...]:
    """'8,16,32' -> (8, 16, 32): one level's anchor sizes in pixels."""
    try:
        sizes = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole pixel sizes: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"anchor sizes must be positive: {text!r}")
    return sizes


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
    p.add_argument("--mosaic", type=float, default=0.4,
                   help="YuNet: share of 2x2 mosaics of scaled crops (many small faces; default 0.4)")
    p.add_argument("--lowres", type=float, default=0.0,
                   help="share of training images shown as a small photo upscaled back (down 1.5-3.5x, then up), "
                   "as the scale policy serves low-resolution photos (default 0)")
    p.add_argument("--paste", type=float, default=0.0,
                   help="share of training images given small faces (7-28 px) pasted in: the training photos' "
                   "labelled faces, and faces found in --paste-crops (default 0)")
    p.add_argument("--paste-crops", type=Path, nargs="+", default=[], metavar="DIR",
                   help="folders of face crops to paste from too (e.g. ../shared/data/faces/fm12k)")
    p.add_argument("--paste-crop-limit", type=int, default=3000, metavar="N",
                   help="crops drawn from --paste-crops (default 3000)")
    p.add_argument("--distractors", type=int, default=2, metavar="N",
                   help="background patches cut per training photo and pasted like the faces, with no box, so "
                   "the paste itself is no cue (default 2)")
    p.add_argument("--hard-negatives", metavar="VERSION",
                   help="with --paste: also paste, as background, what this detector version (e.g. an earlier "
                   "pasted run that fires on hands, lights and logos) finds in the training photos where neither "
                   "a label nor the base detector (score >= 0.3) sees a face")
    p.add_argument("--hard-negative-repeat", type=int, default=1, metavar="N",
                   help="draw each hard negative N times as often as another patch (they are few; default 1)")
    p.add_argument("--unlabelled-score", type=float, default=0.8,
                   help="base detections at least this sure that overlap no label are ignored in the loss, "
                   "not learned as background (default 0.8)")
    p.add_argument("--crowd", nargs="?", type=Path, const=CROWD_SPEC_PATH, metavar="SPEC",
                   help="also score both versions on the crowd-like set (default recipe "
                   "training/splits/crowd_ilc2021.json) at the base's photo policy, and promote only a version "
                   "that wins there (higher AP@0.5, no more false positives per frame) without losing on the 1x "
                   "photos")
    p.add_argument("--anchors", type=parse_sizes, nargs="+", metavar="PX,PX",
                   help="RetinaFace anchor sizes per level (stride 8, 16 and 32), e.g. 8,16,32 64,128 256,512 for an "
                   "8 px anchor at stride 8; an anchor the base lacks starts as the base's nearest one of its level "
                   "(default: the base's)")
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
    e.add_argument("--threshold", type=float,
                   help="operating score threshold (default: the version's own, else 0.5); AP is over all "
                   "detections down to 0.05 either way")
    e.add_argument("--scales", type=parse_scales, default=(1.0,), metavar="LIST",
                   help="also downscale the photos and boxes by these factors, e.g. 1,0.5,0.33 (default 1)")
    e.add_argument("--max-pixels", type=int, help="upscaling budget of the scale policy (default: the version's)")
    e.add_argument("--backend", choices=("auto", *BACKENDS["detector"]), default="auto",
                   help="inference back end (default auto: the fastest that passed the version's accuracy guard; "
                   "name one to compare versions on the same runtime)")
    e.add_argument("--crowd", nargs="?", type=Path, const=CROWD_SPEC_PATH, metavar="SPEC",
                   help="also score the crowd-like frames made from the validation photos by the recipe SPEC "
                   "(default training/splits/crowd_ilc2021.json): small faces in the mix crowd cameras see")
    e.add_argument("--policy", choices=("photos", "streams"), default="photos",
                   help="the version's serving defaults to use: photos (images, uploads; default) or streams "
                   "(videos and cameras, where the tracker follows faces)")
    e.add_argument("--labels", action="store_true",
                   help="also the promoted classifier's label accuracy on matched faces, per face size")
    e.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    _common(e)
    e.set_defaults(func=eval_command)

    c = sub.add_parser(
        "calibrate-detector", help="choose a detector version's min_face, threshold and upscaling budget",
        description="Evaluate a grid of min_face and upscaling budgets at several scales on the held-out "
        "photos, pick the defaults (see training/detector/calibrate.py) and, with --write, store them "
        "in the version's meta.json.",
    )
    c.add_argument("voc_dirs", nargs="+", type=Path, metavar="VOC_DIR")
    c.add_argument("--detector", required=True, metavar="VERSION")
    c.add_argument("--scales", type=parse_scales, default=(1.0, 0.5, 0.33), metavar="LIST")
    c.add_argument("--max-fp", type=float, help="false positives per image allowed at 1x (default: the "
                   "shipped retinaface-masked-ilc2021-640's, 0.45)")
    c.add_argument("--budgets", type=lambda t: tuple(int(x) for x in t.split(",")), metavar="PX,PX",
                   help="upscaling budgets to try, in pixels (default 307200 = 640x480: frames that size or larger "
                   "are never upscaled, so the camera-speed cost is one pass; with --crowd 307200,345600,368640)")
    c.add_argument("--min-faces", type=lambda t: tuple(float(x) for x in t.split(",")), metavar="PX,PX",
                   help="min_face values to try (default 5,6.5,8,10)")
    c.add_argument("--crowd", nargs="?", type=Path, const=CROWD_SPEC_PATH, metavar="SPEC",
                   help="choose the photo and stream policies on the crowd-like set of the recipe SPEC (default "
                   "training/splits/crowd_ilc2021.json) under false-positive and cost budgets; see "
                   "training/detector/policies.py")
    c.add_argument("--stream-fp-factor", type=float, default=2.0,
                   help="--crowd: streams may have this many times the current defaults' false positives per "
                   "crowd frame (default 2; the tracker needs min_frames detections for a person)")
    c.add_argument("--json", type=Path, metavar="FILE", help="also write the whole sweep here")
    c.add_argument("--write", action="store_true", help="store the chosen defaults (with --crowd: policies) in "
                   "the version")
    _common(c)
    c.set_defaults(func=calibrate_command)


def _common(p: argparse.ArgumentParser) -> None:
    from training.splits import ILC2021_VAL

    p.add_argument("--val-list", type=Path, default=ILC2021_VAL, help="held-out photo stems (default: %(default)s)")
    p.add_argument("--min-face", type=float,
                   help="smallest face to find, in pixels (default: the version's own defaults, else 16)")
    p.add_argument("--models", type=Path, help="model store root (default $MASKWATCH_MODELS, ./models or the repo's)")
    p.add_argument("--threads", type=int, default=2)


def _fail(message: str) -> int:
    return fail(message, USAGE)


def format_metrics(rows: dict[str, dict]) -> str:
    """A plain-text table: one row per detector version (and scale), then recall per face size."""
    lines = [f"{'version':<34} {'scale':>5} {'AP@0.5':>7} {'AP@thr':>7} {'masked':>7} {'bare':>7} "
             f"{'incorrect':>9} {'FP/img':>7} {'ms/img':>7}"]
    sizes, looser, accuracy = [], [], []
    for name, m in rows.items():
        r = m["recall"]
        version = name.split("@")[0]
        where = "crowd" if m.get("dataset") == "crowd" else f"{m.get('scale', 1.0):g}"
        lines.append(
            f"{version:<34} {where:>5} {m['ap50']:>7.3f} {m.get('ap50_served', 0):>7.3f} "
            f"{r.get('with_mask', 0):>7.3f} {r.get('without_mask', 0):>7.3f} "
            f"{r.get('mask_incorrect', 0):>9.3f} {m['fp_per_image']:>7.2f} {m['ms_per_image']:>7.1f}"
        )
        if m.get("recall_by_size"):
            from training.scales import format_bins

            sizes.append(f"{version} @{where}: {format_bins(m['recall_by_size'])}")
        if m.get("extra", {}).get("ap_looser_iou"):
            aps = "  ".join(f"AP@{iou} {ap:.3f}" for iou, ap in m["extra"]["ap_looser_iou"].items())
            looser.append(f"{version} @{where}: {aps}")
        if m.get("extra", {}).get("label_accuracy_by_size"):
            cells = "  ".join(f"{k} {'-' if v['accuracy'] is None else format(v['accuracy'], '.2f')} ({v['faces']})"
                              for k, v in m["extra"]["label_accuracy_by_size"].items())
            accuracy.append(f"{version} @{where}: {cells}")
    if sizes:
        lines += ["recall per face size (px, sqrt of box area; faces in brackets):", *sizes]
    if looser:
        lines += ["face AP at looser box overlap (the gap to AP@0.5: faces found, boxed unlike the label):", *looser]
    if accuracy:
        lines += ["classifier label accuracy on matched faces per face size (faces in brackets):", *accuracy]
    return "\n".join(lines)


def beats(candidate: dict, base: dict, strict: bool = True) -> bool:
    """Higher face AP (`strict`; else no lower), no lower masked-face recall and no more false positives per
    image than the base."""
    return (
        (candidate["ap50"] > base["ap50"] if strict else candidate["ap50"] >= base["ap50"])
        and candidate["recall"].get("with_mask", 0) >= base["recall"].get("with_mask", 0)
        and candidate["fp_per_image"] <= base["fp_per_image"]
    )


def wins(metrics: dict) -> bool:
    """Promotion rule of `train-detector`: beat the base on the 1x photos; with crowd scores, win on the crowd-like
    set (higher AP, no more false positives per frame) and lose nothing on the 1x photos."""
    if "crowd_candidate" not in metrics:
        return beats(metrics["candidate"], metrics["base"])
    crowd, crowd_base = metrics["crowd_candidate"], metrics["crowd_base"]
    return (beats(metrics["candidate"], metrics["base"], strict=False) and crowd["ap50"] > crowd_base["ap50"]
            and crowd["fp_per_image"] <= crowd_base["fp_per_image"])


def _limit_threads(threads: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already running in this process (tests): keep its settings
        log.debug("TensorFlow thread counts already fixed")


def train_command(args: argparse.Namespace) -> int:
    """Train, export, evaluate against the base, promote when better."""
    from shared.model_store import ModelError, ModelStore
    from training.detector.data import split_scenes
    from training.detector.evaluate import evaluate_detector, open_detector
    from training.detector.export import finish_version, start_version
    from training.errors import TrainingError

    if args.size < 64 or args.size % 32 or args.batch_size < 1 or args.epochs < 1 or args.lr <= 0:
        return _fail("--size must be a multiple of 32 (>= 64); --batch-size, --epochs and --lr must be positive")
    if not 0 < args.scale_range[0] <= args.scale_range[1]:
        return _fail("--scale-range needs 0 < LO <= HI")
    if not (0 <= args.lowres <= 1 and 0 <= args.paste <= 1):
        return _fail("--lowres and --paste are shares: 0 to 1")
    if not 0 < args.unlabelled_score < 1 or args.distractors < 0 or args.hard_negative_repeat < 1:
        return _fail("--unlabelled-score must be between 0 and 1, --distractors at least 0, "
                     "--hard-negative-repeat at least 1")
    missing = [str(d) for d in args.paste_crops if not d.is_dir()]
    if missing:
        return _fail(f"--paste-crops: no such folder: {', '.join(missing)}")
    store = ModelStore(args.models)
    try:
        base = store.load("detector", args.base)
        hard = store.load("detector", args.hard_negatives) if args.hard_negatives else None
        train_set, val_set = split_scenes(args.voc_dirs, args.val_list)
    except (ModelError, TrainingError) as exc:
        return _fail(str(exc))
    if args.anchors:
        from shared.face_detector import RetinaFaceSpec

        if base.meta.get("format", "retinaface-onnx") != "retinaface-onnx":
            return _fail("--anchors applies to RetinaFace versions only")
        levels = len(RetinaFaceSpec.from_meta(base.meta).strides)
        if len(args.anchors) != levels:
            return _fail(f"--anchors needs one list of sizes per level: {levels}, not {len(args.anchors)}")
    if not train_set:
        return _fail("no training photos left after holding out the validation list")
    name = args.name or time.strftime("retinaface-masked-%Y%m%d-%H%M", time.gmtime())
    try:
        folder = start_version(store, name)
    except ModelError as exc:
        return _fail(str(exc))
    workdir = args.workdir or store.kind_dir("detector") / f".work-{name}"
    log.info("fine-tuning %s on %d photos (%d held out) into %s", base.name, len(train_set), len(val_set), name)

    if base.meta.get("format") == "yunet-onnx":
        summary = _train_yunet(args, base, train_set, workdir, folder)
    else:
        summary = _train_retinaface(args, base, train_set, workdir, folder, hard)
    candidate_meta = _with_anchors(base.meta, args.anchors)

    metrics = {"min_face": args.min_face, "val_photos": len(val_set), "val_list": args.val_list.name}
    if val_set:
        log.info("evaluating %s and %s on %d held-out photos", base.name, name, len(val_set))
        for key, path, meta in (("base", base.file(), base.meta), ("candidate", folder / "model.onnx", candidate_meta)):
            detector = open_detector(path, min_face=args.min_face, threads=args.threads,
                                     fmt=base.meta.get("format", "retinaface-onnx"), meta=meta)
            metrics[key] = evaluate_detector(detector, val_set).as_dict()
        if args.crowd:
            metrics |= _crowd_scores(args, base, folder / "model.onnx", candidate_meta)
    summary.update(base_version=base.name, train_photos=len(train_set))
    version = finish_version(store, folder, base, summary, metrics, candidate_meta.get("retinaface"))
    print(f"detector version {version.name} written to {version.path} ({summary['minutes']} min training)")
    if not val_set:
        print("no held-out photos: not evaluated, not promoted")
        return 0
    rows = {base.name: metrics["base"], version.name: metrics["candidate"]}
    if "crowd_base" in metrics:
        rows |= {f"{base.name}@crowd": metrics["crowd_base"], f"{version.name}@crowd": metrics["crowd_candidate"]}
    print(format_metrics(rows))
    if wins(metrics) and not args.no_promote:
        store.promote("detector", version.name)
        where = "the crowd-like set, not losing on the held-out photos" if "crowd_base" in metrics else \
            "the held-out photos"
        print(f"promoted {version.name} (beats {base.name} on {where})")
    else:
        print(f"not promoted ({'--no-promote' if args.no_promote else 'does not beat ' + base.name})")
    return 0


def _with_anchors(meta: dict, anchors: list[tuple[int, ...]] | None) -> dict:
    """A version's meta.json with other RetinaFace anchor sizes (itself without)."""
    if not anchors:
        return meta
    return meta | {"retinaface": meta.get("retinaface", {}) | {"anchor_sizes": [list(sizes) for sizes in anchors]}}


def _crowd_scores(args: argparse.Namespace, base: ModelVersion, candidate: Path, candidate_meta: dict) -> dict:
    """Base and candidate scored on the crowd-like frames, both at the base's photo policy."""
    from shared.detectors.registry import policy_defaults
    from training.detector.evaluate import evaluate_frames, open_detector

    crowd = _crowd_set(args.voc_dirs, args.crowd)
    serve = policy_defaults(base.meta, "photos")
    settings = {"min_face": serve.get("min_face", 16), "max_pixels": serve.get("max_pixels")}
    scores = {}
    for key, path, meta in (("crowd_base", base.file(), base.meta), ("crowd_candidate", candidate, candidate_meta)):
        detector = open_detector(path, threads=args.threads, fmt=base.meta.get("format", "retinaface-onnx"),
                                 meta=meta, **settings)
        metrics = evaluate_frames(detector, zip(crowd.images, crowd.scenes), serve.get("score_threshold", 0.5))
        metrics.dataset = "crowd"
        scores[key] = metrics.as_dict() | {"policy": "photos of " + base.name, **settings}
    return scores


def _train_retinaface(args: argparse.Namespace, base: ModelVersion, train_set: list, workdir: Path, folder: Path,
                      hard_negatives: ModelVersion | None = None) -> dict:
    """RetinaFace (Keras) fine-tuning into `folder` (pasting hard negatives of that detector version too); returns
    the run summary."""
    from shared.face_detector import RetinaFaceSpec
    from training.detector.export import write_model

    _limit_threads(args.threads)
    from training.detector.train import TrainConfig, train

    cfg = TrainConfig(size=args.size, batch=args.batch_size, epochs=args.epochs, lr=args.lr,
                      scale_range=tuple(args.scale_range), lowres=args.lowres, paste=args.paste,
                      distractors=args.distractors, hard_negative_repeat=args.hard_negative_repeat,
                      unlabelled_score=args.unlabelled_score, max_minutes=args.max_minutes, seed=args.seed)
    hard = (hard_negatives.file(), RetinaFaceSpec.from_meta(hard_negatives.meta)) if hard_negatives else None
    model, summary = train(train_set, base.file(), workdir, cfg, RetinaFaceSpec.from_meta(base.meta),
                           args.paste_crops, args.paste_crop_limit, hard, args.anchors and tuple(args.anchors))
    summary.update(paste_crops=[str(d) for d in args.paste_crops], hard_negatives=args.hard_negatives,
                   anchors=args.anchors and [list(sizes) for sizes in args.anchors])
    write_model(model, base, folder)
    return summary


def _train_yunet(args: argparse.Namespace, base, train_set: list, workdir: Path, folder: Path) -> dict:
    """YuNet (PyTorch, the `train` extra) fine-tuning into `folder`; returns the run summary."""
    import shutil

    try:
        from training.detector.yunet_model import export_onnx
        from training.detector.yunet_train import YuNetTrainConfig, train_yunet
    except ImportError as exc:
        raise SystemExit(f"error: YuNet training needs PyTorch: pip install -e '.[torch]' ({exc})") from None
    cfg = YuNetTrainConfig(size=args.size, batch=args.batch_size, epochs=args.epochs, lr=args.lr,
                           scale_range=tuple(args.scale_range), mosaic=args.mosaic, lowres=args.lowres,
                           max_minutes=args.max_minutes, seed=args.seed, threads=args.threads)
    model, summary = train_yunet(train_set, base.file(), workdir, cfg)
    export_onnx(model, base.file(), folder / "model.onnx")
    shutil.copy2(base.path / "LICENSE", folder / "LICENSE")
    return summary


def eval_command(args: argparse.Namespace) -> int:
    """Score each named detector version on the held-out photos, at each scale, and on the crowd-like set."""
    from shared.model_store import ModelError, ModelStore
    from training.detector.evaluate import evaluate_version
    from training.errors import TrainingError

    if args.threshold is not None and not 0 < args.threshold < 1:
        return _fail("--threshold must be between 0 and 1")
    if args.min_face is not None and args.min_face < 2:
        return _fail("--min-face must be at least 2")
    store = ModelStore(args.models)
    rows = {}
    options = ({"max_pixels": args.max_pixels} if args.max_pixels else {}) | {"backend": args.backend}
    try:
        crowd = _crowd_set(args.voc_dirs, args.crowd) if args.crowd else None
        classifier = _classifier(store, args.threads) if args.labels else None
        for version in args.detector or [None]:
            for m in evaluate_version(store, version, args.voc_dirs, args.val_list, args.min_face, args.threshold,
                                      args.threads, scales=args.scales, policy=args.policy, crowd=crowd,
                                      classifier=classifier, **options):
                name = m.extra["version"]
                key = f"{name}@crowd" if m.dataset == "crowd" else \
                    name if m.scale == 1.0 and len(args.scales) == 1 and crowd is None else f"{name}@{m.scale:g}"
                rows[key] = m.as_dict()
    except (ModelError, TrainingError) as exc:
        return _fail(str(exc))
    print(format_metrics(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def _crowd_set(voc_dirs: list[Path], spec: Path):
    """The crowd-like frames of a recipe, with their size mix printed."""
    from training.detector.crowd import build_crowd_set

    crowd = build_crowd_set(voc_dirs, spec)
    summary = crowd.summary()
    mix = "  ".join(f"{k} {v['share']:.3f}/{v['target']:.2f}" for k, v in summary["size_mix"].items())
    print(f"crowd-like set {summary['recipe']} (seed {summary['seed']}, photos of {summary['photos_list']}): "
          f"{summary['frames']} frames, {summary['faces']} faces; share of faces per size (achieved/target): {mix}")
    return crowd


def _classifier(store, threads: int):
    """The promoted classifier, for label accuracy on matched faces."""
    from shared.classifier import FaceClassifier

    return FaceClassifier.from_version(store.load("classifier", None), threads=threads)


def calibrate_command(args: argparse.Namespace) -> int:
    """Pick and optionally store a version's serving defaults (with --crowd: its photo and stream policies)."""
    from shared.model_store import ModelError, ModelStore
    from training.detector.calibrate import MIN_FACES, SHIPPED_FP_PER_IMAGE, calibrate, write_defaults
    from training.errors import TrainingError

    if args.crowd:
        return _calibrate_policies(args)
    store = ModelStore(args.models)
    try:
        result = calibrate(store, args.detector, args.voc_dirs, args.val_list, args.scales,
                           min_faces=args.min_faces or MIN_FACES, budgets=args.budgets or (640 * 480,),
                           max_fp=args.max_fp if args.max_fp is not None else SHIPPED_FP_PER_IMAGE,
                           threads=args.threads)
        if args.write:
            write_defaults(store, args.detector, result)
    except (ModelError, TrainingError) as exc:
        return _fail(str(exc))
    for row in result["grid"]:
        aps = "  ".join(f"{k}x {v['ap50']:.3f}" for k, v in row["scales"].items())
        print(f"min_face {row['min_face']:>4g}  max_pixels {row['max_pixels']:>7d}  AP@0.5 {aps}  "
              f"mean {row['mean_ap50']:.3f}")
    print(f"chosen defaults for {args.detector}: {json.dumps(result['defaults'])}"
          + (" (written to meta.json)" if args.write else " (not written; --write stores them)"))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _calibrate_policies(args: argparse.Namespace) -> int:
    """calibrate-detector --crowd: the photo and stream policies on the crowd-like set."""
    from shared.model_store import ModelError, ModelStore
    from training.detector.policies import POLICY_BUDGETS, POLICY_MIN_FACES, calibrate_policies, write_policies
    from training.errors import TrainingError

    if args.stream_fp_factor < 1:
        return _fail("--stream-fp-factor must be at least 1")
    store = ModelStore(args.models)
    try:
        crowd = _crowd_set(args.voc_dirs, args.crowd)
        result = calibrate_policies(store, args.detector, args.voc_dirs, crowd, args.val_list,
                                    min_faces=args.min_faces or POLICY_MIN_FACES,
                                    budgets=args.budgets or POLICY_BUDGETS, stream_fp_factor=args.stream_fp_factor,
                                    threads=args.threads)
        if args.write:
            write_policies(store, args.detector, result)
    except (ModelError, TrainingError) as exc:
        return _fail(str(exc))
    ref = result["reference"]
    print(f"current defaults: min_face {ref['min_face']:g}, max_pixels {ref['max_pixels']}, threshold "
          f"{ref['score_threshold']:g}: crowd AP@0.5 {ref['crowd']['ap50']:.3f}, 1x AP@0.5 {ref['val_1x']['ap50']:.3f}")
    for row in result["grid"]:
        if "crowd" not in row:
            print(f"min_face {row['min_face']:>4g}  max_pixels {row['max_pixels']:>7d}  cost {row['cost_640x480']:.2f}x"
                  " at 640x480: over the cost budget")
            continue
        print(f"min_face {row['min_face']:>4g}  max_pixels {row['max_pixels']:>7d}  cost {row['cost_640x480']:.2f}x  "
              f"crowd AP@0.5 {row['crowd']['ap50']:.3f}  1x AP@0.5 {row['val_1x']['ap50']:.3f}")
    print(f"limits: {json.dumps(result['limits'])}")
    for name, policy in result["policies"].items():
        got = result["chosen"][name]
        print(f"{name}: {json.dumps(policy)}: crowd recall {got['crowd']['recall_all']:.3f}, FP/frame "
              f"{got['crowd']['fp_per_image']:.2f}; 1x FP/photo {got['val_1x']['fp_per_image']:.2f}, "
              f"1x AP@0.5 {got['val_1x_ap50']:.3f}; cost {got['cost_640x480']:.2f}x")
    print("written to meta.json (policies; the photo policy also as defaults)" if args.write
          else "not written (--write stores them)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0
