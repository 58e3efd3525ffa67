"""The aggregator on a real Redis: each result counted once, across replicas, crashes and restarts."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis

from services.dashboard import aggregator as aggregator_module
from services.dashboard import queries
from services.dashboard.aggregator import Aggregator
from shared import keys
from shared.schemas import PersonRecord
from tests.dashboard.conftest import frame_result, free_port, publish, stop_process

LABEL_CYCLE = [["with_mask"], ["with_mask", "without_mask"], ["mask_incorrect"], []]


def totals(client: redis.Redis, camera: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in client.hgetall(keys.stats_totals(camera)).items()}


async def drain(agg: Aggregator) -> None:
    while await agg.step():
        pass


def test_counts_windows_totals_latency_and_events(redis_url_7: str) -> None:
    client = redis.Redis.from_url(redis_url_7)
    now = time.time()
    for i in range(8):
        publish(client, frame_result("door", i, LABEL_CYCLE[i % 4], captured_at=now - 8 + i, latency=0.3))
    publish(client, frame_result("hall", 0, ["without_mask"] * 3, captured_at=now - 7200))  # two hours ago
    client.xadd(keys.RESULTS_STREAM, {"data": PersonRecord(
        camera="door", track_id=7, label="with_mask", first_seen=now - 5, last_seen=now - 1, frames=40,
        best_box=[1, 2, 30, 40]).to_json()})

    async def scenario() -> dict:
        redis_ = aioredis.Redis.from_url(redis_url_7)
        agg = Aggregator(redis_, block_ms=100)
        await agg.ensure_group()
        await drain(agg)
        out = {"counted": agg.counted,
               "door_1m": await queries.window_stats(redis_, "door", "1m"),
               "hall_1h": await queries.window_stats(redis_, "hall", "1h"),
               "hall_1d": await queries.window_stats(redis_, "hall", "1d"),
               "events": await queries.events(redis_, "door")}
        await redis_.aclose()
        return out

    out = asyncio.run(scenario())
    assert out["counted"] == 10
    door = out["door_1m"]
    assert door.frames == 8
    assert door.faces == {"with_mask": 4, "without_mask": 2, "mask_incorrect": 2}
    assert door.people["with_mask"] == 1
    assert door.compliance == pytest.approx(0.5)
    assert out["hall_1h"].frames == 0 and out["hall_1d"].faces["without_mask"] == 3
    door_totals = totals(client, "door")
    assert door_totals["frames"] == "8" and door_totals["faces:with_mask"] == "4"
    assert door_totals["latency:0.5"] == "8" and float(door_totals["latency_sum"]) == pytest.approx(2.4)
    assert door_totals["model_version"] == "tiny-test+retinaface-stock"
    kinds = [event["type"] for event in out["events"]]
    assert kinds[0] == "person" and kinds.count("change") == 7  # each frame's labels differ from the last
    assert client.xpending(keys.RESULTS_STREAM, keys.DASHBOARD_GROUP)["pending"] == 0


def test_two_replicas_count_each_result_once(redis_url_7: str) -> None:
    client = redis.Redis.from_url(redis_url_7)

    async def scenario() -> tuple[int, int]:
        clients = [aioredis.Redis.from_url(redis_url_7) for _ in range(2)]
        replicas = [Aggregator(c, consumer=f"replica-{i}", batch=7, block_ms=100) for i, c in enumerate(clients)]
        await replicas[0].ensure_group()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(r.run(stop)) for r in replicas]
        for i in range(300):
            publish(client, frame_result("gate", i, ["with_mask", "without_mask"]))
            if i % 50 == 0:
                await asyncio.sleep(0.05)
        deadline = time.monotonic() + 20
        while sum(r.counted for r in replicas) < 300 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        for c in clients:
            await c.aclose()
        return replicas[0].counted, replicas[1].counted

    first, second = asyncio.run(scenario())
    assert first + second == 300 and first > 0 and second > 0
    assert totals(client, "gate")["frames"] == "300"
    assert totals(client, "gate")["faces:without_mask"] == "300"


def test_entries_of_a_dead_replica_are_claimed_and_counted_once(redis_url_7: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    client = redis.Redis.from_url(redis_url_7)
    client.xgroup_create(keys.RESULTS_STREAM, keys.DASHBOARD_GROUP, id="0", mkstream=True)
    for i in range(5):
        publish(client, frame_result("lobby", i, ["without_mask"]))
    # a replica reads the entries and dies before counting them
    taken = client.xreadgroup(keys.DASHBOARD_GROUP, "dead-replica", {keys.RESULTS_STREAM: ">"}, count=10)
    assert len(taken[0][1]) == 5
    monkeypatch.setattr(aggregator_module, "CLAIM_IDLE_MS", 0)

    async def scenario() -> int:
        redis_ = aioredis.Redis.from_url(redis_url_7)
        agg = Aggregator(redis_, consumer="survivor", block_ms=100)
        await drain(agg)
        await redis_.aclose()
        return agg.counted

    assert asyncio.run(scenario()) == 5
    assert totals(client, "lobby")["frames"] == "5"
    assert client.xpending(keys.RESULTS_STREAM, keys.DASHBOARD_GROUP)["pending"] == 0


def test_malformed_entries_are_skipped_and_acknowledged(redis_url_7: str, caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    client = redis.Redis.from_url(redis_url_7)
    client.xadd(keys.RESULTS_STREAM, {"data": "{not json"})
    client.xadd(keys.RESULTS_STREAM, {"other": "field"})
    client.xadd(keys.RESULTS_STREAM, {"data": json.dumps({"type": "frame", "source": "x", "width": 1,
                                                          "height": 1, "faces": []})})  # no camera
    publish(client, frame_result("lobby", 1, ["with_mask"]))

    async def scenario() -> int:
        redis_ = aioredis.Redis.from_url(redis_url_7)
        agg = Aggregator(redis_, block_ms=100)
        await agg.ensure_group()
        await drain(agg)
        await redis_.aclose()
        return agg.counted

    assert asyncio.run(scenario()) == 4
    assert totals(client, "lobby")["frames"] == "1"
    assert client.xpending(keys.RESULTS_STREAM, keys.DASHBOARD_GROUP)["pending"] == 0
    messages = [r.getMessage() for r in caplog.records if "skipping results entry" in r.getMessage()]
    assert len(messages) == 3 and all("\n" not in m for m in messages)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[tuple[int, callable]]:
    """A throw-away redis-server without persistence, restartable on the same port."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    procs: list[subprocess.Popen] = []

    def start() -> None:
        proc = subprocess.Popen([binary, "--port", str(port), "--save", "", "--appendonly", "no",
                                 "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
        procs.append(proc)
        probe = redis.Redis(port=port, socket_connect_timeout=0.5)
        for _ in range(100):
            try:
                probe.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    start()
    yield port, start, procs
    for proc in procs:
        stop_process(proc, 5)


def test_aggregator_survives_a_redis_restart(private_redis, caplog: pytest.LogCaptureFixture) -> None:
    port, start, procs = private_redis
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)

    async def wait_counted(agg: Aggregator, n: int) -> None:
        deadline = time.monotonic() + 20
        while agg.counted < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def scenario() -> int:
        redis_ = aioredis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        agg = Aggregator(redis_, block_ms=100)
        stop = asyncio.Event()
        task = asyncio.create_task(agg.run(stop))
        for i in range(10):
            publish(client, frame_result("yard", i, ["with_mask"]))
        await wait_counted(agg, 10)
        stop_process(procs[-1], 5)  # Redis goes away (and loses everything: no persistence)
        await asyncio.sleep(1.0)
        start()
        for i in range(10, 14):
            publish(client, frame_result("yard", i, ["without_mask"]))
        await wait_counted(agg, 14)
        stop.set()
        await asyncio.wait_for(task, 10)
        await redis_.aclose()
        return agg.counted

    assert asyncio.run(scenario()) == 14
    assert totals(client, "yard") == {**totals(client, "yard"), "frames": "4", "faces:without_mask": "4"}
    warnings = [r.getMessage() for r in caplog.records if "aggregator" in r.getMessage()]
    assert warnings and all("\n" not in m for m in warnings)
