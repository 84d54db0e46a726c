"""Liveness, readiness, OpenAPI document and the console entry page."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient


async def test_health_and_ready(client: AsyncTestClient[Litestar]) -> None:
    """/health is 200; /ready reports the database reachable and at the shipped migration."""
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready"
    assert body["migration"] == body["expected_migration"]


async def test_openapi_is_3_1_with_interactive_ui(client: AsyncTestClient[Litestar]) -> None:
    """The OpenAPI document is 3.1 and an interactive UI is served at /schema."""
    doc = (await client.get("/schema/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    assert "/api/auth/login" in doc["paths"]
    ui = await client.get("/schema")
    assert ui.status_code == 200 and "<html" in ui.text.lower()


async def test_security_headers_present(client: AsyncTestClient[Litestar]) -> None:
    """Every response carries the security headers."""
    response = await client.get("/health")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
