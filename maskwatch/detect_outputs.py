"""Where `maskwatch detect` sends results: JSON Lines, annotated copies, a live window, a summary."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from shared.schemas import FrameResult, LineCrossing, PersonRecord
from shared.sources import Source, SourceKind


class JsonLinesSink:
    """Writes one JSON object per image or frame, flushed line by line (`-` is stdout)."""

    def __init__(self, target: str) -> None:
        self._own = target != "-"
        self._fh: IO[str] = open(target, "w", encoding="utf-8") if self._own else sys.stdout

    def write(self, result: FrameResult | PersonRecord | LineCrossing) -> None:
        """Append one result line (a frame, a person whose track ended, or one of its line crossings)."""
        self._fh.write(result.to_json() + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Close the file (stdout stays open)."""
        if self._own:
            self._fh.close()


class AnnotatedSink:
    """Saves annotated copies: images as JPEG/PNG, videos and streams re-encoded at the source fps/size."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._writer: cv2.VideoWriter | None = None
        self._used: set[str] = set()

    @staticmethod
    def _stem(source: Source) -> str:
        local = source.kind in (SourceKind.IMAGE, SourceKind.VIDEO)
        stem = Path(source.location).stem if local else f"{source.kind}-{source.location}"
        return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)[:80]

    def _target(self, source: Source, suffix: str) -> Path:
        stem = self._stem(source)
        name, n = f"{stem}{suffix}", 1
        while name in self._used:
            n += 1
            name = f"{stem}-{n}{suffix}"
        self._used.add(name)
        return self.folder / name

    def save_image(self, source: Source, image: np.ndarray) -> Path:
        """Write one annotated image next to the others."""
        suffix = Path(source.location).suffix.lower()
        target = self._target(source, suffix if suffix in (".jpg", ".jpeg", ".png") else ".jpg")
        cv2.imwrite(str(target), image)
        return target

    def save_person(self, source: Source, record: PersonRecord, crop: np.ndarray) -> Path:
        """Write the best-face crop of one person to `people/` inside the folder."""
        target = self.folder / "people" / f"{self._stem(source)}-person{record.track_id}-{record.label}.jpg"
        target.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(target), crop)
        return target

    def start_video(self, source: Source, fps: float, size: tuple[int, int]) -> Path:
        """Open an MP4 writer for a video or stream source."""
        self.end_video()
        target = self._target(source, ".mp4")
        self._writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        return target

    def write_frame(self, image: np.ndarray) -> None:
        """Append one annotated frame to the open video."""
        if self._writer is not None:
            self._writer.write(image)

    def end_video(self) -> None:
        """Finish the open video file, if any."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class LiveWindow:
    """An OpenCV window; where no display or GUI backend exists it says why once and stays silent."""

    def __init__(self) -> None:
        self.available = True
        self.quit = False

    def show(self, image: np.ndarray) -> None:
        """Show a frame; sets `quit` when the user presses q."""
        if not self.available:
            return
        try:
            cv2.imshow("maskwatch", image)
            if cv2.waitKey(1) & 0xFF == ord("q"):
                self.quit = True
        except cv2.error:
            self.available = False
            print("--show: no window can be opened here (no display, or OpenCV built without GUI "
                  "support as opencv-python-headless is); continuing without it", file=sys.stderr)

    def close(self) -> None:
        """Close the window if one was opened."""
        if self.available:
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass


class Summary:
    """Counts faces per label and frames per second over the whole run."""

    def __init__(self) -> None:
        self.labels: Counter[str] = Counter()
        self.people: Counter[str] = Counter()
        self.static = 0
        self.entries: Counter[str] = Counter()
        self.exits = 0
        self.frames = 0
        self.failed = 0
        self.started = time.perf_counter()

    def add(self, result: FrameResult) -> None:
        """Count one processed image or frame."""
        self.frames += 1
        self.labels.update(face.label for face in result.faces)

    def add_person(self, record: PersonRecord) -> None:
        """Count one person whose track ended (a static face apart)."""
        if record.static:
            self.static += 1
        else:
            self.people[record.label] += 1

    def add_crossing(self, crossing: LineCrossing) -> None:
        """Count one entry (per label) or exit."""
        if crossing.direction == "in":
            self.entries[crossing.label] += 1
        else:
            self.exits += 1

    def text(self) -> str:
        """One readable summary block."""
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        faces = sum(self.labels.values())
        per_label = ", ".join(f"{label} {n}" for label, n in sorted(self.labels.items())) or "none"
        lines = [
            f"processed {self.frames} image(s)/frame(s) in {elapsed:.1f}s ({self.frames / elapsed:.1f} frames/s)",
            f"faces: {faces} ({per_label})",
        ]
        if self.people:
            per_label = ", ".join(f"{label} {n}" for label, n in sorted(self.people.items()))
            lines.append(f"people: {sum(self.people.values())} ({per_label})")
        if self.static:
            lines.append(f"static faces (posters, screens; not counted): {self.static}")
        if self.entries or self.exits:
            per_label = ", ".join(f"{label} {n}" for label, n in sorted(self.entries.items())) or "none"
            lines.append(f"entries: {sum(self.entries.values())} ({per_label}), exits: {self.exits}")
        if self.failed:
            lines.append(f"failed sources: {self.failed}")
        return "\n".join(lines)


def face_table(result: FrameResult) -> str:
    """A plain-text table of the faces in one result."""
    head = f"{result.source}  {result.width}x{result.height}  {len(result.faces)} face(s)"
    rows = [f"  {'#':>3}  {'label':<15} {'conf':>6}  {'score':>6}  box"]
    for i, face in enumerate(result.faces, 1):
        rows.append(f"  {i:>3}  {face.label:<15} {face.confidence:>6.2f}  {face.score:>6.2f}  {face.box}")
    return "\n".join([head, *rows]) if result.faces else head

