"""Accounts: sign-in, lockout, refresh rotation, sign-out, devices, join codes, account creation."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import TEST_PASSWORD, World


async def test_sign_in_and_me(client: AsyncTestClient[Litestar], world: World) -> None:
    """A password sign-in gives a bearer token; /api/me reports server-held roles."""
    me = (await client.get("/api/me", headers=world.auth("organiser"))).json()
    assert me["email"] == "organiser@example.org"
    assert me["memberships"] == [{"campaign_id": world.campaign_a, "role": "organiser"}]


async def test_wrong_password_is_401_and_lockout_after_repeated_failures(client: AsyncTestClient[Litestar], world: World) -> None:
    """Five wrong passwords lock the account: even the right password then gets 429."""
    for _ in range(5):
        wrong = await client.post("/api/auth/login", json={"email": "lead@example.org", "password": "not it at all"})
        assert wrong.status_code == 401
        assert wrong.headers["content-type"].startswith("application/problem+json")
    locked = await client.post("/api/auth/login", json={"email": "lead@example.org", "password": TEST_PASSWORD})
    assert locked.status_code == 429
    assert locked.json()["retry_after"] > 0


async def test_refresh_rotation_and_reuse_detection(client: AsyncTestClient[Litestar], world: World) -> None:
    """A refresh token works once; replaying a spent one revokes the whole family."""
    pair = (await client.post("/api/auth/login", json={"email": "lead@example.org", "password": TEST_PASSWORD})).json()
    second = await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert second.status_code == 200
    new_pair = second.json()
    assert new_pair["refresh_token"] != pair["refresh_token"]
    replay = await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert replay.status_code == 401
    # The family is revoked: the newest token no longer works either.
    after = await client.post("/api/auth/refresh", json={"refresh_token": new_pair["refresh_token"]})
    assert after.status_code == 401


async def test_sign_out_revokes_access_token(client: AsyncTestClient[Litestar], world: World) -> None:
    """After sign-out the same access token gets 401."""
    headers = world.auth("lead")
    assert (await client.post("/api/auth/logout", json={}, headers=headers)).status_code == 204
    assert (await client.get("/api/me", headers=headers)).status_code == 401


async def test_device_token_scoped_and_revocable(client: AsyncTestClient[Litestar], world: World) -> None:
    """A device token works for /api/me, not for organiser routes, and stops on revocation."""
    created = await client.post(f"/api/campaigns/{world.campaign_a}/devices", json={"name": "Pixel"}, headers=world.auth("canvasser"))
    assert created.status_code == 201, created.text
    device = created.json()
    device_headers = {"Authorization": f"Bearer {device['token']}"}
    me = await client.get("/api/me", headers=device_headers)
    assert me.status_code == 200 and me.json()["device_id"] == device["device_id"]
    members = await client.get(f"/api/campaigns/{world.campaign_a}/devices", headers=device_headers)
    assert members.status_code == 403
    revoke = await client.delete(f"/api/campaigns/{world.campaign_a}/devices/{device['device_id']}", headers=world.auth("organiser"))
    assert revoke.status_code == 204
    assert (await client.get("/api/me", headers=device_headers)).status_code == 401


async def test_join_code_creates_canvasser(client: AsyncTestClient[Litestar], world: World) -> None:
    """An organiser's join code lets a volunteer make a canvasser account; a bad code is a 422."""
    code = (await client.post(f"/api/campaigns/{world.campaign_a}/join-codes", json={"max_uses": 1}, headers=world.auth("organiser"))).json()
    assert len(code["code"]) == 8 and code["join_url"].endswith(code["code"])
    joined = await client.post(
        "/api/auth/join",
        json={"code": code["code"].lower(), "display_name": "Vol", "email": "vol@example.org", "password": "volunteer-pass"},
    )
    assert joined.status_code == 201, joined.text
    me = (await client.get("/api/me", headers={"Authorization": f"Bearer {joined.json()['access_token']}"})).json()
    assert me["memberships"] == [{"campaign_id": world.campaign_a, "role": "canvasser"}]
    used_up = await client.post(
        "/api/auth/join",
        json={"code": code["code"], "display_name": "Vol2", "email": "vol2@example.org", "password": "volunteer-pass"},
    )
    assert used_up.status_code == 422
    assert used_up.json()["errors"][0]["field"] == "code"


async def test_organiser_creates_canvasser_but_not_admin(client: AsyncTestClient[Litestar], world: World) -> None:
    """Organisers create canvasser accounts; creating an organiser needs a campaign admin."""
    ok = await client.post(
        f"/api/campaigns/{world.campaign_a}/users",
        json={"email": "new@example.org", "display_name": "New", "password": "new-password"},
        headers=world.auth("organiser"),
    )
    assert ok.status_code == 201 and ok.json()["role"] == "canvasser"
    denied = await client.post(
        f"/api/campaigns/{world.campaign_a}/users",
        json={"email": "boss@example.org", "display_name": "Boss", "password": "boss-password", "role": "organiser"},
        headers=world.auth("organiser"),
    )
    assert denied.status_code == 403
    dup = await client.post(
        f"/api/campaigns/{world.campaign_a}/users",
        json={"email": "new@example.org", "display_name": "New", "password": "new-password"},
        headers=world.auth("admin"),
    )
    assert dup.status_code == 409
