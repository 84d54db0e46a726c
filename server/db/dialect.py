"""Which database a session talks to: the one place that decides (everybody imports from here).

Canvass runs on PostgreSQL (the deployment) and SQLite (tests, the embedded single-process
deployment). Code that must differ asks ``is_postgres``; nothing else compares dialect names.
"""

from __future__ import annotations

from typing import Any

POSTGRESQL = "postgresql"
SQLITE = "sqlite"


def dialect_name(bound: Any) -> str:
    """``postgresql`` or ``sqlite`` for a session, connection or engine."""
    if hasattr(bound, "get_bind"):  # a (sync or async) session
        bound = bound.get_bind()
    return str(bound.dialect.name)


def is_postgres(bound: Any) -> bool:
    """True when the session's (connection's, engine's) database is PostgreSQL."""
    return dialect_name(bound) == POSTGRESQL
