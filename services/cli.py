"""Subcommands of the streaming stack: `maskwatch capture|detector|tracker`, `maskwatch stack up|status`.

Exit statuses and error lines follow shared/exit_codes.py.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from services.dashboard.cli import add_tls_arguments
from shared.exit_codes import FAILED, USAGE, fail, warn

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the capture, detector, tracker and stack subcommands."""
    capture = sub.add_parser("capture", help="pull the configured cameras into Redis streams")
    add_service_arguments(capture, "cameras.yaml (edits are picked up live)", required=True)
    capture.set_defaults(func=run_capture)

    detector = sub.add_parser("detector", help="consume camera streams, detect and classify faces, publish results")
    add_service_arguments(detector, "cameras.yaml (for redis_url and detector options)",
                          name_help="consumer name in the group (default host-pid)")
    detector.add_argument("--models", help="model store folder (default $MASKWATCH_MODELS or ./models)")
    detector.set_defaults(func=run_detector)

    tracker = sub.add_parser("tracker", help="track the people of the cameras this replica owns, publish results")
    add_service_arguments(tracker, "cameras.yaml (for redis_url, tracker, alerts and camera fps)",
                          name_help="replica name in the camera leases (default tracker-host-pid)")
    tracker.set_defaults(func=run_tracker)

    stack = sub.add_parser("stack", help="run the whole streaming stack as local processes")
    actions = stack.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start capture, detector worker(s), tracker, recorder and dashboard; Ctrl-C "
                            "stops them")
    up.add_argument("--config", required=True, help="cameras.yaml")
    up.add_argument("--host", help="dashboard address (default: the config's dashboard.host)")
    up.add_argument("--port", type=int, help="dashboard port (default: the config's dashboard.port)")
    up.add_argument("--workers", type=int, default=1, help="detector worker processes (default 1)")
    up.add_argument("--no-dashboard", action="store_true", help="run without the dashboard")
    add_tls_arguments(up)
    up.set_defaults(func=run_stack_up)
    status = actions.add_parser("status", help="print every camera's state from Redis")
    status.add_argument("--config", help="cameras.yaml (for redis_url)")
    status.add_argument("--redis", help="Redis URL")
    status.set_defaults(func=run_stack_status)


def add_service_arguments(p: argparse.ArgumentParser, config_help: str, required: bool = False,
                          name_help: str | None = None) -> None:
    """--config, --redis and (with `name_help`) --name: the options of every service of the stack."""
    p.add_argument("--config", required=required, help=config_help)
    p.add_argument("--redis", help="Redis URL (overrides the config and $MASKWATCH_REDIS_URL)")
    if name_help:
        p.add_argument("--name", help=name_help)


def connections(config, role: str, name: str):
    """(main Redis, frames Redis or None) clients of one service process, named `role:name` in CLIENT LIST."""
    from shared.streams import connect, connect_frames

    label = f"{role}:{name}"
    return (connect(config.redis_url, name=label, options=config.redis),
            connect_frames(config.frames_redis_url, name=label, options=config.redis))


def _unreachable(config, exc: Exception, hint: str = "") -> int:
    """The one line (and exit status) for a Redis that does not answer."""
    from shared.redaction import redact_url
    from shared.streams import describe_redis_error

    return fail(f"cannot reach Redis at {redact_url(config.redis_url)} ({describe_redis_error(exc)}){hint}", FAILED)


def _config(args: argparse.Namespace):
    """The validated config (defaults when no file is given) with --redis applied, or None after an error."""
    from pydantic import ValidationError

    from shared.config import Config, ConfigError, load_config
    from shared.redis_connection import RedisSettingsError, client_kwargs

    try:
        config = load_config(args.config) if args.config else Config()
        if getattr(args, "redis", None):
            url = Config.model_validate({"redis_url": args.redis}).redis_url
            config = config.model_copy(update={"redis_url": url})
    except ConfigError as exc:
        fail(str(exc))
        return None
    except ValidationError as exc:
        fail(f"--redis: {exc.errors()[0]['msg'].removeprefix('Value error, ')}")
        return None
    try:
        client_kwargs(config.redis_url, config.redis)
    except RedisSettingsError as exc:
        fail(str(exc))
        return None
    return config


def run_capture(args: argparse.Namespace) -> int:
    """`maskwatch capture`."""
    from services.capture.service import CaptureService
    from services.lifecycle import single_threaded_opencv, stop_on_signals

    config = _config(args)
    if config is None:
        return USAGE
    single_threaded_opencv()
    stop = stop_on_signals()
    return CaptureService(args.config, config).run(stop)


def run_detector(args: argparse.Namespace) -> int:
    """`maskwatch detector`."""
    from services.detector.worker import DetectorWorker, default_worker_name
    from services.lifecycle import single_threaded_opencv, stop_on_signals
    from shared.live_pipeline import LivePipeline
    from shared.model_store import ModelError, ModelStore

    config = _config(args)
    if config is None:
        return USAGE
    single_threaded_opencv()
    stop = stop_on_signals()
    try:
        models = LivePipeline(ModelStore(args.models), **config.detector.detector_options())
    except ModelError as exc:
        return fail(str(exc), USAGE)
    name = args.name or default_worker_name()
    client, frames = connections(config, "detector", name)
    return DetectorWorker(client, models, config.detector, name=name, blur=config.privacy.blur_faces,
                          frames=frames).run(stop)


def run_tracker(args: argparse.Namespace) -> int:
    """`maskwatch tracker`."""
    from services.detector.worker import default_worker_name
    from services.lifecycle import stop_on_signals
    from services.tracker.observers import CameraAlerts
    from services.tracker.service import TrackerService
    from shared.alerts import AlertDispatcher
    from shared.overrides import AlertSwitch
    from shared.review.sampler import ReviewSampler

    config = _config(args)
    if config is None:
        return USAGE
    stop = stop_on_signals()
    name = args.name or f"tracker-{default_worker_name()}"
    client, frames = connections(config, "tracker", name)
    alerts = AlertDispatcher(config.alerts)  # events go to the alerts list in the tracker's transactions

    def observers(camera: str) -> list:
        found: list = [CameraAlerts(alerts, camera, AlertSwitch(client, camera))]  # commands may mute it
        if config.review.enabled:  # review items go into the tracker's transactions too
            found.append(ReviewSampler(config.review, camera, client, transactional=True))
        return found

    path = Path(args.config) if args.config else None  # zone and line edits there apply live
    service = TrackerService(client, config, name, observers=observers, config_path=path, frames=frames)
    try:
        return service.run(stop)
    finally:
        alerts.close()


def run_stack_up(args: argparse.Namespace) -> int:
    """`maskwatch stack up`."""
    from services.dashboard.cli import tls_arguments, tls_choice
    from services.lifecycle import stop_on_signals
    from services.stack import Stack, stack_services
    from shared.streams import REDIS_ERRORS, connect

    config = _config(args)
    if config is None:
        return USAGE
    if args.workers < 1:
        return fail("--workers must be at least 1", USAGE)
    try:
        https = tls_choice(args) is not None or args.tls_self_signed
    except ValueError as exc:
        return fail(f"TLS: {exc}", USAGE)
    for problem in config.problems:
        warn(f"{args.config}: {problem} (camera left out, the others run)")
    for problem in config.geometry_problems.values():
        warn(f"{args.config}: {problem} (the camera runs without these zones and lines)")
    try:
        connect(config.redis_url, options=config.redis).ping()
    except REDIS_ERRORS as exc:
        return _unreachable(config, exc, "; start redis-server or set redis_url / MASKWATCH_REDIS_URL")
    dashboard = not args.no_dashboard
    host = args.host or config.dashboard.host
    port = args.port or config.dashboard.port
    recorder = _history_usable(config, args.config)
    specs = stack_services(args.config, host, port, args.workers, dashboard, mqtt=config.mqtt is not None,
                           recorder=recorder, dashboard_args=tls_arguments(args))
    if dashboard:
        log.info("dashboard: %s://%s:%d/", "https" if https else "http", host, port)
    return Stack(specs).run(stop_on_signals())


def _history_usable(config, config_path: str) -> bool:
    """Whether the history database URL is usable; if not, one warning line and the stack runs without the recorder."""
    from shared.history.database import HistoryDatabaseError, database_url

    try:
        database_url(config.history, Path(config_path).parent)
    except HistoryDatabaseError as exc:
        warn(f"{exc}; the stack runs without the recorder (no history is kept)")
        return False
    return True


def run_stack_status(args: argparse.Namespace) -> int:
    """`maskwatch stack status`: one line per camera from the state hashes."""
    from shared import keys
    from shared.streams import REDIS_ERRORS, connect, decode_str

    config = _config(args)
    if config is None:
        return USAGE
    client = connect(config.redis_url, options=config.redis)
    try:
        cameras = sorted(decode_str(c) for c in client.smembers(keys.CAMERAS_SET))
        states = {c: {decode_str(k): decode_str(v) for k, v in client.hgetall(keys.camera_state(c)).items()}
                  for c in cameras}
    except REDIS_ERRORS as exc:
        return _unreachable(config, exc)
    if not cameras:
        print("no cameras (is `maskwatch capture` running?)")
    for cam in cameras:
        s = states[cam]
        print(f"{cam:16} {s.get('status', '?'):9} captured={s.get('frames_captured', 0)} "
              f"processed={s.get('frames_processed', 0)} (unchanged={s.get('frames_unchanged', 0)}) "
              f"tracked={s.get('frames_tracked', 0)} "
              f"late={s.get('frames_late', 0)} skipped={s.get('frames_skipped', 0)} "
              f"dropped={s.get('frames_dropped', 0)} {s.get('error', '')}".rstrip())
    return 0

