"""Puts one camera's detections back in frame order: workers finish frames out of order.

Public API:
- `ReorderBuffer(window_s)`: `.add(frame_id, item, now) -> bool` buffers an item (False: it is late, see
  below); `.pop_ready(watermark, now, everything=False) -> list` returns, in frame order, the items that
  may be tracked now; `.released` is the highest frame id handed out; `len()` and `.items()` the rest.

An item is ready when every earlier frame of its camera is known to be done - its frame id is below
`watermark`, the id of the oldest frame the detector workers still hold (None: they hold none) - or when
it has waited `window_s` (a worker died holding an earlier frame: it is not waited for any longer).
Releasing an item releases every earlier buffered item with it, so ids come out strictly increasing.
A frame that arrives after a later frame was released is *late*: `add` refuses it, and the caller
publishes it untracked (its faces count, it joins no track and moves no latest state).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from shared.detections import StreamId

T = TypeVar("T")


class ReorderBuffer(Generic[T]):
    """Items keyed by frame id, released in frame-id order."""

    def __init__(self, window_s: float, released: StreamId | None = None) -> None:
        if window_s < 0:
            raise ValueError(f"the reorder window must be >= 0 s, got {window_s}")
        self.window_s = window_s
        self.released = released
        self._items: dict[StreamId, tuple[float, T]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[T]:
        """The buffered items, in frame order."""
        return [self._items[k][1] for k in sorted(self._items)]

    def add(self, frame_id: StreamId, item: T, now: float) -> bool:
        """Buffer `item`; False when its frame is late (at or before the last one released)."""
        if self.released is not None and frame_id <= self.released:
            return False
        self._items.setdefault(frame_id, (now, item))
        return True

    def pop_ready(self, watermark: StreamId | None, now: float, everything: bool = False) -> list[T]:
        """Remove and return the ready items in frame order (all of them with `everything`)."""
        order = sorted(self._items)
        cut = len(order) if everything or watermark is None else sum(1 for k in order if k < watermark)
        for i in range(len(order) - 1, cut - 1, -1):  # the newest item that waited out the window
            if now - self._items[order[i]][0] >= self.window_s:
                cut = i + 1
                break
        ready = order[:cut]
        if ready:
            self.released = ready[-1]
        return [self._items.pop(k)[1] for k in ready]
