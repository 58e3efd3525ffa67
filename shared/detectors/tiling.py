"""Sliced inference for large frames: overlapping tiles, and a merge that keeps one box per face."""

from __future__ import annotations

import numpy as np

EDGE_MARGIN = 2.0  # pixels: a box this close to a tile side that is not an image side is cut by the tile
CUT_CONTAINED = 0.6  # a cut box whose area lies this much inside a kept box is the same face


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of `tile` pixels covering `length` pixels with at least `overlap` pixels shared."""
    if length <= tile:
        return [0]
    count = int(np.ceil((length - overlap) / (tile - overlap)))
    step = (length - tile) / (count - 1)
    return [int(round(i * step)) for i in range(count)]


def tile_grid(width: int, height: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Tiles (x1, y1, x2, y2) covering a width x height image."""
    return [(x, y, min(x + tile, width), min(y + tile, height))
            for y in tile_origins(height, tile, overlap) for x in tile_origins(width, tile, overlap)]


def cut_by_tile(boxes: np.ndarray, tile: tuple[int, int, int, int], width: int, height: int) -> np.ndarray:
    """Which boxes (image pixels) touch a side of `tile` that lies inside the image (the face may go on)."""
    x1, y1, x2, y2 = tile
    return (((boxes[:, 0] <= x1 + EDGE_MARGIN) & (x1 > 0)) | ((boxes[:, 1] <= y1 + EDGE_MARGIN) & (y1 > 0))
            | ((boxes[:, 2] >= x2 - EDGE_MARGIN) & (x2 < width)) | ((boxes[:, 3] >= y2 - EDGE_MARGIN) & (y2 < height)))


def merge_boxes(boxes: np.ndarray, scores: np.ndarray, cut: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept from the boxes of several passes: greedy NMS in which whole boxes go before cut ones.

    A cut box (a face a tile edge cut through) is also dropped when most of it lies inside a kept
    box, which plain IoU misses: half a face overlaps the whole face at IoU of about 0.5 or less.
    """
    order = np.lexsort((-scores, cut))  # uncut first, then by descending score
    area = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)
    kept: list[int] = []
    for i in order:
        if kept:
            k = np.asarray(kept)
            lt = np.maximum(boxes[k, :2], boxes[i, :2])
            rb = np.minimum(boxes[k, 2:], boxes[i, 2:])
            inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
            iou = inter / np.maximum(area[k] + area[i] - inter, 1e-9)
            if (iou > iou_threshold).any():
                continue
            if cut[i] and (inter / max(area[i], 1e-9) > CUT_CONTAINED).any():
                continue
        kept.append(int(i))
    return np.asarray(kept, dtype=int)
