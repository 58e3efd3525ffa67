"""A crowd-like evaluation set built from the held-out ilc2021 photos (issue 26), as a recipe, not as images.

Crowd cameras see faces of 8-32 px; the validation photos mostly hold faces of 48 px and more. The
recipe (`training/splits/crowd_ilc2021.json`: a seed and a target share of faces per size bin) uses
each held-out photo `rounds` times: downscaled on its own to fit a frame size (400x300 to 640x480 px;
the frame is the photo), or downscaled into one cell of a mosaic of 2x2 up to 8x8 photos in a frame,
filling `fill` of its cell. For each photo, in a seeded order, the layout (frame size, grid, fill) is
the one that brings the faces placed so far closest to the target size mix (layouts that make any of
its faces smaller than `smallest_face` px are not used; among equals, a mosaic with a free cell).
Boxes are scaled and moved with their photo. Same spec, same frames: the set is rebuilt in memory
in a few seconds whenever it is needed, and only photos of the validation list are ever used.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shared.imaging import ImageError, image_header, read_image
from training.detector.data import Scene, split_scenes
from training.errors import TrainingError
from training.scales import SIZE_BINS, face_sizes
from training.splits import SPLITS_DIR

CROWD_SPEC = SPLITS_DIR / "crowd_ilc2021.json"


@dataclass(frozen=True)
class CrowdSpec:
    """The recipe: which photos, the seed, the target size mix and the layouts to choose from."""

    name: str
    photos: str
    seed: int
    rounds: int
    target_share: dict[str, float]
    frame_sizes: tuple[tuple[int, int], ...]
    grids: tuple[int, ...]
    fills: tuple[float, ...]
    smallest_face: float
    background_bgr: tuple[int, int, int]
    folder: Path = SPLITS_DIR  # where `photos` is read from: the spec file's folder

    @classmethod
    def load(cls, path: Path = CROWD_SPEC) -> CrowdSpec:
        """Read a spec file; TrainingError (one line) when it is unreadable or incomplete."""
        try:
            raw = json.loads(Path(path).read_text())
            spec = cls(name=str(raw["name"]), photos=str(raw["photos"]), seed=int(raw["seed"]),
                       rounds=int(raw["rounds"]), target_share={k: float(v) for k, v in raw["target_share"].items()},
                       frame_sizes=tuple((int(w), int(h)) for w, h in raw["frame_sizes"]),
                       grids=tuple(int(g) for g in raw["grids"]), fills=tuple(float(f) for f in raw["fills"]),
                       smallest_face=float(raw["smallest_face"]),
                       background_bgr=tuple(int(v) for v in raw["background_bgr"]),  # type: ignore[arg-type]
                       folder=Path(path).parent)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TrainingError(f"{path}: not a crowd recipe ({exc})") from None
        if set(spec.target_share) != {label for label, _, _ in SIZE_BINS} or spec.rounds < 1:
            raise TrainingError(f"{path}: target_share must name every size bin, rounds must be >= 1")
        return spec

    @property
    def val_list(self) -> Path:
        """The held-out photo list the recipe draws from (beside the spec)."""
        return self.folder / self.photos


@dataclass(frozen=True)
class Layout:
    """A frame size and a square grid of cells; a photo fills `fill` of its cell (aspect kept)."""

    width: int
    height: int
    grid: int
    fill: float

    def scale_for(self, photo_w: int, photo_h: int) -> float:
        """Downscale factor of a photo placed in one cell (never above 1)."""
        return min(self.width / self.grid / photo_w, self.height / self.grid / photo_h, 1.0) * self.fill


@dataclass(frozen=True)
class Placement:
    """One photo in one frame: its index, cell, scale and top-left corner in the frame."""

    photo: int
    frame: int
    scale: float
    x: int
    y: int


@dataclass
class CrowdSet:
    """The rendered frames (BGR images with their scenes), how they were made and the size mix achieved."""

    spec: CrowdSpec
    images: list[np.ndarray]
    scenes: list[Scene]
    placements: list[Placement]
    layouts: list[Layout]
    photos: list[Path]  # the source photos; `Placement.photo` indexes this list

    def size_mix(self) -> dict[str, dict[str, float]]:
        """Faces and share of faces per size bin, beside the target share."""
        return size_mix(np.concatenate([face_sizes(s.boxes) for s in self.scenes] or [np.zeros(0)]),
                        self.spec.target_share)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description: recipe, frames, faces, photos used, achieved mix."""
        kinds = Counter("photo" if f.grid == 1 else f"mosaic {f.grid}x{f.grid}" for f in self.layouts)
        return {"recipe": self.spec.name, "seed": self.spec.seed, "photos_list": self.spec.photos,
                "frames": len(self.images), "faces": int(sum(len(s.boxes) for s in self.scenes)),
                "photos_placed": len(self.placements), "frames_by_layout": dict(sorted(kinds.items())),
                "size_mix": self.size_mix()}


def size_mix(sizes: np.ndarray, target: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per size bin: faces, their share and the target share."""
    total = max(len(sizes), 1)
    out = {}
    for label, lo, hi in SIZE_BINS:
        n = int(((sizes >= lo) & (sizes < hi)).sum())
        out[label] = {"faces": n, "share": round(n / total, 4), "target": target.get(label, 0.0)}
    return out


def _bin_counts(sizes: np.ndarray) -> np.ndarray:
    return np.array([((sizes >= lo) & (sizes < hi)).sum() for _, lo, hi in SIZE_BINS], float)


def plan(spec: CrowdSpec, scenes: list[Scene],
         photo_sizes: list[tuple[int, int]]) -> tuple[list[Layout], list[Placement]]:
    """Frames (their layouts) and the placement of every photo, greedily towards the target size mix."""
    rng = np.random.default_rng(spec.seed)
    layouts = [Layout(w, h, g, f) for (w, h) in spec.frame_sizes for g in spec.grids
               for f in (spec.fills if g > 1 else (1.0,))]
    target = np.array([spec.target_share[label] for label, _, _ in SIZE_BINS])
    counts = np.zeros(len(SIZE_BINS))
    frames: list[Layout] = []
    placements: list[Placement] = []
    open_frame: dict[tuple[int, int, int], tuple[int, int]] = {}  # (w, h, grid) -> (frame index, cells used)
    base_sizes = [face_sizes(s.boxes) for s in scenes]
    for _ in range(spec.rounds):
        for i in rng.permutation(len(scenes)):
            pw, ph = photo_sizes[i]
            best, scored = np.inf, []
            for layout in layouts:
                scale = layout.scale_for(pw, ph)
                if base_sizes[i].size and base_sizes[i].min() * scale < spec.smallest_face:
                    continue
                added = counts + _bin_counts(base_sizes[i] * scale)
                distance = float(np.abs(added / max(added.sum(), 1) - target).sum())
                scored.append((distance, layout, scale, added))
                best = min(best, distance)
            if not scored:
                continue
            ties = [s for s in scored if s[0] <= best + 1e-9]
            filling = [s for s in ties if _room(open_frame, s[1])]  # fill started frames before new ones
            ties = filling or ties
            _, layout, scale, counts = ties[int(rng.integers(len(ties)))]
            w, h = max(1, round(pw * scale)), max(1, round(ph * scale))
            if layout.grid == 1:  # a downscaled photo on its own: the frame is the photo
                frames.append(Layout(w, h, 1, 1.0))
                placements.append(Placement(int(i), len(frames) - 1, scale, 0, 0))
                continue
            key = (layout.width, layout.height, layout.grid)
            frame, used = open_frame.get(key, (-1, layout.grid ** 2))
            if used >= layout.grid ** 2:
                frames.append(layout)
                frame, used = len(frames) - 1, 0
            cell_w, cell_h = layout.width // layout.grid, layout.height // layout.grid
            x = (used % layout.grid) * cell_w + int(rng.integers(0, max(cell_w - w, 0) + 1))
            y = (used // layout.grid) * cell_h + int(rng.integers(0, max(cell_h - h, 0) + 1))
            placements.append(Placement(int(i), frame, scale, x, y))
            open_frame[key] = (frame, used + 1)
    return frames, placements


def _room(open_frame: dict[tuple[int, int, int], tuple[int, int]], layout: Layout) -> bool:
    """Whether the frame being filled for this layout's size and grid has a free cell."""
    _, used = open_frame.get((layout.width, layout.height, layout.grid), (-1, layout.grid ** 2))
    return layout.grid > 1 and used < layout.grid ** 2


def render(spec: CrowdSpec, scenes: list[Scene], frames: list[Layout], placements: list[Placement]) -> CrowdSet:
    """Draw the frames: each photo read once, downscaled (area interpolation) into its cells, boxes moved along."""
    images = [np.full((f.height, f.width, 3), spec.background_bgr, np.uint8) for f in frames]
    boxes: list[list[np.ndarray]] = [[] for _ in frames]
    labels: list[list[str]] = [[] for _ in frames]
    by_photo: dict[int, list[Placement]] = {}
    for p in placements:
        by_photo.setdefault(p.photo, []).append(p)
    for index in sorted(by_photo):
        scene = scenes[index]
        try:
            photo = read_image(scene.image)
        except ImageError as exc:
            raise TrainingError(f"crowd set: {exc}") from None
        ph, pw = photo.shape[:2]
        for p in by_photo[index]:
            w, h = max(1, round(pw * p.scale)), max(1, round(ph * p.scale))
            images[p.frame][p.y:p.y + h, p.x:p.x + w] = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
            fx, fy = w / pw, h / ph
            boxes[p.frame].append(scene.boxes.reshape(-1, 4) * [fx, fy, fx, fy] + [p.x, p.y, p.x, p.y])
            labels[p.frame].extend(scene.labels)
    out = [Scene(Path(f"{spec.name}/frame_{i:04d}"), np.concatenate(b or [np.zeros((0, 4))]).astype(np.float32),
                 tuple(lab)) for i, (b, lab) in enumerate(zip(boxes, labels))]
    return CrowdSet(spec, images, out, placements, frames, [s.image for s in scenes])


def build_crowd_set(voc_dirs: list[Path], spec_path: Path = CROWD_SPEC) -> CrowdSet:
    """The crowd-like frames of a recipe, from the validation photos (the spec's list) of `voc_dirs` only."""
    spec = CrowdSpec.load(spec_path)
    _, val = split_scenes(voc_dirs, spec.val_list)
    if not val:
        raise TrainingError(f"crowd set: none of the photos of {spec.photos} is in {', '.join(map(str, voc_dirs))}")
    val = sorted(val, key=lambda s: s.image.name)
    sizes = []
    for scene in val:
        try:
            header = image_header(scene.image.read_bytes())
        except (OSError, ImageError) as exc:
            raise TrainingError(f"crowd set: {scene.image}: {exc}") from None
        sizes.append((header.width, header.height))
    frames, placements = plan(spec, val, sizes)
    return render(spec, val, frames, placements)
