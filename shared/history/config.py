"""The `history:` section of the camera file: where the history database is and how long rows are kept."""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

DATABASE_URL_ENV = "MASKWATCH_DATABASE_URL"
DATABASE_PASSWORD_ENV = "MASKWATCH_DATABASE_PASSWORD"
DATABASE_PASSWORD_FILE_ENV = "MASKWATCH_DATABASE_PASSWORD_FILE"
HISTORY_DIR_ENV = "MASKWATCH_HISTORY_DIR"
DEFAULT_DATA_DIR = "data"  # next to the camera file, unless absolute
SQLITE_FILE = "history.sqlite3"


class HistoryConfig(BaseModel):
    """Database location, retention (days; 0 keeps forever) and the time zone days and weeks are counted in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str | None = Field(None, description="SQLAlchemy URL, e.g. postgresql://maskwatch@db/maskwatch "
                                     f"(default ${DATABASE_URL_ENV}, else a SQLite file in data_dir)")
    password_file: Path | None = Field(None, description="file holding the database password (or "
                                       f"${DATABASE_PASSWORD_ENV} / ${DATABASE_PASSWORD_FILE_ENV})")
    data_dir: Path = Field(Path(DEFAULT_DATA_DIR), description="folder of the default SQLite file (relative: to "
                           f"the camera file's folder; ${HISTORY_DIR_ENV} overrides)")
    timezone: str = Field("UTC", description="IANA time zone of days, weeks and months in reports (e.g. Europe/Paris)")
    keep_people_days: int = Field(90, ge=0, description="person records, line crossings and alerts (0 = forever)")
    keep_thumbnails_days: int = Field(30, ge=0, description="face thumbnails of person records (0 = forever)")
    keep_counts_days: int = Field(0, ge=0, description="hourly and daily counts (0 = forever)")
    batch: int = Field(500, ge=1, le=10_000, description="results-stream entries written per transaction at most")
    prune_interval_s: float = Field(600.0, gt=0, description="how often old rows are pruned (s)")
    prune_batch: int = Field(2000, ge=1, le=100_000, description="rows deleted per pruning transaction")
    lease_ttl_s: float = Field(15.0, ge=1, description="a recorder replica that stops renewing its lease for this "
                               "long is replaced by another")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as UTC or Europe/Paris)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The time zone as a tzinfo."""
        return ZoneInfo(self.timezone)

    def sqlite_path(self, base_dir: Path | None) -> Path:
        """The default SQLite file: in $MASKWATCH_HISTORY_DIR, else `data_dir` (relative to `base_dir`)."""
        folder = Path(os.environ.get(HISTORY_DIR_ENV) or self.data_dir).expanduser()
        if not folder.is_absolute() and base_dir is not None:
            folder = base_dir / folder
        return folder.resolve() / SQLITE_FILE
