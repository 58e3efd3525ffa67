"""Subcommands of the streaming stack: `maskwatch capture`, `maskwatch detector`, `maskwatch stack up|status`."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the capture, detector and stack subcommands."""
    capture = sub.add_parser("capture", help="pull the configured cameras into Redis streams")
    capture.add_argument("--config", required=True, help="cameras.yaml (edits are picked up live)")
    capture.add_argument("--redis", help="Redis URL (overrides the config and $MASKWATCH_REDIS_URL)")
    capture.set_defaults(func=run_capture)

    detector = sub.add_parser("detector", help="consume camera streams, detect and classify faces, publish results")
    detector.add_argument("--config", help="cameras.yaml (for redis_url and detector options)")
    detector.add_argument("--redis", help="Redis URL (overrides the config and $MASKWATCH_REDIS_URL)")
    detector.add_argument("--models", help="model store folder (default $MASKWATCH_MODELS or ./models)")
    detector.add_argument("--name", help="consumer name in the group (default host-pid)")
    detector.set_defaults(func=run_detector)

    stack = sub.add_parser("stack", help="run the whole streaming stack as local processes")
    actions = stack.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start capture, detector worker(s) and dashboard; Ctrl-C stops them")
    up.add_argument("--config", required=True, help="cameras.yaml")
    up.add_argument("--host", help="dashboard address (default: the config's dashboard.host)")
    up.add_argument("--port", type=int, help="dashboard port (default: the config's dashboard.port)")
    up.add_argument("--workers", type=int, default=1, help="detector worker processes (default 1)")
    up.add_argument("--no-dashboard", action="store_true", help="run without the dashboard")
    up.set_defaults(func=run_stack_up)
    status = actions.add_parser("status", help="print every camera's state from Redis")
    status.add_argument("--config", help="cameras.yaml (for redis_url)")
    status.add_argument("--redis", help="Redis URL")
    status.set_defaults(func=run_stack_status)


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
        print(f"error: {exc}", file=sys.stderr)
        return None
    except ValidationError as exc:
        print(f"error: --redis: {exc.errors()[0]['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        return None
    try:
        client_kwargs(config.redis_url, config.redis)
    except RedisSettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    return config


def run_capture(args: argparse.Namespace) -> int:
    """`maskwatch capture`."""
    from services.capture.service import CaptureService
    from services.lifecycle import stop_on_signals

    config = _config(args)
    if config is None:
        return 2
    stop = stop_on_signals()
    return CaptureService(args.config, config).run(stop)


def run_detector(args: argparse.Namespace) -> int:
    """`maskwatch detector`."""
    from services.detector.worker import DetectorWorker, default_worker_name
    from services.lifecycle import stop_on_signals
    from shared.alert_log import redis_sink
    from shared.alerts import AlertDispatcher
    from shared.live_people import LivePeople
    from shared.live_pipeline import LivePipeline
    from shared.model_store import ModelError, ModelStore
    from shared.streams import connect

    config = _config(args)
    if config is None:
        return 2
    stop = stop_on_signals()
    try:
        models = LivePipeline(ModelStore(args.models), **config.detector.detector_options())
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    name = args.name or default_worker_name()
    client = connect(config.redis_url, name=f"detector:{name}", options=config.redis)
    people = LivePeople({cam.id: cam.fps for cam in config.cameras},
                        alerts=AlertDispatcher(config.alerts, sinks=[redis_sink(client)]))
    worker = DetectorWorker(client, models, config.detector, name=name, people=people,
                            blur=config.privacy.blur_faces)
    return worker.run(stop)


def run_stack_up(args: argparse.Namespace) -> int:
    """`maskwatch stack up`."""
    from maskwatch.cli import build_parser
    from services.lifecycle import stop_on_signals
    from services.stack import Stack, stack_services
    from shared.redaction import redact_url
    from shared.streams import REDIS_ERRORS, connect, describe_redis_error

    config = _config(args)
    if config is None:
        return 2
    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    for problem in config.problems:
        print(f"warning: {args.config}: {problem} (camera left out, the others run)", file=sys.stderr)
    try:
        connect(config.redis_url, options=config.redis).ping()
    except REDIS_ERRORS as exc:
        print(f"error: cannot reach Redis at {redact_url(config.redis_url)} ({describe_redis_error(exc)}); "
              "start redis-server or set redis_url / MASKWATCH_REDIS_URL", file=sys.stderr)
        return 1
    dashboard = not args.no_dashboard
    if dashboard and "dashboard" not in _subcommands(build_parser()):
        log.warning("the dashboard command is not installed; running without it")
        dashboard = False
    host = args.host or config.dashboard.host
    port = args.port or config.dashboard.port
    specs = stack_services(args.config, host, port, args.workers, dashboard)
    if dashboard:
        log.info("dashboard: http://%s:%d/", host, port)
    return Stack(specs).run(stop_on_signals())


def run_stack_status(args: argparse.Namespace) -> int:
    """`maskwatch stack status`: one line per camera from the state hashes."""
    from shared import keys
    from shared.redaction import redact_url
    from shared.streams import REDIS_ERRORS, connect, decode_str, describe_redis_error

    config = _config(args)
    if config is None:
        return 2
    client = connect(config.redis_url, options=config.redis)
    try:
        cameras = sorted(decode_str(c) for c in client.smembers(keys.CAMERAS_SET))
        states = {c: {decode_str(k): decode_str(v) for k, v in client.hgetall(keys.camera_state(c)).items()}
                  for c in cameras}
    except REDIS_ERRORS as exc:
        print(f"error: cannot reach Redis at {redact_url(config.redis_url)} ({describe_redis_error(exc)})",
              file=sys.stderr)
        return 1
    if not cameras:
        print("no cameras (is `maskwatch capture` running?)")
    for cam in cameras:
        s = states[cam]
        print(f"{cam:16} {s.get('status', '?'):9} captured={s.get('frames_captured', 0)} "
              f"processed={s.get('frames_processed', 0)} skipped={s.get('frames_skipped', 0)} "
              f"dropped={s.get('frames_dropped', 0)} {s.get('error', '')}".rstrip())
    return 0


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()
