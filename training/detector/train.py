"""The detector fine-tuning loop: stock RetinaFace weights -> trained Keras model, checkpointed as it goes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from shared.face_detector import RetinaFaceDetector, RetinaFaceSpec, anchor_grid
from shared.imaging import ImageError, read_image
from training.detector.augment import SCALE_RANGE, augment
from training.detector.data import Scene
from training.detector.losses import detection_loss
from training.detector.model import build_retinaface, load_onnx_weights, transfer_anchors
from training.detector.paste import (
    FacePatch,
    hard_negative_patches,
    paste_faces,
    patches_from_crops,
    patches_from_scenes,
)
from training.detector.run_log import RunLog
from training.detector.targets import match_anchors
from training.detector.unlabelled import unlabelled_boxes

log = logging.getLogger(__name__)
UNLABELLED_SCORE = 0.8
HARD_NEGATIVE_SCORE = 0.5  # what the over-firing detector must score for a hard negative
HARD_NEGATIVE_BASE_SCORE = 0.3  # ... where the base detector scores no face this high


@dataclass
class TrainConfig:
    """Hyper-parameters of one fine-tuning run."""

    size: int = 384
    batch: int = 8
    epochs: int = 8
    lr: float = 2e-4
    weight_decay: float = 1e-4
    scale_range: tuple[float, float] = SCALE_RANGE
    lowres: float = 0.0  # share of images given a low-resolution round trip (small photos, upscaled)
    paste: float = 0.0  # share of images given pasted small faces (training/detector/paste.py)
    paste_count: int = 12  # patches tried per pasted image (fewer fit where the photo is crowded)
    distractors: int = 2  # background patches cut per training photo, pasted like faces but learned as background
    hard_negative_repeat: int = 1  # each hard negative is drawn this many times as often as another patch
    unlabelled_score: float = UNLABELLED_SCORE  # base detections this sure, on no label, are ignored
    max_minutes: float = 0.0  # stop (and keep the last weights) after this long; 0 = no limit
    seed: int = 0
    log_every: int = 20
    checkpoint_every: int = 100


def unlabelled_faces(
    scenes: list[Scene], base_onnx: Path, spec: RetinaFaceSpec, threshold: float = UNLABELLED_SCORE,
) -> list[np.ndarray]:
    """Faces the base detector is sure of that no annotation covers, per photo (training/detector/unlabelled.py)."""
    detector = RetinaFaceDetector(base_onnx, spec, score_threshold=threshold, threads=2)
    return unlabelled_boxes(scenes, lambda image: detector.detect(image).boxes, progress=True)


def training_examples(
    scenes: list[Scene], unlabelled: list[np.ndarray], cfg: TrainConfig, spec: RetinaFaceSpec, rng: np.random.Generator,
    patches: list[FacePatch] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Endless augmented examples: (HWC mean-subtracted image, loc targets, anchor labels); a share `cfg.paste`
    of them with small faces from `patches` pasted in."""
    anchors = anchor_grid(spec, cfg.size, cfg.size)
    mean = np.asarray(spec.mean_bgr, np.float32)

    def paste(image: np.ndarray, boxes: np.ndarray, area: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return paste_faces(image, boxes, area, patches, int(rng.integers(1, cfg.paste_count + 1)), rng)
    while True:
        for i in rng.permutation(len(scenes)):
            scene, extra = scenes[i], unlabelled[i]
            try:
                image = read_image(scene.image)
            except ImageError as exc:
                log.warning("skipping %s", exc)
                continue
            boxes = np.vstack([scene.boxes, extra])
            pseudo = np.arange(len(boxes)) >= len(scene.boxes)
            pasting = bool(patches) and rng.random() < cfg.paste
            out, out_boxes, kept, skip = augment(image, boxes, cfg.size, rng, spec.mean_bgr, cfg.scale_range,
                                                 cfg.lowres, paste if pasting else None)
            skip[:len(kept)] |= pseudo[kept]
            labels, loc = match_anchors(out_boxes, skip, anchors, spec)
            yield out.astype(np.float32) - mean, loc, labels


def make_dataset(
    scenes: list[Scene], unlabelled: list[np.ndarray], cfg: TrainConfig, spec: RetinaFaceSpec,
    patches: list[FacePatch] | None = None,
) -> tf.data.Dataset:
    """Batched, prefetched training data (augmentation runs in a background thread)."""
    n = len(anchor_grid(spec, cfg.size, cfg.size))
    rng = np.random.default_rng(cfg.seed)
    sig = (
        tf.TensorSpec((cfg.size, cfg.size, 3), tf.float32),
        tf.TensorSpec((n, 4), tf.float32),
        tf.TensorSpec((n,), tf.int32),
    )
    ds = tf.data.Dataset.from_generator(
        lambda: training_examples(scenes, unlabelled, cfg, spec, rng, patches), output_signature=sig
    )
    return ds.batch(cfg.batch, drop_remainder=True).prefetch(2)


def build_trainable(base_onnx: Path, base_spec: RetinaFaceSpec, spec: RetinaFaceSpec) -> keras.Model:
    """The Keras RetinaFace with the base detector's weights, its anchors those of `spec` (a new anchor starts as
    the base's nearest one of its level); the landmark head stays frozen (no labels)."""
    model = build_retinaface(anchors=tuple(len(sizes) for sizes in base_spec.anchor_sizes))
    load_onnx_weights(model, base_onnx)
    if spec.anchor_sizes != base_spec.anchor_sizes:
        resized = build_retinaface(anchors=tuple(len(sizes) for sizes in spec.anchor_sizes))
        transfer_anchors(model, resized, base_spec.anchor_sizes, spec.anchor_sizes)
        model = resized
    for layer in model.layers:
        if layer.name.startswith("landmark_head"):
            layer.trainable = False
    return model


def paste_patches(scenes: list[Scene], unlabelled: list[np.ndarray], base_onnx: Path, spec: RetinaFaceSpec,
                  crop_dirs: list[Path], crop_limit: int, cfg: TrainConfig,
                  hard_negatives: tuple[Path, RetinaFaceSpec] | None = None) -> list[FacePatch]:
    """Patches to paste: the training photos' labelled faces and background away from any face, faces the base
    detector finds alone in up to `crop_limit` crops of `crop_dirs`, and (`hard_negatives`, an ONNX detector and
    its spec) what that detector fires on where the base detector sees no face even at HARD_NEGATIVE_BASE_SCORE."""
    rng = np.random.default_rng(cfg.seed)
    patches = patches_from_scenes(scenes, unlabelled, cfg.distractors, rng)
    if crop_dirs and crop_limit:
        detector = RetinaFaceDetector(base_onnx, spec, score_threshold=UNLABELLED_SCORE, threads=2)
        patches += patches_from_crops(crop_dirs, lambda image: detector.detect(image).boxes, crop_limit, rng)
    if hard_negatives is not None:
        over = RetinaFaceDetector(*hard_negatives, score_threshold=HARD_NEGATIVE_SCORE, threads=2)
        base = RetinaFaceDetector(base_onnx, spec, score_threshold=HARD_NEGATIVE_BASE_SCORE, threads=2)
        patches += hard_negative_patches(scenes, lambda image: over.detect(image).boxes,
                                         lambda image: base.detect(image).boxes) * cfg.hard_negative_repeat
    faces = sum(p.face for p in patches)
    log.info("%d face patches and %d background patches to paste", faces, len(patches) - faces)
    return patches


def train(
    scenes: list[Scene], base_onnx: Path, workdir: Path, cfg: TrainConfig, spec: RetinaFaceSpec | None = None,
    crop_dirs: list[Path] | None = None, crop_limit: int = 0, hard_negatives: tuple[Path, RetinaFaceSpec] | None = None,
    anchor_sizes: tuple[tuple[int, ...], ...] | None = None,
) -> tuple[keras.Model, dict]:
    """Fine-tune from `base_onnx` (whose anchors `spec` describes) on `scenes`, with the anchors `anchor_sizes`
    when given (pasting faces of `crop_dirs` crops too when `cfg.paste`); checkpoints to `workdir`; returns the
    model and a run summary."""
    spec = spec or RetinaFaceSpec()
    learn = replace(spec, anchor_sizes=anchor_sizes) if anchor_sizes else spec
    keras.utils.set_random_seed(cfg.seed)
    workdir.mkdir(parents=True, exist_ok=True)
    model = build_trainable(base_onnx, spec, learn)
    steps_per_epoch = max(1, len(scenes) // cfg.batch)
    total = steps_per_epoch * cfg.epochs
    schedule = keras.optimizers.schedules.CosineDecay(
        cfg.lr * 0.1, total, alpha=0.02, warmup_target=cfg.lr, warmup_steps=min(100, total // 10)
    )
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay, clipnorm=5.0)
    variables = model.trainable_variables

    @tf.function(reduce_retracing=True)
    def step(x, loc_t, labels):
        with tf.GradientTape() as tape:
            loc, logits, _ = model(x, training=True)
            loss, box, cls = detection_loss(loc, logits, loc_t, labels)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, box, cls, tf.reduce_sum(tf.cast(labels == 1, tf.float32))

    ckpt = workdir / "last.weights.h5"
    unlabelled = unlabelled_faces(scenes, base_onnx, spec, cfg.unlabelled_score)
    patches = paste_patches(scenes, unlabelled, base_onnx, spec, crop_dirs or [], crop_limit, cfg,
                            hard_negatives) if cfg.paste else None
    dataset = make_dataset(scenes, unlabelled, cfg, learn, patches)
    run = RunLog(total, steps_per_epoch, ("box", "cls"), "pos", cfg.log_every, cfg.max_minutes)
    for x, loc_t, labels in dataset.take(total):
        run.step(*(float(v) for v in step(x, loc_t, labels)))
        if run.done % cfg.checkpoint_every == 0:
            model.save_weights(ckpt)
        if run.time_up():
            break
    model.save_weights(ckpt)
    return model, run.summary(cfg, len(scenes))
