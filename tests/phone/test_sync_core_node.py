"""The canvasser app's JavaScript sync core under Node's test runner, against the real server.

pytest starts the server (uvicorn, demo town) on SQLite and on PostgreSQL, arranges a walk list
assigned to the demo canvasser, then runs `node --test` on tests/phone/*.test.mjs with the URL in
CANVASS_URL and asserts it exits 0 (its output is shown on failure).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.phone.live import PASSWORD, ROOT, Live, live_server

HERE = Path(__file__).resolve().parent
NODE_TESTS = ("sync_core_unit.test.mjs", "tiles_unit.test.mjs", "sync_core_server.test.mjs")
CONTRACT_TESTS = ("sync_core_contract.test.mjs",)


def _must_run() -> bool:
    return os.environ.get("CANVASS_REQUIRE_REAL_DATA") == "1" or os.environ.get("CI", "").lower() == "true"


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    """The real server on each database, with a list of 12 doors assigned to the demo canvasser."""
    if shutil.which("node") is None or not (ROOT / "server/phone/web/node_modules/fast-check").is_dir():
        reason = "node and the app's npm packages are needed: run `make phone`"
        if _must_run():
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        context = live_server(tmp_path, request.param)
        live = context.__enter__()
    except OSError as exc:
        if request.param == "postgresql" and os.environ.get("CANVASS_REQUIRE_POSTGRES") != "1":
            pytest.skip(f"PostgreSQL not reachable: {exc}")
        raise
    try:
        live.list_id = live.make_list(12, "Node test list")  # type: ignore[attr-defined]
        live.assign(live.list_id, "canvasser@demo.canvass")  # type: ignore[attr-defined]
        yield live
    finally:
        context.__exit__(None, None, None)


def _node_test(server: Live, files: tuple[str, ...]) -> None:
    env = dict(
        os.environ,
        CANVASS_URL=server.base,
        CANVASS_CAMPAIGN=str(server.campaign_id),
        CANVASS_LIST=str(server.list_id),  # type: ignore[attr-defined]
        CANVASS_EMAIL="canvasser@demo.canvass",
        CANVASS_PASSWORD=PASSWORD,
    )
    done = subprocess.run(
        ["node", "--test", "--test-reporter=spec", *(str(HERE / name) for name in files)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, f"node --test failed:\n{done.stdout[-8000:]}\n{done.stderr[-4000:]}"
    assert "fail 0" in done.stdout, done.stdout[-3000:]


def test_js_sync_core_under_node(server: Live) -> None:
    """`node --test` passes: HLC, checksums, outbox durability, 426/401/rejections, and the lossy-network property."""
    _node_test(server, NODE_TESTS)


def test_js_sync_core_contract_changes(server: Live) -> None:
    """`node --test` on the contract changes of this session (contract A, B, E) against this server."""
    _node_test(server, CONTRACT_TESTS)
