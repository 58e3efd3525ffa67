"""Choose a detector version's two serving policies on the crowd-like set (issue 26).

    maskwatch calibrate-detector VOC_DIR --detector VERSION --crowd [--write]

Photos (`detect` on images, the upload API) and streams (capture -> detector -> tracker, `detect` on
videos) each get a score threshold, `min_face` and upscaling budget (`max_pixels`). Every (min_face,
max_pixels) pair of the grid whose cost stays within `max_cost` (pixels the network sees for a 640x480
frame, padded to multiples of 32 as it runs, over those at the version's current defaults) is run once on
the crowd-like frames and once on the validation photos at 1x, with scores down to the AP floor;
thresholds are swept on those results. The reference is the version's current `defaults` on the same
frames in the same run. Picked, for each policy, the pair and threshold with the highest crowd recall
(all faces, at the threshold) that keep:
- photos: crowd false positives per frame and 1x false positives per photo at or under the reference's,
  and 1x face AP@0.5 at least the reference's (photos must not lose on the plain photos);
- streams: crowd false positives per frame at or under `stream_fp_factor` (2) times the reference's. A
  face must be seen on `min_frames` (3) frames of a track before the tracker reports a person, so a
  detection that flickers on one frame costs nothing there; the factor bounds what persists.
Ties go to the higher threshold, then the cheaper pair. `--write` stores both as `policies` in the
version's meta.json, the photo policy also as its `defaults`, and the whole sweep in calibration_crowd.json.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from shared.atomic_file import write_atomically
from shared.detectors import detector_from_version, policy_defaults
from shared.model_store import META_FILE, ModelStore, ModelVersion, sha256_file
from training.detector.crowd import CrowdSet
from training.detector.data import split_scenes
from training.detector.evaluate import AP_SCORE_FLOOR, DetectorMetrics, evaluate_detector, evaluate_frames
from training.errors import TrainingError
from training.splits import ILC2021_VAL

log = logging.getLogger(__name__)
POLICY_MIN_FACES = (6.5, 8.0, 10.0, 12.0, 16.0)
POLICY_BUDGETS = (640 * 480, 576 * 600, 640 * 576)  # 1.0x, 1.125x and 1.2x the pixels of a 640x480 frame
POLICY_THRESHOLDS = (0.7, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2)
MAX_COST = 1.2  # network pixels for a 640x480 frame over the current defaults; measured ms run ~5 % above this ratio
STREAM_FP_FACTOR = 2.0
CALIBRATION_FILE = "calibration_crowd.json"


def frame_cost(detector: Any, width: int = 640, height: int = 480) -> int:
    """Pixels the network runs on for a width x height frame: scaled by the policy, padded to multiples of 32."""
    scale = detector.scale_for(width, height)
    return math.ceil(round(width * scale) / 32) * 32 * math.ceil(round(height * scale) / 32) * 32


def _measure(detector: Any, crowd: CrowdSet, val: list, threshold: float) -> dict[str, Any]:
    """Crowd and 1x metrics of one detector setting, with the threshold sweep (and `threshold`) of each."""
    sweep = tuple(sorted({*POLICY_THRESHOLDS, threshold}, reverse=True))
    crowd_m = evaluate_frames(detector, zip(crowd.images, crowd.scenes), threshold, sweep_thresholds=sweep,
                              looser_ious=())
    val_m = evaluate_detector(detector, val, threshold, sweep_thresholds=sweep, looser_ious=())
    return {"crowd": _summary(crowd_m), "val_1x": _summary(val_m)}


def _summary(m: DetectorMetrics) -> dict[str, Any]:
    total = sum(m.faces.values())
    sweep = {}
    for t, point in m.extra["thresholds"].items():
        recall_all = sum(point["recall"].get(k, 0) * n for k, n in m.faces.items()) / max(total, 1)
        sweep[t] = {"recall_all": round(recall_all, 4), **point}
    return {"ap50": round(m.ap50, 4), "ms_per_image": round(m.ms_per_image, 1), "faces": m.faces,
            "recall_by_size": m.recall_by_size, "thresholds": sweep}


def calibrate_policies(
    store: ModelStore, version: str, voc_dirs: list[Path], crowd: CrowdSet, val_list: Path = ILC2021_VAL,
    min_faces: tuple[float, ...] = POLICY_MIN_FACES, budgets: tuple[int, ...] = POLICY_BUDGETS,
    max_cost: float = MAX_COST, stream_fp_factor: float = STREAM_FP_FACTOR, threads: int = 2,
) -> dict[str, Any]:
    """Evaluate the reference and the grid; return both chosen policies with every measurement behind them."""
    loaded = store.load("detector", version)
    _, val = split_scenes(voc_dirs, val_list)
    current = policy_defaults(loaded.meta)  # today's defaults: the reference for the budgets
    ref_threshold = float(current.get("score_threshold", 0.5))
    ref_detector = detector_from_version(loaded, score_threshold=AP_SCORE_FLOOR, threads=threads)
    ref_cost = frame_cost(ref_detector)
    ref = {"min_face": ref_detector.min_face, "max_pixels": ref_detector.policy.max_pixels,
           "score_threshold": ref_threshold, "cost_640x480": 1.0,
           **_measure(ref_detector, crowd, val, ref_threshold)}
    ref_crowd = ref["crowd"]["thresholds"][str(ref_threshold)]
    ref_val = ref["val_1x"]["thresholds"][str(ref_threshold)]
    limits = {
        "photos": {"crowd_fp_per_image": ref_crowd["fp_per_image"], "val_fp_per_image": ref_val["fp_per_image"],
                   "val_ap50": ref["val_1x"]["ap50"]},
        "streams": {"crowd_fp_per_image": round(stream_fp_factor * ref_crowd["fp_per_image"], 4)},
        "cost_640x480": max_cost,
    }
    grid = []
    for min_face in min_faces:
        for budget in budgets:
            detector = detector_from_version(loaded, score_threshold=AP_SCORE_FLOOR, min_face=min_face,
                                             max_pixels=budget, threads=threads)
            row: dict[str, Any] = {"min_face": min_face, "max_pixels": budget,
                                   "cost_640x480": round(frame_cost(detector) / ref_cost, 4)}
            if row["cost_640x480"] <= max_cost:
                row |= _measure(detector, crowd, val, ref_threshold)
            log.info("min_face %g, max_pixels %d: cost %.2fx, crowd AP %s, 1x AP %s", min_face, budget,
                     row["cost_640x480"], row.get("crowd", {}).get("ap50"), row.get("val_1x", {}).get("ap50"))
            grid.append(row)
    policies = {name: _choose(grid, limits, name) for name in ("photos", "streams")}
    return {"version": loaded.name, "crowd": crowd.summary(), "val_list": val_list.name, "reference": ref,
            "limits": limits, "stream_fp_factor": stream_fp_factor, "grid": grid,
            "policies": {name: p["policy"] for name, p in policies.items()},
            "chosen": {name: p["measured"] for name, p in policies.items()}}


def _choose(grid: list[dict[str, Any]], limits: dict[str, Any], name: str) -> dict[str, Any]:
    """The (min_face, max_pixels, threshold) with the highest crowd recall within the policy's limits."""
    best: tuple | None = None
    for row in grid:
        if "crowd" not in row:
            continue  # over the cost budget
        if name == "photos" and row["val_1x"]["ap50"] < limits["photos"]["val_ap50"]:
            continue
        for t, point in row["crowd"]["thresholds"].items():
            val_point = row["val_1x"]["thresholds"][t]
            if point["fp_per_image"] > limits[name]["crowd_fp_per_image"]:
                continue
            if name == "photos" and val_point["fp_per_image"] > limits["photos"]["val_fp_per_image"]:
                continue
            key = (point["recall_all"], float(t), -row["cost_640x480"])
            if best is None or key > best[0]:
                best = (key, row, t)
    if best is None:
        raise TrainingError(f"no setting of the grid keeps the {name} limits (is the current setting in the grid?)")
    _, row, t = best
    policy = {"min_face": row["min_face"], "max_pixels": row["max_pixels"], "score_threshold": float(t)}
    measured = {"cost_640x480": row["cost_640x480"], "crowd_ap50": row["crowd"]["ap50"],
                "val_1x_ap50": row["val_1x"]["ap50"], "crowd": row["crowd"]["thresholds"][t],
                "val_1x": row["val_1x"]["thresholds"][t]}
    return {"policy": policy, "measured": measured}


def write_policies(store: ModelStore, version: str, result: dict[str, Any]) -> ModelVersion:
    """Store the policies in the version's meta.json (the photo policy also as `defaults`) and the sweep in
    calibration_crowd.json; the files meta.json already lists are checksummed again, others left unlisted."""
    loaded = store.load("detector", version)
    (loaded.path / CALIBRATION_FILE).write_text(json.dumps(result, indent=2) + "\n")
    meta = {k: v for k, v in loaded.meta.items() if k != "policies_from"}
    meta["policies"] = result["policies"]
    meta["defaults"] = result["policies"]["photos"]
    listed = [*meta["files"], CALIBRATION_FILE]
    meta["files"] = {rel: sha256_file(loaded.path / rel) for rel in dict.fromkeys(listed)}
    write_atomically(loaded.path / META_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return store.load("detector", version)
