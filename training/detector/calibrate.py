"""Choose a detector version's serving defaults (min_face, score threshold, upscaling budget) on the validation split.

    maskwatch calibrate-detector VOC_DIR --detector VERSION [--write]

For every (min_face, max_pixels) pair of the grid the validation photos are run once per scale
(1, 0.5, 0.33 by default) with scores down to the AP floor; thresholds are swept on those results.
Picked, in this order:
- `max_pixels` among `--budgets` (default 640 x 480 only: frames of that size and larger are never
  upscaled, so the camera-speed cost is that of one pass at their own size);
- `min_face` and `max_pixels`: the highest mean face AP@0.5 over the scales;
- `score_threshold`: the lowest threshold of the sweep whose false positives per image at 1x stay
  at or under `--max-fp` (default: the shipped detector's today, 0.45), i.e. the most recall allowed.
`--write` stores the choice as `defaults` in the version's meta.json (with the sweep in
`calibration.json`), so `maskwatch detect`, the services and `eval-detector` use it with no flag.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Any

from shared.detectors import detector_from_version
from shared.model_store import ModelStore
from training.detector.data import split_scenes
from training.detector.evaluate import AP_SCORE_FLOOR, evaluate_detector
from training.splits import ILC2021_VAL

log = logging.getLogger(__name__)
MIN_FACES = (5.0, 6.5, 8.0, 10.0)
BUDGETS = (640 * 480,)
THRESHOLDS = (0.7, 0.6, 0.5, 0.45, 0.4, 0.35, 0.3)
SHIPPED_FP_PER_IMAGE = 0.4465  # retinaface-masked-ilc2021-640 at its defaults on the validation photos


def calibrate(
    store: ModelStore, version: str, voc_dirs: list[Path], val_list: Path = ILC2021_VAL,
    scales: tuple[float, ...] = (1.0, 0.5, 0.33), min_faces: tuple[float, ...] = MIN_FACES,
    budgets: tuple[int, ...] = BUDGETS, max_fp: float = SHIPPED_FP_PER_IMAGE, threads: int = 2,
) -> dict[str, Any]:
    """Evaluate the grid and return the chosen defaults with every measurement behind them."""
    loaded = store.load("detector", version)
    _, val = split_scenes(voc_dirs, val_list)
    grid = []
    for min_face, budget in itertools.product(min_faces, budgets):
        detector = detector_from_version(loaded, score_threshold=AP_SCORE_FLOOR, min_face=min_face,
                                         max_pixels=budget, threads=threads)
        row: dict[str, Any] = {"min_face": min_face, "max_pixels": budget, "scales": {}}
        for scale in scales:
            m = evaluate_detector(detector, val, 0.5, scale, sweep_thresholds=THRESHOLDS, looser_ious=())
            sweep = {t: {"recall_all": _mean_recall(v, m.faces), **v} for t, v in m.extra["thresholds"].items()}
            row["scales"][f"{scale:g}"] = {
                "ap50": round(m.ap50, 4), "recall_all": round(m.recall_all, 4),
                "ms_per_image": round(m.ms_per_image, 1), "recall_by_size": m.recall_by_size, "thresholds": sweep,
            }
        row["mean_ap50"] = round(sum(s["ap50"] for s in row["scales"].values()) / len(scales), 4)
        log.info("min_face %g, max_pixels %d: AP %s (mean %.4f)", min_face, budget,
                 {k: v["ap50"] for k, v in row["scales"].items()}, row["mean_ap50"])
        grid.append(row)
    best = max(grid, key=lambda r: (r["mean_ap50"], -r["max_pixels"]))
    sweep = best["scales"].get("1", {}).get("thresholds", {})
    allowed = [float(t) for t, v in sweep.items() if v["fp_per_image"] <= max_fp]
    threshold = min(allowed) if allowed else max(THRESHOLDS)
    defaults = {"min_face": best["min_face"], "max_pixels": best["max_pixels"], "score_threshold": threshold}
    return {"version": loaded.name, "defaults": defaults, "max_fp_per_image": max_fp,
            "scales": list(scales), "val_list": val_list.name, "grid": grid}


def _mean_recall(point: dict[str, Any], faces: dict[str, int]) -> float:
    total = sum(faces.values())
    return round(sum(point["recall"].get(k, 0) * n for k, n in faces.items()) / max(total, 1), 4)


def write_defaults(store: ModelStore, version: str, result: dict[str, Any]) -> None:
    """Store the chosen defaults in the version's meta.json and the sweep in calibration.json."""
    loaded = store.load("detector", version)
    (loaded.path / "calibration.json").write_text(json.dumps(result, indent=2) + "\n")
    meta = {k: v for k, v in loaded.meta.items() if k not in ("files", "kind", "version", "policies_from")}
    meta["defaults"] = result["defaults"]
    store.finalize("detector", loaded.path, meta)
