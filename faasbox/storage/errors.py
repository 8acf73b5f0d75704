"""The database errors a store catches, whichever backend raised them (use in `except`).

They are the DB-API classes of sqlite3: the PostgreSQL connection raises psycopg's errors as
these (the original chained as `__cause__`), so a store never imports psycopg, and psycopg is
imported only when PostgreSQL is used."""

from __future__ import annotations

import sqlite3

IntegrityError = sqlite3.IntegrityError
OperationalError = sqlite3.OperationalError
DatabaseError = sqlite3.Error
