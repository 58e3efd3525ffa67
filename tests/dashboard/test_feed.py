"""The live feed's fan-out: throttling per camera and bounded queues for slow browsers."""

from __future__ import annotations

import asyncio
import json
import time

from services.dashboard import feed as feed_module
from services.dashboard.feed import Feed
from services.dashboard.results import parse_entry
from tests.dashboard.conftest import frame_result


def entry(data: bytes, live: bool = True, seq: int = 0):
    """A results-stream entry as the reader hands it on (`live` False: from a catch-up backlog)."""
    return parse_entry(f"{int(time.time() * 1000)}-{seq}", {b"data": data}, live)


def parse(chunk: str) -> tuple[str, object]:
    event, data = chunk.strip().split("\n")
    return event.removeprefix("event: "), json.loads(data.removeprefix("data: "))


def test_frames_are_throttled_per_camera() -> None:
    async def scenario() -> list[tuple[str, object]]:
        feed = Feed(redis=None, configured=tuple, fps=2.0, stale_after=15.0)
        stream = feed.subscribe()
        assert parse(await stream.__anext__())[0] == "alerts"  # the current alerts come first
        feed.consume([entry(frame_result("a", 100, ["with_mask"]).to_json().encode(), live=False)])  # backlog
        for i in range(5):  # a burst: only the first frame per camera passes within half a second
            feed.consume([entry(frame_result(camera, i, ["with_mask"]).to_json().encode(), seq=i)
                          for camera in ("a", "b")])
        feed.consume([entry(b"{broken")])
        out = [parse(await stream.__anext__()) for _ in range(2)]
        await stream.aclose()
        return out

    out = asyncio.run(scenario())
    assert [(event, data["camera"], data["frame"]) for event, data in out] == [("frame", "a", 0), ("frame", "b", 0)]


def test_a_slow_subscriber_loses_the_oldest_messages_only() -> None:
    async def scenario() -> tuple[list[int], int]:
        feed = Feed(redis=None, configured=tuple, fps=0, stale_after=15.0)
        stream = feed.subscribe()
        await stream.__anext__()
        for i in range(feed_module.QUEUE_SIZE + 36):
            feed.publish("tick", i)
        got = [parse(await stream.__anext__())[1] for _ in range(feed_module.QUEUE_SIZE)]
        await stream.aclose()
        return got, len(feed._subscribers)

    got, subscribers = asyncio.run(scenario())
    assert got == list(range(36, feed_module.QUEUE_SIZE + 36))
    assert subscribers == 0  # a closed stream unsubscribes
