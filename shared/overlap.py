"""The pipeline's stages overlapped over two cores: load and detect the next items while these are classified.

One background thread loads each item (decodes a frame) and runs the face detector on it, in order; the
calling thread crops and classifies. Items whose detection is already done when the classifier is free
are classified together in one batch (up to `max_batch` images), so a classifier that falls behind
catches up with bigger, cheaper batches. ONNX Runtime and TFLite release the GIL while they run.

`run(items, load)` goes through an iterable (`maskwatch detect` runs a video so, one frame at a time with
`max_batch=1`: each frame's settled-track hints are read after the frame before it was tracked, as when
the frames ran one after the other, and frames the motion gate finds still skip detection); a service that
reads its work in batches uses `submit(items, load)` and `collect(keep)`, keeping the newest item in
detection while it reads the next batch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from shared.face_detector import Detections
from shared.pipeline import Pipeline
from shared.schemas import Face
from shared.settled import FrameHints

T = TypeVar("T")


@dataclass
class Done(Generic[T]):
    """One item through the pipeline: its faces, or the error that stopped it (image None if loading failed)."""

    item: T
    image: np.ndarray | None = None
    faces: list[Face] | None = None  # None for an item `run` was told not to detect (and on an error)
    error: Exception | None = None


class OverlappedPipeline:
    """Runs `pipeline` over a stream of items with detection of later items overlapping classification."""

    def __init__(self, pipeline: Pipeline, ahead: int = 2, max_batch: int = 4, inline: bool = False) -> None:
        """`inline`: no second thread, each item loaded, detected and classified in turn (for comparison)."""
        self.pipeline, self.ahead, self.max_batch = pipeline, max(1, ahead), max(1, max_batch)
        self._executor = _InlineExecutor() if inline else ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect")
        self._queued: deque[tuple[T, Future, FrameHints | None]] = deque()

    def close(self) -> None:
        """Stop the detection thread (after the item it is on)."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> OverlappedPipeline:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _front(self, item: T, load: Callable[[T], np.ndarray]) -> tuple[np.ndarray | None, Detections | None,
                                                                          Exception | None]:
        image, error = _load(item, load)
        if error is not None:
            return None, None, error
        try:
            return image, self.pipeline.detect(image), None
        except Exception as exc:  # noqa: BLE001
            return image, None, exc

    def run(self, items: Iterable[T], load: Callable[[T], np.ndarray],
            hints: Callable[[T], FrameHints | None] | None = None,
            detect: Callable[[T], bool] | None = None) -> Iterator[Done[T]]:
        """Yield every item, in order, with its faces or its error; `load` turns an item into a BGR image,
        `hints` gives an item's settled tracks (whose faces reuse their label), read when the item is
        classified. `detect` (called in order, as the items are read ahead) says whether an item needs the
        detector at all: one that does not is yielded with its image and no faces."""
        source = iter(items)
        pending: deque[tuple[T, Future | None]] = deque()  # None: not to be detected

        def refill() -> None:
            while len(pending) < self.ahead + 1:
                item = next(source, _END)
                if item is _END:
                    return
                wanted = detect is None or detect(item)
                pending.append((item, self._executor.submit(self._front, item, load) if wanted else None))

        refill()
        while pending:
            item, future = pending.popleft()
            if future is None:
                refill()
                yield _undetected(item, load)
                continue
            ready = [(item, future)]
            while pending and len(ready) < self.max_batch and pending[0][1] is not None and pending[0][1].done():
                ready.append(pending.popleft())
            refill()
            yield from self._classify(ready, [hints(item) if hints else None for item, _future in ready])

    def submit(self, items: Iterable[T], load: Callable[[T], np.ndarray],
               hints: Callable[[T], FrameHints | None] | None = None) -> None:
        """Queue items for `collect`: their loading and detection start on the background thread now."""
        for item in items:
            self._queued.append((item, self._executor.submit(self._front, item, load), hints(item) if hints else None))

    def collect(self, keep: int = 0) -> Iterator[Done[T]]:
        """Classify the queued items and yield them in order, all but the newest `keep`: those stay queued, and
        their detection goes on while the caller fetches more work (no idle core between two batches)."""
        queued = self._queued
        while len(queued) > keep:
            ready = [queued.popleft()]
            while len(queued) > keep and len(ready) < self.max_batch and queued[0][1].done():
                ready.append(queued.popleft())
            yield from self._classify([(item, future) for item, future, _hint in ready], [h for *_rest, h in ready])

    @property
    def queued(self) -> int:
        """Items submitted and not yet collected."""
        return len(self._queued)

    def _classify(self, ready: list[tuple[T, Future]], hints: list[FrameHints | None]) -> Iterator[Done[T]]:
        """Classify detected items together (one classifier batch); yield each with its faces or its error."""
        fronts = [(item, *future.result()) for item, future in ready]
        good = [(image, found) for _item, image, found, error in fronts if error is None]
        known = [hint for (_item, _image, _found, error), hint in zip(fronts, hints) if error is None]
        try:
            classified = iter(self.pipeline.classify(good, known))
            error = None
        except Exception as exc:  # noqa: BLE001
            classified, error = iter([]), exc
        for item, image, _found, front_error in fronts:
            if front_error is not None:
                yield Done(item, image, error=front_error)
            elif error is not None:
                yield Done(item, image, error=error)
            else:
                yield Done(item, image, faces=next(classified))


_END = object()


def _load(item: T, load: Callable[[T], np.ndarray]) -> tuple[np.ndarray | None, Exception | None]:
    """The item's image, or the error loading it (handed to the caller with its item)."""
    try:
        return load(item), None
    except Exception as exc:  # noqa: BLE001
        return None, exc


def _undetected(item: T, load: Callable[[T], np.ndarray]) -> Done[T]:
    """An item loaded without detection (no faces), or its loading error."""
    image, error = _load(item, load)
    return Done(item, image, error=error)


class _InlineExecutor:
    """Runs each submitted call at once in the calling thread (the executor of `inline` mode)."""

    def submit(self, fn: Callable, *args: object) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Nothing to stop."""
