"""`maskwatch recorder` (results stream -> history database) and `maskwatch db upgrade|status`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from services.cli import add_service_arguments
from shared.exit_codes import FAILED, USAGE, fail

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the recorder and db subcommands."""
    recorder = sub.add_parser("recorder", help="record people, crossings, alerts and counts in the history database")
    add_service_arguments(recorder, "cameras.yaml (redis_url and the history: section)",
                          name_help="replica name in the writer lease (default recorder-host-pid)")
    recorder.add_argument("--upgrade-only", action="store_true",
                          help="upgrade the database schema and exit (the same as `maskwatch db upgrade`)")
    recorder.set_defaults(func=run_recorder)

    db = sub.add_parser("db", help="the history database: upgrade its schema, show where it stands")
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="upgrade the history database schema to this version's")
    upgrade.add_argument("--config", help="cameras.yaml (the history: section)")
    upgrade.set_defaults(func=run_db_upgrade)
    status = actions.add_parser("status", help="print the database, its schema revision and the recorder position")
    status.add_argument("--config", help="cameras.yaml (the history: section)")
    status.set_defaults(func=run_db_status)


def _history(args: argparse.Namespace):
    """(config, database URL), or None after printing the error line."""
    from services.cli import _config
    from shared.history.database import HistoryDatabaseError, database_url

    config = _config(args)
    if config is None:
        return None
    base_dir = Path(args.config).parent if args.config else Path.cwd()
    try:
        return config, database_url(config.history, base_dir)
    except HistoryDatabaseError as exc:
        fail(str(exc), USAGE)
        return None


def run_recorder(args: argparse.Namespace) -> int:
    """`maskwatch recorder`."""
    if args.upgrade_only:
        return run_db_upgrade(args)
    from services.detector.worker import default_worker_name
    from services.lifecycle import stop_on_signals
    from services.recorder.service import RecorderService
    from shared.history.database import create_history_engine
    from shared.streams import connect

    found = _history(args)
    if found is None:
        return USAGE
    config, url = found
    stop = stop_on_signals()
    name = args.name or f"recorder-{default_worker_name()}"
    client = connect(config.redis_url, name=f"recorder:{name}", options=config.redis)
    engine = create_history_engine(url, writer=True)
    try:
        return RecorderService(client, engine, url, config.history, name).run(stop)
    finally:
        engine.dispose()


def run_db_upgrade(args: argparse.Namespace) -> int:
    """`maskwatch db upgrade` (and `maskwatch recorder --upgrade-only`)."""
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    from shared.history.database import create_history_engine, describe_db_error, shown_url
    from shared.history.migrate import head_revision, upgrade

    found = _history(args)
    if found is None:
        return USAGE
    _config, url = found
    engine = create_history_engine(url, writer=True)
    try:
        before, after = upgrade(engine)
    except DBAPIError as exc:
        return fail(f"history database {shown_url(url)} unavailable ({describe_db_error(exc, url)})", FAILED)
    except CommandError as exc:
        return fail(f"history database {shown_url(url)}: {exc} (this maskwatch knows revisions up to "
                    f"{head_revision()})", USAGE)
    finally:
        engine.dispose()
    print(f"{shown_url(url)}: schema {'upgraded from ' + (before or 'nothing') + ' to ' if before != after else 'at '}"
          f"{after}")
    return 0


def run_db_status(args: argparse.Namespace) -> int:
    """`maskwatch db status`."""
    from sqlalchemy import select
    from sqlalchemy.exc import DBAPIError

    from shared.history.database import create_history_engine, describe_db_error, shown_url
    from shared.history.migrate import current_revision, head_revision
    from shared.history.schema import recorder_state

    found = _history(args)
    if found is None:
        return USAGE
    _config, url = found
    engine = create_history_engine(url)
    try:
        with engine.connect() as conn:
            revision = current_revision(conn)
            state = conn.execute(select(recorder_state)).first() if revision else None
    except DBAPIError as exc:
        return fail(f"history database {shown_url(url)} unavailable ({describe_db_error(exc, url)})", FAILED)
    finally:
        engine.dispose()
    print(f"database: {shown_url(url)}")
    print(f"schema:   {revision or 'none (run `maskwatch db upgrade` or start the recorder)'} "
          f"(this maskwatch: {head_revision()})")
    if state is not None:
        print(f"recorder: at results entry {state.position or '-'}, lease held by {state.owner or 'nobody'}")
    return 0
