"""The `mqtt:` section of the config file: where the MQTT bridge (services/mqtt/) publishes, and how it logs in.

Secrets never come from the config file or the command line: the password is read from `password_file`
(or `MASKWATCH_MQTT_PASSWORD_FILE`, a Docker or Kubernetes secret mount) or `MASKWATCH_MQTT_PASSWORD`.
A URL with a user or password in it is refused, so no secret ends up in a file that is shown or logged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.secrets import password_from

PASSWORD_ENV = "MASKWATCH_MQTT_PASSWORD"
PASSWORD_FILE_ENV = "MASKWATCH_MQTT_PASSWORD_FILE"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")


class MqttSettingsError(ValueError):
    """MQTT settings that cannot be used (an unreadable password or certificate file); one line."""


class MqttConfig(BaseModel):
    """The `mqtt:` config section (absent: no bridge)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="mqtt://host[:1883] or mqtts://host[:8883] (TLS)")
    username: str | None = Field(None, description="broker user; the password comes from password_file or "
                                 f"${PASSWORD_ENV}")
    password_file: Path | None = Field(None, description="file holding the broker password (one line)")
    ca_file: Path | None = Field(None, description="CA bundle that signed the broker's certificate (mqtts://; "
                                 "default: the system's)")
    cert_file: Path | None = Field(None, description="client certificate, when the broker asks for one")
    key_file: Path | None = Field(None, description="the client certificate's private key")
    client_id: str | None = Field(None, max_length=128, description="default maskwatch-<host>-<pid>")
    topic_prefix: str = Field("maskwatch", description="every topic starts with this")
    home_assistant: bool = Field(True, description="publish Home Assistant MQTT discovery configs")
    discovery_prefix: str = Field("homeassistant", description="Home Assistant's discovery prefix")
    commands: bool = Field(False, description="accept enable/disable commands on <prefix>/<camera>/.../set "
                           "(needs username and password)")
    thumbnails: bool = Field(False, description="publish each person's face thumbnail (JPEG) on "
                             "<prefix>/<camera>/thumbnail")
    state_interval: float = Field(5.0, ge=1, le=300, description="seconds between state updates (at most)")
    qos: int = Field(1, ge=0, le=1, description="QoS of state and events")
    keepalive: int = Field(30, ge=5, le=3600, description="seconds between MQTT pings")
    outage_queue: int = Field(200, ge=0, le=100_000, description="events kept while the broker is unreachable "
                              "(sent when it is back); older ones are counted as dropped")
    reconnect_max: float = Field(30.0, ge=1, le=600, description="longest wait between reconnect attempts (s)")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in DEFAULT_PORTS:
            raise ValueError("must start with mqtt:// or mqtts://")
        if "@" in parts.netloc:
            raise ValueError(f"must not hold a user or password: set mqtt.username, and the password in "
                             f"password_file or ${PASSWORD_ENV}")
        if not parts.hostname:
            raise ValueError("has no host")
        try:
            parts.port  # noqa: B018 - raises for a port that is not a number in range
        except ValueError:
            raise ValueError("has an invalid port") from None
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must be mqtt[s]://host[:port] only")
        return value

    @field_validator("topic_prefix", "discovery_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _TOPIC_RE.match(value):
            raise ValueError("must be topic levels of letters, digits, '_' or '-' separated by '/' "
                             "(no wildcards, no leading or trailing '/')")
        return value

    @model_validator(mode="after")
    def _check_tls_files(self) -> MqttConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.scheme == "mqtt" and any((self.ca_file, self.cert_file)):
            raise ValueError("ca_file, cert_file and key_file need an mqtts:// url")
        return self

    @property
    def scheme(self) -> str:
        """"mqtt" or "mqtts"."""
        return urlsplit(self.url).scheme

    @property
    def host(self) -> str:
        """The broker's host name or address."""
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        """The broker's port (1883 for mqtt://, 8883 for mqtts:// unless given)."""
        return urlsplit(self.url).port or DEFAULT_PORTS[self.scheme]


@dataclass(frozen=True)
class MqttCredentials:
    """The secrets and files of a connection, resolved once at start."""

    username: str | None
    password: str | None
    tls: bool
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def authenticated(self) -> bool:
        """Whether the bridge logs in with a user and password (commands require it)."""
        return bool(self.username and self.password)


def credentials(config: MqttConfig, env: Mapping[str, str] | None = None) -> MqttCredentials:
    """Username, password and TLS files for `config`; raises `MqttSettingsError` when a file cannot be read."""
    env = os.environ if env is None else env
    password = password_from(env, PASSWORD_ENV, PASSWORD_FILE_ENV, config.password_file, "mqtt", MqttSettingsError)
    if password and not config.username:
        raise MqttSettingsError("mqtt: a password is set but no mqtt.username")
    files = {}
    for name in ("ca_file", "cert_file", "key_file"):
        path = getattr(config, name)
        if path is not None and not Path(path).is_file():
            raise MqttSettingsError(f"mqtt {name.replace('_', ' ')} {path}: no such file")
        files[name] = str(path) if path is not None else None
    return MqttCredentials(config.username, password, config.scheme == "mqtts", **files)
