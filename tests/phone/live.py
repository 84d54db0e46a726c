"""A real Canvass server for the canvasser app's tests and benchmark: uvicorn on a free port,
a migrated database (a SQLite file, or a fresh PostgreSQL database) holding the demo town,
and helpers that arrange walk lists and speak to the organiser API over HTTP.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.harness import free_port, run_async

ROOT = Path(__file__).resolve().parents[2]
CANVASS = str(Path(sys.executable).with_name("canvass"))
PASSWORD = "canvass-demo"
PG = "postgres@127.0.0.1:5432"


@dataclass
class Live:
    """A running server and what the tests need to drive it."""

    base: str
    database_url: str
    campaign_id: int = 0
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, email: str, password: str = PASSWORD) -> str:
        """A password access token (cached per email)."""
        if email not in self.tokens:
            response = httpx.post(f"{self.base}/api/auth/login", json={"email": email, "password": password}, timeout=60)
            assert response.status_code == 200, response.text
            self.tokens[email] = str(response.json()["access_token"])
        return self.tokens[email]

    def api(self, method: str, path: str, who: str = "organiser@demo.canvass", **kwargs: Any) -> httpx.Response:
        """Call the API as a demo user."""
        headers = {"authorization": f"Bearer {self.token(who)}"}
        return httpx.request(method, f"{self.base}{path}", headers=headers, timeout=120, **kwargs)

    def join_code(self) -> str:
        """A fresh join code for the demo campaign."""
        response = self.api("POST", f"/api/campaigns/{self.campaign_id}/join-codes", json={"hours_valid": 2, "max_uses": 50})
        assert response.status_code == 201, response.text
        return str(response.json()["code"])

    def user_id(self, email: str) -> int:
        """The id of a campaign member by email."""
        members = self.api("GET", f"/api/campaigns/{self.campaign_id}/members").json()
        return int(next(m["user_id"] for m in members if m["email"] == email))

    def make_list(self, doors: int, name: str | None = None, skip: int = 0) -> int:
        """A walk list of `doors` demo addresses (route order = street, house number), written to the database."""
        return run_async(_make_list(self.database_url, self.campaign_id, doors, name or f"Phone list {uuid.uuid4().hex[:6]}", skip))

    def assign(self, walk_list_id: int, email: str) -> None:
        """Assign a list through the organiser API (phones see it on their next pull)."""
        response = self.api("POST", f"/api/campaigns/{self.campaign_id}/walklists/{walk_list_id}/assign", json={"user_id": self.user_id(email)})
        assert response.status_code == 200, response.text


async def _make_list(url: str, campaign_id: int, doors: int, name: str, skip: int) -> int:
    from sqlalchemy import func, select

    from server.db.models import Address, WalkList, WalkListStop
    from server.db.session import create_engine_for, create_sessionmaker
    from server.settings import normalise_database_url

    engine = create_engine_for(normalise_database_url(url))
    try:
        async with create_sessionmaker(engine)() as session:
            used = select(WalkListStop.address_id)
            rows = (
                await session.scalars(
                    select(Address)
                    .where(Address.campaign_id == campaign_id, Address.id.not_in(used))
                    .order_by(Address.street, func.length(Address.house_number), Address.house_number, Address.flat, Address.id)
                    .offset(skip)
                    .limit(doors)
                )
            ).all()
            walk_list = WalkList(campaign_id=campaign_id, name=name, status="ready", doors=len(rows), length_m=100.0 * len(rows), minutes=2.0 * len(rows))
            session.add(walk_list)
            await session.flush()
            for n, address in enumerate(rows):
                session.add(WalkListStop(walk_list_id=walk_list.id, address_id=address.id, stop_number=n + 1, position=n + 1))
            await session.commit()
            return int(walk_list.id)
    finally:
        await engine.dispose()


def _pg_admin(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres", timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_async(run())


@contextmanager
def live_server(folder: Path, backend: str = "sqlite", extra_env: dict[str, str] | None = None) -> Iterator[Live]:
    """Migrate a database, load the demo town, serve the app; stop and drop everything afterwards."""
    pg_name = None
    if backend == "postgresql":
        pg_name = f"canvass_phone_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        _pg_admin(f'CREATE DATABASE "{pg_name}"')
        url = f"postgresql://{PG}/{pg_name}"
    else:
        url = f"sqlite:///{folder / 'canvass.sqlite3'}"
    env = dict(os.environ, CANVASS_DATABASE_URL=url, CANVASS_SECRET_KEY=secrets.token_urlsafe(48), CANVASS_TILE_URL="",
               CANVASS_AUTH_RATE_PER_MINUTE="10000", CANVASS_SYNC_RATE_PER_MINUTE="100000", PYTHONPATH=str(ROOT))
    env.update(extra_env or {})  # may set what the defaults above set (CANVASS_TILE_URL)
    env.pop("DATABASE_URL", None)
    server = None
    log_path = folder / f"server-{backend}.log"
    try:
        demo_out = ""
        for args in (["db", "upgrade"], ["demo"]):
            done = subprocess.run([CANVASS, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"canvass {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
            demo_out = done.stdout
        campaign_id = int(demo_out.split("demo campaign ", 1)[1].split(":", 1)[0].split()[0])
        port = free_port()
        log = log_path.open("w")
        server = subprocess.Popen([CANVASS, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not become ready:\n{log_path.read_text()}")
            time.sleep(0.3)
        yield Live(base=base, database_url=url, campaign_id=campaign_id)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        if pg_name:
            _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
