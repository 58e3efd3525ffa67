"""How every service reaches Redis: URL, ACL user and password, TLS, and bounded timeouts.

The `redis:` section of the config file names files and options; secrets come from the environment or
from files (a Kubernetes or Docker secret mount), never from the command line:

- `MASKWATCH_REDIS_URL` (or `redis_url`): `redis://host:6379/0`, or `rediss://host:6380/0` for TLS
- `MASKWATCH_REDIS_USERNAME`, `MASKWATCH_REDIS_PASSWORD` or `MASKWATCH_REDIS_PASSWORD_FILE`
- `MASKWATCH_REDIS_CA_FILE`, `MASKWATCH_REDIS_CERT_FILE`, `MASKWATCH_REDIS_KEY_FILE` (TLS)

A password in the URL works too; wherever a URL is shown it goes through `redact_url`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.secrets import password_from

ENV = {
    "username": "MASKWATCH_REDIS_USERNAME",
    "password": "MASKWATCH_REDIS_PASSWORD",
    "password_file": "MASKWATCH_REDIS_PASSWORD_FILE",
    "tls_ca_file": "MASKWATCH_REDIS_CA_FILE",
    "tls_cert_file": "MASKWATCH_REDIS_CERT_FILE",
    "tls_key_file": "MASKWATCH_REDIS_KEY_FILE",
}


class RedisSettingsError(ValueError):
    """Connection settings that cannot be used (unreadable password or certificate file); one line."""


class RedisOptions(BaseModel):
    """The `redis:` config section. Environment variables (see module docstring) override it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str | None = Field(None, description="ACL user (default: the URL's, else 'default')")
    password_file: Path | None = Field(None, description="file holding the ACL password (one line)")
    tls_ca_file: Path | None = Field(None, description="CA bundle that signed the server's certificate (rediss://)")
    tls_cert_file: Path | None = Field(None, description="client certificate, when the server asks for one")
    tls_key_file: Path | None = Field(None, description="the client certificate's private key")
    connect_timeout: float = Field(2.0, gt=0, le=60, description="seconds to open a connection")
    socket_timeout: float = Field(5.0, gt=0, le=300, description="seconds to wait for a reply")


def client_kwargs(url: str, options: RedisOptions | None = None, env: dict[str, str] | None = None,
                  socket_timeout: float | None = None) -> dict[str, Any]:
    """Keyword arguments for `redis.Redis.from_url(url, ...)` (sync or asyncio) with these options.

    Raises `RedisSettingsError` when a password or certificate file cannot be read.
    """
    options = options or RedisOptions()
    env = os.environ if env is None else env
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": options.connect_timeout,
        "socket_timeout": socket_timeout or options.socket_timeout,
        "health_check_interval": 15,
    }
    username = env.get(ENV["username"]) or options.username
    if username:
        kwargs["username"] = username
    password = password_from(env, ENV["password"], ENV["password_file"], options.password_file, "redis",
                             RedisSettingsError)
    if password:
        kwargs["password"] = password
    if url.startswith("rediss://"):
        kwargs["ssl_cert_reqs"] = "required"
        for key, arg in (("tls_ca_file", "ssl_ca_certs"), ("tls_cert_file", "ssl_certfile"),
                         ("tls_key_file", "ssl_keyfile")):
            path = env.get(ENV[key]) or getattr(options, key)
            if path:
                path = Path(path)
                if not path.is_file():
                    raise RedisSettingsError(f"redis {key.removeprefix('tls_').replace('_', ' ')} {path}: "
                                             "no such file")
                kwargs[arg] = str(path)
    return kwargs


def secrets_of(kwargs: dict[str, Any]) -> tuple[str, ...]:
    """The secret values among `client_kwargs` output, for `redact_text`."""
    return tuple(v for k, v in kwargs.items() if k == "password" and v)
