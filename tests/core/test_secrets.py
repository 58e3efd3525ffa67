"""Passwords from the environment or a mounted file: one helper behind MQTT, Redis and the history database."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.history.config import HistoryConfig
from shared.history.database import HistoryDatabaseError, database_url
from shared.mqtt_config import MqttConfig, MqttSettingsError, credentials
from shared.redis_connection import RedisOptions, RedisSettingsError, client_kwargs
from shared.secrets import password_from

SECRET = "s3cret-value"


class Oops(ValueError):
    pass


@pytest.fixture(autouse=True)
def _no_database_password_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MASKWATCH_DATABASE_PASSWORD", "MASKWATCH_DATABASE_PASSWORD_FILE"):
        monkeypatch.delenv(var, raising=False)


def _get(env: dict[str, str], configured: Path | None = None) -> str | None:
    return password_from(env, "PW", "PW_FILE", configured, "thing", Oops)


def test_environment_wins_then_the_environment_file_then_the_configured_file(tmp_path: Path) -> None:
    (tmp_path / "configured").write_text("from-config\n")
    (tmp_path / "mounted").write_text("  from-mount  \n")
    configured = tmp_path / "configured"
    assert _get({"PW": "from-env", "PW_FILE": str(tmp_path / "mounted")}, configured) == "from-env"
    assert _get({"PW_FILE": str(tmp_path / "mounted")}, configured) == "from-mount"
    assert _get({"PW": ""}, configured) == "from-config"
    assert _get({}, None) is None


def test_an_empty_file_is_no_password(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    assert _get({}, tmp_path / "empty") is None


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("missing", None, "No such file or directory"),
    ("folder", "dir", "Is a directory"),
    ("binary", b"\xff\xfe" + SECRET.encode(), "not UTF-8 text"),
])
def test_an_unreadable_file_is_one_line_without_the_secret(tmp_path: Path, name: str, content, reason: str) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(Oops) as err:
        _get({}, path)
    assert str(err.value) == f"thing password file {path}: cannot read ({reason})"
    assert SECRET not in str(err.value)


def test_the_three_callers_read_the_same_way(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(SECRET + "\n")
    pw = tmp_path / "pw"
    mqtt = MqttConfig(url="mqtt://b", username="u", password_file=pw)
    assert credentials(mqtt, env={}).password == SECRET
    assert client_kwargs("redis://h", RedisOptions(password_file=pw), env={})["password"] == SECRET
    url = database_url(HistoryConfig(database_url="postgresql://u@h/db", password_file=pw))
    assert url.password == SECRET


def test_the_three_callers_name_themselves_in_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(MqttSettingsError, match=r"^mqtt password file .*missing: cannot read \(No such file"):
        credentials(MqttConfig(url="mqtt://b", username="u", password_file=missing), env={})
    with pytest.raises(RedisSettingsError, match=r"^redis password file .*missing: cannot read \(No such file"):
        client_kwargs("redis://h", RedisOptions(password_file=missing), env={})
    with pytest.raises(HistoryDatabaseError, match=r"^database password file .*missing: cannot read \(No such file"):
        database_url(HistoryConfig(database_url="postgresql://u@h/db", password_file=missing))
