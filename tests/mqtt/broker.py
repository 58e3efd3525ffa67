"""Real Mosquitto brokers for the MQTT tests: private ones (password file, TLS, stop and restart) and a subscriber."""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.stack.helpers import free_port, wait_for

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
BROKER_PORTS = range(18830, 18900)
USER, PASSWORD = "maskwatch", "Mq77-S3cret-pw"


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Broker:
    """A mosquitto of our own on a free port: anonymous, or with a password file, or TLS; stop() and start() again."""

    def __init__(self, folder: Path, password: bool = False, tls: dict[str, Path] | None = None,
                 persistent: bool = False, client_certificates: bool = False) -> None:
        if not Path(MOSQUITTO).exists():
            pytest.skip("mosquitto is not installed")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.port, self.tls = folder, free_port(BROKER_PORTS), tls
        # run as ourselves (as root, mosquitto would switch to a user that cannot read the test folder)
        lines = [f"listener {self.port} 127.0.0.1", "log_dest stderr", f"user {getpass.getuser()}"]
        # persistent: sessions and queued messages of offline subscribers survive a stop() (SIGTERM) and start()
        lines += [f"persistence true\npersistence_location {folder}/"] if persistent else ["persistence false"]
        if password:
            passwd = folder / "passwd"
            subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), USER, PASSWORD], check=True,
                           capture_output=True, timeout=30)
            passwd.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if tls:
            lines += [f"cafile {tls['ca.crt']}", f"certfile {tls['server.crt']}", f"keyfile {tls['server.key']}",
                      f"require_certificate {'true' if client_certificates else 'false'}"]
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The broker's URL for the `mqtt:` config section."""
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or restart) on the same port and wait until it accepts connections."""
        log = (self.folder / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(lambda: listening(self.port) or self.proc.poll() is not None, 15, f"mosquitto on port {self.port}")
        if self.proc.poll() is not None:
            pytest.fail(f"mosquitto did not start: {(self.folder / 'mosquitto.log').read_text()[-1000:]}")

    def stop(self) -> None:
        """Stop the broker (an outage; SIGTERM, so a persistent one saves its sessions)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        wait_for(lambda: not listening(self.port), 10, "mosquitto to stop")


class Subscriber:
    """A paho client that records every message of its subscriptions (retained ones included)."""

    def __init__(self, port: int, topics: list[str], username: str | None = None, password: str | None = None,
                 ca_file: Path | None = None, cert: tuple[Path, Path] | None = None, persistent: bool = False) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"test-sub-{time.monotonic_ns()}",
                                  clean_session=not persistent)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        if username:
            self.client.username_pw_set(username, password)
        if ca_file:
            self.client.tls_set(ca_certs=str(ca_file), certfile=str(cert[0]) if cert else None,
                                keyfile=str(cert[1]) if cert else None)
        self.client.on_connect = lambda c, *_: [c.subscribe(t, qos=1) for t in topics]
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def _on_message(self, _client, _userdata, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def on(self, topic: str) -> list[bytes]:
        """Payloads received on `topic`, oldest first."""
        with self._lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def json_on(self, topic: str) -> list[dict]:
        """Non-empty payloads on `topic` as JSON."""
        return [json.loads(p) for p in self.on(topic) if p]

    def topics(self) -> set[str]:
        """Every topic a message arrived on."""
        with self._lock:
            return {t for t, _, _ in self.messages}

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
