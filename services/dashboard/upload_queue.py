"""Admission of photo uploads: a full queue answers 503 with Retry-After before a byte of the body is read.

An upload holds a place from its first byte to its answer, so at most `workers + waiting` bodies are ever
read or held in memory at once (100 parallel 10 MB uploads cost 6 bodies, not 100); of those, `workers`
are decoded and detected at a time. Small uploads (a normal photo, declared by Content-Length) also have
an express lane of their own, so a flood of large uploads neither refuses nor queues them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio

from services.dashboard.photo import UploadRejected

RETRY_AFTER_S = 2
SMALL_BYTES = 2 * 2**20  # a normal photo; a phone's full-size JPEG (3-12 MB) queues with the others


class UploadBusy(UploadRejected):
    """Every photo worker is busy and the wait queue is full (HTTP 503 with Retry-After)."""

    def __init__(self, waiting: int) -> None:
        super().__init__(503, f"busy: {waiting} photo(s) already waiting; retry in {RETRY_AFTER_S} s")
        self.headers = {"Retry-After": str(RETRY_AFTER_S)}


class UploadQueue:
    """At most `workers` photos are processed at once and at most `waiting` more are admitted meanwhile;
    uploads of at most `small_bytes` may also take one of `express` places with a worker of their own."""

    def __init__(self, workers: int, waiting: int, express: int = 2, small_bytes: int = SMALL_BYTES) -> None:
        self.limiter = anyio.CapacityLimiter(workers)
        self.express_limiter = anyio.CapacityLimiter(1)
        self.workers, self.max_waiting = workers, waiting
        self.express, self.small_bytes = express, small_bytes
        self.admitted = self.express_admitted = 0

    @property
    def waiting(self) -> int:
        """Admitted uploads (express lane aside) not in a worker: reading their body or waiting for a turn."""
        return self.admitted - (self.workers - int(self.limiter.available_tokens))

    @contextlib.asynccontextmanager
    async def admit(self, declared_bytes: int | None = None) -> AsyncIterator[anyio.CapacityLimiter]:
        """Hold a place for one upload, from reading its body to its answer; yields the workers to wait for
        (`async with` it); raises `UploadBusy` when full."""
        small = declared_bytes is not None and declared_bytes <= self.small_bytes
        if small and self.express_admitted < self.express:
            self.express_admitted += 1
            try:
                yield self.express_limiter
            finally:
                self.express_admitted -= 1
            return
        if self.admitted >= self.workers + self.max_waiting:
            raise UploadBusy(self.waiting)
        self.admitted += 1
        try:
            yield self.limiter
        finally:
            self.admitted -= 1
