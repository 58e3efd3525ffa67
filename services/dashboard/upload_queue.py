"""Admission of photo uploads: a full queue answers 503 with Retry-After before a byte of the body is read.

An upload holds a place from its first byte to its answer, so at most `workers + waiting` bodies are ever
read or held in memory at once (100 parallel 10 MB uploads cost 6 bodies, not 100); of those, `workers`
are decoded and detected at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio

from services.dashboard.photo import UploadRejected

RETRY_AFTER_S = 2


class UploadBusy(UploadRejected):
    """Every photo worker is busy and the wait queue is full (HTTP 503 with Retry-After)."""

    def __init__(self, waiting: int) -> None:
        super().__init__(503, f"busy: {waiting} photo(s) already waiting; retry in {RETRY_AFTER_S} s")
        self.headers = {"Retry-After": str(RETRY_AFTER_S)}


class UploadQueue:
    """At most `workers` photos are processed at once and at most `waiting` more are admitted meanwhile."""

    def __init__(self, workers: int, waiting: int) -> None:
        self.limiter = anyio.CapacityLimiter(workers)
        self.workers, self.max_waiting = workers, waiting
        self.admitted = 0

    @property
    def waiting(self) -> int:
        """Admitted uploads not (yet) in a worker: reading their body or waiting for a turn."""
        return self.admitted - (self.workers - int(self.limiter.available_tokens))

    @contextlib.asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Hold a place for one upload, from reading its body to its answer; raises `UploadBusy` when full."""
        if self.admitted >= self.workers + self.max_waiting:
            raise UploadBusy(self.waiting)
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait for a worker (inside `admit`)."""
        async with self.limiter:
            yield
