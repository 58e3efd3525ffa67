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

from shared.classifier import preprocess_crops
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
        self.interpreter = Interpreter(
            model_content=tf.lite.TFLiteConverter.from_keras_model(model).convert(), num_threads=threads)
        self._input = self.interpreter.get_input_details()[0]["index"]
        self._output = self.interpreter.get_output_details()[0]["index"]
        self._batch = 0

    def __call__(self, crops_bgr: Sequence[np.ndarray]) -> np.ndarray:
        """Features of a batch of square BGR crops."""
        batch = preprocess_crops(crops_bgr, self.preprocessing)
        if len(batch) != self._batch:
            self.interpreter.resize_tensor_input(self._input, list(batch.shape))
            self.interpreter.allocate_tensors()
            self._batch = len(batch)
        self.interpreter.set_tensor(self._input, batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output).copy()


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
    """Features (N x views x ...) as float16 and a mask of readable samples; cached under `cache_dir`."""
    key = cache_key(samples, size, views, augmentation, seed, tag, extractor.output_shape, extractor.preprocessing)
    if cache_dir is not None:
        feats_path, ok_path = cache_dir / f"features-{key}.npy", cache_dir / f"features-{key}-ok.npy"
        if feats_path.is_file() and ok_path.is_file():
            log.info("features: cache hit %s", feats_path)
            return np.load(feats_path, mmap_mode="r"), np.load(ok_path)
    feats = np.zeros((len(samples), views, *extractor.output_shape), np.float16)
    ok = np.ones(len(samples), bool)
    jobs = [(i, v) for i in range(len(samples)) for v in range(views)]

    def load(job: tuple[int, int]) -> np.ndarray | None:
        i, v = job
        try:
            return view_crop(samples[i], size, v, augmentation, seed, i)
        except ImageError as exc:
            if v == 0:
                log.warning("skipped %s", exc)
            return None

    with ThreadPoolExecutor(2) as pool, tqdm(total=len(jobs), desc=f"features {tag.split(':')[0]}", unit="crop",
                                             mininterval=10) as bar:
        for start in range(0, len(jobs), batch):
            chunk = jobs[start : start + batch]
            crops = list(pool.map(load, chunk))
            good = [(job, c) for job, c in zip(chunk, crops) if c is not None]
            for (i, _), c in zip(chunk, crops):
                if c is None:
                    ok[i] = False
            if good:
                out = extractor([c for _, c in good])
                for ((i, v), _), f in zip(good, out):
                    feats[i, v] = f
            bar.update(len(chunk))
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = feats_path.with_suffix(".tmp.npy")
        np.save(tmp, feats)
        np.save(ok_path, ok)
        tmp.replace(feats_path)
    return feats, ok
