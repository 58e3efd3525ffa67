"""deploy/train-default.sh (the compose `train` job) run as a plain process on a small generated data tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from shared.model_store import ModelStore
from tests.conftest import REPO
from tests.training.conftest import COLOURS, square_image, write_voc
from training.splits import heldout_stems

SCRIPT = REPO / "deploy" / "train-default.sh"
FACE_COLOURS = {"with_mask": COLOURS["blue"], "without_mask": COLOURS["red"]}
BOX_COLOURS = {**FACE_COLOURS, "mask_incorrect": COLOURS["green"]}


def _data_tree(root: Path) -> list[str]:
    """faces/fm12k and faces/chandrikadeb7 with two classes, scenes/ilc2021 with three; returns the photo stems."""
    rng = np.random.default_rng(0)
    for source, n in (("fm12k", 12), ("chandrikadeb7", 8)):
        for label, colour in FACE_COLOURS.items():
            folder = root / "faces" / source / label
            folder.mkdir(parents=True)
            for i in range(n):
                cv2.imwrite(str(folder / f"{label}{i:02d}.jpg"), square_image(colour, rng))
    stems = [f"ilc2021_{i:05d}" for i in range(10)]
    for i, stem in enumerate(stems):
        photo = np.full((160, 200, 3), 128, np.uint8)
        objects = []
        for k, label in enumerate(BOX_COLOURS):
            x = 10 + 62 * k
            box = (x, 40 + 4 * i, x + 48, 88 + 4 * i)
            photo[box[1] : box[3], box[0] : box[2]] = square_image(BOX_COLOURS[label], rng, 48)
            objects.append((label, box))
        write_voc(root / "scenes" / "ilc2021", stem, photo, objects)
    return stems


def _env(data: Path, cache: Path, models: Path) -> dict[str, str]:
    """This venv's `maskwatch` first on PATH, the script's three folders, no pre-trained weights."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MASKWATCH_DATA_DIR": str(data), "MASKWATCH_CACHE": str(cache), "MASKWATCH_MODELS": str(models)}
    env.pop("MASKWATCH_PRETRAINED", None)
    return env


def test_recipe_script_holds_out_photos_cuts_crops_and_trains(tmp_path: Path) -> None:
    stems = _data_tree(tmp_path / "data")
    models, cache = tmp_path / "models", tmp_path / "cache"
    shutil.copytree(REPO / "models" / "detector", models / "detector")
    env = _env(tmp_path / "data", cache, models)
    # the extra arguments shrink the run and win over the recipe's (--input-size 160 becomes 32)
    run = subprocess.run(["sh", str(SCRIPT), "--no-pretrained", "--input-size", "32", "--views", "1",
                          "--epochs", "3", "--finetune-epochs", "0", "--batch-size", "16", "--threads", "1",
                          "--name", "recipe"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]

    held_out = (cache / "ilc2021_val.txt").read_text().split()
    assert held_out == heldout_stems(stems) and len(held_out) == 2
    detector = (models / "detector" / "CURRENT").read_text().strip()
    [crops] = cache.glob(f"ilc2021-train-crops-{detector}-labels-*")
    cut = [p.name for p in crops.rglob("*.jpg")]
    assert cut and not any(name.split("__")[0] in held_out for name in cut)
    assert {p.name for p in crops.iterdir()} >= set(BOX_COLOURS)
    assert not crops.with_name(crops.name + ".partial").exists()

    version = ModelStore(models).load("classifier", "recipe")
    config = version.meta["config"]
    assert config["roots"][-1] == str(crops) and config["input_size"] == 32 and config["dedup_distance"] == 6
    assert set(version.meta["labels"]) >= set(BOX_COLOURS) and not config["promote"]
    # --promote-if-better: with nothing promoted yet, the first version is promoted
    assert "no version is promoted" in run.stdout and ModelStore(models).current("classifier") == "recipe"
    assert json.loads((version.path / "metrics.json").read_text())["validation"]["n"] > 0


def test_recipe_script_stops_with_a_clear_error_without_scenes(tmp_path: Path) -> None:
    env = _env(tmp_path / "nothing", tmp_path / "cache", tmp_path / "models")
    run = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert run.stderr.strip().splitlines()[-1].startswith("error: ") and "ilc2021" in run.stderr
    assert "Traceback" not in run.stderr
