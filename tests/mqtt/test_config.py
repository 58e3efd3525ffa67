"""The `mqtt:` config section: URLs, prefixes, TLS files, where the password comes from."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import ConfigError, parse_config
from shared.mqtt_config import PASSWORD_ENV, PASSWORD_FILE_ENV, MqttConfig, MqttSettingsError, credentials


def test_defaults_and_ports() -> None:
    config = parse_config("mqtt: {url: 'mqtt://broker.local'}").mqtt
    assert (config.host, config.port, config.scheme) == ("broker.local", 1883, "mqtt")
    assert config.topic_prefix == "maskwatch" and config.home_assistant and not config.commands
    assert MqttConfig(url="mqtts://b:9999").port == 9999 and MqttConfig(url="mqtts://b").port == 8883
    assert parse_config("cameras: []").mqtt is None


@pytest.mark.parametrize(("section", "message"), [
    ("{url: 'http://b'}", "mqtt.url: must start with mqtt:// or mqtts://"),
    ("{url: 'mqtt://user:pw@b'}", "mqtt.url: must not hold a user or password"),
    ("{url: 'mqtt://b:99999'}", "mqtt.url: has an invalid port"),
    ("{url: 'mqtt://b/x'}", "mqtt.url: must be mqtt[s]://host[:port] only"),
    ("{url: 'mqtt://b', topic_prefix: 'a/#'}", "mqtt.topic_prefix: must be topic levels"),
    ("{url: 'mqtt://b', topic_prefix: '/a'}", "mqtt.topic_prefix: must be topic levels"),
    ("{url: 'mqtt://b', ca_file: /x}", "ca_file, cert_file and key_file need an mqtts:// url"),
    ("{url: 'mqtts://b', cert_file: /x}", "cert_file and key_file go together"),
    ("{url: 'mqtt://b', password: pw}", "mqtt.password: unknown option"),
    ("{url: 'mqtt://b', state_interval: 0.1}", "mqtt.state_interval: Input should be greater than or equal to 1"),
])
def test_bad_sections_are_one_line(section: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(f"mqtt: {section}")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert "pw" not in str(err.value).replace("password", "")


def test_password_from_environment_or_file(tmp_path: Path) -> None:
    config = MqttConfig(url="mqtt://b", username="u", password_file=tmp_path / "pw")
    (tmp_path / "pw").write_text("from-file\n")
    assert credentials(config, env={}).password == "from-file"
    assert credentials(config, env={PASSWORD_ENV: "from-env"}).password == "from-env"
    (tmp_path / "other").write_text("mounted")
    assert credentials(config, env={PASSWORD_FILE_ENV: str(tmp_path / "other")}).password == "mounted"
    assert credentials(MqttConfig(url="mqtt://b"), env={}).authenticated is False


def test_unusable_secrets_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(MqttSettingsError, match=r"^mqtt password file .*missing: cannot read \(No such file"):
        credentials(MqttConfig(url="mqtt://b", username="u", password_file=tmp_path / "missing"), env={})
    with pytest.raises(MqttSettingsError, match="a password is set but no mqtt.username"):
        credentials(MqttConfig(url="mqtt://b"), env={PASSWORD_ENV: "pw"})
    with pytest.raises(MqttSettingsError, match=r"^mqtt ca file .*ca.crt: no such file$"):
        credentials(MqttConfig(url="mqtts://b", ca_file=tmp_path / "ca.crt"), env={})
