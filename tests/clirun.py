"""Run the real `canvass` CLI in a subprocess on a test database (the way an organiser runs it)."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass

from tests.conftest import REPO_ROOT


@dataclass
class CliResult:
    """Exit status and output of one CLI run."""

    code: int
    out: str
    err: str


async def run_cli(db_url: str, *args: str, stdin: str | None = None) -> CliResult:
    """Run `python -m server.cli ARGS` with CANVASS_DATABASE_URL pointing at the test database."""
    env = {**os.environ, "CANVASS_DATABASE_URL": db_url, "CANVASS_SECRET_KEY": "test-secret-key-" + "x" * 32,
           "CANVASS_ARGON2_PROFILE": "test", "COLUMNS": "200", "PYTHONPATH": str(REPO_ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", *args, cwd=REPO_ROOT, env=env,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin.encode() if stdin is not None else None)
    return CliResult(int(process.returncode or 0), out.decode(), err.decode())


def one_line_error(result: CliResult) -> str:
    """The single error line a failed CLI run printed (asserts it failed with exactly one line)."""
    assert result.code != 0, f"expected a failure, got exit 0: {result.out}"
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: "), lines
    return lines[0]
