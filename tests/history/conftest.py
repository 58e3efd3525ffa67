"""Fixtures of the history tests: a database on each back end (SQLite file, PostgreSQL on 127.0.0.1:5432),
a private PostgreSQL server that tests may stop, Redis database 12, and results-stream messages."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from shared import keys
from shared.schemas import AlertRecord, FrameResult, LineCrossing, PersonRecord
from tests.conftest import flushed_redis
from tests.stack.helpers import Services, free_port, wait_for

DB = 12
PG_HOST = "127.0.0.1"
PG_PORT = int(os.environ.get("MASKWATCH_TEST_PG_PORT", "5432"))
LABELS = ("with_mask", "without_mask", "mask_incorrect")
Message = PersonRecord | LineCrossing | AlertRecord | FrameResult


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    """Launcher for `maskwatch` processes (no models needed here); all are killed at the end."""
    env = {**os.environ, "MASKWATCH_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    for name in ("MASKWATCH_REDIS_URL", "MASKWATCH_DATABASE_URL", "MASKWATCH_HISTORY_DIR"):
        env.pop(name, None)
    runner = Services(tmp_path, env)
    yield runner
    runner.close()


@pytest.fixture
def db() -> Iterator[redis.Redis]:
    """Redis database 12, flushed."""
    yield from flushed_redis(DB)


def pg_url(port: int, database: str) -> URL:
    """A URL of a database on a local PostgreSQL with trust authentication."""
    return URL.create("postgresql+psycopg", username="postgres", host=PG_HOST, port=port, database=database)


def create_pg_database(port: int = PG_PORT) -> str:
    """A new empty database history_<random> (skips when no PostgreSQL answers)."""
    name = f"history_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(host=PG_HOST, port=port, user="postgres", dbname="postgres", connect_timeout=3,
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {PG_HOST}:{port} ({' '.join(str(exc).split())[:120]})")
    return name


def drop_pg_database(name: str, port: int = PG_PORT) -> None:
    """Drop a test database, closing whatever still uses it."""
    try:
        with psycopg.connect(host=PG_HOST, port=port, user="postgres", dbname="postgres", connect_timeout=3,
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.OperationalError:
        pass


@pytest.fixture(params=["sqlite", "postgresql"])
def history_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[URL]:
    """An empty history database on each back end."""
    if request.param == "sqlite":
        yield URL.create("sqlite", database=str(tmp_path / "history" / "history.sqlite3"))
        return
    name = create_pg_database()
    yield pg_url(PG_PORT, name)
    drop_pg_database(name)


@pytest.fixture
def engine(history_url: URL) -> Iterator[Engine]:
    """A writer engine on an upgraded, empty history database of each back end."""
    from shared.history.database import create_history_engine
    from shared.history.migrate import upgrade

    engine = create_history_engine(history_url, writer=True)
    upgrade(engine)
    yield engine
    engine.dispose()


def url_text(url: URL) -> str:
    """The URL as a config file holds it."""
    return url.render_as_string(hide_password=False)


class PrivatePostgres:
    """A PostgreSQL server of our own (initdb in a temporary folder), which tests may stop and start."""

    def __init__(self, folder: Path) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not bins:
            pytest.skip("PostgreSQL server binaries are not installed (/usr/lib/postgresql/*/bin)")
        self.bin = bins[-1].parent
        self.folder, self.data = folder, folder / "data"
        self.port = free_port(range(25432, 25532))
        folder.mkdir(parents=True, exist_ok=True)
        self._as_postgres = os.geteuid() == 0  # the server refuses to run as root
        if self._as_postgres:
            shutil.chown(folder, "postgres", "postgres")
            folder.chmod(0o700)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.started = False

    def _run(self, tool: str, *args: str) -> None:
        argv = [str(self.bin / tool), *args]
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        self.started = True
        wait_for(self._answers, 30, "the private PostgreSQL")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (immediate: like a crash, in-flight transactions are lost)."""
        if self.started:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
            self.started = False

    def _answers(self) -> bool:
        try:
            psycopg.connect(host=PG_HOST, port=self.port, user="postgres", dbname="postgres", connect_timeout=2).close()
            return True
        except psycopg.OperationalError:
            return False

    def create_database(self) -> URL:
        """A new database on this server."""
        return pg_url(self.port, create_pg_database(self.port))


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A started private PostgreSQL; stopped and removed at the end. Its folder is outside pytest's (root-only)
    temporary folders, so the unprivileged postgres user can reach it."""
    folder = Path(tempfile.mkdtemp(prefix="maskwatch-pg-"))
    try:
        server = PrivatePostgres(folder)
        server.start()
        yield server
        server.stop("fast")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Published:
    """What a test put on the results stream: (entry id, message) in order."""

    entries: list[tuple[str, Message | None]]

    def people(self, up_to: str | None = None) -> list[PersonRecord]:
        """The person records at or before entry `up_to` (all without it)."""
        return [m for i, m in self._upto(up_to) if isinstance(m, PersonRecord)]

    def of(self, kind: type, up_to: str | None = None) -> list:
        """The messages of one kind at or before `up_to`."""
        return [m for i, m in self._upto(up_to) if isinstance(m, kind)]

    def _upto(self, up_to: str | None):
        from shared.detections import stream_id

        limit = stream_id(up_to) if up_to else None
        return [(i, m) for i, m in self.entries if limit is None or stream_id(i) <= limit]

    @property
    def last_id(self) -> str:
        """The newest entry id."""
        return self.entries[-1][0]


def thumbnail(n: int) -> str:
    """A small distinct 'JPEG' payload (base64)."""
    return base64.b64encode(b"\xff\xd8\xff\xe0 face %d " % n + bytes(range(256)) * 4).decode()


def messages(count: int, t0: float, first_track: int = 0, cameras: tuple[str, ...] = ("door", "hall")) -> list:
    """A mix like a busy stream: frames, people (every 25th static), crossings, alerts, and a malformed entry."""
    out: list = []
    for k in range(count):
        n = first_track + k
        camera = cameras[n % len(cameras)]
        when = t0 + k * 7.0  # the first message at t0, whatever its track numbers
        kind = n % 10
        if kind in (0, 3, 6):
            out.append(FrameResult(source=camera, camera=camera, frame=n, width=640, height=360, captured_at=when))
        elif kind in (1, 2, 4, 5, 7):
            out.append(PersonRecord(camera=camera, track_id=n, label=LABELS[n % 3], first_seen=when, last_seen=when + 3,
                                    frames=9, best_box=[1, 2, 30, 40], thumbnail=thumbnail(n),
                                    zones=["queue"] if n % 4 == 0 else [], static=n % 25 == 1))
        elif kind == 8:
            out.append(LineCrossing(camera=camera, line="entrance", direction="in" if n % 3 else "out", track_id=n,
                                    label=LABELS[n % 3], time=when))
        elif n % 20 == 9:
            out.append(AlertRecord(camera=camera, kind="person", time=when,
                                   event={"type": "alert", "id": f"alert-{n}", "kind": "person", "camera": camera,
                                          "track_id": n, "time": when}))
        else:
            out.append(None)  # malformed: the recorder skips it and goes on
    return out


def publish(client: redis.Redis, items: list) -> Published:
    """XADD the messages to the results stream (None as a malformed entry)."""
    pipe = client.pipeline(transaction=False)
    for item in items:
        pipe.xadd(keys.RESULTS_STREAM, {"data": item.to_json() if item is not None else "{not json"})
    ids = [i.decode() for i in pipe.execute()]
    return Published(list(zip(ids, items)))
