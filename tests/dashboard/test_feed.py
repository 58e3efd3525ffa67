"""The live feed's fan-out: throttling per camera and bounded queues for slow browsers."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from services.dashboard import feed as feed_module
from services.dashboard.feed import Feed
from services.dashboard.results import parse_entry
from services.dashboard.settings import DashboardSettings
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


DEEP_CONFIG = "cameras: " + "[" * 3000 + "]" * 3000  # the probe's config: capture crashed, the feed went quiet


def test_a_bad_config_never_stops_the_overviews_and_a_fix_is_picked_up(
        tmp_path: Path, redis_url_7: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(feed_module, "OVERVIEW_EVERY", 0.2)
    config = tmp_path / "cams.yaml"
    config.write_text("cameras: [{id: door, url: door.mp4}]\n")
    settings = DashboardSettings(config_path=config)

    async def cameras_seen(stream, count: int) -> list[list[str]]:
        seen = []
        while len(seen) < count:
            event, data = parse(await asyncio.wait_for(stream.__anext__(), timeout=20))
            if event == "cameras":
                seen.append([camera["id"] for camera in data])
        return seen

    def edit(text: str) -> None:
        config.write_text(text)
        stamp = config.stat().st_mtime + 1  # a new mtime even on a coarse clock
        os.utime(config, (stamp, stamp))

    async def scenario() -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
        client = aioredis.Redis.from_url(redis_url_7)
        feed = Feed(client, settings.cameras, fps=4.0, stale_after=15.0)
        stop = asyncio.Event()
        runner = asyncio.create_task(feed.run(stop))
        stream = feed.subscribe()
        try:
            before = await cameras_seen(stream, 2)
            edit(DEEP_CONFIG)
            during = await cameras_seen(stream, 3)
            edit("cameras: [{id: door, url: door.mp4}, {id: porch, url: porch.mp4}]\n")
            after = await cameras_seen(stream, 2)
            assert not runner.done(), runner
        finally:
            stop.set()
            await runner
            await stream.aclose()
            await client.aclose()
        return before, during, after

    before, during, after = asyncio.run(scenario())
    assert before[-1] == ["door"]
    assert during == [["door"]] * 3  # the previous camera list, still refreshed
    assert after[-1] == ["door", "porch"]
    assert "not valid YAML at line 1: exceeded maximum nesting depth" in caplog.text  # libyaml's own limit
    assert "Traceback" not in caplog.text
