"""`maskwatch mqtt` as its own process on real Redis and a real Mosquitto: events, state, logins, outages."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import redis

from shared import keys
from shared.schemas import AlertRecord, LineCrossing, PersonRecord
from tests.mqtt.broker import PASSWORD, USER, Broker
from tests.mqtt.inprocess import count_like_the_dashboard
from tests.stack.helpers import redis_url, wait_for, write_config

JPEG = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAP//////////////////////////////////////////////////////////////////" \
       "////////////////////2wBDAf//////////////////////////////////////////////////////////////////////////" \
       "////////////wAARCAABAAEDASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAAAAP/xAAUEAEAAAAAAAAAAAAAAAAAAAAA/8QAFAEB" \
       "AAAAAAAAAAAAAAAAAAAAAP/EABQRAQAAAAAAAAAAAAAAAAAAAAD/2gAMAwEAAhEDEQA/AKAA/9k="


def person(track: int, label: str = "without_mask", static: bool = False) -> PersonRecord:
    now = time.time()
    return PersonRecord(camera="gate", track_id=track, label=label, first_seen=now - 2, last_seen=now, frames=8,
                        best_box=[1, 2, 30, 40], thumbnail=JPEG, static=static)


def publish(db: redis.Redis, *messages) -> None:
    """Add results to the stream, as the tracker does."""
    for message in messages:
        db.xadd(keys.RESULTS_STREAM, {"data": message.to_json()})


def bridge_config(tmp_path: Path, db: redis.Redis, broker: Broker, **mqtt) -> Path:
    return write_config(tmp_path / "cams.yaml", redis_url(db), [{"id": "gate", "url": "/no/such.avi"}],
                        mqtt={"url": broker.url, "topic_prefix": "mw", "state_interval": 1, **mqtt})


def started(processes, config: Path, db: redis.Redis):
    """Start `maskwatch mqtt` and wait until it reads the results stream (a client named mqtt in Redis)."""
    proc = processes.start("mqtt", "--config", str(config), name="mqtt")
    wait_for(lambda: "mqtt: connected to" in processes.log(proc) or proc.poll() is not None, 60, "the bridge")
    wait_for(lambda: any(c.get("name") == "mqtt" and "xread" in c.get("cmd", "") for c in db.client_list()), 30,
             "the bridge to read the results stream")
    return proc


@pytest.mark.slow
def test_events_state_and_password_login(tmp_path: Path, mqtt_db: redis.Redis, password_broker: Broker, processes,
                                         subscribe) -> None:
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    config = bridge_config(tmp_path, mqtt_db, password_broker, username=USER, password_file=str(tmp_path / "pw"),
                           thumbnails=True)
    mqtt_db.sadd(keys.CAMERAS_SET, "gate")
    sub = subscribe(password_broker.port, ["mw/#"], username=USER, password=PASSWORD)
    proc = started(processes, config, mqtt_db)
    now = time.time()
    publish(mqtt_db, person(1), person(2, static=True), person(3, "with_mask"),
            LineCrossing(camera="gate", line="in-door", direction="in", track_id=3, label="with_mask", time=now),
            AlertRecord(camera="gate", kind="person", time=now, event={"id": "a1", "kind": "person"}))
    assert count_like_the_dashboard(mqtt_db) == 5  # the counts the state reads
    wait_for(lambda: len(sub.on("mw/gate/events")) >= 4, 30, "the events")
    wait_for(lambda: any(s["entries_total_today"] == 1 for s in sub.json_on("mw/gate/state")), 30, "the state")
    events = sub.json_on("mw/gate/events")
    assert [(e["type"], e.get("track_id")) for e in events] == [
        ("person", 1), ("person", 3), ("crossing", 3), ("alert", None)]  # the static face is no person
    assert "thumbnail" not in events[0] and events[3]["event"] == {"id": "a1", "kind": "person"}
    thumbnails = sub.on("mw/gate/thumbnail")
    assert len(thumbnails) == 2 and all(t.startswith(b"\xff\xd8") for t in thumbnails)
    state = sub.json_on("mw/gate/state")[-1]
    assert state["unmasked_last_minute"] is True and state["lines"] == ["in-door"]
    assert state["people_today"] == {"with_mask": 1, "without_mask": 1, "mask_incorrect": 0}
    assert sub.json_on("mw/gate/line/in-door/state")[-1]["entries_total_1h"] == 1
    assert sub.on("mw/status")[-1] == b"online"
    assert PASSWORD not in Path(f"/proc/{proc.pid}/cmdline").read_text()
    assert PASSWORD not in Path(f"/proc/{proc.pid}/environ").read_bytes().decode(errors="replace")
    assert processes.stop(proc) == 0
    wait_for(lambda: sub.on("mw/status")[-1] == b"offline", 10, "offline on a clean stop")
    log = processes.log(proc)
    assert PASSWORD not in log and "Traceback" not in log

    # killed, it cannot say goodbye: the broker publishes its last will
    proc = started(processes, config, mqtt_db)
    wait_for(lambda: sub.on("mw/status")[-1] == b"online", 10, "online again")
    os.kill(proc.pid, signal.SIGKILL)
    wait_for(lambda: sub.on("mw/status")[-1] == b"offline", 20, "the last will")

    # a wrong password: one line, retried, never shown
    (tmp_path / "pw").write_text("Wrong-pw-123")
    proc = processes.start("mqtt", "--config", str(config), name="wrong")
    wait_for(lambda: "refused the connection" in processes.log(proc), 30, "the refusal")
    time.sleep(3)  # paho retries meanwhile
    assert processes.stop(proc) == 0
    log = processes.log(proc)
    assert log.count("refused the connection (Not authorized)") == 1, log
    assert "Wrong-pw-123" not in log and "Traceback" not in log


@pytest.mark.slow
def test_broker_down_20s_is_reconnected_with_the_latest_state(tmp_path: Path, mqtt_db: redis.Redis, processes,
                                                              subscribe) -> None:
    broker = Broker(tmp_path / "broker", persistent=True)
    broker.start()
    try:
        config = bridge_config(tmp_path, mqtt_db, broker, reconnect_max=2, outage_queue=3)
        mqtt_db.sadd(keys.CAMERAS_SET, "gate")
        sub = subscribe(broker.port, ["mw/#"], persistent=True)  # its queued messages survive the restart
        proc = started(processes, config, mqtt_db)
        publish(mqtt_db, person(1))
        wait_for(lambda: sub.on("mw/gate/events") and sub.on("mw/gate/state"), 30, "an event and the state")

        broker.stop()
        time.sleep(3)
        publish(mqtt_db, *[person(track) for track in range(10, 15)],
                LineCrossing(camera="gate", line="door", direction="in", track_id=14, label="with_mask",
                             time=time.time()))
        count_like_the_dashboard(mqtt_db)  # the state changes during the outage
        time.sleep(17)  # down for 20 s
        assert proc.poll() is None
        broker.start()
        wait_for(lambda: any(s.get("entries_total_today") == 1 for s in sub.json_on("mw/gate/state")), 30,
                 "the state of the outage, after the restart")
        wait_for(lambda: len(sub.on("mw/gate/events")) >= 4, 30, "the queued events")
        time.sleep(1)
        tracks = [e["track_id"] for e in sub.json_on("mw/gate/events")]
        assert tracks == [1, 13, 14, 14], tracks  # outage_queue 3: the newest three of six were kept
        assert sub.on("mw/status")[-1] == b"online"
        assert processes.stop(proc) == 0
        log = processes.log(proc)
        assert log.count("unavailable") == 1, log
        assert log.count("again after") == 1 and "sent 3 queued event(s), dropped 3" in log, log
        assert "Traceback" not in log
    finally:
        broker.stop()


def test_commands_need_a_password(tmp_path: Path, mqtt_db: redis.Redis, processes) -> None:
    broker_url = "mqtt://127.0.0.1:1883"
    config = write_config(tmp_path / "cams.yaml", redis_url(mqtt_db), [],
                          mqtt={"url": broker_url, "commands": True})
    proc = processes.start("mqtt", "--config", str(config), name="commands")
    assert proc.wait(60) == 2
    assert processes.log(proc).strip().splitlines()[-1].startswith("error: mqtt.commands needs mqtt.username")
    plain = write_config(tmp_path / "plain.yaml", redis_url(mqtt_db), [])
    proc = processes.start("mqtt", "--config", str(plain), name="none")
    assert proc.wait(60) == 2 and "no mqtt: section" in processes.log(proc)

