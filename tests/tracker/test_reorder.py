"""The reorder buffer: frames come out in frame order, late ones are refused, a dead worker is not waited for."""

from __future__ import annotations

import pytest

from services.tracker.reorder import ReorderBuffer
from shared.detections import StreamId, stream_id


def sid(n: int) -> StreamId:
    return StreamId(1000 + n, 0)


def test_out_of_order_frames_come_out_in_order_once_earlier_ones_are_done() -> None:
    buffer: ReorderBuffer[int] = ReorderBuffer(window_s=1.0)
    for n in (3, 1, 4):
        assert buffer.add(sid(n), n, now=0.0)
    # frame 2 is still with a worker: only what comes before it may go
    assert buffer.pop_ready(watermark=sid(2), now=0.1) == [1]
    assert buffer.pop_ready(watermark=sid(2), now=0.2) == []
    assert buffer.add(sid(2), 2, now=0.3)
    assert buffer.pop_ready(watermark=None, now=0.3) == [2, 3, 4]  # no frame held anywhere: all go
    assert buffer.released == sid(4) and len(buffer) == 0


def test_a_frame_held_too_long_is_not_waited_for_and_then_is_late() -> None:
    buffer: ReorderBuffer[int] = ReorderBuffer(window_s=1.0)
    buffer.add(sid(2), 2, now=0.0)
    buffer.add(sid(3), 3, now=0.5)
    assert buffer.pop_ready(watermark=sid(1), now=0.9) == []
    assert buffer.pop_ready(watermark=sid(1), now=1.0) == [2]  # frame 2 waited the window; 3 has not yet
    assert buffer.pop_ready(watermark=sid(1), now=1.5) == [3]
    assert not buffer.add(sid(1), 1, now=1.6)  # the frame the dead worker held arrives: late
    assert not buffer.add(sid(3), 3, now=1.6)  # so is a frame already released
    assert len(buffer) == 0


def test_a_frame_that_waited_releases_the_earlier_ones_with_it() -> None:
    buffer: ReorderBuffer[str] = ReorderBuffer(window_s=1.0)
    buffer.add(sid(5), "five", now=0.0)
    buffer.add(sid(4), "four", now=0.8)
    assert buffer.pop_ready(watermark=sid(1), now=1.0) == ["four", "five"]


def test_everything_and_ids() -> None:
    buffer: ReorderBuffer[int] = ReorderBuffer(window_s=10.0)
    buffer.add(sid(2), 2, now=0.0)
    buffer.add(sid(1), 1, now=0.0)
    buffer.add(sid(1), 99, now=0.0)  # the same frame twice (re-read after a takeover): kept once
    assert buffer.items() == [1, 2]
    assert buffer.pop_ready(watermark=sid(0), now=0.0, everything=True) == [1, 2]
    assert stream_id(b"1700000000000-12") == StreamId(1700000000000, 12) and str(StreamId(5, 1)) == "5-1"
    assert stream_id("7-0") < stream_id("7-1") < stream_id("10-0")  # numeric, not text, order
    with pytest.raises(ValueError):
        stream_id("nope")
    with pytest.raises(ValueError):
        ReorderBuffer(window_s=-1)
