"""CSV exports that a spreadsheet cannot execute: the one formula-neutralising rule every CSV export uses.

OWASP's CSV injection rule: a cell beginning with `=`, `+`, `-`, `@`, a tab or a
carriage return is read as a formula by Excel, LibreOffice and Google Sheets,
so such cells are prefixed with a single quote (shown as text, not run). A
phone number `+44 ...` therefore exports as `'+44 ...`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """Prefix a text cell that a spreadsheet would run as a formula with a single quote; other values unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV document (header row first) with every text cell neutralised."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([neutralise_cell(h) for h in header])
    writer.writerows([neutralise_cell(v) for v in row] for row in rows)
    return out.getvalue()


def frame_csv_text(frame: pd.DataFrame) -> str:
    """A DataFrame as CSV (no index) with every text cell neutralised."""
    safe = frame.copy()
    for column in safe.columns:
        if pd.api.types.is_object_dtype(safe[column]) or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(neutralise_cell)
    return safe.to_csv(index=False)
