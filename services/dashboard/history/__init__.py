"""The dashboard's history API (/api/v1/history/...): reads the recorder's database.

Modules: `models` (response models), `params` (query parameters), `queries` (SQL reads), `report` (the
printable report's figures), `export` (CSV), `api` (the routes).
"""
