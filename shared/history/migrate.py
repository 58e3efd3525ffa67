"""Schema upgrades of the history database with Alembic, run from code (no alembic.ini).

Public API:
- `upgrade(engine, revision="head") -> (before, after)`: bring the schema to `revision`; replicas starting
  together take turns (PostgreSQL advisory lock; SQLite's write lock), so each migration runs once.
- `current_revision(connection) -> str | None`, `head_revision() -> str`, `revisions() -> list[str]` (oldest first).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"
UPGRADE_LOCK = 0x6D61736B  # pg_advisory_xact_lock key held while the schema is upgraded ("mask")


def _alembic_config(connection: Connection | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def revisions() -> list[str]:
    """Every revision this code knows, oldest first."""
    scripts = ScriptDirectory.from_config(_alembic_config()).walk_revisions()  # newest first
    return [script.revision for script in reversed(list(scripts))]


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None: no schema yet)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the schema to `revision`; returns the revisions before and after."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
        before = current_revision(connection)
        command.upgrade(_alembic_config(connection), revision)
        return before, current_revision(connection)
