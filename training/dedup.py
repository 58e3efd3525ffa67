"""Exact and near-duplicate detection with perceptual hashes, so near-copies stay on one side of a split."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from tqdm import tqdm

log = logging.getLogger(__name__)
DEFAULT_DISTANCE = 8  # bits of 64: re-encodes and resizes are within this (measured on faces/chandrikadeb7)


def phash(path: Path) -> int | None:
    """64-bit perceptual hash of an image file, or None when it cannot be read."""
    try:
        with Image.open(path) as im:
            return int(str(imagehash.phash(im.convert("RGB"))), 16)
    except Exception:  # corrupt files are reported where they are loaded
        return None


def hash_files(paths: Sequence[Path], cache: Path | None = None) -> np.ndarray:
    """Perceptual hashes (uint64) of files, cached by path, size and mtime; unreadable files get unique hashes."""
    known: dict[str, list] = {}
    if cache and cache.is_file():
        known = json.loads(cache.read_text())
    out = np.zeros(len(paths), np.uint64)
    unreadable = 0
    for i, path in enumerate(tqdm(paths, desc="perceptual hashes", unit="img", mininterval=5)):
        st = path.stat()
        key, stamp = str(path.resolve()), [st.st_size, st.st_mtime]
        entry = known.get(key)
        if entry and entry[:2] == stamp:
            value = entry[2]
        else:
            value = phash(path)
            known[key] = [*stamp, value]
        if value is None:
            unreadable += 1
            value = (1 << 63) | i  # never near anything else
        out[i] = np.uint64(value)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known))
    if unreadable:
        log.warning("%d unreadable images (skipped when loading)", unreadable)
    return out


def near_duplicate_pairs(hashes: np.ndarray, max_distance: int = DEFAULT_DISTANCE, chunk: int = 2048) -> np.ndarray:
    """Index pairs (i < j) whose hashes differ in at most `max_distance` bits."""
    pairs = []
    for start in range(0, len(hashes), chunk):
        block = hashes[start : start + chunk, None] ^ hashes[None, :]
        dist = np.bitwise_count(block)
        i, j = np.nonzero(dist <= max_distance)
        i = i + start
        keep = i < j
        pairs.append(np.stack([i[keep], j[keep]], axis=1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), int)


def duplicate_groups(groups: Sequence[str], pairs: np.ndarray) -> np.ndarray:
    """Merge the given groups with the near-duplicate pairs; returns a component id per sample."""
    n = len(groups)
    first: dict[str, int] = {}
    same = [(first.setdefault(g, i), i) for i, g in enumerate(groups)]
    edges = np.concatenate([np.asarray(same, int).reshape(-1, 2), pairs.reshape(-1, 2)])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]
