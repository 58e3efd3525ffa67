"""The bridge in the test process: fed results directly, state published once, on a real broker and Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import redis
import redis.asyncio as aioredis

from services.dashboard.aggregator import Aggregator
from services.dashboard.results import ResultEntry
from services.mqtt.bridge import MqttBridge
from services.mqtt.publisher import MqttPublisher
from services.mqtt.topics import Topics
from shared import keys
from shared.config import Config
from shared.mqtt_config import credentials
from shared.schemas import AlertRecord, FrameResult, LineCrossing, PersonRecord
from tests.stack.helpers import redis_url, wait_for

Result = FrameResult | PersonRecord | LineCrossing | AlertRecord


def entries(results: Sequence[Result]) -> list[ResultEntry]:
    """Results as stream entries with increasing ids."""
    base = int(time.time() * 1000)
    return [ResultEntry(f"{base}-{i}", result) for i, result in enumerate(results)]


def count_like_the_dashboard(client: redis.Redis) -> int:
    """Count what the results stream holds into the dashboard's buckets (the dashboard's aggregator, exactly once)."""
    from services.dashboard.results import parse_entry

    async def run() -> int:
        async_client = aioredis.Redis.from_url(redis_url(client))
        try:
            batch = [parse_entry(entry_id, fields) for entry_id, fields in client.xrange(keys.RESULTS_STREAM)]
            return await Aggregator(async_client).count(batch)
        finally:
            await async_client.aclose()

    return asyncio.run(run())


def connected_publisher(config: Config) -> MqttPublisher:
    """A started publisher of `config.mqtt`, once the broker accepted it."""
    topics = Topics(config.mqtt.topic_prefix, config.mqtt.discovery_prefix)
    publisher = MqttPublisher(config.mqtt, credentials(config.mqtt), topics.availability)
    publisher.start()
    wait_for(lambda: publisher.connected, 15, "the bridge to connect")
    return publisher


def feed_and_publish(client: redis.Redis, config: Config, publisher: MqttPublisher, results: Sequence[Result],
                     counted: bool = True, now: float | None = None) -> MqttBridge:
    """Count `results` as the dashboard does (when `counted`), hand them to a bridge, publish its state once."""
    topics = Topics(config.mqtt.topic_prefix, config.mqtt.discovery_prefix)

    async def run() -> MqttBridge:
        async_client = aioredis.Redis.from_url(redis_url(client))
        try:
            batch = entries(results)
            if counted:
                await Aggregator(async_client).count(batch)
            bridge = MqttBridge(config, async_client, publisher, topics)
            bridge.consume(batch)
            await bridge.publish_state(now)
            return bridge
        finally:
            await async_client.aclose()

    return asyncio.run(run())
