"""PASCAL VOC annotated photos: `<dir>/images/*.jpg` (or JPEGImages/) with `<dir>/annotations/*.xml`."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from shared.imaging import IMAGE_SUFFIXES
from training.corrections import correct_objects, default_corrections, read_corrections
from training.errors import TrainingError


@dataclass(frozen=True)
class VocObject:
    """One labelled box [x1, y1, x2, y2] in pixels."""

    label: str
    box: tuple[float, float, float, float]
    difficult: bool = False


@dataclass(frozen=True)
class VocPhoto:
    """One annotated photo."""

    stem: str
    image: Path
    objects: tuple[VocObject, ...]


def read_annotation(xml_path: Path) -> list[VocObject]:
    """The labelled boxes of one VOC XML file; raises TrainingError for unreadable files."""
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise TrainingError(f"{xml_path}: unreadable VOC annotation ({exc})") from None
    objects = []
    for obj in root.iter("object"):
        name, bnd = obj.findtext("name"), obj.find("bndbox")
        if not name or bnd is None:
            raise TrainingError(f"{xml_path}: object without name or bndbox")
        try:
            box = tuple(float(bnd.findtext(k) or "") for k in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError:
            raise TrainingError(f"{xml_path}: non-numeric box coordinates") from None
        if box[2] <= box[0] or box[3] <= box[1]:
            continue  # degenerate box: nothing to learn from
        objects.append(VocObject(name.strip(), box, obj.findtext("difficult", "0").strip() == "1"))
    return objects


def _folder(root: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise TrainingError(f"{root}: not a VOC folder (expected one of {', '.join(names)} inside)")


def load_voc(root: str | Path, stems: set[str] | None = None, exclude: set[str] | None = None,
             original_labels: bool = False) -> list[VocPhoto]:
    """Every annotated photo under `root` (optionally only `stems`, never `exclude`), sorted by stem.

    The folder's committed label corrections (training/labels/<folder name>_corrections.csv) are applied
    unless `original_labels` is set.
    """
    root = Path(root)
    if not root.is_dir():
        raise TrainingError(f"{root}: VOC folder not found")
    source = None if original_labels else default_corrections(root)
    corrections = read_corrections(source) if source else {}
    images = _folder(root, ("images", "JPEGImages"))
    annotations = _folder(root, ("annotations", "Annotations"))
    by_stem = {p.stem: p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    photos = []
    for xml_path in sorted(annotations.glob("*.xml")):
        stem = xml_path.stem
        if (stems is not None and stem not in stems) or (exclude and stem in exclude) or stem not in by_stem:
            continue
        objects = tuple(read_annotation(xml_path))
        image = by_stem[stem]
        if image.name in corrections:
            objects = correct_objects(image.name, objects, corrections[image.name], source)
        photos.append(VocPhoto(stem, image, objects))
    if not photos:
        raise TrainingError(f"{root}: no annotated photos found")
    return photos


def photo_stems(root: str | Path) -> list[str]:
    """Stems of the photos that have an annotation, sorted."""
    return [p.stem for p in load_voc(root)]
