"""A local HTTP server that records webhook posts and answers with scripted status codes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookServer:
    """Records (path, JSON body, monotonic time) of every POST; `statuses` are answered in order, then 200."""

    def __init__(self, statuses: list[int] | None = None, delay_s: float = 0.0) -> None:
        self.statuses, self.delay_s = list(statuses or []), delay_s
        self.posts: list[tuple[str, dict[str, Any], float]] = []
        self.attempts: list[float] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server._lock:
                    server.attempts.append(time.monotonic())
                    status = server.statuses.pop(0) if server.statuses else 200
                    if status == 200:
                        server.posts.append((self.path, json.loads(body), time.monotonic()))
                time.sleep(server.delay_s)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """Wait until `count` posts were accepted (or the timeout passed); return their bodies."""
        deadline = time.monotonic() + timeout_s
        while len(self.posts) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return [body for _, body, _ in self.posts]


@contextmanager
def webhook_server(statuses: list[int] | None = None, delay_s: float = 0.0) -> Iterator[WebhookServer]:
    """Run a WebhookServer on a free local port for the duration of the block."""
    server = WebhookServer(statuses, delay_s)
    thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(5)
