"""The maskwatch configuration file (cameras.yaml), validated with pydantic.

Top-level sections are validated as a whole (a mistake there is a `ConfigError`); camera entries are
validated one by one, so a bad entry is reported in `Config.problems` and the other cameras still run.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.alerts import AlertsConfig
from shared.history.config import HistoryConfig
from shared.motion import MotionConfig, MotionGate
from shared.mqtt_config import MqttConfig
from shared.privacy import PrivacyConfig
from shared.redis_connection import RedisOptions
from shared.review.config import ReviewConfig
from shared.safe_yaml import MAX_BYTES as MAX_CONFIG_BYTES
from shared.safe_yaml import YamlLimitError, load_yaml
from shared.tracker_config import TrackerConfig
from shared.zones import CameraGeometry, Line, Zone, check_lines, check_zones, geometry_problem

log = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_URL_ENV = "MASKWATCH_REDIS_URL"
FRAMES_REDIS_URL_ENV = "MASKWATCH_FRAMES_REDIS_URL"
CAMERA_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # always fullmatch: "$" accepts a final newline
_URL_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# every top-level section besides "cameras"
SECTIONS = frozenset({"redis_url", "redis", "capture", "detector", "tracker", "dashboard", "alerts", "privacy",
                      "review", "history"}) | {"mqtt", "frames_redis_url"}


class ConfigError(ValueError):
    """A configuration file that cannot be used at all; the message is one line for the user."""


def is_camera_id(value: object) -> bool:
    """True for a usable camera id: 1-64 letters, digits, '_' or '-', starting with a letter or digit."""
    return isinstance(value, str) and CAMERA_ID_RE.fullmatch(value) is not None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraConfig(_Strict):
    """One camera: `url` is an rtsp/http URL, a webcam index ("0") or a video file path."""

    id: str
    url: str
    fps: float = Field(10.0, gt=0, le=60)
    loop: bool = False
    enabled: bool = True
    zones: list[Zone] = Field(default_factory=list, max_length=64)  # docs/entrances.md
    lines: list[Line] = Field(default_factory=list, max_length=32)

    motion: MotionConfig = Field(default_factory=MotionConfig)  # docs/speed.md

    _zones = field_validator("zones")(check_zones)
    _lines = field_validator("lines")(check_lines)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not is_camera_id(value):
            raise ValueError("must be 1-64 letters, digits, '_' or '-' (starting with a letter or digit)")
        return value

    @field_validator("url", mode="before")
    @classmethod
    def _coerce_url(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        return value

    @property
    def geometry(self) -> CameraGeometry:
        """The camera's zones and lines."""
        return CameraGeometry(zones=self.zones, lines=self.lines)

    def motion_gate(self) -> MotionGate:
        """A fresh motion gate with this camera's `motion:` settings; change in its ignore zones is no motion."""
        return MotionGate(self.motion, [zone.points for zone in self.zones if zone.ignore])

    def without_geometry(self) -> CameraConfig:
        """This camera without zones and lines (what capture depends on: editing them restarts nothing)."""
        return self.model_copy(update={"zones": [], "lines": []})


class CaptureConfig(_Strict):
    """Capture service options."""

    jpeg_quality: int = Field(85, ge=30, le=100)
    stream_maxlen: int = Field(100, ge=2, description="frames kept per camera stream (MAXLEN ~)")
    max_side: int = Field(1920, ge=64, description="larger frames are scaled down to this long side")
    reconnect_max: float = Field(30.0, gt=0, description="longest wait between reconnect attempts (s)")
    reload_interval: float = Field(1.0, gt=0, description="how often the config file is checked for edits (s)")
    open_timeout: float = Field(10.0, gt=0, le=300, description="a network camera that does not answer (s)")
    read_timeout: float = Field(10.0, gt=0, le=300, description="a network camera that stops sending (s)")
    max_cameras: int = Field(256, ge=1, le=100_000, description="cameras one capture process reads at most; "
                             "run more capture replicas for more (they share the cameras by lease)")
    lease_ttl_s: float = Field(5.0, ge=1, le=300, description="a dead capture process's cameras move to "
                               "another replica after this long (s)")
    key_ttl_s: float = Field(300.0, ge=10, description="a camera's state hash and frames stream expire this "
                             "long after no capture process reads it any more (s)")
    max_pixels: int = Field(40_000_000, ge=64 * 64, description="frames larger than this are refused by the "
                            "decoder (pixels)")
    publish_threads: int = Field(2, ge=1, le=32, description="threads that publish frames to Redis")
    rtsp_transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP over TCP (works through NAT and "
                                                  "firewalls) or UDP (for cameras that only stream so)")


class DetectorConfig(_Strict):
    """Detector service options."""

    max_frame_age: float = Field(2.0, gt=0, description="frames older than this (s) are skipped and counted")
    min_face: float | None = Field(None, ge=2, description="smallest face to find (px); default: the detector "
                                   "version's own, chosen on the validation split")
    score_threshold: float | None = Field(None, gt=0, lt=1, description="default: the detector version's own")
    nms_threshold: float = Field(0.4, gt=0, lt=1)
    max_pixels: int | None = Field(None, ge=64 * 64, description="upscaling budget of the scale policy (pixels); "
                                   "default: the detector version's own")
    threads: int = Field(1, ge=0, description="ONNX Runtime threads per worker (0 = all cores)")
    classifier_threads: int = Field(1, ge=0, description="threads of the classifier (0 = the cores, at most 4); "
                                    "with overlap, detection runs beside it on a thread of its own")
    overlap: bool = Field(True, description="detect the next frames on a second thread while these are classified "
                          "(1 worker, 4 cameras: 22 instead of 18 frames/s answered here; see docs/speed.md)")
    detector_backend: Literal["auto", "onnxruntime", "openvino-fp32", "openvino-bf16", "openvino-int8"] = Field(
        "auto", description="runtime and precision of the face detector; auto: the fastest that passed the "
        "version's accuracy calibration on this CPU (docs/speed.md)")
    classifier_backend: Literal["auto", "tflite", "openvino-fp32", "openvino-bf16", "openvino-int8"] = Field(
        "auto", description="runtime and precision of the classifier (as detector_backend)")
    claim_idle: float = Field(10.0, gt=0, description="pending frames idle this long (s) are claimed from dead workers")
    results_maxlen: int = Field(10_000, ge=10, description="results stream length (MAXLEN ~)")
    drain_timeout: float = Field(5.0, ge=0, description="on SIGTERM, answer the frames already waiting for up "
                                 "to this long (s) before leaving")

    def detector_options(self) -> dict[str, Any]:
        """Keyword options for `load_pipeline` / `load_detector` (None: the detector version's default for
        streams, the frames the tracker follows)."""
        return {"policy": "streams", "min_face": self.min_face, "score_threshold": self.score_threshold,
                "max_pixels": self.max_pixels,
                "nms_threshold": self.nms_threshold, "threads": self.threads,
                "classifier_threads": self.classifier_threads or None, "backend": self.detector_backend,
                "classifier_backend": self.classifier_backend}


class PhoneConfig(_Strict):
    """Phone cameras: phones paired through the dashboard stream JPEG frames over a WebSocket (docs/phone.md)."""

    enabled: bool = True
    fps: float = Field(5.0, gt=0, le=15, description="frames per second a phone sends; faster ones are dropped")
    max_cameras: int = Field(8, ge=0, le=256, description="phone cameras streaming at once; more are refused")
    max_side: int = Field(1280, ge=160, le=1920, description="longest side of a phone frame (px); larger refused")
    max_frame_bytes: int = Field(512 * 1024, ge=16 * 1024, le=4 * 2**20, description="largest JPEG frame")
    jpeg_quality: int = Field(70, ge=30, le=95, description="JPEG quality the phone encodes at")
    stream_maxlen: int = Field(4, ge=2, le=100, description="frames kept in a phone camera's stream: older "
                               "ones no worker took are dropped, so results stay live (capture keeps 100)")
    pairing_ttl_s: int = Field(300, ge=30, le=86400, description="a pairing link (QR code) is valid this long")
    stopped_ttl_s: int = Field(600, ge=10, le=7 * 86400, description="a closed phone camera disappears after this")
    public_url: str | None = Field(None, max_length=200, pattern=r"^https?://[^\s/?#]+/?$",
                                   description="address phones open (e.g. https://192.168.1.20:8443); default: "
                                   "the address the dashboard was opened with")


class DashboardConfig(_Strict):
    """Dashboard options."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_pixels: int | None = Field(None, ge=10_000, description="largest upload in pixels, read from the header "
                                   "before decoding (default 12 megapixels, about 100 ms to decode)")
    upload_queue: int = Field(4, ge=0, description="uploads waiting for a worker; more are answered 503")
    upload_timeout: float = Field(60.0, gt=0, le=3600, description="an upload body that takes longer is answered 408")
    photo_pixels: int = Field(1920 * 1080, ge=0, description="uploads are detected with at most this many pixels "
                              "(a 1080p frame's), faces answered in the original's pixels (0: as decoded, slower)")
    api_key_file: Path | None = Field(None, description="file holding the API key (or $MASKWATCH_API_KEY)")
    phone: PhoneConfig = Field(default_factory=PhoneConfig)


class Config(BaseModel):
    """The whole configuration.

    `problems` lists every camera entry that was left out and why; `invalid_cameras` maps the ids of
    those whose id itself is usable to their problem (so they can be shown as failed cameras).
    A camera whose zones or lines are bad still runs: `geometry_problems` maps its id to the problem (one
    line naming the entry) and it has no zones and lines here (a running tracker keeps those it applied).
    """

    model_config = ConfigDict(extra="forbid")

    redis_url: str = Field(default_factory=lambda: os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL))
    frames_redis_url: str | None = Field(
        default_factory=lambda: os.environ.get(FRAMES_REDIS_URL_ENV) or None,
        description="a Redis without persistence for the frame images (capture, detector, tracker and dashboard "
                    "use it; the streams and counters stay in redis_url); default: the frames stay in redis_url")
    redis: RedisOptions = Field(default_factory=RedisOptions)
    cameras: list[CameraConfig] = Field(default_factory=list)
    capture: CaptureConfig = Field(default_factory=CaptureConfig)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    mqtt: MqttConfig | None = None  # the MQTT bridge (services/mqtt/) runs only when this is set
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    problems: list[str] = Field(default_factory=list, exclude=True)
    invalid_cameras: dict[str, str] = Field(default_factory=dict, exclude=True)  # id -> problem
    geometry_problems: dict[str, str] = Field(default_factory=dict, exclude=True)  # id -> bad zones/lines

    @field_validator("redis_url", "frames_redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @property
    def enabled_cameras(self) -> list[CameraConfig]:
        """Cameras that should be running."""
        return [cam for cam in self.cameras if cam.enabled]


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raises `ConfigError` (one line) when it is unusable as a whole."""
    path = Path(path)
    try:
        with path.open("rb") as file:  # read at most one byte over the limit (a FIFO or /dev/zero ends too)
            data = file.read(MAX_CONFIG_BYTES + 1)
    except PermissionError as exc:  # e.g. a 0600 file bind-mounted into a container that runs as uid 10001
        raise ConfigError(f"{path}: cannot read config ({exc.strerror}; this process runs as uid {os.getuid()}: "
                          "make the file readable to it, e.g. chmod a+r)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config file larger than {MAX_CONFIG_BYTES // 2**20} MiB")
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_config(text, base_dir=path.parent, name=str(path))


def parse_config(text: str, base_dir: Path | None = None, name: str = "config") -> Config:
    """Validate config YAML text; relative video file paths are resolved against `base_dir`."""
    try:
        raw = load_yaml(text)
    except YamlLimitError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: expected a mapping with a 'cameras:' list, got {type(raw).__name__}")
    raw = dict(raw)
    entries = raw.pop("cameras", None) or []
    if not isinstance(entries, list):
        raise ConfigError(f"{name}: 'cameras' must be a list")
    for section in sorted(set(raw) - SECTIONS):
        log.warning("%s: unknown section %r ignored", name, section)
        raw.pop(section)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{name}: {_describe(exc)}") from None
    cameras: list[CameraConfig] = []
    problems: list[str] = []
    invalid: dict[str, str] = {}
    valid_ids: set[str] = set()
    geometry: dict[str, str] = {}
    for index, entry in enumerate(entries):
        label = _entry_label(index, entry)
        if isinstance(entry, dict) and ("zones" in entry or "lines" in entry):
            problem = geometry_problem(entry.get("zones"), entry.get("lines"))
            if problem is not None:
                if isinstance(entry.get("id"), str):
                    geometry[entry["id"]] = f"{label}: {problem}"
                entry = {k: v for k, v in entry.items() if k not in ("zones", "lines")}
        try:
            camera = CameraConfig.model_validate(entry)
        except ValidationError as exc:
            problems.append(f"{label}: {_describe(exc)}")
            if isinstance(entry, dict) and is_camera_id(entry.get("id")):
                invalid.setdefault(entry["id"], problems[-1])
            continue
        if camera.id in valid_ids:
            problems.append(f"{label}: duplicate camera id {camera.id!r}")
            continue
        valid_ids.add(camera.id)
        cameras.append(_resolve_path(camera, base_dir))
    invalid = {cam_id: problem for cam_id, problem in invalid.items() if cam_id not in valid_ids}
    return config.model_copy(update={"cameras": cameras, "problems": problems, "invalid_cameras": invalid,
                                     "geometry_problems": {k: v for k, v in geometry.items() if k in valid_ids}})


def is_file_source(url: str) -> bool:
    """True for a video file path (not a URL and not a webcam index)."""
    return not url.isdigit() and not _URL_SCHEME_RE.match(url)


def _resolve_path(camera: CameraConfig, base_dir: Path | None) -> CameraConfig:
    if base_dir is None or not is_file_source(camera.url):
        return camera
    path = Path(camera.url).expanduser()
    if path.is_absolute():
        return camera
    return camera.model_copy(update={"url": str((base_dir / path).resolve())})


def _entry_label(index: int, entry: Any) -> str:
    if isinstance(entry, dict) and entry.get("id") is not None:
        return f"cameras[{index}] (id {entry['id']!r})"
    return f"cameras[{index}]"


def _describe(exc: ValidationError) -> str:
    """One line from a pydantic error: 'field: message; field: message'."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "entry"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown option"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
