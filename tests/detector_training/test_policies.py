"""Serving policies (issue 26): written with a version, read back, and used by the photo and the stream paths."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from maskwatch.detect_command import policy_pipelines
from shared.config import DetectorConfig
from shared.detectors import detector_from_version
from shared.live_pipeline import LivePipeline
from shared.model_store import ModelError, ModelStore
from training.detector.policies import CALIBRATION_FILE, _choose, write_policies

VERSION = "retinaface-masked-ilc2021-small2"
PHOTOS = {"min_face": 8.0, "max_pixels": 345600, "score_threshold": 0.55}
STREAMS = {"min_face": 6.5, "max_pixels": 307200, "score_threshold": 0.35}


@pytest.fixture()
def policy_store(tiny_store, tmp_path: Path) -> ModelStore:
    """A copy of the tiny store whose promoted detector carries a photo and a stream policy."""
    shutil.copytree(tiny_store.root, tmp_path / "store")
    store = ModelStore(tmp_path / "store")
    write_policies(store, VERSION, {"policies": {"photos": PHOTOS, "streams": STREAMS}, "grid": []})
    return store


def test_policies_are_written_and_read_back(policy_store: ModelStore) -> None:
    version = policy_store.load("detector", VERSION)  # checksums still valid
    assert version.meta["policies"] == {"photos": PHOTOS, "streams": STREAMS}
    assert version.meta["defaults"] == PHOTOS
    assert CALIBRATION_FILE in version.meta["files"]
    assert json.loads((version.path / CALIBRATION_FILE).read_text())["policies"]["streams"] == STREAMS
    photos = detector_from_version(version, policy="photos", threads=1)
    streams = detector_from_version(version, policy="streams", threads=1)
    assert (photos.score_threshold, photos.min_face, photos.policy.max_pixels) == (0.55, 8.0, 345600)
    assert (streams.score_threshold, streams.min_face, streams.policy.max_pixels) == (0.35, 6.5, 307200)
    # an explicit option wins over the policy; no policy means `defaults`
    assert detector_from_version(version, policy="streams", score_threshold=0.7, threads=1).score_threshold == 0.7
    assert detector_from_version(version, threads=1).score_threshold == 0.55
    with pytest.raises(ModelError, match="unknown detector policy"):
        detector_from_version(version, policy="videos")


def test_versions_without_policies_keep_their_defaults(tiny_store: ModelStore) -> None:
    version = tiny_store.load("detector", "retinaface-masked-ilc2021")  # the stage-1 model: never calibrated
    assert "policies" not in version.meta and "defaults" not in version.meta
    for policy in ("photos", "streams"):
        detector = detector_from_version(version, policy=policy, threads=1)
        assert (detector.score_threshold, detector.min_face) == (0.5, 16.0)  # the class defaults


def test_stream_services_use_the_stream_policy(policy_store: ModelStore) -> None:
    models = LivePipeline(policy_store, **DetectorConfig(threads=1).detector_options())
    assert models.pipeline.detector.score_threshold == 0.35
    assert models.pipeline.detector.min_face == 6.5
    given = LivePipeline(policy_store, **DetectorConfig(threads=1, score_threshold=0.8).detector_options())
    assert given.pipeline.detector.score_threshold == 0.8  # the config wins


def test_uploads_use_the_photo_policy(policy_store: ModelStore) -> None:
    from services.dashboard.photo import PhotoDetector

    detector = PhotoDetector(policy_store, max_pixels=12_000_000).pipeline().detector
    assert (detector.score_threshold, detector.policy.max_pixels) == (0.55, 345600)


def test_detect_command_uses_photos_for_images_and_streams_for_videos(policy_store: ModelStore) -> None:
    args = argparse.Namespace(models=policy_store.root, classifier=None, detector=None, min_face=None,
                              threshold=None, nms=0.4, upscale_pixels=None)
    pipelines = policy_pipelines(args, streams=True)
    assert pipelines["photos"].detector.score_threshold == 0.55
    assert pipelines["streams"].detector.score_threshold == 0.35
    assert pipelines["streams"].classifier is pipelines["photos"].classifier
    assert set(policy_pipelines(args, streams=False)) == {"photos"}  # no video: no second detector
    args.threshold = 0.9
    assert {p.detector.score_threshold for p in policy_pipelines(args, streams=True).values()} == {0.9}


def _row(min_face: float, cost: float, val_ap: float, points: dict[str, tuple[float, float, float]]) -> dict:
    """A grid row: per threshold (crowd recall, crowd FP/frame, 1x FP/photo)."""
    return {"min_face": min_face, "max_pixels": 307200, "cost_640x480": cost,
            "crowd": {"ap50": 0.8, "thresholds": {t: {"recall_all": r, "fp_per_image": fp} for t, (r, fp, _) in
                                                  points.items()}},
            "val_1x": {"ap50": val_ap, "thresholds": {t: {"fp_per_image": v} for t, (_, _, v) in points.items()}}}


def test_choice_keeps_each_policys_limits() -> None:
    limits = {"photos": {"crowd_fp_per_image": 0.8, "val_fp_per_image": 0.4, "val_ap50": 0.89},
              "streams": {"crowd_fp_per_image": 1.6}, "cost_640x480": 1.25}
    grid = [
        _row(8, 1.0, 0.893, {"0.6": (0.70, 0.77, 0.38), "0.5": (0.74, 0.95, 0.45), "0.3": (0.80, 1.5, 0.7)}),
        _row(6.5, 1.2, 0.880, {"0.6": (0.73, 0.70, 0.35), "0.5": (0.76, 0.80, 0.39), "0.3": (0.82, 1.4, 0.6)}),
        {"min_face": 5, "max_pixels": 307200, "cost_640x480": 1.4},  # over the cost budget: not measured
    ]
    photos = _choose(grid, limits, "photos")
    assert photos["policy"] == {"min_face": 8, "max_pixels": 307200, "score_threshold": 0.6}  # 6.5 loses 1x AP
    streams = _choose(grid, limits, "streams")
    assert streams["policy"] == {"min_face": 6.5, "max_pixels": 307200, "score_threshold": 0.3}
    assert streams["measured"]["crowd"]["fp_per_image"] <= 1.6
