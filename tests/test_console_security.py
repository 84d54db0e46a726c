"""The console's defences against script injection and token theft (issue 14), through the real app.

A strict Content-Security-Policy on the console page (self only, no inline script, the tile
host for images when configured) and the other security headers; the refresh token of a
browser console only ever in an HttpOnly, SameSite=Strict cookie scoped to /api/auth, read
only when the console's header asks for it; sign-out deletes it. Phones and scripts keep
the JSON-body tokens unchanged.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.security_headers import console_policy, tile_source
from server.settings import Settings
from tests.conftest import TEST_PASSWORD, World

CONSOLE = {"X-Canvass-Refresh-Cookie": "1"}


def _directives(policy: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


async def _post_with_cookie(client: AsyncTestClient[Litestar], path: str, cookie: str, headers: dict[str, str] | None = None) -> Any:
    """POST with only the given refresh cookie in the client's jar (as a browser holding it would)."""
    client.cookies.clear()
    client.cookies.set("canvass_refresh", cookie)
    try:
        return await client.post(path, headers=headers)
    finally:
        client.cookies.clear()


def _refresh_cookie(response: object) -> SimpleCookie:
    cookies = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):  # type: ignore[attr-defined]
        cookies.load(header)
    return cookies


async def test_console_page_has_a_strict_content_security_policy(client: AsyncTestClient[Litestar]) -> None:
    """Self only, no inline or eval'd script, no plugins, no <base>, no framing; plus nosniff and no-referrer."""
    response = await client.get("/console")
    assert response.status_code == 200
    policy = _directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_console_page_has_no_inline_script_or_handlers(client: AsyncTestClient[Litestar]) -> None:
    """The page itself obeys its policy: every script is a file, no `on…=` attribute, no inline style."""
    import re

    page = (await client.get("/console")).text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "inline <script> in index.html"
    assert not re.search(r"\son[a-z]+\s*=", page, re.IGNORECASE), "inline event handler in index.html"
    assert not re.search(r"\sstyle\s*=|<style", page, re.IGNORECASE), "inline style in index.html"


@pytest.mark.parametrize(
    ("tile_url", "source"),
    [
        ("https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png", "https://*.tile.openstreetmap.org"),
        ("https://tiles.example.org/{z}/{x}/{y}.png", "https://tiles.example.org"),
        ("", None),
        ("javascript:alert(1)", None),
    ],
)
def test_tile_host_is_the_only_other_image_source(tile_url: str, source: str | None) -> None:
    """A configured tile URL adds its host (with Leaflet's {s} as a wildcard label) to img-src, nothing else."""
    assert tile_source(tile_url) == source
    images = _directives(console_policy(Settings(tile_url=tile_url)))["img-src"]
    assert images == ["'self'", "data:", *([source] if source else [])]


async def test_tile_host_reaches_the_console_header(settings: Settings) -> None:
    """The header the console receives names the configured tile host."""
    from msgspec.structs import replace

    app = create_app(replace(settings, tile_url="https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png"))
    async with AsyncTestClient(app) as client:
        policy = _directives((await client.get("/console")).headers["content-security-policy"])
    assert policy["img-src"] == ["'self'", "data:", "https://*.tile.openstreetmap.org"]


async def test_api_documentation_pages_have_their_own_policy(client: AsyncTestClient[Litestar]) -> None:
    """/schema's HTML renderers get a policy too (their CDN and start-up script, nothing else); JSON gets none."""
    page = await client.get("/schema/swagger")
    assert page.status_code == 200
    policy = _directives(page.headers["content-security-policy"])
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert "content-security-policy" not in (await client.get("/health")).headers


async def test_console_sign_in_puts_the_refresh_token_only_in_an_httponly_cookie(client: AsyncTestClient[Litestar], world: World) -> None:
    """With the console's header, the body carries no refresh token; the cookie is HttpOnly, SameSite=Strict, /api/auth only."""
    response = await client.post("/api/auth/login", json={"email": "organiser@example.org", "password": TEST_PASSWORD}, headers=CONSOLE)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["access_token"] and body["refresh_token"] == ""
    cookie = _refresh_cookie(response)["canvass_refresh"]
    assert len(cookie.value) >= 20
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "strict"
    assert cookie["path"] == "/api/auth"
    assert not cookie["secure"], "the test server's public URL is http"


async def test_console_refreshes_with_its_cookie_and_the_cookie_rotates(client: AsyncTestClient[Litestar], world: World) -> None:
    """Refresh reads the cookie (only with the console's header), answers a new access token and a new cookie; the old one is spent."""
    signed_in = await client.post("/api/auth/login", json={"email": "lead@example.org", "password": TEST_PASSWORD}, headers=CONSOLE)
    first = _refresh_cookie(signed_in)["canvass_refresh"].value
    client.cookies.clear()

    without_header = await _post_with_cookie(client, "/api/auth/refresh", first)
    assert without_header.status_code == 401, "a cookie alone (a cross-site form) must not refresh"

    refreshed = await _post_with_cookie(client, "/api/auth/refresh", first, headers=CONSOLE)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] == ""
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"})
    assert me.status_code == 200 and me.json()["email"] == "lead@example.org"
    second = _refresh_cookie(refreshed)["canvass_refresh"].value
    assert second and second != first
    client.cookies.clear()

    reused = await _post_with_cookie(client, "/api/auth/refresh", first, headers=CONSOLE)
    assert reused.status_code == 401
    assert reused.headers["content-type"].startswith("application/problem+json")


async def test_console_sign_out_revokes_and_deletes_the_cookie(client: AsyncTestClient[Litestar], world: World) -> None:
    """Sign-out with the console's header revokes the cookie's sign-in family and tells the browser to delete it."""
    signed_in = await client.post("/api/auth/login", json={"email": "lead@example.org", "password": TEST_PASSWORD}, headers=CONSOLE)
    cookie = _refresh_cookie(signed_in)["canvass_refresh"].value
    access = signed_in.json()["access_token"]
    out = await _post_with_cookie(client, "/api/auth/logout", cookie, headers={**CONSOLE, "Authorization": f"Bearer {access}"})
    assert out.status_code == 204
    deleted = _refresh_cookie(out)["canvass_refresh"]
    assert deleted.value == "" and deleted["max-age"] == "0" and deleted["path"] == "/api/auth"
    again = await _post_with_cookie(client, "/api/auth/refresh", cookie, headers=CONSOLE)
    assert again.status_code == 401


async def test_refresh_without_any_token_is_a_401_problem(client: AsyncTestClient[Litestar]) -> None:
    """No body and no cookie: 401 problem details (the console's boot probe when nobody is signed in)."""
    response = await client.post("/api/auth/refresh", headers=CONSOLE)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_phones_keep_json_body_tokens(client: AsyncTestClient[Litestar], world: World) -> None:
    """Without the console's header nothing changes: both tokens in the body, no cookie."""
    response = await client.post("/api/auth/login", json={"email": "canvasser@example.org", "password": TEST_PASSWORD})
    assert response.status_code == 200
    assert len(response.json()["refresh_token"]) >= 20
    assert "set-cookie" not in response.headers
    refreshed = await client.post("/api/auth/refresh", json={"refresh_token": response.json()["refresh_token"]})
    assert refreshed.status_code == 200 and refreshed.json()["refresh_token"]
