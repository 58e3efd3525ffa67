"""Copy-paste of small faces: face patches cut from labelled photos or face crops, pasted at 7-28 px into
training images, so the detector sees the crowd-camera faces that its scene photos rarely hold.

Background patches (distractors) are pasted the same way with no box, so the paste itself (a soft round
seam, a shrunk picture) teaches nothing: only a face makes a face."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from shared.imaging import IMAGE_SUFFIXES, ImageError, read_image
from training.detector.data import Scene
from training.detector.targets import iou_matrix

log = logging.getLogger(__name__)
SOURCE_MIN_SIDE = 32.0  # faces smaller than this in their photo are too blurred to be shrunk further
NEGATIVE_MIN_SIDE = 8.0  # hard negatives are what a detector fired on, small ones included
NO_FACE_IOU = 0.3  # a detection overlapping a face this much is that face
KEEP_SIDE = 48.0  # patches are stored with the face at most this big (all a 28 px paste needs)
MARGIN = 0.35  # context kept around the face box on each side (hair, neck, shoulders), as a share of its side
SIDE_RANGE = (7.0, 28.0)  # pasted face side in training-input pixels (log-uniform)


@dataclass(frozen=True)
class FacePatch:
    """A face with context: the BGR patch and the face box in it [x1, y1, x2, y2] (`face` False: a background
    patch, the box only sizes it)."""

    image: np.ndarray
    box: np.ndarray
    face: bool = True


def cut_patch(image: np.ndarray, box: np.ndarray, face: bool = True,
              min_side: float = SOURCE_MIN_SIDE) -> FacePatch | None:
    """The face in `box` with MARGIN of context (clipped by the photo), shrunk to KEEP_SIDE; None when under
    `min_side`."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = min(x2 - x1, y2 - y1)
    if side < min_side:
        return None
    h, w = image.shape[:2]
    m = MARGIN * side
    px1, py1 = int(max(0, x1 - m)), int(max(0, y1 - m))
    px2, py2 = int(min(w, np.ceil(x2 + m))), int(min(h, np.ceil(y2 + m)))
    patch = image[py1:py2, px1:px2]
    inner = np.array([x1 - px1, y1 - py1, x2 - px1, y2 - py1], np.float32)
    f = min(1.0, KEEP_SIDE / side)
    if f < 1.0:
        size = (max(1, round(patch.shape[1] * f)), max(1, round(patch.shape[0] * f)))
        patch = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
        inner = inner * f
    return FacePatch(np.ascontiguousarray(patch), inner, face)


def background_patch(image: np.ndarray, faces: np.ndarray, rng: np.random.Generator) -> FacePatch | None:
    """A patch of `image` shaped like a face patch (a notional 32-96 px face and its margin) that touches none of
    `faces`; None when ten tries find no room."""
    h, w = image.shape[:2]
    for _ in range(10):
        side = float(rng.uniform(SOURCE_MIN_SIDE, 3 * SOURCE_MIN_SIDE))
        full = side * (1 + 2 * MARGIN)
        if full >= min(h, w):
            continue
        x0, y0 = rng.uniform(0, w - full), rng.uniform(0, h - full)
        if not _overlaps(np.array([x0, y0, x0 + full, y0 + full]), faces):
            m = MARGIN * side
            return cut_patch(image, np.array([x0 + m, y0 + m, x0 + m + side, y0 + m + side], np.float32), face=False)
    return None


def patches_from_scenes(scenes: list[Scene], unlabelled: list[np.ndarray] | None = None, distractors: int = 0,
                        rng: np.random.Generator | None = None) -> list[FacePatch]:
    """Every labelled face of at least SOURCE_MIN_SIDE px in the (training) photos (the labels' own box style),
    and `distractors` background patches per photo away from its labelled and `unlabelled` faces."""
    rng = rng or np.random.default_rng(0)
    patches = []
    for i, scene in enumerate(tqdm(scenes, desc="cutting face patches", unit="photo", leave=False)):
        try:
            image = read_image(scene.image)
        except ImageError:
            continue
        patches += [p for p in (cut_patch(image, b) for b in scene.boxes) if p is not None]
        faces = np.vstack([scene.boxes.reshape(-1, 4), *([unlabelled[i].reshape(-1, 4)] if unlabelled else [])])
        patches += [p for p in (background_patch(image, faces, rng) for _ in range(distractors)) if p is not None]
    return patches


def hard_negative_patches(scenes: list[Scene], detect: Callable[[np.ndarray], np.ndarray],
                          faces: Callable[[np.ndarray], np.ndarray]) -> list[FacePatch]:
    """Background patches where `detect` (e.g. a version that pasting taught to fire on hands, lights and logos)
    finds a face that neither a label nor `faces` (what a trusted detector sees, unlabelled faces included)
    covers."""
    patches = []
    for scene in tqdm(scenes, desc="mining hard negatives", unit="photo", leave=False):
        try:
            image = read_image(scene.image)
        except ImageError:
            continue
        found = np.asarray(detect(image), np.float32).reshape(-1, 4)
        known = np.vstack([scene.boxes.reshape(-1, 4), np.asarray(faces(image), np.float32).reshape(-1, 4)])
        if len(found) and len(known):
            found = found[iou_matrix(found, known).max(1) < NO_FACE_IOU]
        patches += [p for p in (cut_patch(image, b, face=False, min_side=NEGATIVE_MIN_SIDE) for b in found)
                    if p is not None]
    log.info("%d hard negatives in %d photos", len(patches), len(scenes))
    return patches


def patches_from_crops(folders: list[Path], detect: Callable[[np.ndarray], np.ndarray], limit: int,
                       rng: np.random.Generator) -> list[FacePatch]:
    """Face patches from folders of face crops (e.g. ../shared/data/faces/*/<class>/): up to `limit` crops drawn
    at random, each kept when `detect` finds exactly one face in it (the face box comes from the detector)."""
    files = sorted(p for d in folders for p in d.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        return []
    chosen = rng.choice(len(files), size=min(limit, len(files)), replace=False)
    patches = []
    for i in tqdm(sorted(chosen), desc="finding faces in crops", unit="crop", leave=False):
        try:
            image = read_image(files[i])
        except ImageError:
            continue
        boxes = np.asarray(detect(image), np.float32).reshape(-1, 4)
        if len(boxes) == 1 and (p := cut_patch(image, boxes[0])) is not None:
            patches.append(p)
    log.info("%d of %d face crops gave a patch", len(patches), len(chosen))
    return patches


def _alpha(h: int, w: int) -> np.ndarray:
    """A soft elliptic mask (h x w x 1): 1 in the middle, fading to 0 at the patch edges, so no hard seam."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = (((xx + 0.5) / w - 0.5) / 0.5) ** 2 + (((yy + 0.5) / h - 0.5) / 0.5) ** 2
    return np.clip((1.0 - r) / 0.6, 0.0, 1.0)[..., None]


def _overlaps(rect: np.ndarray, boxes: np.ndarray) -> bool:
    if not len(boxes):
        return False
    return bool(np.any((rect[0] < boxes[:, 2]) & (boxes[:, 0] < rect[2]) & (rect[1] < boxes[:, 3])
                       & (boxes[:, 1] < rect[3])))


def paste_faces(image: np.ndarray, boxes: np.ndarray, area: np.ndarray, patches: list[FacePatch], count: int,
                rng: np.random.Generator, side_range: tuple[float, float] = SIDE_RANGE) -> np.ndarray:
    """Paste up to `count` random patches into `image` (in place), inside `area` [x1, y1, x2, y2] (the photo, not
    its padding) and covering no face of `boxes`; returns the boxes of the pasted faces (N x 4, float32; background
    patches give none)."""
    ax, ay = int(np.ceil(area[0])), int(np.ceil(area[1]))
    w, h = int(area[2]) - ax, int(area[3]) - ay
    placed = [np.asarray(boxes, np.float32).reshape(-1, 4)]
    new = []
    for _ in range(count):
        patch = patches[int(rng.integers(len(patches)))]
        side = float(np.exp(rng.uniform(*np.log(side_range))))
        f = side / float(min(patch.box[2] - patch.box[0], patch.box[3] - patch.box[1]))
        ph, pw = max(2, round(patch.image.shape[0] * f)), max(2, round(patch.image.shape[1] * f))
        if ph >= h or pw >= w:
            continue
        x0, y0 = ax + int(rng.integers(0, w - pw + 1)), ay + int(rng.integers(0, h - ph + 1))
        rect = np.array([x0, y0, x0 + pw, y0 + ph], np.float32)
        if _overlaps(rect, np.vstack(placed)):
            continue
        small = cv2.resize(patch.image, (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32)
        region = image[y0:y0 + ph, x0:x0 + pw].astype(np.float32)
        if rng.random() < 0.5:  # match the scene's light a little
            small *= np.clip((region.mean() + 1.0) / (small.mean() + 1.0), 0.6, 1.5)
        a = _alpha(ph, pw)
        image[y0:y0 + ph, x0:x0 + pw] = np.clip(a * small + (1 - a) * region, 0, 255).astype(np.uint8)
        placed.append(rect[None])
        if patch.face:
            sx, sy = pw / patch.image.shape[1], ph / patch.image.shape[0]
            new.append((patch.box * np.array([sx, sy, sx, sy], np.float32) + [x0, y0, x0, y0]).astype(np.float32))
    return np.asarray(new, np.float32).reshape(-1, 4)
