"""Label corrections for annotated photos (`training/labels/<set>_corrections.csv`), applied when photos load.

Each row names a photo, a box (`x1 y1 x2 y2`, the annotation's pixels rounded), the label the annotation gives
and the label the labelling rule in docs/labels.md gives it, with the reason. `not_face` removes the box.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

from shared.schemas import NOT_FACE
from training.errors import TrainingError

LABELS_DIR = Path(__file__).resolve().parent / "labels"
COLUMNS = ("photo", "box", "old_label", "new_label", "reason")


@dataclass(frozen=True)
class Correction:
    """One relabelled box."""

    photo: str
    box: tuple[int, int, int, int]
    old_label: str
    new_label: str
    reason: str


def default_corrections(voc_root: str | Path) -> Path | None:
    """The committed corrections file for a VOC folder (`<folder name>_corrections.csv`), if there is one."""
    path = LABELS_DIR / f"{Path(voc_root).name}_corrections.csv"
    return path if path.is_file() else None


def read_corrections(path: str | Path) -> dict[str, list[Correction]]:
    """Corrections by photo file name; raises TrainingError on a malformed file."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise TrainingError(f"{path}: expected the columns {','.join(COLUMNS)}")
            rows = list(reader)
    except OSError as exc:
        raise TrainingError(f"{path}: unreadable corrections file ({exc.strerror})") from None
    out: dict[str, list[Correction]] = {}
    for n, row in enumerate(rows, start=2):
        try:
            box = tuple(int(v) for v in row["box"].split())
        except ValueError:
            box = ()
        if len(box) != 4 or not row["old_label"] or not row["new_label"]:
            raise TrainingError(f"{path}:{n}: a row needs a photo, a box 'x1 y1 x2 y2' and both labels")
        out.setdefault(row["photo"], []).append(
            Correction(row["photo"], box, row["old_label"], row["new_label"], row["reason"]))  # type: ignore[arg-type]
    return out


def correct_objects(photo: str, objects: tuple, corrections: list[Correction], source: Path) -> tuple:
    """The photo's objects with its corrections applied (`not_face` drops the box); a correction that matches no
    box with its old label raises TrainingError, so a stale file cannot silently do nothing."""
    objects = list(objects)
    for c in corrections:
        hits = [i for i, o in enumerate(objects)
                if o is not None and o.label == c.old_label and tuple(round(v) for v in o.box) == c.box]
        if not hits:
            raise TrainingError(f"{source}: {photo} has no {c.old_label} box {' '.join(map(str, c.box))}")
        objects[hits[0]] = None if c.new_label == NOT_FACE else replace(objects[hits[0]], label=c.new_label)
    return tuple(o for o in objects if o is not None)
