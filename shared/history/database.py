"""Where the history database is, and engines for it: SQLite (WAL, the default) or PostgreSQL by URL.

Public API:
- `database_url(config, base_dir) -> URL`: the configured URL (config, $MASKWATCH_DATABASE_URL, else the
  SQLite file in the data folder) with the password from a file or the environment filled in.
- `create_history_engine(url, writer=False) -> Engine`: an engine; SQLite connections run in WAL mode, and a
  writer's transactions take the write lock when they begin (BEGIN IMMEDIATE), so writers queue, readers never wait.
- `describe_db_error(exc, url) -> str`: one line about a database problem, without the password.
- `shown_url(url) -> str`: the URL as it may be logged (password masked).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from shared.history.config import (
    DATABASE_PASSWORD_ENV,
    DATABASE_PASSWORD_FILE_ENV,
    DATABASE_URL_ENV,
    HistoryConfig,
)
from shared.redaction import redact_text
from shared.secrets import password_from

BACKENDS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 15
SQLITE_BUSY_MS = 10_000


class HistoryDatabaseError(ValueError):
    """A database URL or password that cannot be used; the message is one line for the user."""


def database_url(config: HistoryConfig, base_dir: Path | None = None) -> URL:
    """The database URL to use; raises HistoryDatabaseError for an unusable URL or unreadable password file."""
    raw = config.database_url or os.environ.get(DATABASE_URL_ENV)
    if not raw:
        return URL.create("sqlite", database=str(config.sqlite_path(base_dir)))
    try:
        url = make_url(raw)
    except ArgumentError:
        raise HistoryDatabaseError(f"database URL {redact_text(raw)!r} is not a URL "
                                   "(use sqlite:///path or postgresql://user@host/db)") from None
    backend = url.drivername.split("+", 1)[0]
    if backend not in BACKENDS:
        raise HistoryDatabaseError(f"database URL {shown_url(url)!r}: unsupported database {backend!r} "
                                   "(use sqlite or postgresql)")
    if "+" not in url.drivername:
        url = url.set(drivername=BACKENDS[backend])
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        raise HistoryDatabaseError("database URL: a SQLite database needs a file path (sqlite:///path/history.sqlite3)")
    if url.password is None and backend != "sqlite":
        password = password_from(os.environ, DATABASE_PASSWORD_ENV, DATABASE_PASSWORD_FILE_ENV, config.password_file,
                                 "database", HistoryDatabaseError)
        if password is not None:
            url = url.set(password=password)
    return url



def is_sqlite(url: URL) -> bool:
    """Whether the URL names a SQLite file."""
    return url.get_backend_name() == "sqlite"


def create_history_engine(url: URL, writer: bool = False) -> Engine:
    """An engine for the history database (see the module docstring); a writer creates the SQLite file's folder."""
    if is_sqlite(url):
        if writer:
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_MS / 1000})
        _sqlite_setup(engine, writer)
        return engine
    connect_args: dict = {"connect_timeout": CONNECT_TIMEOUT_S,
                          "application_name": "maskwatch-recorder" if writer else "maskwatch-dashboard"}
    if not writer:  # a reader never holds a worker thread longer than this
        connect_args["options"] = f"-c statement_timeout={READ_TIMEOUT_S * 1000}"
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=connect_args)


def _sqlite_setup(engine: Engine, writer: bool) -> None:
    """WAL, a busy timeout, foreign keys, and transactions under our control (the SQLAlchemy pysqlite recipe)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # no implicit BEGIN from the driver: we begin ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crashed process loses no commit
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def shown_url(url: URL | str) -> str:
    """The URL with its password masked, as it may be logged or served."""
    if isinstance(url, str):
        return redact_text(url)
    return url.render_as_string(hide_password=True)


def describe_db_error(exc: BaseException, url: URL | None = None) -> str:
    """One line about a database error, without the password (the driver's own first line, when it has one)."""
    inner = getattr(exc, "orig", None) or exc
    text = " ".join(str(inner).split("\n")[0].split()) or type(inner).__name__
    secrets = (url.password,) if url is not None and isinstance(url.password, str) and url.password else ()
    return redact_text(text, secrets)
