"""The wheel built from this repository works from any folder: shipped models included and found.

Built with the test interpreter's setuptools, installed with `pip install --no-deps --target` into a
fresh folder and run from another temporary folder, with only that folder and the already installed
dependencies on the path (`python -S`: no .pth files, so the editable install of this checkout is not
seen).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import tomllib

from shared.model_store import KINDS, ModelStore
from tests.conftest import REPO

pytestmark = pytest.mark.slow
SKIP = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", "test-output",
                              ".pytest_cache", "node_modules", ".ruff_cache")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """maskwatch-*.whl built from a copy of the checkout (no stale build/ folder can leak into it)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    shutil.copytree(REPO, source, ignore=SKIP)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                          "-w", str(root / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    [built] = (root / "dist").glob("maskwatch-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target",
                          str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return target


def _run(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MASKWATCH_", "PYTHON"))}
    env["PYTHONPATH"] = os.pathsep.join([str(installed), sysconfig.get_paths()["purelib"],
                                         sysconfig.get_paths()["platlib"]])
    return subprocess.run([sys.executable, "-S", "-m", "maskwatch.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_wheel_holds_the_promoted_and_rollback_models_only(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    store = ModelStore(REPO / "models")
    for kind in KINDS:
        ship = {store.current(kind), store.rollback_target(kind)}
        assert None not in ship, f"models/{kind}: CURRENT and ROLLBACK name the versions the wheel ships"
        for version in store.versions(kind):
            files = [p for p in (REPO / "models" / kind / version).rglob("*") if p.is_file()]
            inside = [f"maskwatch/models/{p.relative_to(REPO / 'models').as_posix()}" in names for p in files]
            assert all(inside) if version in ship else not any(inside), f"{kind} {version}"
        assert {f"maskwatch/models/{kind}/CURRENT", f"maskwatch/models/{kind}/ROLLBACK"} <= names
    assert {"services/dashboard/static/index.html", "training/splits/ilc2021_val.txt",
            "training/labels/ilc2021_corrections.csv"} <= names  # other data


def test_the_wheel_metadata_has_an_spdx_license_and_its_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        [meta] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(meta).decode()
        assert "License-Expression: MIT" in text and "License-File: LICENSE" in text
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in archive.namelist())


def test_the_wheel_metadata_lists_the_dependencies(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        [meta] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(meta).decode()
    listed = {re.split(r"[\s\[<>=;!~]", line.removeprefix("Requires-Dist: "), maxsplit=1)[0].lower()
              for line in text.splitlines() if line.startswith("Requires-Dist: ") and "extra ==" not in line}
    wanted = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert {re.split(r"[\s\[<>=;!~]", dep, maxsplit=1)[0].lower() for dep in wanted} == listed
    assert "Provides-Extra: train" in text


def test_installed_wheel_finds_its_models_and_detects_from_any_folder(installed: Path, tmp_path: Path,
                                                                     scene_photos: list[Path]) -> None:
    elsewhere = tmp_path / "somewhere"
    elsewhere.mkdir()
    shutil.copy(scene_photos[4], elsewhere / "photo.jpg")
    where = _run(installed, elsewhere, "models", "path")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()) == (installed / "maskwatch" / "models").resolve()
    listed = _run(installed, elsewhere, "models", "list")
    current = (REPO / "models" / "classifier" / "CURRENT").read_text().strip()
    assert f"* {current}" in listed.stdout and "INVALID" not in listed.stdout, listed.stdout + listed.stderr

    out = _run(installed, elsewhere, "detect", "photo.jpg", "--json", "faces.jsonl")
    assert out.returncode == 0, out.stderr[-3000:]
    [line] = [json.loads(x) for x in (elsewhere / "faces.jsonl").read_text().splitlines()]
    assert line["faces"] and {f["label"] for f in line["faces"]} <= {"with_mask", "without_mask", "mask_incorrect"}
    assert "Traceback" not in out.stderr
