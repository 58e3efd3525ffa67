"""Back-end selection (shared/backends.py): config override, accuracy calibration, CPU instructions, timing
once and caching, and the OpenVINO back ends giving the default runtimes' answers on the real models."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest

from shared import backends
from shared.backends import CALIBRATION_FILE, choose
from shared.model_store import ModelError, ModelStore, ModelVersion
from tests.conftest import REPO

pytest.importorskip("openvino")

BF16 = frozenset({"avx2", "avx512f", "avx512_bf16"})


@pytest.fixture
def cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU with AVX512-BF16."""
    monkeypatch.setattr(backends, "cpu_info", lambda: ("Test CPU", BF16))


def version(tmp_path: Path, calibration: dict | None) -> ModelVersion:
    tmp_path.mkdir(parents=True, exist_ok=True)
    if calibration is not None:
        (tmp_path / CALIBRATION_FILE).write_text(json.dumps({"backends": calibration}))
    return ModelVersion("classifier", "v1", tmp_path, {})


def timed(ms: dict[str, float], built: list[str]):
    def build(name: str):
        built.append(name)
        return lambda: time.sleep(ms[name] / 1000)
    return build


def test_without_calibration_the_default_runtime_is_kept_and_nothing_is_timed(tmp_path: Path, cpu) -> None:
    built: list[str] = []
    choice = choose("classifier", version(tmp_path / "v", None), "auto", timed({}, built), tmp_path / "cache.json")
    assert choice.backend == "tflite" and "calibration" in choice.reason and built == []


def test_the_fastest_calibrated_back_end_is_chosen_once_and_cached(tmp_path: Path, cpu) -> None:
    calibration = {"openvino-fp32": {"passed": True}, "openvino-bf16": {"passed": True, "summary": "AP -0.001"}}
    v, cache, built = version(tmp_path / "v", calibration), tmp_path / "cache.json", []
    choice = choose("classifier", v, "auto", timed({"tflite": 12, "openvino-fp32": 14, "openvino-bf16": 5}, built),
                    cache)
    assert choice.backend == "openvino-bf16" and sorted(built) == ["openvino-bf16", "openvino-fp32", "tflite"]
    assert "fastest on Test CPU" in choice.reason and "AP -0.001" in choice.reason
    again = choose("classifier", v, "auto", timed({}, built), cache)  # no timing the second time
    assert again.backend == "openvino-bf16" and again.reason.endswith("(cached)") and len(built) == 3


def test_a_newly_calibrated_back_end_is_timed_again_despite_the_cache(tmp_path: Path, cpu) -> None:
    v, cache, built = version(tmp_path / "v", {"openvino-fp32": {"passed": True}}), tmp_path / "cache.json", []
    ms = {"tflite": 12, "openvino-fp32": 8, "openvino-bf16": 3}
    assert choose("classifier", v, "auto", timed(ms, built), cache).backend == "openvino-fp32"
    (v.path / CALIBRATION_FILE).write_text(json.dumps({"backends": {"openvino-fp32": {"passed": True},
                                                                    "openvino-bf16": {"passed": True}}}))
    choice = choose("classifier", v, "auto", timed(ms, built), cache)
    assert choice.backend == "openvino-bf16" and not choice.reason.endswith("(cached)") and len(built) == 5


def test_back_ends_that_failed_the_guard_or_lack_cpu_support_are_never_picked(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    calibration = {"openvino-fp32": {"passed": False}, "openvino-bf16": {"passed": True}}
    monkeypatch.setattr(backends, "cpu_info", lambda: ("AVX2 CPU", frozenset({"avx2"})))
    built: list[str] = []
    choice = choose("classifier", version(tmp_path / "v", calibration), "auto", timed({}, built), tmp_path / "c.json")
    assert choice.backend == "tflite" and built == []  # bf16 needs AVX512-BF16 or AMX, fp32 failed its guard
    with pytest.raises(ModelError, match="AVX512-BF16 or AMX"):
        choose("classifier", version(tmp_path / "v", calibration), "openvino-bf16", timed({}, built))


def test_int8_is_picked_only_where_its_guard_passed_and_the_cpu_has_vnni_or_amx(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vnni = frozenset({"avx2", "avx512f", "avx512_vnni"})
    monkeypatch.setattr(backends, "cpu_info", lambda: ("VNNI CPU", vnni))
    fast_int8 = {"tflite": 12, "openvino-fp32": 14, "openvino-int8": 2}
    failed = version(tmp_path / "failed", {"openvino-fp32": {"passed": True},
                                           "openvino-int8": {"passed": False, "label_accuracy_change_points": -0.8}})
    built: list[str] = []
    choice = choose("classifier", failed, "auto", timed(fast_int8, built), tmp_path / "c1.json")
    assert choice.backend == "tflite" and sorted(built) == ["openvino-fp32", "tflite"]  # int8 never even loaded
    passed = version(tmp_path / "passed", {"openvino-int8": {"passed": True, "summary": "label accuracy -0.1"}})
    built = []
    choice = choose("classifier", passed, "auto", timed(fast_int8, built), tmp_path / "c2.json")
    assert choice.backend == "openvino-int8" and "label accuracy -0.1" in choice.reason
    monkeypatch.setattr(backends, "cpu_info", lambda: ("AVX2 CPU", frozenset({"avx2"})))
    built = []
    choice = choose("classifier", passed, "auto", timed(fast_int8, built), tmp_path / "c3.json")
    assert choice.backend == "tflite" and built == []  # no VNNI, no AMX


def test_a_calibrated_back_end_that_cannot_load_is_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(backends, "cpu_info", lambda: ("AMX CPU", frozenset({"amx_int8", "amx_bf16"})))
    v = version(tmp_path / "v", {"openvino-int8": {"passed": True}, "openvino-bf16": {"passed": True}})

    def build(name: str):
        if name == "openvino-int8":  # the int8 model is not in this copy of the models
            backends.model_for(name, tmp_path / "v" / "model.tflite")
        return lambda: time.sleep({"tflite": 0.010, "openvino-bf16": 0.002}[name])

    with caplog.at_level(logging.WARNING):
        choice = choose("classifier", v, "auto", build, tmp_path / "c.json")
    assert choice.backend == "openvino-bf16"
    assert any("openvino-int8 left out: no int8 model model-int8.xml" in r.getMessage() for r in caplog.records)


def test_a_back_end_set_in_the_config_wins_and_an_unknown_one_is_refused(tmp_path: Path, cpu) -> None:
    v = version(tmp_path / "v", {"openvino-bf16": {"passed": False}})
    assert choose("classifier", v, "openvino-bf16", timed({}, [])).reason == "set in the config"
    with pytest.raises(ModelError, match="unknown detector back end 'tensorrt'"):
        choose("detector", v, "tensorrt", timed({}, []))


def test_openvino_runs_the_shipped_models_with_the_same_answers(caplog: pytest.LogCaptureFixture,
                                                                scene_photos) -> None:
    import cv2

    from shared.pipeline import load_pipeline

    store = ModelStore(REPO / "models")
    image = cv2.imread(str(scene_photos[4]))
    with caplog.at_level(logging.INFO):
        reference = load_pipeline(store, backend="onnxruntime", classifier_backend="tflite").process(image)
        openvino = load_pipeline(store, backend="openvino-fp32", classifier_backend="openvino-fp32")
    assert openvino.detector.backend == "openvino-fp32" and openvino.classifier.backend == "openvino-fp32"
    assert any("runs on openvino-fp32: set in the config" in r.getMessage() for r in caplog.records)
    faces = openvino.process(image)
    assert len(faces) == len(reference) >= 2
    for a, b in zip(faces, reference):
        assert np.abs(np.array(a.box) - b.box).max() <= 1 and a.label == b.label
        assert abs(a.confidence - b.confidence) < 1e-3


def test_the_config_validates_back_end_names() -> None:
    from shared.config import ConfigError, parse_config

    config = parse_config("detector: {detector_backend: openvino-bf16, classifier_backend: tflite}\n")
    assert config.detector.detector_options()["backend"] == "openvino-bf16"
    with pytest.raises(ConfigError, match="detector_backend"):
        parse_config("detector: {detector_backend: cuda}\n")



def test_openvino_models_are_not_pinned_to_a_core() -> None:
    """Pinned (OpenVINO's default), the detection thread of the overlapped pipeline and the classifier's stream
    land on the same core and take turns there: half the frames per second on two cores (docs/speed.md)."""
    store = ModelStore(REPO / "models")
    detector = next(store.load("detector").path.glob("*.onnx"))
    model = backends.OpenVinoModel(detector, "f32", threads=1)
    assert model.compiled.get_property("ENABLE_CPU_PINNING") is False
