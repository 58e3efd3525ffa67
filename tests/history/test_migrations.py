"""Schema upgrades from the previous revision, with data, on SQLite and PostgreSQL (`maskwatch db upgrade`)."""

from __future__ import annotations

import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import inspect, select, text

from maskwatch.cli import main
from services.recorder.writer import HistoryWriter
from shared.history.database import create_history_engine
from shared.history.migrate import current_revision, head_revision, revisions, upgrade
from shared.history.schema import recorder_gaps
from tests.history.checks import assert_matches
from tests.history.conftest import Published, messages, url_text
from tests.stack.helpers import write_config

PREVIOUS, FIRST = revisions()[-2], revisions()[0]  # N-1, and the first schema ever released


def config_for(tmp_path: Path, url: str) -> Path:
    return write_config(tmp_path / "cams.yaml", "redis://127.0.0.1:1/0", [], history={"database_url": url})


@pytest.mark.parametrize("old", [PREVIOUS, FIRST])
def test_upgrade_from_the_previous_schema_keeps_the_data(tmp_path: Path, history_url, capsys, old: str) -> None:
    engine = create_history_engine(history_url, writer=True)
    assert upgrade(engine, old) == (None, old)
    assert ("recorder_gaps" in inspect(engine).get_table_names()) == (old != FIRST)
    published = Published([(f"{1000 + k}-0", m) for k, m in enumerate(messages(200, t0=time.time() - 3600))])
    writer = HistoryWriter(engine, "old", 10.0, ZoneInfo("UTC"))
    writer.write(published.entries[:120], published.entries[119][0])  # the previous version's recorder wrote these

    assert main(["db", "upgrade", "--config", str(config_for(tmp_path, url_text(history_url)))]) == 0
    assert capsys.readouterr().out.strip().endswith(f"schema upgraded from {old} to {head_revision()}")
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
    assert {"ix_people_first_seen_static_label", "ix_people_camera_first_seen_static_label"} <= \
        {ix["name"] for ix in inspect(engine).get_indexes("people")}
    assert_matches(engine, published)  # every row kept
    writer.write(published.entries, published.last_id, gap=(published.entries[119][0], published.entries[150][0]))
    with engine.connect() as conn:
        assert conn.execute(select(recorder_gaps.c.after)).scalars().all() == [published.entries[119][0]]
    assert main(["db", "upgrade", "--config", str(config_for(tmp_path, url_text(history_url)))]) == 0
    assert capsys.readouterr().out.strip().endswith(f"schema at {head_revision()}")  # a second run changes nothing
    engine.dispose()


def test_a_database_newer_than_the_code_is_refused_in_one_line(tmp_path: Path, history_url, capsys) -> None:
    engine = create_history_engine(history_url, writer=True)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    assert main(["db", "upgrade", "--config", str(config_for(tmp_path, url_text(history_url)))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: history database") and "9999" in err[0] and \
        f"up to {head_revision()}" in err[0]
    engine.dispose()


@pytest.mark.parametrize("revision", [PREVIOUS, "head"])
def test_upgrade_only_is_the_same_command(tmp_path: Path, history_url, capsys, revision: str) -> None:
    engine = create_history_engine(history_url, writer=True)
    if revision == PREVIOUS:
        upgrade(engine, PREVIOUS)
    assert main(["recorder", "--upgrade-only", "--config", str(config_for(tmp_path, url_text(history_url)))]) == 0
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
    engine.dispose()
