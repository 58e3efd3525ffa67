"""Admission of photo uploads: a full queue answers 503 with Retry-After before a byte of the body is read.

A large upload holds a place from its first byte to its answer, so at most `workers + waiting` large bodies
are ever read or held in memory at once (100 parallel 10 MB uploads cost 6 bodies, not 100). A small one
(declared by Content-Length, at most `small_bytes`) is read first, up to `small_reading` bytes at once, then
placed by its decode cost from the image header: a cheap image (a normal photo) takes the express lane, with
a worker of its own, so no flood of large or costly uploads refuses or queues it; a costly one needs a
regular place like a large upload.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio

from services.dashboard.photo import UploadRejected

RETRY_AFTER_S = 2
SMALL_BYTES = 2 * 2**20  # read before being placed: a normal photo; a phone's full-size JPEG (3-12 MB) is large
SMALL_READING = 32 * 2**20  # declared bytes of the small bodies read at once (a burst of 6 KB bombs fits)
EXPRESS_PIXELS = 3_000_000  # a normal photo's decode cost: the express lane


class UploadBusy(UploadRejected):
    """Every photo worker is busy and the wait queue is full (HTTP 503 with Retry-After)."""

    def __init__(self, waiting: int) -> None:
        super().__init__(503, f"busy: {waiting} photo(s) already waiting; retry in {RETRY_AFTER_S} s")
        self.headers = {"Retry-After": str(RETRY_AFTER_S)}


class UploadQueue:
    """At most `workers` costly photos are processed at once and at most `waiting` more are admitted meanwhile;
    cheap ones (at most `express_pixels` decoded) go through the express lane (one worker, `express` places)."""

    def __init__(self, workers: int, waiting: int, express: int = 2, small_bytes: int = SMALL_BYTES,
                 small_reading: int = SMALL_READING, express_pixels: int = EXPRESS_PIXELS) -> None:
        self.limiter = anyio.CapacityLimiter(workers)
        self.express_limiter = anyio.CapacityLimiter(1)
        self.workers, self.max_waiting, self.express = workers, waiting, express
        self.small_bytes, self.small_reading, self.express_pixels = small_bytes, small_reading, express_pixels
        self.admitted = self.express_admitted = self.reading_bytes = 0

    @property
    def waiting(self) -> int:
        """Admitted uploads (express lane aside) not in a worker: reading their body or waiting for a turn."""
        return self.admitted - (self.workers - int(self.limiter.available_tokens))

    @contextlib.asynccontextmanager
    async def admit(self, declared_bytes: int | None = None) -> AsyncIterator[Place]:
        """Hold a place for one upload from its first byte to its answer; raises `UploadBusy` when full.

        Then `async with place.turn(pixels)` waits for a worker once the image's decode cost is known.
        """
        small = declared_bytes is not None and declared_bytes <= self.small_bytes and \
            self.reading_bytes + declared_bytes <= self.small_reading  # read first, placed by its decode cost
        reading = declared_bytes if small else 0
        place = Place(self)
        if not small:
            place.take_regular()
        self.reading_bytes += reading
        try:
            yield place
        finally:
            self.reading_bytes -= reading
            place.release()


class Place:
    """One admitted upload: a regular place (held until its answer) or a small body being read."""

    def __init__(self, queue: UploadQueue) -> None:
        self.queue, self.regular = queue, False

    def take_regular(self) -> None:
        """Take a regular place; raises `UploadBusy` when every one is taken."""
        queue = self.queue
        if queue.admitted >= queue.workers + queue.max_waiting:
            raise UploadBusy(queue.waiting)
        queue.admitted += 1
        self.regular = True

    def release(self) -> None:
        """Give the regular place back (once)."""
        if self.regular:
            self.queue.admitted -= 1
            self.regular = False

    @contextlib.asynccontextmanager
    async def turn(self, pixels: int) -> AsyncIterator[None]:
        """Wait for a worker to decode `pixels` pixels: the express lane when cheap and small, else a regular one."""
        queue = self.queue
        if not self.regular and pixels <= queue.express_pixels and queue.express_admitted < queue.express:
            queue.express_admitted += 1
            try:
                async with queue.express_limiter:
                    yield
            finally:
                queue.express_admitted -= 1
            return
        if not self.regular:
            self.take_regular()
        async with queue.limiter:
            yield
