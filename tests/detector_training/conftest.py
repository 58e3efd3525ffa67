"""Generated VOC photos (drawn faces on noise) and a store holding the stock detector."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from shared.model_store import ModelStore
from tests.conftest import REPO

LABELS = ("with_mask", "without_mask", "mask_incorrect")


def draw_scene(rng: np.random.Generator, size: tuple[int, int] = (160, 120)) -> tuple[np.ndarray, list]:
    """A noisy photo with 1-3 skin-coloured ellipses (faces) and their boxes."""
    w, h = size
    image = rng.integers(40, 200, (h, w, 3), dtype=np.uint8)
    image = cv2.GaussianBlur(image, (0, 0), 3)
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        fw = int(rng.integers(20, 48))
        fh = int(fw * 1.25)
        x, y = int(rng.integers(0, w - fw)), int(rng.integers(0, h - fh))
        cv2.ellipse(image, (x + fw // 2, y + fh // 2), (fw // 2, fh // 2), 0, 0, 360, (140, 170, 220), -1)
        cv2.circle(image, (x + fw // 3, y + fh // 3), 2, (20, 20, 20), -1)
        cv2.circle(image, (x + 2 * fw // 3, y + fh // 3), 2, (20, 20, 20), -1)
        objects.append((LABELS[len(objects) % 3], (x, y, x + fw, y + fh)))
    return image, objects


def write_voc(folder: Path, count: int, seed: int = 0) -> list[str]:
    """Write `count` generated photos as a VOC folder; returns their stems."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    (folder / "annotations").mkdir()
    stems = []
    for i in range(count):
        stem = f"gen_{i:03d}"
        image, objects = draw_scene(rng)
        cv2.imwrite(str(folder / "images" / f"{stem}.jpg"), image)
        objs = "".join(
            f"<object><name>{label}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
            f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
            for label, b in objects
        )
        (folder / "annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>{image.shape[1]}</width>"
            f"<height>{image.shape[0]}</height><depth>3</depth></size>{objs}</annotation>"
        )
        stems.append(stem)
    return stems


@pytest.fixture(scope="session")
def stock_onnx() -> Path:
    """The shipped stock RetinaFace ONNX."""
    return REPO / "models" / "detector" / "retinaface-stock" / "model.onnx"


@pytest.fixture()
def detector_store(tmp_path: Path) -> ModelStore:
    """A store with only the stock detector, promoted."""
    stock = REPO / "models" / "detector" / "retinaface-stock"
    shutil.copytree(stock, tmp_path / "store" / "detector" / stock.name)
    store = ModelStore(tmp_path / "store")
    store.promote("detector", "retinaface-stock")
    return store


@pytest.fixture()
def generated_voc(tmp_path: Path) -> tuple[Path, Path]:
    """A generated VOC folder of 10 photos and a validation list naming 3 of them."""
    stems = write_voc(tmp_path / "voc", 10)
    val_list = tmp_path / "val.txt"
    val_list.write_text("\n".join(stems[:3]) + "\n")
    return tmp_path / "voc", val_list
