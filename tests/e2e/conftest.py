"""Registers the `e2e` marker (browser tests; they run in `make test`)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker so `-m e2e` / `-m "not e2e"` select these tests."""
    config.addinivalue_line("markers", "e2e: end-to-end test in a real browser against a real server")
