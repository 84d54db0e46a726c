"""API fuzzing with schemathesis against our own OpenAPI document, for every route and every identity.

The real server runs in a subprocess (uvicorn, the production entry point) on a fresh
SQLite database with the demo town, plus what makes responses worth checking: a target cut
into walk lists, one assigned to the canvasser, whose phone has synced knocks and answers.
Schemathesis runs as a CLI subprocess per identity (anonymous, canvasser, the canvasser's
device token, lead, organiser, admin) with **every check on** (`--checks all`: server errors,
status codes, content types, response schemas and headers, acceptance and rejection of
valid and invalid data, ignored auth, `Allow` on OPTIONS, ...). Two checks' lists of
expected statuses are widened, by one status each: `positive_data_acceptance` also accepts
422, because some rules are domain rules the document cannot express as JSON Schema (a join
code that exists, a time zone name, a census formula that parses, a target needing a polygon
or area codes); `negative_data_rejection` also counts 426 as a rejection (a sync request
without a supported `X-Canvass-Protocol` header is told to upgrade, docs/sync-protocol.md).

Bounded for CI: a fixed seed, few examples per operation, the examples and fuzzing phases
for every identity and the coverage phase (boundary and negative cases, and OPTIONS) for the
organiser, who reaches the most code. Sign-out is excluded (it would revoke the token the
run uses). The figures (operations, identities, requests, 5xx, schema mismatches) are
printed and written to test-artifacts/fuzz/figures.json for README's security section.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO_ROOT

IDENTITIES = ("anonymous", "canvasser", "device", "lead", "organiser", "admin")
COVERAGE_PHASE_FOR = frozenset({"organiser"})
DEMO_PASSWORD = "canvass-demo"
MAX_EXAMPLES = int(os.environ.get("CANVASS_FUZZ_EXAMPLES", "4"))
SEED = int(os.environ.get("CANVASS_FUZZ_SEED", "20261122"))
CHECKS = "all"
SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "fuzz"
CONFIG = """\
[auth]
auto-signup = false

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "426", "428", "429", "5xx"]
"""

pytestmark = pytest.mark.skipif(shutil.which(SCHEMATHESIS) is None, reason="schemathesis is not installed")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app under uvicorn on a migrated SQLite file with the demo town; yields its base URL."""
    work = tmp_path_factory.mktemp("fuzz")
    env = {
        **os.environ,
        "CANVASS_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'fuzz.sqlite3'}",
        "CANVASS_SECRET_KEY": "fuzz-secret-key-" + "z" * 40,
        "CANVASS_AUTH_RATE_PER_MINUTE": "1000000",
        "CANVASS_SYNC_RATE_PER_MINUTE": "1000000",
        "CANVASS_LOGIN_MAX_FAILURES": "1000000",
        "CANVASS_ARGON2_PROFILE": "test",
    }
    for command in (["db", "upgrade"], ["demo"]):
        subprocess.run([sys.executable, "-m", "server.cli", *command], cwd=REPO_ROOT, env=env, check=True, capture_output=True, timeout=120)
    port = free_port()
    log = (work / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "server.app:app_factory", "--factory", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start: " + (work / "server.log").read_text()[-2000:])
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def token_for(base: str, role: str) -> str | None:
    """A password sign-in access token for the demo user of a role (None for anonymous)."""
    if role == "anonymous":
        return None
    response = httpx.post(f"{base}/api/auth/login", json={"email": f"{role}@demo.canvass", "password": DEMO_PASSWORD}, timeout=30)
    response.raise_for_status()
    return str(response.json()["access_token"])


def seed_canvass(base: str) -> dict[str, str]:
    """A target cut into lists, one assigned to the canvasser, whose phone syncs knocks; returns the device token."""
    from tests.e2e.harness import phone_canvasses, run_async

    organiser = {"authorization": f"Bearer {token_for(base, 'organiser')}"}
    with httpx.Client(base_url=base, headers=organiser, timeout=300) as http:
        campaign_id = http.get("/api/campaigns").json()[0]["id"]
        ranked = http.get(f"/api/campaigns/{campaign_id}/areas/rank", params={"measure": "bame_share", "top_n": 3}).json()
        codes = [feature["properties"]["code"] for feature in ranked["features"]]
        target = http.post(f"/api/campaigns/{campaign_id}/targets", json={"name": "Fuzz", "area_codes": codes, "combine": "union"})
        target.raise_for_status()
        cut = http.post(f"/api/campaigns/{campaign_id}/targets/{target.json()['id']}/cut", params={"wait": "true"}, json={"size": 40})
        cut.raise_for_status()
        list_id = cut.json()["result"]["walk_list_ids"][0]
        members = http.get(f"/api/campaigns/{campaign_id}/members").json()
        canvasser = next(m["user_id"] for m in members if m["email"] == "canvasser@demo.canvass")
        http.post(f"/api/campaigns/{campaign_id}/walklists/{list_id}/assign", json={"user_id": canvasser}).raise_for_status()
    canvasser_token = str(token_for(base, "canvasser"))
    run_async(phone_canvasses(base, canvasser_token, campaign_id, list_id, knocks=6))
    device = httpx.post(f"{base}/api/campaigns/{campaign_id}/devices", json={"name": "fuzzed phone"},
                        headers={"authorization": f"Bearer {canvasser_token}"}, timeout=30)
    device.raise_for_status()
    return {"device": str(device.json()["token"])}


def run_schemathesis(base: str, identity: str, token: str | None, work: Path) -> dict[str, Any]:
    """Run the schemathesis CLI for one identity; returns its exit code, output and the requests it sent (from its HAR report)."""
    folder = work / identity
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "schemathesis.toml").write_text(CONFIG)
    phases = "examples,coverage,fuzzing" if identity in COVERAGE_PHASE_FOR else "examples,fuzzing"
    command = [
        SCHEMATHESIS, "run", f"{base}/schema/openapi.json",
        "--checks", CHECKS,
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--phases", phases,
        "--no-shrink",
        "--workers", "1",  # hypothesis's lambda-source cache is not thread-safe (flaky "AST constructor recursion" errors)
        "--request-timeout", "60",
        "--exclude-path", "/api/auth/logout",
        "--suppress-health-check", "all",
        "--warnings", "off",
        "--report", "har",
        "--report-dir", str(folder),
    ]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=folder)
    entries = [entry for har in folder.glob("*.json") if har.name.startswith("har") for entry in json.loads(har.read_text())["log"]["entries"]]
    output = result.stdout + result.stderr
    return {
        "code": result.returncode,
        "output": output,
        "requests": len(entries),
        "server_errors": sum(1 for entry in entries if entry["response"]["status"] >= 500),
        "schema_mismatches": output.count("Response violates schema"),
    }


@pytest.mark.timeout(1200)
def test_schemathesis_every_route_every_identity_all_checks(live_server: str, tmp_path: Path) -> None:
    """No failure of any schemathesis check, for every operation, as each identity; the figures are recorded."""
    tokens: dict[str, str | None] = {identity: token_for(live_server, identity) for identity in IDENTITIES if identity != "device"}
    tokens.update(seed_canvass(live_server))
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(IDENTITIES, pool.map(lambda i: run_schemathesis(live_server, i, tokens[i], tmp_path), IDENTITIES), strict=True))
    document = httpx.get(f"{live_server}/schema/openapi.json", timeout=30).json()
    figures = {
        "operations": sum(len(item) for item in document["paths"].values()),
        "identities": len(IDENTITIES),
        "requests": sum(run["requests"] for run in runs.values()),
        "server_errors": sum(run["server_errors"] for run in runs.values()),
        "schema_mismatches": sum(run["schema_mismatches"] for run in runs.values()),
        "requests_by_identity": {identity: run["requests"] for identity, run in runs.items()},
        "max_examples": MAX_EXAMPLES,
        "seed": SEED,
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "figures.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))
    failed = {identity: run["output"] for identity, run in runs.items() if run["code"] != 0}
    assert not failed, "\n\n".join(f"===== {identity} =====\n{output[-6000:]}" for identity, output in failed.items())
    assert all(run["requests"] > 0 for run in runs.values()), figures
    assert figures["server_errors"] == 0 and figures["schema_mismatches"] == 0, figures
