"""Every route times every principal against an expected allow/deny table.

The table is keyed by (method, path) exactly as the app's route table spells
them; a route added without an entry here fails `test_every_route_has_an_entry`.
"Allowed" means the guard let the request through (any status but 401/403);
"denied" means 401 (anonymous or bad token) or 403 (known caller, wrong role).
"""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import World

PRINCIPALS = ("anonymous", "superuser", "admin", "organiser", "lead", "canvasser", "other_canvasser", "device")
ALL = frozenset(PRINCIPALS)
SIGNED_IN = ALL - {"anonymous"}
PEOPLE = SIGNED_IN - {"device"}  # password sign-ins (device tokens are for sync only)
MEMBERS_A = frozenset({"superuser", "admin", "organiser", "lead", "canvasser"})
MEMBERS_A_AND_DEVICE = MEMBERS_A | {"device"}
REVIEWERS_A = frozenset({"superuser", "admin", "organiser", "lead"})
ORGANISERS_A = frozenset({"superuser", "admin", "organiser"})
SUPERUSER = frozenset({"superuser"})

# Extended by each domain as it lands; unknown routes fail the test below.
EXPECTED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/health"): ALL,
    ("GET", "/ready"): ALL,
    ("GET", "/metrics"): ALL,  # Prometheus: counts and route templates only; scraped per instance, kept off the public balancer
    ("GET", "/"): ALL,
    ("GET", "/console"): ALL,
    ("GET", "/console/config.json"): ALL,
    ("GET", "/static/{file_path:path}"): ALL,
    # the canvasser app's shell is public (it holds no data); its street layer is for members and their phones
    ("GET", "/app"): ALL,
    ("GET", "/app/join"): ALL,
    ("GET", "/join/{code:str}"): ALL,
    ("GET", "/app/sw.js"): ALL,
    ("GET", "/app/manifest.webmanifest"): ALL,
    ("GET", "/app/config.json"): ALL,
    ("GET", "/app/static/{file_path:path}"): ALL,
    ("GET", "/api/campaigns/{campaign_id:int}/streets.geojson"): MEMBERS_A_AND_DEVICE,
    ("GET", "/schema"): ALL,
    ("GET", "/schema/openapi.json"): ALL,
    ("GET", "/schema/scalar"): ALL,
    ("GET", "/schema/swagger"): ALL,
    ("GET", "/schema/oauth2-redirect.html"): ALL,
    ("GET", "/schema/{path:str}"): ALL,
    ("POST", "/api/auth/login"): ALL,
    ("POST", "/api/auth/refresh"): ALL,
    ("POST", "/api/auth/join"): ALL,
    ("POST", "/api/auth/logout"): SIGNED_IN,
    ("GET", "/api/me"): SIGNED_IN,
    ("GET", "/api/campaigns"): SIGNED_IN,
    ("POST", "/api/campaigns"): SUPERUSER,
    ("GET", "/api/campaigns/{campaign_id:int}"): MEMBERS_A_AND_DEVICE,
    ("GET", "/api/campaigns/{campaign_id:int}/members"): REVIEWERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/users"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/join-codes"): ORGANISERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/join-codes"): ORGANISERS_A,
    ("DELETE", "/api/campaigns/{campaign_id:int}/join-codes/{join_code_id:int}"): ORGANISERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/join-codes/{join_code_id:int}/qr.svg"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/members"): ORGANISERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/teams"): REVIEWERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/teams"): ORGANISERS_A,
    ("PATCH", "/api/campaigns/{campaign_id:int}/teams/{team_id:int}"): ORGANISERS_A,
    ("DELETE", "/api/campaigns/{campaign_id:int}/teams/{team_id:int}"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/teams/{team_id:int}/members"): ORGANISERS_A,
    ("DELETE", "/api/campaigns/{campaign_id:int}/teams/{team_id:int}/members/{user_id:int}"): ORGANISERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/devices"): MEMBERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/devices"): MEMBERS_A,
    # The device in the test belongs to the canvasser: owner or organisers may revoke it.
    ("DELETE", "/api/campaigns/{campaign_id:int}/devices/{device_id:int}"): ORGANISERS_A | {"canvasser"},
    # geography: imports are organisers' work; area lists are visible to members
    ("POST", "/api/campaigns/{campaign_id:int}/imports/boundaries"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/imports/census"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/imports/addresses"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/imports/register"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/imports/streets"): ORGANISERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/areas"): MEMBERS_A,
    # targeting: leads review, organisers decide
    ("GET", "/api/campaigns/{campaign_id:int}/measures"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/areas/rank"): REVIEWERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/targets/preview"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/targets"): ORGANISERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/targets"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/targets/{target_id:int}"): REVIEWERS_A,
    ("DELETE", "/api/campaigns/{campaign_id:int}/targets/{target_id:int}"): ORGANISERS_A,
    # walk lists: organisers cut and assign; members read (a canvasser only the lists assigned to them,
    # which the service answers with 404 for others: not a guard denial, so "allowed" here)
    ("POST", "/api/campaigns/{campaign_id:int}/targets/{target_id:int}/cut"): ORGANISERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/jobs/{job_id:int}"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/walklists"): MEMBERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/walklists/map"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/walklists/{walk_list_id:int}"): MEMBERS_A,
    ("PATCH", "/api/campaigns/{campaign_id:int}/walklists/{walk_list_id:int}"): ORGANISERS_A,
    ("DELETE", "/api/campaigns/{campaign_id:int}/walklists/{walk_list_id:int}"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/walklists/{walk_list_id:int}/assign"): ORGANISERS_A,
    ("DELETE", "/api/campaigns/{campaign_id:int}/walklists/{walk_list_id:int}/assign"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/walklists/{walk_list_id:int}/assign-team"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/walklists/merge"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/walklists/{walk_list_id:int}/split"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/walklists/{walk_list_id:int}/reroute"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/walklists/reknock"): ORGANISERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/walklists/{walk_list_id:int}/export.geojson"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/walklists/{walk_list_id:int}/export.csv"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/walklists/{walk_list_id:int}/sheet.pdf"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/walklists/{walk_list_id:int}/paper-form"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/walklists/{walk_list_id:int}/paper-results"): ORGANISERS_A,
    # surveys: organisers write, reviewers read; canvassers get the published version through sync only
    ("GET", "/api/campaigns/{campaign_id:int}/surveys"): REVIEWERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/surveys"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/surveys/versions"): ORGANISERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/surveys/{survey_id:int}"): REVIEWERS_A,
    ("PUT", "/api/campaigns/{campaign_id:int}/surveys/{survey_id:int}"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/surveys/{survey_id:int}/publish"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/surveys/{survey_id:int}/archive"): ORGANISERS_A,
    # sync: only a registered phone's device token (its scope is computed from assignments)
    ("POST", "/api/sync/push"): frozenset({"device"}),
    ("POST", "/api/sync/pull"): frozenset({"device"}),
    ("GET", "/api/sync/lists/{list_id:int}"): frozenset({"device"}),
    # conflict review: organisers
    ("GET", "/api/campaigns/{campaign_id:int}/conflicts"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/conflicts/{conflict_id:int}/resolve"): ORGANISERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/review"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/review/rejections/{held_id:int}/apply"): ORGANISERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/review/rejections/{held_id:int}/dismiss"): ORGANISERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/rejections"): ORGANISERS_A,
    # results: reviewers read; a canvasser only their own assigned lists' progress (403 for list 1 here,
    # which is nobody's; tests/test_results.py covers the allowed case); exports reviewers only, audited
    ("GET", "/api/campaigns/{campaign_id:int}/results/progress"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/results/lists/{walk_list_id:int}/progress"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/results/answers"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/results/issues"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/results/map"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/results/follow-ups"): REVIEWERS_A,
    ("POST", "/api/campaigns/{campaign_id:int}/results/follow-ups/{person_id:int}/done"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/results/health"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/results/live"): REVIEWERS_A,
    # erasure of one person or address: organisers and admins
    ("POST", "/api/campaigns/{campaign_id:int}/erasures"): ORGANISERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/exports/results.csv"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/exports/results.gpkg"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/exports/results.geojson"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/exports/follow-ups.csv"): REVIEWERS_A,
    ("GET", "/api/campaigns/{campaign_id:int}/exports/report.pdf"): REVIEWERS_A,
}


def route_table(app: Litestar) -> list[tuple[str, str]]:
    """(method, path) for every HTTP route handler of the app, OPTIONS/HEAD excluded."""
    pairs = set()
    for route in app.routes:
        for method in getattr(route, "methods", ()):
            if method not in ("OPTIONS", "HEAD"):
                pairs.add((method, route.path))
    return sorted(pairs)


def test_every_route_has_an_entry(app: Litestar) -> None:
    """A new route without an expected-access entry fails here."""
    missing = [pair for pair in route_table(app) if pair not in EXPECTED]
    assert not missing, f"routes without an access-matrix entry: {missing}"
    stale = [pair for pair in EXPECTED if pair not in route_table(app)]
    assert not stale, f"access-matrix entries for routes that no longer exist: {stale}"


def fill_path(path: str, values: dict[str, int]) -> str:
    """Substitute path parameters; unknown ones get 1."""
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(values.get(m.group(1), 1)), path)


@pytest.mark.timeout(300)
async def test_access_matrix(client: AsyncTestClient[Litestar], app: Litestar, world: World) -> None:
    """Each principal is allowed exactly where the table says, and denied with 401/403 elsewhere."""
    spare = await client.post(f"/api/campaigns/{world.campaign_a}/devices", json={"name": "spare"}, headers=world.auth("canvasser"))
    phone = await client.post(f"/api/campaigns/{world.campaign_a}/devices", json={"name": "phone"}, headers=world.auth("canvasser"))
    world.tokens["device"] = phone.json()["token"]
    values = {"campaign_id": world.campaign_a, "device_id": spare.json()["device_id"]}
    # Sign-out revokes the caller's token, so it runs last.
    routes = sorted(route_table(app), key=lambda pair: pair == ("POST", "/api/auth/logout"))
    failures = []
    for method, path in routes:
        url = fill_path(path, values)
        for who in PRINCIPALS:
            kwargs: dict[str, object] = {"headers": world.auth(who)}
            if method in ("POST", "PUT", "PATCH"):
                kwargs["json"] = {}
            response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
            allowed = response.status_code not in (401, 403)
            if allowed != (who in EXPECTED[(method, path)]):
                failures.append(f"{method} {path} as {who}: {response.status_code}")
            if not allowed:
                assert response.headers["content-type"].startswith("application/problem+json"), (method, path, who)
    assert not failures, "\n".join(failures)
