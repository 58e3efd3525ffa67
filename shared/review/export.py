"""Labelled review items out as a training folder, and annotated photos in as review items."""

from __future__ import annotations

import base64
import csv
import time
from collections.abc import Sequence
from pathlib import Path

from shared.crops import crop_face
from shared.imaging import ImageError, encode_jpeg, read_image
from shared.review.queue import ReviewItem, ReviewQueue

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("file", "label", "source", "seen_at", "labelled_at", "model_version", "model_label",
                    "confidence", "reasons", "photo", "box", "annotated")
CROP_SIZE = 128  # imported faces: the size of the crops the cameras queue
BATCH = 500


def export_labelled(queue: ReviewQueue, out_dir: str | Path) -> list[ReviewItem]:
    """Write every labelled item as `out_dir/<label>/<id>.jpg`, append it to `out_dir/manifest.csv`, then
    remove it from the queue (the crop then exists only in `out_dir`). Returns the items exported."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / MANIFEST
    fresh = not manifest.exists()
    done: list[ReviewItem] = []
    with manifest.open("a", newline="") as fh:
        writer = csv.writer(fh)
        if fresh:
            writer.writerow(MANIFEST_COLUMNS)
        while items := queue.items(labelled=True, limit=BATCH):
            for item in items:
                path = out / item.label / f"{item.id}.jpg"
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(base64.b64decode(item.crop))
                writer.writerow(_row(item, path.relative_to(out)))
                done.append(item)
            fh.flush()
            queue.remove(i.id for i in items)
    return done


def _row(item: ReviewItem, file: Path) -> list:
    return [str(file), item.label, item.source, item.seen_at or "", item.labelled_at or "", item.model_version or "",
            item.model_label, item.confidence, " ".join(item.reasons), item.photo or "",
            " ".join(map(str, item.box)) if item.box else "", item.annotated or ""]


def import_photos(queue: ReviewQueue, photos: Sequence, classifier, source: str,
                  labels: set[str] | None = None) -> int:
    """Queue every labelled face of VOC photos (optionally only `labels`) with the classifier's opinion.

    Imports are not bounded by the queue's size limit. Unreadable photos are skipped. Returns the count.
    """
    n = 0
    for photo in photos:
        objects = [o for o in photo.objects if labels is None or o.label in labels]
        if not objects:
            continue
        try:
            image = read_image(photo.image)
        except ImageError:
            continue
        crops = [crop_face(image, o.box, classifier.input_size, classifier.crop_margin) for o in objects]
        for obj, row in zip(objects, classifier.predict(crops)):
            probs = {name: round(float(p), 4) for name, p in zip(classifier.labels, row)}
            predicted = max(probs, key=probs.get)
            reasons = ["annotation_differs" if predicted != obj.label else "annotated"]
            view = crop_face(image, obj.box, CROP_SIZE, classifier.crop_margin)
            queue.add(ReviewItem(source=source, queued_at=time.time(), photo=photo.image.name,
                                 box=[round(v) for v in obj.box], annotated=obj.label,
                                 model_version=classifier.name, model_label=predicted, confidence=probs[predicted],
                                 probs=probs, reasons=reasons,
                                 crop=base64.b64encode(encode_jpeg(view, quality=90)).decode()), bounded=False)
            n += 1
    return n


def write_corrections(items: Sequence[ReviewItem], path: str | Path) -> int:
    """Append the imported items whose reviewed label differs from the annotation as label corrections
    (training/corrections.py's columns; `not_face` drops the box); returns how many rows were written."""
    path = Path(path)
    rows = [[i.photo, " ".join(map(str, i.box or [])), i.annotated, i.label, "reviewed: " + " ".join(i.reasons)]
            for i in items if i.photo and i.annotated and i.label != i.annotated]
    fresh = not path.exists()
    with path.open("a", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        if fresh:
            writer.writerow(["photo", "box", "old_label", "new_label", "reason"])
        writer.writerows(rows)
    return len(rows)
