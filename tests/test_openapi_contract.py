"""The OpenAPI document describes the responses the server really gives (issue 14).

Error statuses as RFC 9457 problem details (`application/problem+json`), export media types
(CSV, PDF, GeoPackage, GeoJSON with its FeatureCollection schema), public routes marked as
needing no credentials, request bodies closed where the server refuses unknown fields, and
datetimes that carry their time zone on both databases. The schemathesis run in
tests/test_fuzz_api.py checks the same against the live server for every route and role.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.settings import Settings
from tests.conftest import World

PROBLEM = "application/problem+json"
EXPORTS = {
    "/api/campaigns/{campaign_id}/exports/results.csv": "text/csv",
    "/api/campaigns/{campaign_id}/exports/follow-ups.csv": "text/csv",
    "/api/campaigns/{campaign_id}/exports/report.pdf": "application/pdf",
    "/api/campaigns/{campaign_id}/exports/results.gpkg": "application/geopackage+sqlite3",
    "/api/campaigns/{campaign_id}/exports/results.geojson": "application/geo+json",
    "/api/campaigns/{campaign_id}/walklists/{walk_list_id}/export.csv": "text/csv",
    "/api/campaigns/{campaign_id}/walklists/{walk_list_id}/export.geojson": "application/geo+json",
    "/api/campaigns/{campaign_id}/walklists/{walk_list_id}/sheet.pdf": "application/pdf",
}


def _document(settings: Settings) -> dict[str, Any]:
    return create_app(settings).openapi_schema.to_schema()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, operation) for path, item in document["paths"].items() for method, operation in item.items()]


def test_every_error_response_is_documented_as_problem_details(settings: Settings) -> None:
    """Each operation lists its 4xx answers, all as problem+json with the ProblemDetail schema; none as plain JSON."""
    document = _document(settings)
    assert "ProblemDetail" in document["components"]["schemas"]
    for path, method, operation in _operations(document):
        errors = {status: response for status, response in operation["responses"].items() if status.startswith(("4", "5"))}
        for status, response in errors.items():
            assert list(response.get("content", {})) == [PROBLEM], (method, path, status)
            assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/ProblemDetail"}, (method, path, status)
        if operation.get("security") != []:
            assert {"401", "403"} <= set(errors), (method, path, sorted(errors))
        if "{" in path:
            assert "404" in errors, (method, path)


def test_exports_are_documented_with_their_media_types(settings: Settings) -> None:
    """CSV, PDF, GeoPackage and GeoJSON downloads are not JSON; GeoJSON has the FeatureCollection schema."""
    document = _document(settings)
    for path, media_type in EXPORTS.items():
        ok = document["paths"][path]["get"]["responses"]["200"]
        assert list(ok["content"]) == [media_type], (path, ok["content"])
        if media_type == "application/geo+json":
            assert ok["content"][media_type]["schema"] == {"$ref": "#/components/schemas/GeoJSONFeatureCollection"}
    routes = document["paths"]["/api/campaigns/{campaign_id}/walklists/map"]["get"]["responses"]["200"]["content"]["application/json"]
    assert routes["schema"] == {"$ref": "#/components/schemas/GeoJSONFeatureCollection"}


def test_public_routes_need_no_credentials_and_closed_bodies_are_closed(settings: Settings) -> None:
    """`security: []` on sign-in, join, refresh and the probes; Structs that refuse unknown fields say so."""
    document = _document(settings)
    for path in ("/health", "/ready", "/api/auth/login", "/api/auth/join", "/api/auth/refresh"):
        for operation in document["paths"][path].values():
            assert operation["security"] == [], path
    assert "security" not in document["paths"]["/api/me"]["get"]
    schemas = document["components"]["schemas"]
    assert schemas["LoginRequest"]["additionalProperties"] is False
    assert schemas["JoinRequest"]["additionalProperties"] is False
    assert "additionalProperties" not in schemas["TokenPair"]
    upload = document["paths"]["/api/campaigns/{campaign_id}/imports/census"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert upload["schema"]["required"] == ["file"]
    assert document["paths"]["/api/auth/refresh"]["post"]["requestBody"]["required"] is False  # the console sends only its cookie
    assert document["paths"]["/api/auth/login"]["post"]["requestBody"]["required"] is True


def _is_aware(value: str) -> bool:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


async def test_datetimes_in_responses_carry_their_time_zone(client: AsyncTestClient[Litestar], world: World) -> None:
    """A stored datetime read back from the database is answered with its offset (SQLite stores none)."""
    organiser = world.auth("organiser")
    polygon = {"type": "Polygon", "coordinates": [[[-1.0, 52.0], [-0.99, 52.0], [-0.99, 52.01], [-1.0, 52.01], [-1.0, 52.0]]]}
    created = await client.post(f"/api/campaigns/{world.campaign_a}/targets", json={"name": "T", "polygon": polygon}, headers=organiser)
    assert created.status_code == 201, created.text
    listed = await client.get(f"/api/campaigns/{world.campaign_a}/targets", headers=organiser)
    assert listed.status_code == 200
    stamps = [target["created_at"] for target in listed.json()]
    assert stamps and all(_is_aware(stamp) for stamp in stamps), stamps
    device = await client.post(f"/api/campaigns/{world.campaign_a}/devices", json={"name": "phone"}, headers=world.auth("canvasser"))
    assert device.status_code == 201, device.text
    seen = await client.get("/api/me", headers={"Authorization": f"Bearer {device.json()['token']}"})
    assert seen.status_code == 200
    devices = await client.get(f"/api/campaigns/{world.campaign_a}/devices", headers=organiser)
    last_seen = [d["last_seen_at"] for d in devices.json() if d["last_seen_at"]]
    assert last_seen and all(_is_aware(stamp) for stamp in last_seen), devices.json()


async def test_options_lists_every_method_of_a_path(client: AsyncTestClient[Litestar], world: World) -> None:
    """`Allow` names every documented method of a path (Litestar's merged routes answered a stale subset)."""
    document = create_app(client.app.state.settings).openapi_schema.to_schema()
    for path in ("/api/campaigns", "/api/campaigns/{campaign_id}/targets", "/api/campaigns/{campaign_id}/walklists/{walk_list_id}"):
        concrete = path.replace("{campaign_id}", str(world.campaign_a)).replace("{walk_list_id}", "1")
        response = await client.options(concrete, headers=world.auth("organiser"))
        allowed = {method.strip() for method in response.headers["allow"].split(",")}
        assert {method.upper() for method in document["paths"][path]} <= allowed, (path, allowed)


async def test_json_bodies_are_read_as_strictly_as_documented(client: AsyncTestClient[Litestar], world: World) -> None:
    """A body value of the wrong JSON type (0 for a boolean, a number for a date-time) is refused, not coerced."""
    organiser = world.auth("organiser")
    loose = await client.post(f"/api/campaigns/{world.campaign_a}/targets/1/cut", json={"replace": 0}, headers=organiser)
    assert loose.status_code == 422, loose.text
    assert loose.headers["content-type"].startswith(PROBLEM)
    assert any(error["field"] == "replace" or "replace" in error["message"] for error in loose.json()["errors"]), loose.json()
    code = await client.post(f"/api/campaigns/{world.campaign_a}/join-codes", json={"hours_valid": "24"}, headers=organiser)
    assert code.status_code == 422, code.text
    fine = await client.post(f"/api/campaigns/{world.campaign_a}/join-codes", json={"hours_valid": 24}, headers=organiser)
    assert fine.status_code == 201, fine.text


def test_sync_routes_document_their_protocol_header(settings: Settings) -> None:
    """Push, pull and list downloads need `X-Canvass-Protocol` (426 without a supported version): the document says so."""
    document = _document(settings)
    for path, method in (("/api/sync/push", "post"), ("/api/sync/pull", "post"), ("/api/sync/lists/{list_id}", "get")):
        operation = document["paths"][path][method]
        header = next(p for p in operation["parameters"] if p["name"] == "X-Canvass-Protocol")
        assert header["in"] == "header" and header["required"] is True and header["schema"]["enum"] == [1]
        assert "426" in operation["responses"]


def test_sync_push_and_pull_bodies_are_documented(settings: Settings) -> None:
    """The push and pull request bodies (read raw by the server, to decode mutation by mutation and
    to inflate gzip) are declared, with every mutation op; their responses name their Structs."""
    document = _document(settings)
    schemas = document["components"]["schemas"]
    for path, request, response in (
        ("/api/sync/push", "PushRequest", "PushResponse"),
        ("/api/sync/pull", "PullRequest", "PullResponse"),
    ):
        operation = document["paths"][path]["post"]
        body = operation.get("requestBody")
        assert body is not None and body["required"], path
        assert body["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{request}"}, path
        assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{response}"}
        assert request in schemas and response in schemas
    envelope = schemas["Envelope"]["properties"]["mutation"]
    ops = {ref["$ref"].rsplit("/", 1)[1] for ref in envelope["oneOf"]}
    assert ops == {"RecordContactAttempt", "RecordAnswer", "RecordObservation", "EditField", "ServerRequest", "VoidEvent"}, ops
    assert set(schemas["PullRequest"]["required"]) == {"protocol_version", "device_id"}
