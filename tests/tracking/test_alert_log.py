"""The Redis list of recent alerts (database 10, flushed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from shared.alert_log import ALERTS_LIST, recent_alerts, redis_sink
from shared.alerts import AlertDispatcher, AlertsConfig
from tests.conftest import flushed_redis
from tests.tracking.synthetic import face, frame

DB = 10


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    yield from flushed_redis(DB)


def test_alerts_are_kept_newest_first_and_capped(client: redis.Redis) -> None:
    dispatcher = AlertDispatcher(AlertsConfig(confirm_frames=1, cooldown_s=0), sinks=[redis_sink(client, cap=5)])
    for track_id in range(1, 9):
        f = face(10, 10, "without_mask").model_copy(update={"track_id": track_id, "track_label": "without_mask"})
        dispatcher.on_frame(frame(track_id, [f], camera="gate"))
    assert client.llen(ALERTS_LIST) == 5
    client.lpush(ALERTS_LIST, b"not json")
    events = recent_alerts(client, count=4)
    assert [e["track_id"] for e in events] == [8, 7, 6]
    assert all(e["camera"] == "gate" and e["kind"] == "person" for e in events)
