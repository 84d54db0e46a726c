"""API shapes of the geography domain (imports and census areas)."""

from __future__ import annotations

import msgspec


class ImportRowError(msgspec.Struct):
    """One rejected input row: its 1-based line in the file and why."""

    line: int
    reason: str


class ImportReport(msgspec.Struct):
    """What an import did: rows read, written, skipped, unmatched, and each bad row by line."""

    kind: str
    source: str
    rows_read: int
    rows_written: int
    rows_skipped: int = 0
    unmatched: int = 0
    unmatched_examples: list[str] = msgspec.field(default_factory=list)
    details: dict[str, int] = msgspec.field(default_factory=dict)
    errors: list[ImportRowError] = msgspec.field(default_factory=list)


class CensusAreaOut(msgspec.Struct):
    """A census area of the campaign (without geometry)."""

    code: str
    name: str
    kind: str
    vintage: int
    population: int | None
    census_table: str | None
