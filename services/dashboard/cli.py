"""`maskwatch dashboard`: run the dashboard web service."""

from __future__ import annotations

import argparse
import logging
import os
import ssl
import sys
from collections.abc import Mapping
from pathlib import Path

from services.dashboard import TLS_CERT_ENV, TLS_KEY_ENV
from services.dashboard.settings import DEFAULT_UPLOAD_PIXELS

API_KEY_ENV, API_KEY_FILE_ENV = "MASKWATCH_API_KEY", "MASKWATCH_API_KEY_FILE"


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
    p.add_argument("--api-key", help="require this key as X-API-Key on /api/v1 (visible in `ps`: prefer "
                   "$MASKWATCH_API_KEY or --api-key-file)")
    p.add_argument("--api-key-file", type=Path, metavar="FILE",
                   help="read the API key from FILE (default: $MASKWATCH_API_KEY_FILE, config dashboard.api_key_file)")
    p.add_argument("--max-pixels", type=int, metavar="N", help="largest upload in pixels, checked from the image "
                   f"header before decoding (default: config dashboard.max_pixels, else {DEFAULT_UPLOAD_PIXELS})")
    p.add_argument("--upload-queue", type=int, metavar="N", help="uploads that may wait for a photo worker; "
                   "more are answered 503 with Retry-After (default: config dashboard.upload_queue, else 4)")
    p.add_argument("--access-log", action="store_true",
                   help="log every request (query-string secrets such as api_key are masked)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow cross-origin API calls from ORIGIN (repeatable; CORS is off by default)")
    p.add_argument("--max-upload-mb", type=float, default=10.0,
                   help="largest accepted upload in MiB (default: %(default)g)")
    add_tls_arguments(p)
    p.add_argument("--no-aggregate", action="store_true",
                   help="do not count results here (another replica does); pages and API still work")
    p.set_defaults(func=run)


def add_tls_arguments(p: argparse.ArgumentParser) -> None:
    """The dashboard's HTTPS options (`maskwatch dashboard` and `maskwatch stack up`, which passes them on)."""
    p.add_argument("--tls-cert", type=Path, metavar="FILE", help="serve HTTPS with this PEM certificate "
                   f"(default: ${TLS_CERT_ENV}; phones give the camera only to HTTPS pages, see docs/phone.md)")
    p.add_argument("--tls-key", type=Path, metavar="FILE",
                   help=f"the PEM private key of --tls-cert (default: ${TLS_KEY_ENV})")
    p.add_argument("--tls-self-signed", action="store_true", help="serve HTTPS with a self-signed certificate "
                   "made once and kept in --tls-dir (its SHA-256 fingerprint is printed)")
    p.add_argument("--tls-dir", type=Path, metavar="DIR", help="where --tls-self-signed keeps its certificate "
                   "(default: $XDG_DATA_HOME/maskwatch/tls)")


def tls_choice(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> tuple[Path, Path] | None:
    """The certificate and key to serve (the options, else $MASKWATCH_TLS_CERT/_KEY), None for a self-signed one
    or plain HTTP; raises ValueError with a one-line reason."""
    env = os.environ if env is None else env
    cert, key, names = args.tls_cert, args.tls_key, ("--tls-cert", "--tls-key")
    if not (cert or key or args.tls_self_signed):
        cert, key = (Path(env[name]) if env.get(name) else None for name in (TLS_CERT_ENV, TLS_KEY_ENV))
        names = (f"${TLS_CERT_ENV}", f"${TLS_KEY_ENV}")
    if args.tls_self_signed and (cert or key):
        raise ValueError("use either --tls-self-signed or --tls-cert/--tls-key")
    if bool(cert) != bool(key):
        raise ValueError(f"{names[0]} and {names[1]} go together")
    if not cert:
        return None
    for path in (cert, key):
        if not path.is_file():
            raise ValueError(f"{path}: no such file")
        try:
            path.read_bytes()
        except OSError as exc:
            raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        detail = f" ({exc.reason})" if exc.reason and exc.reason != "PEM lib" else ""
        raise ValueError(f"{cert} and {key}: not a PEM certificate and its private key{detail}") from None
    return cert, key


def tls_arguments(args: argparse.Namespace) -> tuple[str, ...]:
    """The TLS options given, as `maskwatch dashboard` arguments with absolute paths (what `stack up` passes)."""
    out: list[str] = []
    for flag, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key), ("--tls-dir", args.tls_dir)):
        if path and (flag != "--tls-dir" or args.tls_self_signed):
            out += [flag, str(path.resolve())]
    return (*out, "--tls-self-signed") if args.tls_self_signed else tuple(out)


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
    from pydantic import ValidationError

    from services.dashboard.app import create_app
    from services.dashboard.server import serve
    from services.dashboard.settings import DashboardSettings
    from shared.config import Config, ConfigError, DashboardConfig, load_config
    from shared.redaction import redact_url
    from shared.redis_connection import RedisOptions, RedisSettingsError, client_kwargs

    host, port, redis_url = args.host, args.port, args.redis
    options, redis_options = DashboardConfig(), RedisOptions()
    if args.config:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"maskwatch dashboard: {exc}", file=sys.stderr)
            return 2
        host, port = host or config.dashboard.host, port or config.dashboard.port
        redis_url = redis_url or config.redis_url
        options, redis_options = config.dashboard, config.redis
    max_pixels = args.max_pixels or options.max_pixels or DEFAULT_UPLOAD_PIXELS
    queue = options.upload_queue if args.upload_queue is None else args.upload_queue
    if args.max_upload_mb <= 0 or max_pixels < 10_000 or queue < 0:
        print("maskwatch dashboard: --max-upload-mb must be positive, --max-pixels at least 10000 and "
              "--upload-queue not negative", file=sys.stderr)
        return 2
    try:
        api_key = _api_key(args, options)
    except OSError as exc:
        print(f"maskwatch dashboard: API key file {exc.filename}: cannot read ({exc.strerror})", file=sys.stderr)
        return 2
    settings = DashboardSettings(config_path=args.config, cors_origins=tuple(args.cors_origin),
                                 max_upload_bytes=int(args.max_upload_mb * 2**20), models_root=args.models,
                                 api_key=api_key, aggregate=not args.no_aggregate, max_pixels=max_pixels,
                                 upload_queue=queue, redis_options=redis_options,
                                 upload_read_timeout=options.upload_timeout, photo_pixels=options.photo_pixels,
                                 phone=options.phone)
    if redis_url:
        settings.redis_url = redis_url
    try:
        tls = _tls_files(args, host or "127.0.0.1")
    except (OSError, ValueError) as exc:
        print(f"maskwatch dashboard: TLS: {exc}", file=sys.stderr)
        return 2
    if args.config:  # the history database the recorder of this camera file writes
        settings.history, settings.history_base_dir = config.history, Path(args.config).parent
    if args.config and config.frames_redis_url:
        settings.frames_redis_url = config.frames_redis_url
    try:
        Config.model_validate({"redis_url": settings.redis_url})
        client_kwargs(settings.redis_url, redis_options)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        print(f"maskwatch dashboard: redis URL {redact_url(settings.redis_url)!r}: {message}", file=sys.stderr)
        return 2
    except RedisSettingsError as exc:
        print(f"maskwatch dashboard: {exc}", file=sys.stderr)
        return 2
    if api_key and args.api_key:
        logging.getLogger(__name__).warning("--api-key is visible to every user in `ps`; prefer $%s or "
                                            "--api-key-file", API_KEY_ENV)
    return serve(create_app(settings), host or "127.0.0.1", port or 8000, args.log_level.lower(), args.access_log,
                 tls=tls, ws_max_size=settings.phone.max_frame_bytes + 1024)


def _tls_files(args: argparse.Namespace, host: str):
    """The certificate and key to serve HTTPS with, or None for plain HTTP; prints a self-signed one's fingerprint."""
    from services.dashboard import tls

    chosen = tls_choice(args)
    if chosen:
        files = tls.TlsFiles(*chosen)
    elif args.tls_self_signed:
        files = tls.self_signed(args.tls_dir or tls.default_dir(), tls.local_addresses(host))
    else:
        return None
    print(f"maskwatch dashboard: HTTPS certificate {files.cert} SHA-256 fingerprint {tls.fingerprint(files.cert)}",
          file=sys.stderr, flush=True)
    return files


def _api_key(args: argparse.Namespace, options) -> str | None:
    """The key from --api-key, $MASKWATCH_API_KEY, --api-key-file, $MASKWATCH_API_KEY_FILE or the config."""
    if args.api_key or os.environ.get(API_KEY_ENV):
        return args.api_key or os.environ[API_KEY_ENV]
    path = args.api_key_file or os.environ.get(API_KEY_FILE_ENV) or options.api_key_file
    return (Path(path).read_text().strip() or None) if path else None
