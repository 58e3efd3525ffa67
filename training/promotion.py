"""`--promote-if-better`: a new classifier replaces the promoted one only if it is measurably not worse.

Both versions run behind the same detector on the same validation photos (by default the committed
held-out list training/splits/ilc2021_val.txt of ../shared/data/scenes/ilc2021, with the committed label
corrections). The new one wins if its label accuracy and mAP@0.5 are not lower and no class's recall
drops by more than one point (`RECALL_SLACK`). The comparison is printed either way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.classifier import FaceClassifier
from shared.face_detector import RetinaFaceDetector
from shared.model_store import ModelError, ModelStore
from shared.pipeline import Pipeline
from training.errors import TrainingError
from training.evaluate import evaluate_scenes
from training.splits import read_list
from training.voc import load_voc

REPO = Path(__file__).resolve().parents[1]
RECALL_SLACK = 0.01
DEFAULT_PHOTOS = REPO / "training" / "splits" / "ilc2021_val.txt"


def default_scenes() -> Path:
    """$MASKWATCH_DATA_DIR/scenes/ilc2021, else ../shared/data/scenes/ilc2021 beside the repo."""
    data = os.environ.get("MASKWATCH_DATA_DIR")
    return Path(data) / "scenes" / "ilc2021" if data else REPO.parent / "shared" / "data" / "scenes" / "ilc2021"


@dataclass(frozen=True)
class Verdict:
    """The comparison of a candidate with the promoted version."""

    candidate: str
    promoted: str | None
    better: bool
    reasons: list[str]
    rows: list[tuple[str, float | None, float | None]]  # metric, promoted, candidate

    def format(self) -> str:
        """A table of both versions' figures and the decision."""
        lines = [f"{'':<26}{self.promoted or '(none promoted)':>28}{self.candidate:>28}"]
        for name, old, new in self.rows:
            lines.append(f"{name:<26}{_fmt(old):>28}{_fmt(new):>28}")
        verdict = "promote" if self.better else "keep " + (self.promoted or "")
        return "\n".join(lines + [f"decision: {verdict}" + (f" ({'; '.join(self.reasons)})" if self.reasons else "")])


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _figures(report: dict[str, Any]) -> dict[str, float]:
    matched = report["matched_faces"]
    out = {"label accuracy": matched["accuracy"], "mAP@0.5": report["map50"]}
    for label, row in matched["per_class"].items():
        if row["support"]:
            out[f"recall {label}"] = row["recall"]
    return out


def judge(candidate: str, promoted: str, new: dict[str, float], old: dict[str, float]) -> Verdict:
    """Apply the rule to the figures of the candidate (`new`) and of the promoted version (`old`)."""
    rows = [(n, old.get(n), new.get(n)) for n in dict.fromkeys([*old, *new])]
    reasons = []
    for name in ("label accuracy", "mAP@0.5"):
        if new[name] < old[name]:
            reasons.append(f"{name} {new[name]:.4f} < {old[name]:.4f}")
    for name, value in old.items():
        if name.startswith("recall ") and new.get(name, 0.0) < value - RECALL_SLACK:
            reasons.append(f"{name} drops {value - new.get(name, 0.0):.4f} (more than {RECALL_SLACK:.2f})")
    return Verdict(candidate, promoted, not reasons, reasons, rows)


def compare(store: ModelStore, candidate: str, scenes: str | Path | None = None, photos: str | Path | None = None,
            detector: str | None = None, threads: int = 2) -> Verdict:
    """Evaluate `candidate` and the promoted classifier on the validation photos; raises TrainingError/ModelError."""
    promoted = store.current("classifier")
    if promoted == candidate:
        raise ModelError(f"{candidate} is already the promoted classifier")
    store.load("classifier", candidate)  # a broken candidate fails here, before any evaluation
    if promoted is None:
        return Verdict(candidate, None, True, ["no version is promoted"], [])
    scenes = Path(scenes) if scenes else default_scenes()
    photos = Path(photos) if photos else DEFAULT_PHOTOS
    if not scenes.is_dir():
        raise TrainingError(f"{scenes}: validation photos not found (pass --val-scenes VOC_DIR)")
    voc = load_voc(scenes, stems=set(read_list(photos)))
    det = RetinaFaceDetector.from_version(store.load("detector", detector), threads=threads)

    def figures(name: str) -> dict[str, float]:
        classifier = FaceClassifier.from_version(store.load("classifier", name), threads=threads)
        report = evaluate_scenes(Pipeline(det, classifier), voc)
        if not report["matched_faces"]["n"]:
            raise TrainingError(f"{scenes}: the detector finds none of the labelled faces; nothing to compare")
        return _figures(report)

    return judge(candidate, promoted, figures(candidate), figures(promoted))


def promote_if_better(store: ModelStore, candidate: str, **options: Any) -> Verdict:
    """Compare, print the comparison, promote when the candidate wins."""
    verdict = compare(store, candidate, **options)
    print(verdict.format(), flush=True)
    if verdict.better:
        store.promote("classifier", candidate)
    return verdict
