"""`maskwatch dashboard`: run the dashboard web service."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `dashboard` subcommand."""
    p = subparsers.add_parser("dashboard", help="run the live dashboard, JSON API and /metrics",
                              description="Serve the live compliance dashboard, the JSON API (with photo "
                              "upload) and Prometheus metrics over the detector's results in Redis.")
    p.add_argument("--host", help="address to listen on (default: config dashboard.host, else 127.0.0.1)")
    p.add_argument("--port", type=_port, help="port to listen on (default: config dashboard.port, else 8000)")
    p.add_argument("--config", type=Path, help="cameras.yaml of the stack (Redis URL, camera list)")
    p.add_argument("--redis", metavar="URL", help="Redis URL (default: config, else $MASKWATCH_REDIS_URL)")
    p.add_argument("--models", type=Path, help="model store for photo uploads (default: $MASKWATCH_MODELS, "
                   "./models or the repo's models)")
    p.add_argument("--api-key", default=os.environ.get("MASKWATCH_API_KEY"),
                   help="require this key as X-API-Key on /api/v1 (default: $MASKWATCH_API_KEY; none)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow cross-origin API calls from ORIGIN (repeatable; CORS is off by default)")
    p.add_argument("--max-upload-mb", type=float, default=10.0,
                   help="largest accepted upload in MiB (default: %(default)g)")
    p.add_argument("--no-aggregate", action="store_true",
                   help="do not count results here (another replica does); pages and API still work")
    p.set_defaults(func=run)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return port


def run(args: argparse.Namespace) -> int:
    """Start uvicorn with the dashboard app; returns the exit code."""
    import uvicorn
    from pydantic import ValidationError

    from services.dashboard.app import create_app
    from services.dashboard.settings import DashboardSettings
    from shared.config import Config, ConfigError, load_config
    from shared.redaction import redact_url

    host, port, redis_url = args.host, args.port, args.redis
    if args.config:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"maskwatch dashboard: {exc}", file=sys.stderr)
            return 2
        host, port = host or config.dashboard.host, port or config.dashboard.port
        redis_url = redis_url or config.redis_url
    if args.max_upload_mb <= 0:
        print("maskwatch dashboard: --max-upload-mb must be positive", file=sys.stderr)
        return 2
    settings = DashboardSettings(config_path=args.config, cors_origins=tuple(args.cors_origin),
                                 max_upload_bytes=int(args.max_upload_mb * 2**20), models_root=args.models,
                                 api_key=args.api_key or None, aggregate=not args.no_aggregate)
    if redis_url:
        settings.redis_url = redis_url
    try:
        Config.model_validate({"redis_url": settings.redis_url})
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        print(f"maskwatch dashboard: redis URL {redact_url(settings.redis_url)!r}: {message}", file=sys.stderr)
        return 2
    host, port = host or "127.0.0.1", port or 8000
    # uvicorn logs a bind failure in one line and exits with status 1
    uvicorn.run(create_app(settings), host=host, port=port, log_level=args.log_level.lower(),
                access_log=False, timeout_graceful_shutdown=5)
    return 0
