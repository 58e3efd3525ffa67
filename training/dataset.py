"""Folder datasets: `<root>/<class>/*.jpg`, several roots merged, loaded as square crops."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.crops import crop_face
from shared.imaging import IMAGE_SUFFIXES, read_image
from training.errors import TrainingError

# Files named `<photo>__<n>.jpg` are crops of one photo: they share a group and one side of a split.
GROUP_SEP = "__"


@dataclass(frozen=True)
class Sample:
    """One labelled image file and the group (source photo or duplicate cluster) it belongs to."""

    path: Path
    label: str
    group: str
    root: str = ""

    @property
    def listed(self) -> str:
        """The sample as `<root folder name>/<class>/<file>` (no machine-specific paths)."""
        return f"{Path(self.root).name}/{self.path.relative_to(self.root)}"


def scan_folders(roots: Sequence[str | Path]) -> list[Sample]:
    """Every image under `<root>/<class>/` for each root, sorted; classes are the folder names."""
    samples = []
    for root in map(Path, roots):
        if not root.is_dir():
            raise TrainingError(f"{root}: dataset folder not found")
        classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not classes:
            raise TrainingError(f"{root}: no class folders (expected {root}/<class>/*.jpg)")
        for folder in classes:
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                photo = path.stem.split(GROUP_SEP)[0] if GROUP_SEP in path.stem else f"{folder.name}/{path.stem}"
                samples.append(Sample(path, folder.name, f"{root}:{photo}", str(root)))
    if not samples:
        raise TrainingError(f"no images found under {', '.join(map(str, roots))}")
    return samples


def class_names(samples: Sequence[Sample]) -> list[str]:
    """Sorted class names present in the samples."""
    return sorted({s.label for s in samples})


def class_counts(samples: Sequence[Sample]) -> dict[str, int]:
    """Number of samples per class."""
    return dict(sorted(Counter(s.label for s in samples).items()))


def load_square(path: str | Path, size: int) -> np.ndarray:
    """Read an image file as a `size` x `size` BGR crop (centred square, edges replicated, no margin)."""
    image = read_image(path)
    h, w = image.shape[:2]
    return crop_face(image, (0, 0, w, h), size, margin=0.0)
