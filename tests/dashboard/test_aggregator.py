"""The aggregator on a real Redis: each result counted once, across replicas, crashes and restarts;
every replica's reader still sees every result (its live feed shows them all)."""

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

from services.dashboard import queries
from services.dashboard.aggregator import Aggregator
from services.dashboard.results import ResultsReader
from shared import keys
from shared.schemas import PersonRecord
from tests.dashboard.conftest import frame_result, free_port, publish, stop_process

LABEL_CYCLE = [["with_mask"], ["with_mask", "without_mask"], ["mask_incorrect"], []]


def totals(client: redis.Redis, camera: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in client.hgetall(keys.stats_totals(camera)).items()}


def reader_of(agg: Aggregator, **options) -> ResultsReader:
    """The process's results reader feeding one aggregator, as the app wires it."""
    return ResultsReader(agg.redis, [agg.count], start=agg.cursor, block_ms=100, **options)


async def drain(agg: Aggregator) -> ResultsReader:
    reader = reader_of(agg)
    while await reader.step():
        pass
    return reader


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
        agg = Aggregator(redis_)
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
    assert client.get(keys.DASHBOARD_CURSOR) is not None  # the shared cursor moved to the last entry


def test_two_replicas_count_each_result_once_and_both_see_every_result(redis_url_7: str) -> None:
    client = redis.Redis.from_url(redis_url_7)

    async def scenario() -> tuple[list[int], list[int]]:
        clients = [aioredis.Redis.from_url(redis_url_7) for _ in range(2)]
        replicas = [Aggregator(c) for c in clients]
        readers = [reader_of(r, batch=7) for r in replicas]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(r.run(stop)) for r in readers]
        for i in range(300):
            publish(client, frame_result("gate", i, ["with_mask", "without_mask"]))
            if i % 50 == 0:
                await asyncio.sleep(0.05)
        deadline = time.monotonic() + 20
        while (sum(r.counted for r in replicas) < 300 or min(r.read for r in readers) < 300) \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        for c in clients:
            await c.aclose()
        return [r.counted for r in replicas], [r.read for r in readers]

    counted, read = asyncio.run(scenario())
    assert sum(counted) == 300
    assert read == [300, 300]  # each replica's live feed gets every result
    assert totals(client, "gate")["frames"] == "300"
    assert totals(client, "gate")["faces:without_mask"] == "300"


def test_a_batch_counted_by_another_replica_is_not_counted_again(redis_url_7: str) -> None:
    client = redis.Redis.from_url(redis_url_7)
    for i in range(5):
        publish(client, frame_result("lobby", i, ["without_mask"]))

    async def scenario() -> tuple[int, int, int]:
        redis_ = aioredis.Redis.from_url(redis_url_7)
        first, second = Aggregator(redis_), Aggregator(redis_)
        batch = []
        reader = ResultsReader(redis_, [batch.extend], start=first.cursor, block_ms=100)
        await reader.step()
        both = (await first.count(batch), await second.count(batch))  # the same batch, read by two replicas
        for i in range(5, 8):
            publish(client, frame_result("lobby", i, ["with_mask"]))
        restarted = Aggregator(redis_)  # a replica started later resumes from the shared cursor
        later = await drain(restarted)
        await redis_.aclose()
        return (*both, restarted.counted) if later.read == 3 else (-1, -1, -1)

    assert asyncio.run(scenario()) == (5, 0, 3)
    assert totals(client, "lobby")["frames"] == "8"
    assert totals(client, "lobby")["faces:with_mask"] == "3"


def test_a_replica_that_dies_before_its_transaction_leaves_the_entries_to_others(
        redis_url_7: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = redis.Redis.from_url(redis_url_7)
    for i in range(4):
        publish(client, frame_result("lobby", i, ["without_mask"]))

    async def scenario() -> int:
        redis_ = aioredis.Redis.from_url(redis_url_7)
        dying = Aggregator(redis_)
        monkeypatch.setattr(dying, "_queue_increments", lambda *a: (_ for _ in ()).throw(ConnectionError("killed")))
        with pytest.raises(ConnectionError):
            await drain(dying)
        survivor = Aggregator(redis_)
        await drain(survivor)
        await redis_.aclose()
        return survivor.counted

    assert asyncio.run(scenario()) == 4
    assert totals(client, "lobby")["frames"] == "4"


def test_malformed_entries_are_skipped_and_passed(redis_url_7: str, caplog: pytest.LogCaptureFixture) -> None:
    client = redis.Redis.from_url(redis_url_7)
    client.xadd(keys.RESULTS_STREAM, {"data": "{not json"})
    client.xadd(keys.RESULTS_STREAM, {"other": "field"})
    client.xadd(keys.RESULTS_STREAM, {"data": json.dumps({"type": "frame", "source": "x", "width": 1,
                                                          "height": 1, "faces": []})})  # no camera
    last = client.xadd(keys.RESULTS_STREAM, {"data": frame_result("lobby", 1, ["with_mask"]).to_json()})

    async def scenario() -> int:
        redis_ = aioredis.Redis.from_url(redis_url_7)
        agg = Aggregator(redis_)
        await drain(agg)
        await redis_.aclose()
        return agg.counted

    assert asyncio.run(scenario()) == 4
    assert totals(client, "lobby")["frames"] == "1"
    assert client.get(keys.DASHBOARD_CURSOR) == last
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
        agg = Aggregator(redis_)
        stop = asyncio.Event()
        task = asyncio.create_task(reader_of(agg).run(stop))
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
    warnings = [r.getMessage() for r in caplog.records if "results reader" in r.getMessage()]
    assert warnings and all("\n" not in m for m in warnings)


def test_a_catch_up_backlog_is_counted_but_not_live(redis_url_7: str) -> None:
    client = redis.Redis.from_url(redis_url_7)
    for i in range(3):
        publish(client, frame_result("hall", i, ["with_mask"]))  # before the dashboard started

    async def scenario() -> list[bool]:
        redis_ = aioredis.Redis.from_url(redis_url_7)
        agg, seen = Aggregator(redis_), []
        reader = ResultsReader(redis_, [agg.count, seen.extend], start=agg.cursor, block_ms=100)
        await reader.step()
        for i in range(3, 5):
            publish(client, frame_result("hall", i, ["with_mask"]))
        await reader.step()
        await redis_.aclose()
        return [entry.live for entry in seen]

    assert asyncio.run(scenario()) == [False, False, False, True, True]  # the pages get only the new ones
    assert totals(client, "hall")["frames"] == "5"  # all counted
