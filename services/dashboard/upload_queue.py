"""A bounded wait for the photo workers: a full queue answers 503 with Retry-After instead of piling up."""

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
    """At most `workers` photos are processed at once and at most `waiting` more wait for a turn."""

    def __init__(self, workers: int, waiting: int) -> None:
        self.limiter = anyio.CapacityLimiter(workers)
        self.max_waiting = waiting
        self.waiting = 0

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait for a worker's turn; raises `UploadBusy` at once when the queue is full."""
        if self.limiter.available_tokens == 0 and self.waiting >= self.max_waiting:
            raise UploadBusy(self.waiting)
        self.waiting += 1
        try:
            await self.limiter.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self.limiter.release()
