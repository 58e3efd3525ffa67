"""The dashboard's handle on the history database: opened once per process, every read in a worker thread.

A bad URL or an unreachable database makes the history routes answer 503 with one line; the rest of the
dashboard is unaffected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from shared.history.config import HistoryConfig
from shared.history.database import (
    HistoryDatabaseError,
    create_history_engine,
    database_url,
    describe_db_error,
    is_sqlite,
    shown_url,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
NO_SCHEMA = ("no such table", "does not exist")


class HistoryUnavailable(Exception):
    """The history database cannot answer now; the message is one line for the API's 503."""


@dataclass
class HistoryDb:
    """The history database of a dashboard process (or why there is none)."""

    config: HistoryConfig
    url: URL | None = None
    engine: Engine | None = None
    error: str | None = None

    @classmethod
    def open(cls, config: HistoryConfig, base_dir: Path | None) -> HistoryDb:
        """Resolve the URL and make a reader engine (it connects on first use)."""
        try:
            url = database_url(config, base_dir)
        except HistoryDatabaseError as exc:
            log.error("history: %s; the history pages and API answer 503", exc)
            return cls(config, error=str(exc))
        return cls(config, url, create_history_engine(url))

    @property
    def shown(self) -> str:
        """The URL as it may be shown."""
        return shown_url(self.url) if self.url is not None else "-"

    def read(self, query: Callable[[Connection], T]) -> T:
        """Run `query` on a connection; raises HistoryUnavailable with one line when the database cannot answer."""
        if self.engine is None:
            raise HistoryUnavailable(f"history database not configured: {self.error}")
        if is_sqlite(self.url) and not Path(self.url.database).expanduser().exists():  # never create it here
            raise HistoryUnavailable(f"no history database yet at {self.url.database} (start `maskwatch recorder`)")
        try:
            with self.engine.connect() as conn:
                return query(conn)
        except (OperationalError, ProgrammingError) as exc:
            detail = describe_db_error(exc, self.url)
            if any(marker in detail for marker in NO_SCHEMA):
                raise HistoryUnavailable("history database has no schema yet (start `maskwatch recorder` or run "
                                         "`maskwatch db upgrade`)") from None
            raise HistoryUnavailable(f"history database unavailable: {detail}") from None
        except DBAPIError as exc:
            raise HistoryUnavailable(f"history database unavailable: {describe_db_error(exc, self.url)}") from None

    def close(self) -> None:
        """Close the pooled connections."""
        if self.engine is not None:
            self.engine.dispose()
