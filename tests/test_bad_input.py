"""Bad input gets RFC 9457 problem details with the right status, and validation names the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.settings import Settings
from tests.conftest import World

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def assert_problem(response: object, status: int) -> dict[str, object]:
    """The response is problem+json with the RFC 9457 members and the given status."""
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert PROBLEM_KEYS <= set(body)
    assert body["status"] == status
    return body  # type: ignore[no-any-return]


async def test_malformed_json_is_400(client: AsyncTestClient[Litestar]) -> None:
    """A body that is not JSON."""
    response = await client.post("/api/auth/login", content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(response, 400)


async def test_wrong_types_name_the_field(client: AsyncTestClient[Litestar], world: World) -> None:
    """A number where a string belongs, and a missing field: 422, naming the field."""
    body = assert_problem(await client.post("/api/auth/login", json={"email": 5, "password": "x"}), 422)
    assert any("email" in error["field"] for error in body["errors"]), body
    body = assert_problem(
        await client.post(f"/api/campaigns/{world.campaign_a}/join-codes", json={"max_uses": "many"}, headers=world.auth("organiser")), 422
    )
    assert any("max_uses" in error["field"] for error in body["errors"]), body
    body = assert_problem(await client.post("/api/auth/login", json={"email": "a@b.c"}), 422)
    assert any("password" in error["message"] or "password" in error["field"] for error in body["errors"]), body


async def test_unknown_route_and_method(client: AsyncTestClient[Litestar]) -> None:
    """404 and 405 use the same shape."""
    assert_problem(await client.get("/api/nothing-here"), 404)
    assert_problem(await client.delete("/health"), 405)


async def test_oversize_body_is_413(settings: Settings) -> None:
    """A body over the configured limit is refused with 413, not read into memory."""
    import msgspec

    small = create_app(msgspec.structs.replace(settings, max_request_bytes=2_000))
    async with AsyncTestClient(app=small) as client:
        response = await client.post("/api/auth/login", json={"email": "a@b.c", "password": "x" * 5_000})
        assert_problem(response, 413)


async def test_expired_and_forged_tokens_are_401(client: AsyncTestClient[Litestar], world: World, settings: Settings) -> None:
    """An expired token and one signed with another key each get 401 problem details."""
    past = datetime.now(UTC) - timedelta(hours=1)
    claims = {"sub": str(world.users["organiser"]), "exp": past, "iat": past - timedelta(minutes=15)}
    expired = jwt.encode(claims, settings.secret_key, algorithm="HS256")
    assert_problem(await client.get("/api/me", headers={"Authorization": f"Bearer {expired}"}), 401)
    claims["exp"] = datetime.now(UTC) + timedelta(hours=1)
    forged = jwt.encode(claims, "some-other-secret-" + "y" * 32, algorithm="HS256")
    assert_problem(await client.get("/api/me", headers={"Authorization": f"Bearer {forged}"}), 401)
    assert_problem(await client.get("/api/me", headers={"Authorization": "Bearer not-a-jwt"}), 401)
    assert_problem(await client.get("/api/me"), 401)


async def test_revoked_token_is_401(client: AsyncTestClient[Litestar], world: World) -> None:
    """A signed-out token and a revoked device's token are both refused."""
    headers = world.auth("canvasser")
    device = (await client.post(f"/api/campaigns/{world.campaign_a}/devices", json={"name": "x"}, headers=headers)).json()
    await client.delete(f"/api/campaigns/{world.campaign_a}/devices/{device['device_id']}", headers=headers)
    assert_problem(await client.get("/api/me", headers={"Authorization": f"Bearer {device['token']}"}), 401)
    await client.post("/api/auth/logout", json={}, headers=headers)
    assert_problem(await client.get("/api/me", headers=headers), 401)


async def test_sign_in_is_rate_limited(settings: Settings) -> None:
    """Beyond the per-minute sign-in budget a client gets 429 problem details with a reset header."""
    import msgspec

    limited = create_app(msgspec.structs.replace(settings, auth_rate_per_minute=3))
    async with AsyncTestClient(app=limited) as client:
        statuses = [(await client.post("/api/auth/login", json={"email": "x@y.z", "password": "nope"})).status_code for _ in range(4)]
        assert statuses[:3] == [401, 401, 401]
        response = await client.post("/api/auth/login", json={"email": "x@y.z", "password": "nope"})
        body = assert_problem(response, 429)
        assert body["status"] == 429
        assert int(response.headers["retry-after"]) > 0  # how long to wait, in the header clients read
        # Other routes are not throttled by the sign-in budget.
        assert (await client.get("/health")).status_code == 200


async def test_cors_closed_by_default(client: AsyncTestClient[Litestar]) -> None:
    """Without configured origins no browser origin is allowed."""
    response = await client.options(
        "/api/me", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in response.headers
