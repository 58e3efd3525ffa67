"""Run by deploy/Dockerfile's build stage after the environment was trimmed: imports every service (the proof
that nothing they need was removed) and the modules they import only once running, which writes the bytecode
of all of them. The build drops every other dependency's bytecode: the image is read-only to user 10001, so
a module without it would be compiled again at each start.

RUNTIME is what the compose stack imported beyond SERVICES (found by running tests/compose with
PYTHONPYCACHEPREFIX set: Python then writes the bytecode of every module it loads to that folder).
"""

from __future__ import annotations

import importlib

SERVICES = [
    "services.capture.service", "services.detector.worker", "services.tracker.service", "services.dashboard.app",
    "services.recorder.service", "services.mqtt.bridge", "services.healthcheck", "maskwatch.cli",
]
RUNTIME = [
    # the dashboard's web server: event loop, protocols, lifespan, anyio's asyncio backend, FastAPI's internals
    "uvicorn.loops.auto", "uvicorn.loops.uvloop", "uvicorn.protocols.http.auto",
    "uvicorn.protocols.websockets.auto", "uvicorn.lifespan.on", "anyio._backends._asyncio",
    "anyio._core._fileio", "anyio.streams.stapled", "anyio.streams.tls", "fastapi.telemetry._runtime", "pydantic.v1",
    "services.dashboard.tls",
    # images: the formats Pillow registers on first use
    "PIL.ImageOps", "PIL.BmpImagePlugin", "PIL.GifImagePlugin", "PIL.PngImagePlugin", "PIL.PpmImagePlugin",
    # the detectors' ONNX graph editing; the history database's drivers and migrations
    "onnx", "sqlalchemy.dialects.sqlite.pysqlite", "sqlalchemy.dialects.postgresql.psycopg",
    "alembic.runtime.migration", "alembic.operations",
]


def main() -> None:
    """Import SERVICES (any failure is an error) and RUNTIME (a module a newer release no longer has is skipped)."""
    for name in SERVICES:
        importlib.import_module(name)
    for name in RUNTIME:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (name == exc.name or name.startswith(f"{exc.name}.")):
                raise  # something it needs is missing: trimmed by mistake
            print(f"image_imports: {name} is not installed (skipped)")


if __name__ == "__main__":
    main()
