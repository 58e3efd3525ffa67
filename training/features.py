"""Frozen-backbone features, cached on disk so the head (phase 1) and the top blocks (phase 2) train fast."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from shared.classifier import BatchRunner, preprocess_crops
from shared.imaging import ImageError
from training.augment import Augmentation
from training.dataset import Sample, load_square

log = logging.getLogger(__name__)


class FeatureExtractor:
    """Runs a frozen Keras model through TFLite (several times faster than Keras on a CPU)."""

    def __init__(self, model: Any, preprocessing: str, threads: int = 2) -> None:
        import tensorflow as tf
        from ai_edge_litert.interpreter import Interpreter

        self.preprocessing = preprocessing
        self.output_shape = tuple(model.output.shape[1:])
        self.run = BatchRunner(Interpreter(
            model_content=tf.lite.TFLiteConverter.from_keras_model(model).convert(), num_threads=threads))

    def __call__(self, crops_bgr: Sequence[np.ndarray]) -> np.ndarray:
        """Features of a batch of square BGR crops."""
        return self.run(preprocess_crops(crops_bgr, self.preprocessing))


def view_crop(sample: Sample, size: int, view: int, augmentation: Augmentation, seed: int, index: int) -> np.ndarray:
    """View 0 is the plain crop; views 1.. are seeded random augmentations of it."""
    crop = load_square(sample.path, size)
    if view == 0:
        return crop
    return augmentation.apply(crop, np.random.default_rng([seed, index, view]))


def cache_key(samples: Sequence[Sample], *parts: Any) -> str:
    """A digest of the sample list and every setting that changes the features."""
    digest = hashlib.sha1(repr(parts).encode())
    for s in samples:
        digest.update(f"{s.path}\0{s.label}\n".encode())
    return digest.hexdigest()[:16]


def extract_features(
    samples: Sequence[Sample], extractor: FeatureExtractor, size: int, views: int,
    augmentation: Augmentation, seed: int, cache_dir: Path | None, tag: str, batch: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Features (N x views x ...) as float16 and a mask of readable samples.

    Each view is cached on its own under `cache_dir`, so a run with more views reuses the fewer-view cache.
    """
    key = cache_key(samples, size, augmentation, seed, tag, extractor.output_shape, extractor.preprocessing)
    feats = np.zeros((len(samples), views, *extractor.output_shape), np.float16)
    ok = np.ones(len(samples), bool)
    for view in range(views):
        path = cache_dir / f"features-{key}-v{view}.npy" if cache_dir is not None else None
        ok_path = cache_dir / f"features-{key}-ok.npy" if cache_dir is not None else None
        if path is not None and path.is_file() and ok_path.is_file():
            log.info("features: cache hit %s", path)
            feats[:, view] = np.load(path)
            ok &= np.load(ok_path)
            continue
        view_ok = _extract_view(samples, extractor, size, view, augmentation, seed, tag, batch, feats[:, view])
        ok &= view_ok
        if path is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, feats[:, view])
            np.save(ok_path, view_ok)
            tmp.replace(path)
    return feats, ok


def _extract_view(samples: Sequence[Sample], extractor: FeatureExtractor, size: int, view: int,
                  augmentation: Augmentation, seed: int, tag: str, batch: int, out: np.ndarray) -> np.ndarray:
    """Fill `out` with the features of one view of every sample; returns the readable-sample mask."""
    ok = np.ones(len(samples), bool)

    def load(i: int) -> np.ndarray | None:
        try:
            return view_crop(samples[i], size, view, augmentation, seed, i)
        except ImageError as exc:
            if view == 0:
                log.warning("skipped %s", exc)
            return None

    desc = f"features {tag.split(':')[0]} view {view}"
    with ThreadPoolExecutor(2) as pool, tqdm(total=len(samples), desc=desc, unit="crop", mininterval=10) as bar:
        for start in range(0, len(samples), batch):
            chunk = range(start, min(start + batch, len(samples)))
            crops = list(pool.map(load, chunk))
            good = [(i, c) for i, c in zip(chunk, crops) if c is not None]
            ok[[i for i, c in zip(chunk, crops) if c is None]] = False
            if good:
                out[[i for i, _ in good]] = extractor([c for _, c in good])
            bar.update(len(chunk))
    return ok
