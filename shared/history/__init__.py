"""The history database: every person record, line crossing and alert kept in SQL, with per-period counts.

The recorder stage (services/recorder) writes it from the results stream; the dashboard reads it
(services/dashboard/history). Modules: `config` (the `history:` section), `database` (URL, engine, errors),
`schema` (the tables), `migrate` (Alembic upgrades), `periods` (hour/day/week/month in a time zone).
"""

import logging

# Alembic logs every plugin it loads and every step at INFO; the recorder says in one line what was upgraded.
logging.getLogger("alembic").setLevel(logging.WARNING)
