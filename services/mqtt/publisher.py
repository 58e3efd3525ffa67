"""The bridge's MQTT connection (paho-mqtt 2): login, TLS, last will, reconnects, retained state, bounded events.

Publishing never blocks the caller: paho sends from its own network thread. While the broker is away,
paho reconnects with backoff (1 s doubling to `reconnect_max`); the newest retained message of every
topic is kept and sent again on each connect (so the broker gets the latest state, availability and
discovery configs), and events wait in a queue of `outage_queue` entries: the oldest are dropped, and
counted, when it is full. A slow broker is bounded the same way (paho's own queue holds at most
`outage_queue` messages; what does not fit is counted as dropped). One log line when the broker goes
away and one when it is back; never a traceback, never the password.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from shared.mqtt_config import MqttConfig, MqttCredentials
from shared.redaction import redact_text

log = logging.getLogger(__name__)
ONLINE, OFFLINE = "online", "offline"
CommandHandler = Callable[[str, bytes], None]


class MqttPublisher:
    """One broker connection; `start()` connects in the background, `close()` says goodbye."""

    def __init__(self, config: MqttConfig, creds: MqttCredentials, availability_topic: str,
                 on_command: CommandHandler | None = None, command_filters: list[str] | None = None) -> None:
        self.config, self.creds = config, creds
        self.availability_topic = availability_topic
        self.on_command, self.command_filters = on_command, command_filters or []
        self.where = f"{config.scheme}://{config.host}:{config.port}"
        self.sent = self.dropped = self.dropped_in_outage = 0
        self._lock = threading.Lock()
        self._retained: dict[str, bytes] = {}
        self._events: deque[tuple[str, bytes]] = deque()
        self._connected = False
        self._down_since: float | None = time.monotonic()  # not connected yet
        self._reported_down = False
        self._closing = False
        client_id = config.client_id or f"maskwatch-{socket.gethostname()}-{os.getpid()}"
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id[:128], clean_session=True,
                                  reconnect_on_failure=True)
        self.client.max_queued_messages_set(max(config.outage_queue, 100))
        self.client.reconnect_delay_set(min_delay=1, max_delay=int(config.reconnect_max))
        self.client.will_set(availability_topic, OFFLINE, qos=1, retain=True)
        if creds.username:
            self.client.username_pw_set(creds.username, creds.password)
        if creds.tls:
            self.client.tls_set(ca_certs=creds.ca_file, certfile=creds.cert_file, keyfile=creds.key_file)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_message = self._on_message

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background (paho's network thread keeps reconnecting until `close`)."""
        self.client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive)
        self.client.loop_start()

    def close(self, timeout: float = 3.0) -> None:
        """Publish "offline", send what is in flight (up to `timeout` s) and disconnect."""
        self._closing = True
        if self.connected:
            info = self.client.publish(self.availability_topic, OFFLINE, qos=1, retain=True)
            deadline = time.monotonic() + timeout
            while not info.is_published() and self.connected and time.monotonic() < deadline:
                time.sleep(0.05)
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        """Whether the broker accepted our connection and has not dropped it since."""
        return self._connected

    # -- publishing ----------------------------------------------------------------------------------------
    def publish_retained(self, topic: str, payload: bytes | str) -> None:
        """Publish a retained message now if connected; in any case it is sent again on every (re)connect."""
        data = payload.encode() if isinstance(payload, str) else payload
        with self._lock:
            self._retained[topic] = data
            connected = self._connected
        if connected:
            self._send(topic, data, retain=True)

    def forget_retained(self, topic: str) -> None:
        """Clear a retained topic on the broker (an empty retained message) and stop re-sending it."""
        with self._lock:
            self._retained.pop(topic, None)
            connected = self._connected
        if connected:
            self._send(topic, b"", retain=True)

    def publish_event(self, topic: str, payload: bytes | str) -> None:
        """Publish an event now, or queue it while the broker is away (oldest dropped past `outage_queue`)."""
        data = payload.encode() if isinstance(payload, str) else payload
        with self._lock:
            if not self._connected:
                if len(self._events) >= self.config.outage_queue:
                    if self._events:
                        self._events.popleft()
                    self.dropped += 1
                    self.dropped_in_outage += 1
                if self.config.outage_queue:
                    self._events.append((topic, data))
                return
        self._send(topic, data, retain=False)

    def _send(self, topic: str, data: bytes, retain: bool) -> None:
        info = self.client.publish(topic, data, qos=self.config.qos, retain=retain)
        if info.rc == paho.MQTT_ERR_SUCCESS:
            self.sent += 1
        elif info.rc == paho.MQTT_ERR_NO_CONN and not retain:
            with self._lock:  # the connection dropped between the check and the publish: queue it
                self._events.append((topic, data))
                while len(self._events) > self.config.outage_queue:
                    self._events.popleft()
                    self.dropped += 1
        else:
            self.dropped += 1  # the broker is slow: paho's queue is full

    # -- paho callbacks (network thread) -------------------------------------------------------------------
    def _on_connect(self, client: paho.Client, _userdata, _flags, reason, _properties) -> None:
        if reason.is_failure:
            if not self._reported_down:
                log.error("mqtt: broker %s refused the connection (%s); retrying with backoff", self.where,
                          self._redact(str(reason)))
                self._reported_down = True
            return
        with self._lock:
            self._connected = True
            retained = list(self._retained.items())
            queued, self._events = list(self._events), deque()
            dropped, self.dropped_in_outage = self.dropped_in_outage, 0
        down_for = time.monotonic() - self._down_since if self._down_since is not None else 0.0
        first = self.sent == 0 and not self._reported_down
        self._down_since, self._reported_down = None, False
        client.publish(self.availability_topic, ONLINE, qos=1, retain=True)
        for topic in self.command_filters:
            client.subscribe(topic, qos=1)
        for topic, data in retained:
            self._send(topic, data, retain=True)
        for topic, data in queued:
            self._send(topic, data, retain=False)
        if first:
            log.info("mqtt: connected to %s", self.where)
        else:
            log.info("mqtt: connected to %s again after %.0fs; sent %d queued event(s), dropped %d",
                     self.where, down_for, len(queued), dropped)

    def _on_disconnect(self, _client: paho.Client, _userdata, _flags, reason, _properties) -> None:
        with self._lock:
            was_connected, self._connected = self._connected, False
        if not was_connected or self._closing:
            return
        self._down_since = time.monotonic()
        self._report_down(f"connection lost ({self._redact(str(reason))})")

    def _on_connect_fail(self, _client: paho.Client, _userdata) -> None:
        self._report_down("cannot connect")

    def _report_down(self, why: str) -> None:
        if self._reported_down:
            return
        self._reported_down = True
        log.warning("mqtt: broker %s unavailable: %s; reconnecting with backoff (up to %.0fs), events queued "
                    "(up to %d, older ones dropped)", self.where, why, self.config.reconnect_max,
                    self.config.outage_queue)

    def _on_message(self, _client: paho.Client, _userdata, message: paho.MQTTMessage) -> None:
        if self.on_command is None:
            return
        try:
            self.on_command(message.topic, message.payload)
        except Exception as exc:  # a bad command must not stop the network thread
            log.warning("mqtt: command on %s failed: %s", message.topic, self._redact(str(exc)))

    def _redact(self, text: str) -> str:
        return redact_text(text, (self.creds.password,) if self.creds.password else ())
