"""The training job: data -> leak-free split -> cached features -> head, then top blocks -> a model version."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared.classifier import FaceClassifier
from shared.crops import DEFAULT_MARGIN
from shared.model_store import ModelStore, ModelVersion
from training.augment import Augmentation
from training.backbone import DEFAULT_FINETUNE_FROM
from training.dataset import Sample, class_counts, class_names, load_square, scan_folders
from training.dedup import DEFAULT_DISTANCE, duplicate_groups, hash_files, near_duplicate_pairs
from training.errors import TrainingError
from training.export import tflite_agreement, to_tflite
from training.features import FeatureExtractor, extract_features
from training.metrics import classification_metrics, format_classification, plot_confusion, plot_curves
from training.splits import random_split, stratified_group_split, write_list

log = logging.getLogger(__name__)
MODEL_FILE = "model.tflite"


@dataclass
class TrainConfig:
    """Every option of a training run (written to the version's meta.json)."""

    roots: list[str]
    out: str
    val_roots: list[str] = field(default_factory=list)
    input_size: int = 224
    pretrained: str | None = None
    variant: str = "symmetric"
    split: str = "group"            # "group": dedup + stratified group split; "random": the naive way
    val_fraction: float = 0.2       # 0: no validation, every image trains for exactly the given epochs (a refit)
    dedup_distance: int = DEFAULT_DISTANCE
    views: int = 3                  # plain crop + (views - 1) augmented copies per training image
    epochs: int = 40
    finetune_epochs: int = 12
    finetune_from: int = DEFAULT_FINETUNE_FROM  # first MobileNetV2 block that phase 2 trains
    learning_rate: float = 1e-3
    finetune_learning_rate: float = 1e-4
    ema: float = 0.999              # phase 2 validates and keeps an exponential moving average of the weights (0 = off)
    batch_size: int = 64
    patience: int = 5
    balance: str = "class"  # loss weights: "class", "sqrt", "root-class" (each root x class cell equal) or "none"
    seed: int = 0
    quantize: str = "float16"
    cache_dir: str | None = None
    name: str | None = None
    promote: bool = False
    threads: int = 2
    description: str = ""

    @property
    def preprocessing(self) -> str:
        """Input normalisation the backbone's weights expect."""
        return "keras" if self.variant == "stock" or self.pretrained == "imagenet" else "torch"


@dataclass
class Split:
    """All samples, the indices on each side and how the split was made."""

    samples: list[Sample]
    train_idx: np.ndarray
    val_idx: np.ndarray
    summary: dict[str, Any]

    @property
    def train(self) -> list[Sample]:
        return [self.samples[i] for i in self.train_idx]

    @property
    def val(self) -> list[Sample]:
        return [self.samples[i] for i in self.val_idx]


def make_split(cfg: TrainConfig) -> Split:
    """Scan the data, detect duplicates and split (or take the explicit validation folders)."""
    samples = scan_folders(cfg.roots)
    summary: dict[str, Any] = {"roots": cfg.roots, "method": cfg.split}
    if cfg.val_roots:
        val = scan_folders(cfg.val_roots)
        summary["method"] = "explicit validation folders"
        n = len(samples)
        return Split(samples + val, np.arange(n), np.arange(n, n + len(val)), summary)
    labels = [s.label for s in samples]
    if cfg.val_fraction == 0:
        summary["method"] = "none: every image trains (--val-fraction 0)"
        return Split(samples, np.arange(len(samples)), np.arange(0), summary)
    if cfg.split == "random":
        tr, va = random_split(len(samples), cfg.val_fraction, cfg.seed)
    elif cfg.split == "group":
        cache = Path(cfg.cache_dir) / "phash.json" if cfg.cache_dir else None
        hashes = hash_files([s.path for s in samples], cache)
        pairs = near_duplicate_pairs(hashes, cfg.dedup_distance)
        groups = duplicate_groups([s.group for s in samples], pairs)
        tr, va = stratified_group_split(labels, groups.astype(str), cfg.val_fraction, cfg.seed)
        summary.update(near_duplicate_pairs=int(len(pairs)), groups=int(groups.max() + 1),
                       images_in_duplicate_clusters=int(len(np.unique(pairs))),
                       dedup_max_distance=cfg.dedup_distance)
        log.info("dedup: %d near-duplicate pairs, %d groups over %d images",
                 len(pairs), groups.max() + 1, len(samples))
    else:
        raise TrainingError(f"unknown split method {cfg.split!r} (group or random)")
    return Split(samples, np.asarray(tr), np.asarray(va), summary)


BALANCE_MODES = ("class", "sqrt", "root-class", "none")


def sample_weights(labels: np.ndarray, roots: np.ndarray, mode: str) -> np.ndarray | None:
    """Loss weights, mean 1: every class (or root x class cell) the same total weight, or for "sqrt"
    a class's total weight grows with the square root of its size (half-way between "class" and "none")."""
    if mode == "none":
        return None
    if mode not in BALANCE_MODES:
        raise TrainingError(f"unknown balance mode {mode!r} (expected one of {', '.join(BALANCE_MODES)})")
    cells = labels.astype(str) if mode != "root-class" else np.char.add(roots.astype(str), "|" + labels.astype(str))
    _, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
    weights = counts[inverse] ** (-0.5 if mode == "sqrt" else -1.0)
    return (weights / weights.mean()).astype(np.float32)


def _fit(model: Any, x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, cfg: TrainConfig,
         epochs: int, lr: float, weights: np.ndarray | None, ema: float = 0.0) -> dict[str, list[float]]:
    """Fit with early stopping on validation loss, keeping the best epoch's weights.

    With `ema` > 0 the optimizer keeps an exponential moving average of the weights (Polyak averaging);
    validation, early stopping and the kept weights all use that average instead of the last step's.
    Without validation data (`xv` empty) it trains exactly `epochs` epochs and keeps the last (averaged) weights.
    """
    from tensorflow import keras

    optimizer = keras.optimizers.Adam(lr, use_ema=ema > 0, ema_momentum=ema)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if not len(xv):  # Keras's fit() writes the averaged weights into the model when it ends
        history = model.fit(x, y, epochs=epochs, batch_size=cfg.batch_size, sample_weight=weights, verbose=2,
                            shuffle=True)
        return {k: [round(float(v), 5) for v in vals] for k, vals in history.history.items()}
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience, restore_best_weights=True)
    # SwapEMAWeights must run before EarlyStopping so that the best weights it keeps are the averaged ones.
    callbacks = ([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if ema > 0 else []) + [stop]
    history = model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=cfg.batch_size,
                        sample_weight=weights, callbacks=callbacks, verbose=2, shuffle=True)
    return {k: [round(float(v), 5) for v in vals] for k, vals in history.history.items()}


def _root_features(samples: list[Sample], extractor: FeatureExtractor, cfg: TrainConfig, aug: Augmentation,
                   cache: Path | None, weights_tag: str) -> tuple[np.ndarray, np.ndarray]:
    mid = np.zeros((len(samples), cfg.views, *extractor.output_shape), np.float16)
    ok = np.zeros(len(samples), bool)
    for root in dict.fromkeys(s.root for s in samples):
        idx = np.array([i for i, s in enumerate(samples) if s.root == root])
        part, part_ok = extract_features([samples[i] for i in idx], extractor, cfg.input_size, cfg.views, aug,
                                         cfg.seed, cache, f"{Path(root).name}:{weights_tag}")
        mid[idx], ok[idx] = part, part_ok
    return mid, ok


def _version_name(cfg: TrainConfig, store: ModelStore) -> str:
    base = cfg.name or time.strftime("%Y%m%d-%H%M", time.gmtime()) + f"-mnv2-{cfg.input_size}"
    name, n = base, 1
    while (store.kind_dir("classifier") / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _predict_files(classifier: FaceClassifier, samples: Sequence[Sample], batch: int = 64) -> np.ndarray:
    out = []
    for start in range(0, len(samples), batch):
        crops = [load_square(s.path, classifier.input_size) for s in samples[start : start + batch]]
        out.append(classifier.predict(crops))
    return np.concatenate(out) if out else np.zeros((0, len(classifier.labels)), np.float32)


def accuracy_by_root(samples: Sequence[Sample], predicted: Sequence[str]) -> dict[str, dict[str, float]]:
    """Validation accuracy and size per data root (by folder name): how each source fares on its own."""
    out: dict[str, dict[str, float]] = {}
    for root in dict.fromkeys(s.root for s in samples):
        hits = [p == s.label for s, p in zip(samples, predicted) if s.root == root]
        out[Path(root).name] = {"n": len(hits), "accuracy": round(sum(hits) / len(hits), 4)}
    return out


def run_training(cfg: TrainConfig) -> ModelVersion:
    """Run the whole job and return the finished (validated) model version."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from tensorflow import keras

    from training.backbone import build_backbone, build_head, split_backbone

    started = time.time()
    with contextlib.suppress(RuntimeError):  # fixed once TensorFlow has started in this process
        tf.config.threading.set_intra_op_parallelism_threads(cfg.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(cfg.seed)
    store = ModelStore(cfg.out)
    split = make_split(cfg)
    labels = sorted(set(class_names(split.train)) | set(class_names(split.val)))
    index = {name: i for i, name in enumerate(labels)}
    if len(labels) < 2:
        raise TrainingError(f"need at least two classes, found {labels}")
    if not split.val and cfg.val_fraction > 0:
        raise TrainingError("the validation split is empty (add data or raise --val-fraction)")
    log.info("classes %s; train %s; val %s", labels, class_counts(split.train), class_counts(split.val))

    backbone = build_backbone(cfg.input_size, cfg.pretrained, cfg.variant)
    bottom, top = split_backbone(backbone, cfg.finetune_from)
    extractor = FeatureExtractor(bottom, cfg.preprocessing, cfg.threads)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else None
    weights_tag = f"{cfg.variant}:{cfg.pretrained}:from{cfg.finetune_from}"
    aug = Augmentation()
    t_feat = time.time()
    # Every sample gets every view and each root is cached on its own, so one cache serves any split
    # and any combination of the same roots.
    mid, ok = _root_features(split.samples, extractor, cfg, aug, cache, weights_tag)
    feature_seconds = time.time() - t_feat
    train_idx, val_idx = split.train_idx[ok[split.train_idx]], split.val_idx[ok[split.val_idx]]
    y_tr = np.repeat(np.array([index[split.samples[i].label] for i in train_idx]), cfg.views)
    y_va = np.array([index[split.samples[i].label] for i in val_idx])
    x_mid = np.asarray(mid[train_idx], np.float32).reshape(-1, *mid.shape[2:])
    xv_mid = np.asarray(mid[val_idx, 0], np.float32)
    roots_tr = np.repeat(np.array([split.samples[i].root for i in train_idx]), cfg.views)
    weights = sample_weights(y_tr, roots_tr, cfg.balance)

    # Phase 1: the head on pooled features of the frozen backbone.
    pooler = keras.Sequential([top, keras.layers.GlobalAveragePooling2D()])
    pooled = pooler.predict(x_mid, batch_size=256, verbose=0)
    pooled_va = pooler.predict(xv_mid, batch_size=256, verbose=0) if len(xv_mid) else np.zeros((0, pooled.shape[1]))
    head = build_head(len(labels), (pooled.shape[1],))
    t1 = time.time()
    history = _fit(head, pooled, y_tr, pooled_va, y_va, cfg, cfg.epochs, cfg.learning_rate, weights)
    phase1 = {"epochs": len(history["loss"]), "seconds": round(time.time() - t1, 1),
              **({"best_val_loss": min(history["val_loss"])} if "val_loss" in history else {})}
    phase_starts = [len(history["loss"])]

    # Phase 2: unfreeze the blocks from `finetune_from` up (BatchNorm statistics stay frozen), lower learning rate.
    phase2: dict[str, Any] = {"epochs": 0}
    if cfg.finetune_epochs > 0:
        head_weights, top_weights = head.get_weights(), top.get_weights()
        top.trainable = True
        for layer in top.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
        inputs = keras.Input(x_mid.shape[1:])
        tuned = keras.Model(inputs, head(keras.layers.GlobalAveragePooling2D()(top(inputs, training=False))))
        t2 = time.time()
        h2 = _fit(tuned, x_mid, y_tr, xv_mid, y_va, cfg, cfg.finetune_epochs, cfg.finetune_learning_rate,
                  weights, cfg.ema)
        phase2 = {"epochs": len(h2["loss"]), "seconds": round(time.time() - t2, 1), "kept": True}
        if "val_loss" in h2:
            phase2.update(best_val_loss=min(h2["val_loss"]), kept=min(h2["val_loss"]) < phase1["best_val_loss"])
        if not phase2["kept"]:
            log.info("phase 2 did not lower the validation loss; keeping the phase-1 model")
            head.set_weights(head_weights)
            top.set_weights(top_weights)
        for key, values in h2.items():
            history.setdefault(key, []).extend(values)
    del x_mid, pooled

    # The serving model: backbone + head in one graph, exported to TFLite.
    image = keras.Input((cfg.input_size, cfg.input_size, 3), name="image")
    full = keras.Model(image, head(keras.layers.GlobalAveragePooling2D()(top(bottom(image)))), name="classifier")
    name = _version_name(cfg, store)
    final = store.kind_dir("classifier") / name
    staging = final.parent / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "split").mkdir(parents=True)
    (staging / MODEL_FILE).write_bytes(to_tflite(full, cfg.quantize))

    classifier = FaceClassifier(str(staging / MODEL_FILE), labels, cfg.input_size, cfg.preprocessing,
                                DEFAULT_MARGIN, threads=cfg.threads)
    # The export is checked against Keras on validation crops, or on training crops where there are none.
    check_idx = (val_idx if len(val_idx) else train_idx)[:256]
    keras_probs = head.predict(pooler.predict(np.asarray(mid[check_idx, 0], np.float32), verbose=0), verbose=0)
    # One TFLite pass: all validation crops (the first of them are the check's), else just the check's.
    probs = _predict_files(classifier, [split.samples[i] for i in (val_idx if len(val_idx) else check_idx)])
    check_probs = probs[: len(check_idx)]
    metrics: dict[str, Any] = {"validation": None}
    if len(val_idx):
        val_samples = [split.samples[i] for i in val_idx]
        predicted = [labels[i] for i in probs.argmax(1)]
        report = classification_metrics([s.label for s in val_samples], predicted, labels)
        print(format_classification(report, f"validation ({split.summary['method']}), exported TFLite model:"))
        metrics.update(validation=report, validation_by_root=accuracy_by_root(val_samples, predicted))
        plot_confusion(report, staging / "confusion_matrix.png", f"{name}: validation")

    seconds = round(time.time() - started, 1)
    metrics.update(tflite_vs_keras=tflite_agreement(keras_probs, check_probs), phase1=phase1, phase2=phase2,
                   feature_seconds=round(feature_seconds, 1), training_seconds=seconds, history=history)
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_curves(history, staging / "curves.png", phase_starts if phase2["epochs"] else ())
    write_list(staging / "split" / "train.txt", [s.listed for s in split.train])
    write_list(staging / "split" / "val.txt", [s.listed for s in split.val])
    summary = {**split.summary, "train": class_counts(split.train), "val": class_counts(split.val),
               "unreadable": int((~ok).sum())}
    (staging / "data_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    meta = {"model_file": MODEL_FILE, "labels": labels, "input_size": cfg.input_size,
            "preprocessing": cfg.preprocessing, "crop_margin": DEFAULT_MARGIN, "architecture": "MobileNetV2",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "config": asdict(cfg),
            "val_accuracy": metrics["validation"] and metrics["validation"]["accuracy"],
            "val_macro_f1": metrics["validation"] and metrics["validation"]["macro_f1"],
            "description": cfg.description or f"MobileNetV2 {cfg.input_size}px face-mask classifier"}
    from training.model_card import write_model_card

    write_model_card(staging / "model_card.md", name, meta, metrics, summary)
    staging.rename(final)
    version = store.finalize("classifier", final, meta)
    if cfg.promote:
        store.promote("classifier", name)
    log.info("wrote classifier version %s in %.0f s%s", final, seconds, " (promoted)" if cfg.promote else "")
    return version
