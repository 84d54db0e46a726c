"""Accounts: sign-in, lockout, refresh rotation, sign-out, devices, join codes, account creation."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.app import create_app
from server.settings import Settings
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
    assert joined.status_code == 202, joined.text
    signed_in = await client.post("/api/auth/login", json={"email": "vol@example.org", "password": "volunteer-pass"})
    me = (await client.get("/api/me", headers={"Authorization": f"Bearer {signed_in.json()['access_token']}"})).json()
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


# ---------------------------------------------------------------- issue 14: enumeration, lockout, join


def from_address(app: Litestar) -> Litestar:
    """Let a test choose the caller's network address (header `x-test-client`), as two machines on a network would differ."""
    inner = app.asgi_handler

    async def handler(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        for name, value in scope.get("headers", []):
            if name == b"x-test-client":
                scope["client"] = (value.decode(), 40000)
        await inner(scope, receive, send)  # type: ignore[arg-type]

    app.asgi_handler = handler  # type: ignore[assignment]
    return app


@pytest.fixture
def app(settings: Settings) -> Litestar:
    """The real app, reachable from several client addresses."""
    return from_address(create_app(settings))


async def test_unknown_user_does_the_same_work_and_gets_the_same_words(
    client: AsyncTestClient[Litestar], world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown address runs one argon2 verification like a wrong password does, and the answers are identical but for nothing."""
    from argon2 import PasswordHasher

    verified: list[str] = []
    real_verify = PasswordHasher.verify

    def counting_verify(self: PasswordHasher, hash_: str, password: str) -> bool:
        verified.append(hash_)
        return real_verify(self, hash_, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)  # a spy on the library, not on our code
    wrong = await client.post("/api/auth/login", json={"email": "lead@example.org", "password": "not it at all"})
    unknown = await client.post("/api/auth/login", json={"email": "nobody@example.org", "password": "not it at all"})
    assert len(verified) == 2 and all(h.startswith("$argon2id$") for h in verified)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert sorted(wrong.headers.keys()) == sorted(unknown.headers.keys())


async def test_backoff_is_per_account_and_address_with_retry_after(
    client: AsyncTestClient[Litestar], world: World, settings: Settings
) -> None:
    """A stranger guessing the admin's password is slowed (429 + Retry-After, even for the right password); the admin elsewhere signs in."""
    stranger = {"x-test-client": "203.0.113.66"}
    statuses = [
        (await client.post("/api/auth/login", json={"email": "admin@example.org", "password": "guess " * 3}, headers=stranger)).status_code
        for _ in range(settings.login_max_failures + 3)
    ]
    assert statuses[: settings.login_max_failures] == [401] * settings.login_max_failures
    assert set(statuses[settings.login_max_failures :]) == {429}
    blocked = await client.post("/api/auth/login", json={"email": "admin@example.org", "password": TEST_PASSWORD}, headers=stranger)
    assert blocked.status_code == 429
    assert blocked.headers["content-type"].startswith("application/problem+json")
    assert int(blocked.headers["retry-after"]) > 0
    assert blocked.json()["retry_after"] == int(blocked.headers["retry-after"])
    admin = await client.post("/api/auth/login", json={"email": "admin@example.org", "password": TEST_PASSWORD}, headers={"x-test-client": "198.51.100.7"})
    assert admin.status_code == 200, admin.text
    # Unknown accounts are slowed exactly like real ones (no enumeration through lockout).
    for _ in range(settings.login_max_failures):
        await client.post("/api/auth/login", json={"email": "ghost@example.org", "password": "guess " * 3}, headers=stranger)
    ghost = await client.post("/api/auth/login", json={"email": "ghost@example.org", "password": "guess " * 3}, headers=stranger)
    assert ghost.status_code == 429 and int(ghost.headers["retry-after"]) > 0


async def test_one_address_guessing_many_accounts_hits_the_per_address_limit(
    client: AsyncTestClient[Litestar], world: World, settings: Settings
) -> None:
    """Spraying one password over many accounts from one address is slowed too (looser per-address budget), others unaffected."""
    sprayer = {"x-test-client": "203.0.113.99"}
    statuses = [
        (await client.post("/api/auth/login", json={"email": f"user{i}@example.org", "password": "Summer2026!!"}, headers=sprayer)).status_code
        for i in range(settings.login_max_failures * 10 + 1)
    ]
    assert statuses[-1] == 429 and statuses[0] == 401
    assert (await client.post("/api/auth/login", json={"email": "lead@example.org", "password": TEST_PASSWORD})).status_code == 200


async def test_join_never_reveals_an_existing_account(
    client: AsyncTestClient[Litestar], world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Joining with a taken address answers exactly like a new one, changes nothing and signs nobody in; the owner's password adds the campaign."""
    from server.db.models import Membership, User

    code = (await client.post(f"/api/campaigns/{world.campaign_b}/join-codes", json={"max_uses": 10}, headers=world.auth("superuser"))).json()["code"]
    new = await client.post("/api/auth/join", json={"code": code, "display_name": "Newbie", "email": "newbie@example.org", "password": "a long new passphrase"})
    taken = await client.post("/api/auth/join", json={"code": code, "display_name": "Evil", "email": "lead@example.org", "password": "attacker passphrase"})
    assert new.status_code == taken.status_code == 202, (new.text, taken.text)
    assert new.json() == taken.json()
    assert "access_token" not in taken.text and "exists" not in taken.text
    async with sessionmaker() as session:
        lead = await session.get(User, world.users["lead"])
        assert lead is not None and lead.display_name == "Lead"
        roles = (await session.scalars(select(Membership.campaign_id).where(Membership.user_id == lead.id))).all()
        assert list(roles) == [world.campaign_a]
    assert (await client.post("/api/auth/login", json={"email": "lead@example.org", "password": "attacker passphrase"})).status_code == 401
    assert (await client.post("/api/auth/login", json={"email": "newbie@example.org", "password": "a long new passphrase"})).status_code == 200
    # The real owner, proving the password, joins the second campaign with the same answer.
    owner = await client.post("/api/auth/join", json={"code": code, "display_name": "Lead", "email": "lead@example.org", "password": TEST_PASSWORD})
    assert owner.status_code == 202 and owner.json() == new.json()
    async with sessionmaker() as session:
        roles = (await session.scalars(select(Membership.campaign_id).where(Membership.user_id == world.users["lead"]))).all()
        assert sorted(roles) == sorted([world.campaign_a, world.campaign_b])


async def test_refresh_reuse_revokes_the_family_access_tokens_too(client: AsyncTestClient[Litestar], world: World) -> None:
    """Replaying a spent refresh token ends every access token of that sign-in at once; another sign-in keeps working."""
    first = (await client.post("/api/auth/login", json={"email": "lead@example.org", "password": TEST_PASSWORD})).json()
    other = (await client.post("/api/auth/login", json={"email": "lead@example.org", "password": TEST_PASSWORD})).json()
    second = (await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
    for pair in (first, second):
        assert (await client.get("/api/me", headers={"Authorization": f"Bearer {pair['access_token']}"})).status_code == 200
    assert (await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})).status_code == 401
    for pair in (first, second):
        assert (await client.get("/api/me", headers={"Authorization": f"Bearer {pair['access_token']}"})).status_code == 401
    assert (await client.get("/api/me", headers={"Authorization": f"Bearer {other['access_token']}"})).status_code == 200


async def test_password_policy_length_and_common_passwords(client: AsyncTestClient[Litestar], world: World) -> None:
    """NIST SP 800-63B: at least 12 characters, common and repetitive passwords refused, no composition rules; 422 names the field."""
    code = (await client.post(f"/api/campaigns/{world.campaign_a}/join-codes", json={"max_uses": 50}, headers=world.auth("organiser"))).json()["code"]
    for password in ("12345678", "short pass", "password1234", "123456789012", "qwertyuiopasdf", "aaaaaaaaaaaaaaaa", "abababababab", "newvol@example.org"):
        for url, body, headers in (
            ("/api/auth/join", {"code": code, "display_name": "Vol", "email": "newvol@example.org", "password": password}, {}),
            (f"/api/campaigns/{world.campaign_a}/users", {"email": "newvol@example.org", "display_name": "Vol", "password": password}, world.auth("organiser")),
        ):
            response = await client.post(url, json=body, headers=headers)
            assert response.status_code == 422, (password, url, response.text)
            assert any("password" in e["field"] for e in response.json()["errors"]), response.json()
    # Long passphrases of plain lower-case words pass: no composition rules.
    ok = await client.post("/api/auth/join", json={"code": code, "display_name": "Vol", "email": "newvol@example.org", "password": "plain lower case words"})
    assert ok.status_code == 202, ok.text
