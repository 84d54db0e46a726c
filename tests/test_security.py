"""Security properties not covered by tests/test_accounts.py and tests/test_bad_input.py.

Size limits answer 4xx (never a hang or a 5xx), device revocation reaches the
sync endpoints on the next request, rate limits cover join codes and sync,
lockout holds against the right password, CORS opens only to configured
origins, and every response (errors too) carries the security headers.
Tests assert that requests answer and with what, never how fast.
"""

from __future__ import annotations

import gzip
import io

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.app import SECURITY_HEADERS, create_app
from server.settings import Settings
from server.sync.controllers import SyncController
from tests.conftest import TEST_PASSWORD, World

PROTOCOL = {"X-Canvass-Protocol": "1", "Content-Type": "application/json"}


def with_sync(application: Litestar) -> Litestar:
    """Register the sync routes if the app factory does not include them yet."""
    if not any(route.path == "/api/sync/push" for route in application.routes):
        application.register(SyncController)
    return application


@pytest.fixture
def app(settings: Settings) -> Litestar:
    """The real app, with sync routes."""
    return with_sync(create_app(settings))


def assert_security_headers(response: object) -> None:
    """Every response carries the security headers."""
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.status_code)  # type: ignore[attr-defined]


def assert_problem(response: object, *statuses: int) -> None:
    """A 4xx RFC 9457 problem with one of the given statuses."""
    assert response.status_code in statuses, (response.status_code, response.text[:300])  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]


def ring(vertices: int) -> dict[str, object]:
    """A GeoJSON polygon approximating a circle with `vertices` points (a valid, simple ring)."""
    import math

    points = [
        [round(-1.5 + 0.01 * math.cos(2 * math.pi * i / vertices), 7), round(52.0 + 0.01 * math.sin(2 * math.pi * i / vertices), 7)]
        for i in range(vertices)
    ]
    return {"type": "Polygon", "coordinates": [[*points, points[0]]]}


# ---------------------------------------------------------------- size limits


@pytest.mark.timeout(120)
async def test_million_vertex_polygon_is_refused(client: AsyncTestClient[Litestar], world: World) -> None:
    """A polygon with a million vertices answers 4xx (the body cap), and one under the cap but over the vertex limit 422."""
    url = f"/api/campaigns/{world.campaign_a}/targets/preview"
    body = msgspec.json.encode({"name": "huge", "polygon": ring(1_000_000)})
    response = await client.post(url, content=body, headers={**world.auth("organiser"), "Content-Type": "application/json"})
    assert_problem(response, 413)
    assert_security_headers(response)
    for path in ("/targets/preview", "/targets"):
        response = await client.post(
            f"/api/campaigns/{world.campaign_a}{path}", json={"name": "many", "polygon": ring(100_000)}, headers=world.auth("organiser")
        )
        assert_problem(response, 422, 413)


async def test_polygon_just_over_vertex_limit_is_422(client: AsyncTestClient[Litestar], world: World, settings: Settings) -> None:
    """The vertex limit is exact: limit + 1 vertices is refused, naming the polygon."""
    response = await client.post(
        f"/api/campaigns/{world.campaign_a}/targets/preview",
        json={"name": "many", "polygon": ring(settings.max_polygon_vertices + 1)},
        headers=world.auth("organiser"),
    )
    assert_problem(response, 422)
    assert any(error["field"] == "polygon" for error in response.json().get("errors", [])), response.json()


@pytest.mark.timeout(120)
async def test_ten_megabyte_register_row_is_refused(client: AsyncTestClient[Litestar], world: World) -> None:
    """A register CSV whose one row is 10 MB gets a 4xx, not a 5xx or a stored 10 MB name."""
    header = "Polling District,Elector Number,Surname,Forenames,Address 1,Postcode\n"
    row = "AA,1," + "X" * (10 * 1024 * 1024) + ",Alex,1 Mill Road,AB1 2CD\n"
    files = {"data": ("register.csv", io.BytesIO((header + row).encode()), "text/csv")}
    response = await client.post(
        f"/api/campaigns/{world.campaign_a}/imports/register", files=files, headers=world.auth("organiser")
    )
    assert_problem(response, 400, 413, 422)


async def test_oversize_sync_push_and_gzip_bomb_are_413(client: AsyncTestClient[Litestar], world: World, settings: Settings) -> None:
    """A push over the body cap, plain or as a small gzip that inflates past it, is 413."""
    device = (await client.post(f"/api/campaigns/{world.campaign_a}/devices", json={"name": "p"}, headers=world.auth("canvasser"))).json()
    headers = {"Authorization": f"Bearer {device['token']}", **PROTOCOL}
    bomb = gzip.compress(b'{"protocol_version":1,"device_id":"' + b"a" * (settings.max_request_bytes + 10) + b'"}')
    assert len(bomb) < settings.max_request_bytes
    response = await client.post("/api/sync/push", content=bomb, headers={**headers, "Content-Encoding": "gzip"})
    assert_problem(response, 413)
    response = await client.post("/api/sync/push", content=b" " * (settings.max_request_bytes + 1), headers=headers)
    assert_problem(response, 413)


# ---------------------------------------------------------------- devices and tokens


async def test_device_revocation_stops_sync_on_the_next_request(client: AsyncTestClient[Litestar], world: World) -> None:
    """A revoked phone's next push, pull and list download each get 401; another device of the user keeps working."""
    made = [
        (await client.post(f"/api/campaigns/{world.campaign_a}/devices", json={"name": n}, headers=world.auth("canvasser"))).json()
        for n in ("lost", "spare")
    ]
    lost, spare = made
    pull = {"protocol_version": 1, "device_id": lost["node_id"], "cursor": None, "limit": 10}
    lost_headers = {"Authorization": f"Bearer {lost['token']}", **PROTOCOL}
    assert (await client.post("/api/sync/pull", json=pull, headers=lost_headers)).status_code == 200
    revoke = await client.delete(f"/api/campaigns/{world.campaign_a}/devices/{lost['device_id']}", headers=world.auth("organiser"))
    assert revoke.status_code == 204
    push = {"protocol_version": 1, "device_id": lost["node_id"], "mutations": []}
    for response in (
        await client.post("/api/sync/pull", json=pull, headers=lost_headers),
        await client.post("/api/sync/push", json=push, headers=lost_headers),
        await client.get("/api/sync/lists/1", headers=lost_headers),
    ):
        assert_problem(response, 401)
        assert_security_headers(response)
    spare_pull = {**pull, "device_id": spare["node_id"]}
    ok = await client.post("/api/sync/pull", json=spare_pull, headers={"Authorization": f"Bearer {spare['token']}", **PROTOCOL})
    assert ok.status_code == 200, ok.text


async def test_deactivated_user_tokens_stop_working(
    client: AsyncTestClient[Litestar], world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Disabling an account ends its access token and its phones on the next request."""
    from server.db.models import User

    device = (await client.post(f"/api/campaigns/{world.campaign_a}/devices", json={"name": "p"}, headers=world.auth("canvasser"))).json()
    async with sessionmaker() as session:
        user = await session.get(User, world.users["canvasser"])
        assert user is not None
        user.is_active = False
        await session.commit()
    assert_problem(await client.get("/api/me", headers=world.auth("canvasser")), 401)
    assert_problem(await client.get("/api/me", headers={"Authorization": f"Bearer {device['token']}"}), 401)


async def test_refresh_tokens_rotate_and_old_access_survives_only_until_sign_out(client: AsyncTestClient[Litestar], world: World) -> None:
    """Each refresh gives a new refresh token; a forged or spent one is 401; sign-out with the token ends the family."""
    pair = (await client.post("/api/auth/login", json={"email": "lead@example.org", "password": TEST_PASSWORD})).json()
    tokens = [pair]
    for _ in range(3):
        response = await client.post("/api/auth/refresh", json={"refresh_token": tokens[-1]["refresh_token"]})
        assert response.status_code == 200, response.text
        tokens.append(response.json())
    assert len({t["refresh_token"] for t in tokens}) == 4
    assert_problem(await client.post("/api/auth/refresh", json={"refresh_token": "forged-" + "x" * 40}), 401)
    latest = tokens[-1]
    out = await client.post(
        "/api/auth/logout", json={"refresh_token": latest["refresh_token"]}, headers={"Authorization": f"Bearer {latest['access_token']}"}
    )
    assert out.status_code == 204
    assert_problem(await client.post("/api/auth/refresh", json={"refresh_token": latest["refresh_token"]}), 401)
    assert_problem(await client.get("/api/me", headers={"Authorization": f"Bearer {latest['access_token']}"}), 401)


async def test_lockout_holds_against_the_right_password_and_is_per_account(client: AsyncTestClient[Litestar], world: World, settings: Settings) -> None:
    """After the failure limit the right password is refused too (429), and other accounts are unaffected."""
    for _ in range(settings.login_max_failures):
        assert (await client.post("/api/auth/login", json={"email": "organiser@example.org", "password": "guess"})).status_code == 401
    for _ in range(2):
        locked = await client.post("/api/auth/login", json={"email": "organiser@example.org", "password": TEST_PASSWORD})
        assert_problem(locked, 429)
    assert (await client.post("/api/auth/login", json={"email": "lead@example.org", "password": TEST_PASSWORD})).status_code == 200
    # Unknown accounts answer exactly like wrong passwords (no account enumeration).
    unknown = await client.post("/api/auth/login", json={"email": "nobody@example.org", "password": "guess"})
    wrong = await client.post("/api/auth/login", json={"email": "lead@example.org", "password": "guess"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["detail"] == wrong.json()["detail"]


# ---------------------------------------------------------------- rate limits


async def test_join_codes_are_rate_limited(settings: Settings) -> None:
    """Guessing join codes shares the sign-in budget: 429 after it is spent."""
    limited = with_sync(create_app(msgspec.structs.replace(settings, auth_rate_per_minute=3)))
    async with AsyncTestClient(app=limited) as client:
        body = {"code": "GUESS123", "display_name": "X", "email": "x@example.org", "password": "long enough pw"}
        statuses = [(await client.post("/api/auth/join", json=body)).status_code for _ in range(4)]
        assert statuses[:3] == [422, 422, 422], statuses
        assert statuses[3] == 429
        response = await client.post("/api/auth/join", json=body)
        assert_problem(response, 429)
        assert_security_headers(response)


async def test_sync_is_rate_limited_per_token(settings: Settings, world: World) -> None:
    """Beyond the per-minute sync budget a phone gets 429; another phone's budget is its own."""
    limited = with_sync(create_app(msgspec.structs.replace(settings, sync_rate_per_minute=3)))
    async with AsyncTestClient(app=limited) as client:
        phones = [
            (await client.post(f"/api/campaigns/{world.campaign_a}/devices", json={"name": n}, headers=world.auth("canvasser"))).json()
            for n in ("a", "b")
        ]

        async def pull(phone: dict[str, str]) -> int:
            body = {"protocol_version": 1, "device_id": phone["node_id"], "cursor": None, "limit": 10}
            headers = {"Authorization": f"Bearer {phone['token']}", **PROTOCOL}
            return (await client.post("/api/sync/pull", json=body, headers=headers)).status_code

        statuses = [await pull(phones[0]) for _ in range(4)]
        assert statuses == [200, 200, 200, 429], statuses
        assert await pull(phones[1]) == 200


# ---------------------------------------------------------------- browsers


async def test_cors_allows_only_configured_origins(settings: Settings) -> None:
    """With CANVASS_CORS_ORIGINS set, that origin is allowed and others are not."""
    opened = create_app(msgspec.structs.replace(settings, cors_origins=("https://console.example",)))
    async with AsyncTestClient(app=opened) as client:
        ok = await client.options("/api/me", headers={"Origin": "https://console.example", "Access-Control-Request-Method": "GET"})
        assert ok.headers.get("access-control-allow-origin") == "https://console.example"
        simple = await client.get("/health", headers={"Origin": "https://console.example"})
        assert simple.headers.get("access-control-allow-origin") == "https://console.example"
        evil = await client.options("/api/me", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
        assert evil.headers.get("access-control-allow-origin") != "https://evil.example"
        assert (await client.get("/health", headers={"Origin": "https://evil.example"})).headers.get("access-control-allow-origin") is None


async def test_security_headers_on_success_and_every_error(client: AsyncTestClient[Litestar], world: World, settings: Settings) -> None:
    """200, 401, 403, 404, 405, 413, 422 and 426 responses all carry the security headers."""
    phone = (await client.post(f"/api/campaigns/{world.campaign_a}/devices", json={"name": "p"}, headers=world.auth("canvasser"))).json()
    responses = [
        await client.get("/health"),
        await client.get("/api/me", headers=world.auth("lead")),
        await client.get("/api/me"),
        await client.get(f"/api/campaigns/{world.campaign_a}/members", headers=world.auth("canvasser")),
        await client.get("/api/does-not-exist"),
        await client.delete("/health"),
        await client.post("/api/auth/login", content=b"x" * (settings.max_request_bytes + 1), headers={"Content-Type": "application/json"}),
        await client.post("/api/auth/login", json={"email": 1}),
        await client.post("/api/sync/pull", json={}, headers={"Authorization": f"Bearer {phone['token']}", "X-Canvass-Protocol": "0"}),
    ]
    assert [r.status_code for r in responses] == [200, 200, 401, 403, 404, 405, 413, 422, 426]
    for response in responses:
        assert_security_headers(response)
    assert "traceback" not in responses[-1].text.lower()


# ---------------------------------------------------------------- secret key


def test_production_refuses_a_short_or_missing_secret_key(tmp_path: object) -> None:
    """CANVASS_ENV=production or a non-SQLite database: a key under 32 bytes (or none) refuses to load; the demo makes a strong one."""
    from server.settings import SettingsError, load_settings

    pg = "postgresql://canvass@db.example/canvass"
    for environ in (
        {"CANVASS_ENV": "production", "CANVASS_SECRET_KEY": "x"},
        {"CANVASS_ENV": "production"},
        {"DATABASE_URL": pg, "CANVASS_SECRET_KEY": "y" * 31},
        {"CANVASS_DATABASE_URL": pg},
    ):
        with pytest.raises(SettingsError, match="CANVASS_SECRET_KEY"):
            load_settings(environ=environ)
    assert load_settings(environ={"DATABASE_URL": pg, "CANVASS_SECRET_KEY": "z" * 32}).secret_key == "z" * 32
    demo = load_settings(environ={})
    assert demo.is_sqlite and len(demo.secret_key.encode()) >= 32


def test_cli_refuses_to_start_with_a_short_key_in_one_line(tmp_path: object) -> None:
    """The CLI prints one line naming the setting and exits non-zero (nothing is migrated)."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    database = tmp_path / "refused.sqlite3"  # type: ignore[operator]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "CANVASS_ENV": "production", "CANVASS_SECRET_KEY": "x",
           "CANVASS_DATABASE_URL": f"sqlite:///{database}"}
    done = subprocess.run([sys.executable, "-m", "server.cli", "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "CANVASS_SECRET_KEY" in lines[0], done.stderr
    assert not database.exists()


def test_test_suite_key_is_long(settings: Settings) -> None:
    """The suite's own settings use a production-strength key."""
    assert len(settings.secret_key.encode()) >= 32


async def test_upload_limit_setting_is_honoured(settings: Settings, world: World) -> None:
    """CANVASS_MAX_UPLOAD_BYTES caps every import upload (413), whatever the file; under it the import runs."""
    small = create_app(msgspec.structs.replace(settings, max_upload_bytes=4_096))
    header = "Polling District,Elector Number,Surname,Forenames,Address 1,Postcode\n"
    async with AsyncTestClient(app=small) as client:
        big = (header + "AA,1,Smith,Alex,1 Mill Road,AB1 2CD\n" * 200).encode()
        for kind in ("register", "boundaries", "census", "addresses"):
            response = await client.post(
                f"/api/campaigns/{world.campaign_a}/imports/{kind}", files={"data": ("f.csv", io.BytesIO(big), "text/csv")}, headers=world.auth("organiser")
            )
            assert_problem(response, 413)
        ok = await client.post(
            f"/api/campaigns/{world.campaign_a}/imports/register", files={"data": ("r.csv", io.BytesIO((header + "AA,1,Smith,Alex,1 Mill Road,AB1 2CD\n").encode()), "text/csv")},
            headers=world.auth("organiser"),
        )
        assert ok.status_code == 201, ok.text


async def test_personal_data_and_tokens_are_never_cached(client: AsyncTestClient[Litestar], world: World) -> None:
    """Sign-in, refresh, join, device registration, members, lists, follow-ups and errors answer `Cache-Control: no-store`."""
    pair = (await client.post("/api/auth/login", json={"email": "lead@example.org", "password": TEST_PASSWORD})).json()
    code = (await client.post(f"/api/campaigns/{world.campaign_a}/join-codes", json={}, headers=world.auth("organiser"))).json()["code"]
    responses = [
        await client.post("/api/auth/login", json={"email": "lead@example.org", "password": TEST_PASSWORD}),
        await client.post("/api/auth/login", json={"email": "lead@example.org", "password": "wrong wrong wrong"}),
        await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}),
        await client.post("/api/auth/join", json={"code": code, "display_name": "V", "email": "v@example.org", "password": "a long pass phrase"}),
        await client.post(f"/api/campaigns/{world.campaign_a}/devices", json={"name": "phone"}, headers=world.auth("canvasser")),
        await client.get("/api/me", headers=world.auth("lead")),
        await client.get(f"/api/campaigns/{world.campaign_a}/members", headers=world.auth("lead")),
        await client.get(f"/api/campaigns/{world.campaign_a}/walklists", headers=world.auth("canvasser")),
        await client.get(f"/api/campaigns/{world.campaign_a}/results/follow-ups", headers=world.auth("lead")),
        await client.get(f"/api/campaigns/{world.campaign_a}/exports/follow-ups.csv", headers=world.auth("lead")),
    ]
    for response in responses:
        assert response.status_code < 500, response.text
        assert "no-store" in response.headers.get("cache-control", ""), (str(response.url), response.status_code)
