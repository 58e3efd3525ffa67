"""Running the app under uvicorn: a clean stop on SIGTERM (live feeds end at once, exit status 0)."""

from __future__ import annotations

import asyncio
import logging
import re
from types import FrameType

import uvicorn
from fastapi import FastAPI

from services.dashboard.tls import TlsFiles
from shared.redaction import is_secret_name

GRACEFUL_SHUTDOWN_S = 5
# An upload answered 503 before its body was read keeps sending it (uvicorn discards it): the connection
# must outlive that, or the client sees a reset instead of the 503 (uvicorn's default is 5 s).
KEEP_ALIVE_S = 30
_QUERY_PARAM_RE = re.compile(r"([?&;])([^=&;#]+)=([^&;#]*)")


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app when a stop signal arrives (before it waits for open connections)."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()  # a clean stop exits 0 instead of re-raising the signal
        try:
            asyncio.get_running_loop().call_soon_threadsafe(self._app.state.begin_shutdown)
        except RuntimeError:  # not serving yet
            pass


class RedactQuery(logging.Filter):
    """Masks secret-looking query parameters (api_key, token, ...) in uvicorn's access log lines."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            args = list(record.args)
            args[2] = redact_query(args[2])
            record.args = tuple(args)
        return True


def redact_query(path: str) -> str:
    """A request path with the values of secret-looking query parameters replaced by ***."""
    return _QUERY_PARAM_RE.sub(lambda m: f"{m[1]}{m[2]}=***" if is_secret_name(m[2]) else m[0], path)


def serve(app: FastAPI, host: str, port: int, log_level: str, access_log: bool = False, tls: TlsFiles | None = None,
          ws_max_size: int = 16 * 2**20) -> int:
    """Serve (HTTPS with `tls`) until SIGTERM/SIGINT; returns 0 after a clean stop."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=access_log,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, timeout_keep_alive=KEEP_ALIVE_S,
                            ws_max_size=ws_max_size, ssl_certfile=str(tls.cert) if tls else None,
                            ssl_keyfile=str(tls.key) if tls else None)
    server = _Server(config, app)
    logging.getLogger("uvicorn.access").addFilter(RedactQuery())
    server.run()
    return 0 if server.started else 3  # 3: could not start (uvicorn's STARTUP_FAILURE), e.g. the port is taken
