"""Saves the faces an evaluation labels wrongly, as the crops the classifier saw, for review by eye."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from shared.crops import crop_face
from shared.schemas import Face
from training.errors import TrainingError

SHEET_COLUMNS = 8
SHEET_MAX_TILES = 256  # the first 256 errors: a bounded image (JPEG stops at 65,535 pixels a side)
INDEX_FILE = "errors.json"
SHEET_FILE = "sheet.jpg"


@dataclass
class LabelError:
    """One face whose predicted label differs from its annotation (`box` is empty for a folder image)."""

    file: str
    photo: str  # the scene photo or the folder image (`<root>/<class>/<file>`) it comes from
    box: list[int]
    truth: str
    predicted: str
    confidence: float
    probs: dict[str, float]


class ErrorReview:
    """Writes `NNN-<truth>-as-<predicted>-<photo>.jpg` per wrong face, then `errors.json` (all of them) and a
    contact sheet of the first `SHEET_MAX_TILES`."""

    def __init__(self, out_dir: str | Path, crop_size: int, crop_margin: float) -> None:
        self.out_dir = Path(out_dir)
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrainingError(f"cannot write label errors to {self.out_dir}: {exc.strerror}") from None
        self.crop_size, self.crop_margin = crop_size, crop_margin
        self.errors: list[LabelError] = []
        self._tiles: list[np.ndarray] = []

    def add(self, image: np.ndarray, photo: str, face: Face, truth: str) -> None:
        """Save the crop of a face labelled `truth` that the pipeline called `face.label`."""
        crop = crop_face(image, face.box, self.crop_size, self.crop_margin)
        self.add_crop(crop, photo, truth, face.label, face.probs, list(face.box))

    def add_crop(self, crop: np.ndarray, photo: str, truth: str, predicted: str, probs: dict[str, float],
                 box: list[int] | None = None) -> None:
        """Save a crop labelled `truth` that the classifier called `predicted`."""
        name = f"{len(self.errors):03d}-{truth}-as-{predicted}-{Path(photo).stem}.jpg"
        cv2.imwrite(str(self.out_dir / name), crop)
        confidence = probs[predicted]
        self.errors.append(LabelError(name, photo, box or [], truth, predicted, confidence, probs))
        if len(self._tiles) < SHEET_MAX_TILES:
            self._tiles.append(_caption(crop, (f"label {truth}", f"model {predicted} {confidence:.2f}")))

    def close(self) -> Path:
        """Write the index and the contact sheet; returns the index path."""
        index = self.out_dir / INDEX_FILE
        index.write_text(json.dumps([asdict(e) for e in self.errors], indent=2) + "\n")
        if self._tiles:
            cv2.imwrite(str(self.out_dir / SHEET_FILE), _sheet(self._tiles, SHEET_COLUMNS))
        return index


def _caption(crop: np.ndarray, lines: tuple[str, ...]) -> np.ndarray:
    """The crop above a black band with one line of text per entry, scaled to fit the width."""
    font, width = cv2.FONT_HERSHEY_SIMPLEX, crop.shape[1] - 4
    longest = max(cv2.getTextSize(line, font, 1.0, 1)[0][0] for line in lines)
    scale = min(0.45, width / longest)
    step = 16  # a line's height whatever the text's scale, so every tile of a sheet is the same size
    tile = cv2.copyMakeBorder(crop, 0, step * len(lines) + 2, 0, 0, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    for i, line in enumerate(lines):
        cv2.putText(tile, line, (2, crop.shape[0] + step * (i + 1) - 2), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def _sheet(tiles: list[np.ndarray], columns: int) -> np.ndarray:
    blank = np.zeros_like(tiles[0])
    padded = tiles + [blank] * (-len(tiles) % columns)
    return np.vstack([np.hstack(padded[i : i + columns]) for i in range(0, len(padded), columns)])
