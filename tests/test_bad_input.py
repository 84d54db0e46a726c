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


# ---------------------------------------------------------------- issue 14: inputs that used to answer 500


async def test_invalid_utf8_json_body_is_400(client: AsyncTestClient[Litestar], world: World) -> None:
    """Bytes that are not UTF-8 inside a JSON string: 400 problem details, on a public route and a signed-in one."""
    body = b'{"email": "a\xff\xfe@b.c", "password": "x"}'
    assert_problem(await client.post("/api/auth/login", content=body, headers={"content-type": "application/json"}), 400)
    headers = {**world.auth("organiser"), "content-type": "application/json"}
    assert_problem(await client.post(f"/api/campaigns/{world.campaign_a}/join-codes", content=b'{"max_uses": "\xc3\x28"}', headers=headers), 400)


async def test_deeply_nested_json_is_400(client: AsyncTestClient[Litestar], world: World) -> None:
    """JSON nested 2,000 deep (a polygon's coordinates, a login body): a clear 4xx, not a recursion error."""
    deep = b"[" * 2000 + b"]" * 2000
    polygon = b'{"name": "deep", "polygon": {"type": "Polygon", "coordinates": ' + deep + b"}}"
    headers = {**world.auth("organiser"), "content-type": "application/json"}
    response = await client.post(f"/api/campaigns/{world.campaign_a}/targets/preview", content=polygon, headers=headers)
    assert response.status_code in (400, 422), response.text
    assert_problem(response, response.status_code)
    login = await client.post("/api/auth/login", content=b'{"email": ' + deep + b', "password": "x"}', headers={"content-type": "application/json"})
    assert login.status_code in (400, 422) and login.headers["content-type"].startswith("application/problem+json")


async def test_stale_hours_must_be_a_finite_non_negative_number(client: AsyncTestClient[Litestar], world: World) -> None:
    """`results/health?stale_hours=` nan, inf, -inf or negative: 400 naming the parameter; a normal value answers."""
    url = f"/api/campaigns/{world.campaign_a}/results/health"
    for value in ("nan", "NaN", "inf", "-inf", "Infinity", "-1", "1e309"):
        body = assert_problem(await client.get(url, params={"stale_hours": value}, headers=world.auth("lead")), 400)
        assert "stale_hours" in body["detail"], body
    assert (await client.get(url, params={"stale_hours": "0.5"}, headers=world.auth("lead"))).status_code == 200


async def test_degenerate_drawn_polygons_are_422(client: AsyncTestClient[Litestar], world: World) -> None:
    """A drawn ring of one point, of two points, an empty ring, NaN coordinates: 4xx naming the polygon."""
    url = f"/api/campaigns/{world.campaign_a}/targets/preview"
    for coordinates in ([[[-0.05, 51.5]]], [[[-0.05, 51.5], [-0.04, 51.5]]], [[]], [[[-0.05, 51.5], [-0.05, 51.5], [-0.05, 51.5], [-0.05, 51.5]]]):
        response = await client.post(url, json={"name": "x", "polygon": {"type": "Polygon", "coordinates": coordinates}}, headers=world.auth("organiser"))
        body = assert_problem(response, 422)
        assert body["errors"][0]["field"] == "polygon", body
    nan = b'{"name": "x", "polygon": {"type": "Polygon", "coordinates": [[[NaN, 51.5], [-0.04, 51.5], [-0.04, 51.51], [NaN, 51.5]]]}}'
    response = await client.post(url, content=nan, headers={**world.auth("organiser"), "content-type": "application/json"})
    assert response.status_code in (400, 422) and response.headers["content-type"].startswith("application/problem+json")


HOSTILE_TEXT = ["Nul\x00Byte", "Bell\x07", "Esc\x1b[31m", "C1\x85next", "evil\u202egnp.exe", "iso\u2066late\u2069", "line\nbreak"]


async def test_control_and_bidi_characters_refused_in_names(client: AsyncTestClient[Litestar], world: World) -> None:
    """C0/C1 controls (NUL included) and bidi overrides/isolates are refused in display names, device, target and list names: 422 naming the field."""
    code = (await client.post(f"/api/campaigns/{world.campaign_a}/join-codes", json={}, headers=world.auth("organiser"))).json()["code"]
    for text in HOSTILE_TEXT:
        cases = [
            ("/api/auth/join", {"code": code, "display_name": text, "email": "v@example.org", "password": "a long pass phrase"}, {}, "display_name"),
            (f"/api/campaigns/{world.campaign_a}/users", {"email": "v@example.org", "display_name": text, "password": "a long pass phrase"},
             world.auth("organiser"), "display_name"),
            (f"/api/campaigns/{world.campaign_a}/devices", {"name": text}, world.auth("canvasser"), "name"),
            (f"/api/campaigns/{world.campaign_a}/targets/preview", {"name": text, "area_codes": ["X"]}, world.auth("organiser"), "name"),
        ]
        for url, body, headers, field in cases:
            response = await client.post(url, json=body, headers=headers)
            problem_body = assert_problem(response, 422)
            assert any(field in e["field"] for e in problem_body["errors"]), (url, text, problem_body)
    fine = await client.post(f"/api/campaigns/{world.campaign_a}/devices", json={"name": "Zoë's Pixel — عربى"}, headers=world.auth("canvasser"))
    assert fine.status_code == 201, fine.text


async def test_control_characters_refused_in_register_names(client: AsyncTestClient[Litestar], world: World) -> None:
    """A register row whose name holds a control or bidi character is a bad row (reported by line); nothing is imported."""
    header = "Polling District,Elector Number,Surname,Forenames,Address 1,Postcode\n"
    rows = "AA,1,Smith,Alex,1 Mill Road,AB1 2CD\nAA,2,Ev\u202eil,Bob,2 Mill Road,AB1 2CD\nAA,3,Jones,Nu\x00l,3 Mill Road,AB1 2CD\n"
    response = await client.post(
        f"/api/campaigns/{world.campaign_a}/imports/register", files={"data": ("r.csv", (header + rows).encode(), "text/csv")}, headers=world.auth("organiser")
    )
    body = assert_problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["line 3", "line 4"], body
