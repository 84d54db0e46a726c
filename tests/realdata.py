"""Locate the shared real data files used by tests (Camden, Newham, England & Wales).

Base folder: `<repo>/../shared/data`, or env CANVASS_DATA_DIR. A missing file skips the
test, unless CANVASS_REQUIRE_REAL_DATA=1, in which case it fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def real_data_dir() -> Path:
    """The folder holding the shared real data sets."""
    override = os.environ.get("CANVASS_DATA_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def real_data_path(rel: str) -> Path:
    """Path of a real data file; skip (or fail when CANVASS_REQUIRE_REAL_DATA=1) if missing."""
    path = real_data_dir() / rel
    if not path.exists():
        message = f"real data file missing: {path}"
        if os.environ.get("CANVASS_REQUIRE_REAL_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path
