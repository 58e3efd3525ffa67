"""mqtts:// with the broker's CA, a client certificate and a password; a wrong CA is one log line, no traceback."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import pytest
import redis

from services.mqtt.publisher import MqttPublisher
from shared import keys
from shared.config import parse_config
from shared.mqtt_config import credentials
from tests.mqtt.broker import PASSWORD, USER, Broker
from tests.mqtt.inprocess import connected_publisher, feed_and_publish
from tests.stack.helpers import redis_url, wait_for
from tests.stack.test_redis_tls import make_certificates


@pytest.fixture
def tls_broker(tmp_path: Path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    certs = make_certificates(tmp_path / "tls")
    broker = Broker(tmp_path / "broker", password=True, tls=certs, client_certificates=True)
    broker.start()
    yield broker, certs
    broker.stop()


def test_state_over_tls_with_client_certificate_and_password(tmp_path: Path, tls_broker, mqtt_db: redis.Redis,
                                                             subscribe, monkeypatch: pytest.MonkeyPatch) -> None:
    broker, certs = tls_broker
    monkeypatch.setenv("MASKWATCH_MQTT_PASSWORD", PASSWORD)
    config = parse_config(f"""
redis_url: {redis_url(mqtt_db)}
cameras: [{{id: tlscam, url: /v.avi}}]
mqtt: {{url: '{broker.url}', username: {USER}, ca_file: '{certs["ca.crt"]}', cert_file: '{certs["client.crt"]}',
        key_file: '{certs["client.key"]}', topic_prefix: mwtls, home_assistant: false}}
""")
    mqtt_db.hset(keys.camera_state("tlscam"), mapping={"status": "live", "last_frame_time": repr(time.time())})
    sub = subscribe(broker.port, ["mwtls/#"], username=USER, password=PASSWORD, ca_file=certs["ca.crt"],
                    cert=(certs["client.crt"], certs["client.key"]))
    publisher = connected_publisher(config)
    try:
        feed_and_publish(mqtt_db, config, publisher, [])
        wait_for(lambda: sub.json_on("mwtls/tlscam/state"), 15, "the state over TLS")
    finally:
        publisher.close()
    assert sub.json_on("mwtls/tlscam/state")[-1]["status"] == "live"


def test_an_untrusted_broker_certificate_is_one_line(tmp_path: Path, tls_broker, caplog: pytest.LogCaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    broker, _certs = tls_broker
    other = make_certificates(tmp_path / "other")  # a CA that did not sign the broker's certificate
    monkeypatch.setenv("MASKWATCH_MQTT_PASSWORD", PASSWORD)
    config = parse_config(f"mqtt: {{url: '{broker.url}', username: {USER}, ca_file: '{other['ca.crt']}', "
                          "reconnect_max: 1}").mqtt
    publisher = MqttPublisher(config, credentials(config), "x/status")
    with caplog.at_level(logging.INFO):
        publisher.start()
        time.sleep(4)  # several attempts
        publisher.close()
    assert not publisher.connected
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("services.mqtt")]
    assert len(lines) == 1 and "unavailable: cannot connect" in lines[0], lines
    assert not any(r.exc_info for r in caplog.records) and PASSWORD not in caplog.text
