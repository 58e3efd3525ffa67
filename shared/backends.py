"""Inference back ends: which runtime and precision runs each model, chosen at load time for the CPU at hand.

Back ends: the detector runs in ONNX Runtime (`onnxruntime`) or OpenVINO; the classifier in TFLite
(`tflite`) or OpenVINO; OpenVINO in fp32 (`openvino-fp32`) or with bf16 inference precision
(`openvino-bf16`, on CPUs with AVX512-BF16 or AMX), or int8 (`openvino-int8`, on CPUs with VNNI or AMX).
OpenVINO reads the ONNX detector and the TFLite classifier as they are; the int8 back end reads the int8 model
committed beside them (`int8_file`, made by `python -m training.quantize_openvino`).

`auto` (the default) picks the fastest back end that is allowed for the model version: the runtime's
own default always is; another one only when the version's committed calibration (`backends.json` in
the version's folder, written by `python benchmarks/backends.py`) says it passed the accuracy guard
(face AP within 0.005, label accuracy within 0.5 point of fp32), and only where the CPU has the
instructions it needs. Speed is measured once per CPU model, model version, OpenVINO version and set of
allowed back ends at the first load, and the decision is cached (`$MASKWATCH_CACHE_DIR`, else
~/.cache/maskwatch/backends.json).
One log line says what was chosen and why. `detector.detector_backend` / `detector.classifier_backend`
in the config override it.

Public API: `BACKENDS`, `DEFAULTS`, `cpu_info()`, `choose(kind, version, requested, build) -> Choice`,
`time_calls(runs, rounds)`, `OpenVinoModel`, `model_for(backend, path)`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from shared.model_store import ModelError, ModelVersion

log = logging.getLogger(__name__)

BACKENDS = {"detector": ("onnxruntime", "openvino-fp32", "openvino-bf16", "openvino-int8"),
            "classifier": ("tflite", "openvino-fp32", "openvino-bf16", "openvino-int8")}
DEFAULTS = {"detector": "onnxruntime", "classifier": "tflite"}
CALIBRATION_FILE = "backends.json"
NEEDS = {"openvino-bf16": ({"avx512_bf16", "amx_bf16"}, "AVX512-BF16 or AMX"),  # any of these CPU flags
         "openvino-int8": ({"avx512_vnni", "avx_vnni", "amx_int8"}, "AVX512-VNNI, AVX-VNNI or AMX")}
TIMING_RUNS = 9
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


@dataclass(frozen=True)
class Choice:
    """The back end picked for one model, and the reason (for the log line)."""

    backend: str
    reason: str


@lru_cache(maxsize=1)
def cpu_info() -> tuple[str, frozenset[str]]:
    """The CPU model name and its instruction-set flags (from /proc/cpuinfo; empty where there is none)."""
    name, flags = "unknown CPU", frozenset()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return name, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and name == "unknown CPU":
            name = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = frozenset(value.split())
    return name, flags


def openvino_version() -> str | None:
    """The installed OpenVINO version, or None when it is not installed."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.__version__


def supported(backend: str, flags: frozenset[str] | None = None) -> str | None:
    """Why `backend` cannot run here (None: it can)."""
    if backend.startswith("openvino") and openvino_version() is None:
        return "openvino is not installed"
    needed = NEEDS.get(backend)
    flags = cpu_info()[1] if flags is None else flags
    if needed and not needed[0] & flags:
        return f"the CPU lacks {needed[1]}"
    return None


def calibration(version: ModelVersion) -> dict[str, dict[str, Any]]:
    """The version's accuracy calibration per back end ({} when there is none or it is unreadable)."""
    path = version.path / CALIBRATION_FILE
    try:
        data = json.loads(path.read_text())
        return {str(k): dict(v) for k, v in data["backends"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def choose(kind: str, version: ModelVersion, requested: str,
           build: Callable[[str], Callable[[], object]], cache: Path | None = None) -> Choice:
    """The back end to load `version` with. `build(backend)` loads it and returns one timed inference call.

    Raises ModelError when a back end asked for by name cannot run here.
    """
    default = DEFAULTS[kind]
    if requested != "auto":
        if requested not in BACKENDS[kind]:
            raise ModelError(f"unknown {kind} back end {requested!r} (one of auto, {', '.join(BACKENDS[kind])})")
        problem = supported(requested)
        if problem:
            raise ModelError(f"{kind} back end {requested} cannot run here: {problem}")
        return Choice(requested, "set in the config")
    guard = calibration(version)
    allowed = [default] + [b for b in BACKENDS[kind] if b != default and guard.get(b, {}).get("passed") is True
                           and supported(b) is None]
    if len(allowed) == 1:
        return Choice(default, "no other back end passed this version's accuracy calibration on a CPU like this")
    model, _flags = cpu_info()
    key = f"{kind}|{version.name}|{model}|openvino {openvino_version()}|{','.join(allowed)}"  # new candidates: timed
    cached = _read_cache(cache).get(key)
    if cached and cached.get("backend") in allowed:
        return Choice(cached["backend"], cached["reason"] + " (cached)")
    runs = {}
    for backend in allowed:
        try:
            runs[backend] = build(backend)
        except ModelError as exc:  # e.g. a calibrated int8 file missing from this copy of the models
            if backend == default:
                raise
            log.warning("%s %s: back end %s left out: %s", kind, version.name, backend, exc)
    if len(runs) == 1:
        return Choice(default, "no other calibrated back end could be loaded")
    timings = time_calls(runs)
    best = min(timings, key=timings.__getitem__)
    shown = ", ".join(f"{b} {ms:.1f} ms" for b, ms in sorted(timings.items(), key=lambda item: item[1]))
    details = guard.get(best, {}).get("summary", "")
    reason = (f"fastest on {model} ({shown})"
              + (f"; accuracy guard passed: {details}" if best != default and details else ""))
    _write_cache(cache, key, {"backend": best, "reason": reason, "timings_ms": timings})
    return Choice(best, reason)


def time_calls(runs: dict[str, Callable[[], object]], rounds: int = TIMING_RUNS) -> dict[str, float]:
    """Milliseconds of one call of each, the fastest of `rounds` interleaved rounds (after two warm-up calls):
    load from other work falls on every candidate alike, and the least disturbed call is the cost."""
    for run in runs.values():
        run()
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    return {name: round(min(values) * 1000, 2) for name, values in times.items()}


def cache_path(cache: Path | None = None) -> Path:
    """Where decisions are cached."""
    if cache is not None:
        return cache
    root = os.environ.get("MASKWATCH_CACHE_DIR") or Path.home() / ".cache" / "maskwatch"
    return Path(root) / "backends.json"


def _read_cache(cache: Path | None) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(cache_path(cache).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(cache: Path | None, key: str, value: dict[str, Any]) -> None:
    path = cache_path(cache)
    data = _read_cache(cache)
    data[key] = value
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
    except OSError as exc:  # a read-only home: decide again next time
        log.debug("back-end decision not cached at %s: %s", path, exc)


class OpenVinoModel:
    """One model compiled by OpenVINO for the CPU: `run(inputs) -> outputs` (one inference at a time)."""

    def __init__(self, model: bytes | str | Path, precision: str, threads: int = 0,
                 batch_dynamic: bool = False) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise ModelError("openvino is not installed (pip install openvino)") from None
        core = ov.Core()
        try:
            graph = core.read_model(model, b"") if isinstance(model, bytes) else core.read_model(str(model))
            if batch_dynamic:
                shape = graph.inputs[0].get_partial_shape()
                shape[0] = -1
                graph.reshape({graph.inputs[0]: shape})
            # no pinning: OpenVINO pins each model's stream to the first core, so a detector and a classifier run
            # side by side (shared/overlap.py) or two workers on one machine would share one core between them
            config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
                                      "NUM_STREAMS": 1, "ENABLE_CPU_PINNING": False}
            if threads:
                config["INFERENCE_NUM_THREADS"] = threads
            self.compiled = core.compile_model(graph, "CPU", config)
        except RuntimeError as exc:
            raise ModelError(f"OpenVINO cannot load the model: {' '.join(str(exc).split())[:300]}") from None
        self._request = self.compiled.create_infer_request()
        self._outputs = list(self.compiled.outputs)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Outputs of one inference, in the model's output order (copies: the next run reuses the buffers)."""
        result = self._request.infer(inputs)
        return [np.array(result[output]) for output in self._outputs]


def precision_of(backend: str) -> str:
    """OpenVINO's inference precision hint of an `openvino-*` back end (int8: the layers left in float run in f32)."""
    return {"openvino-fp32": "f32", "openvino-bf16": "bf16", "openvino-int8": "f32"}[backend]


def int8_file(path: str | Path) -> Path:
    """Where the int8 OpenVINO model of a model file is kept: beside it, `<stem>-int8.xml` (and `.bin`)."""
    path = Path(path)
    return path.with_name(f"{path.stem}-int8.xml")


def model_for(backend: str, path: str | Path) -> Path:
    """The file an `openvino-*` back end loads for the model file `path` (its int8 model for `openvino-int8`).

    Raises ModelError when the int8 model is missing."""
    if backend != "openvino-int8":
        return Path(path)
    int8 = int8_file(path)
    if not int8.is_file() or not int8.with_suffix(".bin").is_file():
        raise ModelError(f"no int8 model {int8.name} beside {Path(path).name} "
                         "(python -m training.quantize_openvino makes it)")
    return int8
