"""Alembic migrations of the history database (run by `maskwatch db upgrade` and by the recorder on start)."""
