"""Write a fine-tuned detector as a model-store version: the base ONNX graph with the trained weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.model_store import ModelError, ModelStore, ModelVersion

if TYPE_CHECKING:
    import keras

MODEL_FILE = "model.onnx"


def start_version(store: ModelStore, name: str) -> Path:
    """A new, empty version folder (refuses to overwrite an existing version)."""
    folder = store.kind_dir("detector") / name
    if folder.exists():
        raise ModelError(f"detector version {name!r} already exists in {store.kind_dir('detector')}")
    folder.mkdir(parents=True)
    return folder


def write_model(model: keras.Model, base: ModelVersion, folder: Path) -> Path:
    """The serving ONNX file (same graph as the base version, new weights) plus the base's licence."""
    from training.detector.model import export_onnx

    path = export_onnx(model, base.file(), folder / MODEL_FILE)
    if (base.path / "LICENSE").is_file():
        shutil.copy2(base.path / "LICENSE", folder / "LICENSE")
    return path


def finish_version(
    store: ModelStore, folder: Path, base: ModelVersion, training: dict[str, Any], metrics: dict[str, Any],
    retinaface: dict[str, Any] | None = None,
) -> ModelVersion:
    """Write training log and metrics, then meta.json last (which marks the version complete); `retinaface`: the
    new version's anchor layout where it is not the base's."""
    (folder / "training.json").write_text(json.dumps(training, indent=2) + "\n")
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    fmt = base.meta.get("format", "retinaface-onnx")
    network = "YuNet" if fmt == "yunet-onnx" else "RetinaFace MobileNet-0.25"
    meta = {
        "description": f"{network} fine-tuned from {base.name} on masked, bare and badly-masked "
        "faces (ilc2021 scene photos, validation split held out); see docs/detector.md.",
        "format": fmt,
        "model_file": MODEL_FILE,
        "base_version": base.name,
        "validation": metrics.get("candidate", {}),
    }
    for key in ("retinaface", "yunet"):  # the format's own settings carry over from the base
        if key in base.meta:
            meta[key] = base.meta[key]
    if retinaface:
        meta["retinaface"] = retinaface
    if "defaults" in base.meta or "policies" in base.meta:  # served as the base was until calibrated
        meta |= {k: base.meta[k] for k in ("defaults", "policies") if k in base.meta}
        meta["policies_from"] = base.name
    return store.finalize("detector", folder, meta)
