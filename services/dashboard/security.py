"""Security headers on every response, and where an API key may travel in the query string."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Routes a browser loads without being able to send headers (EventSource, <img src>, a download link):
# only there does `?api_key=` count. Everything else needs the X-API-Key header.
QUERY_KEY_ROUTES: frozenset[str] = frozenset({"feed", "camera_frame", "camera_stats_csv", "camera_entries_csv"}) | \
    frozenset({"history_counts_csv", "history_people_csv", "history_thumbnail", "history_alerts_csv",
               "history_entries_csv"})
# The pages load scripts, styles and images from this origin only; no inline code, no framing.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                           "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                           "frame-ancestors 'none'")
HEADERS: dict[str, str] = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a ?key= in the page address never leaves in a Referer
}
DOCS_PATHS: tuple[str, ...] = ("/docs", "/redoc")  # Swagger UI and ReDoc start with inline scripts


def headers_for(path: str) -> dict[str, str]:
    """The security headers of a response to `path` (the 500 handler, outside this middleware, adds them too)."""
    if path.startswith(DOCS_PATHS):
        return dict(HEADERS)
    return {**HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY}


class SecurityHeaders:
    """ASGI middleware: CSP (except on the API docs pages), X-Frame-Options, X-Content-Type-Options, Referrer-Policy.

    Plain ASGI rather than BaseHTTPMiddleware, so streamed responses (the live feed) pass untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = headers_for(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
