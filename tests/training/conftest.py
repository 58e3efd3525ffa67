"""Generated data sets for the training tests: coloured-square folders and a small VOC scene set."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

COLOURS = {"blue": (200, 40, 40), "green": (40, 200, 40), "red": (40, 40, 200)}  # BGR


def square_image(colour: tuple[int, int, int], rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A noisy image of one dominant colour with a random lighter square in it."""
    image = np.clip(np.array(colour, float) + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
    x, y = rng.integers(0, size // 2, 2)
    image[y : y + size // 3, x : x + size // 3] = np.clip(np.array(colour) + 50, 0, 255)
    return image


@pytest.fixture(scope="session")
def squares_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """root/<colour>/*.jpg, 24 images per colour."""
    root = tmp_path_factory.mktemp("squares")
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir()
        for i in range(24):
            cv2.imwrite(str(root / name / f"{name}{i:02d}.jpg"), square_image(colour, rng))
    return root


def write_voc(root: Path, stem: str, image: np.ndarray, objects: list[tuple[str, tuple[int, int, int, int]]]) -> None:
    """Write one photo and its PASCAL VOC annotation."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "images" / f"{stem}.jpg"), image)
    objs = "".join(
        f"<object><name>{label}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for label, b in objects
    )
    h, w = image.shape[:2]
    (root / "annotations" / f"{stem}.xml").write_text(
        f"<annotation><filename>{stem}.jpg</filename><size><width>{w}</width><height>{h}</height>"
        f"<depth>3</depth></size>{objs}</annotation>")


@pytest.fixture()
def voc_dir(tmp_path: Path) -> Path:
    """Three 200x160 photos with coloured 'faces' (labelled boxes) on a grey background."""
    root = tmp_path / "voc"
    layout = {
        "p1": [("with_mask", (20, 20, 60, 70)), ("without_mask", (120, 30, 170, 90))],
        "p2": [("mask_incorrect", (50, 50, 100, 110))],
        "p3": [("with_mask", (10, 90, 50, 140))],
    }
    for stem, objects in layout.items():
        image = np.full((160, 200, 3), 128, np.uint8)
        for k, (_, (x1, y1, x2, y2)) in enumerate(objects):
            image[y1:y2, x1:x2] = (60 * k, 255 - 60 * k, 90)
        write_voc(root, stem, image, objects)
    return root
