"""Volunteers: join links (list, QR code, revoke, uses left), adding an existing account to a campaign, teams; both databases."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import TEST_PASSWORD, World


async def test_join_links_list_qr_and_revoke(client: AsyncTestClient[Litestar], world: World) -> None:
    """A join link shows its uses left and a QR code of its URL; a revoked link lets nobody in and says so."""
    base = f"/api/campaigns/{world.campaign_a}/join-codes"
    made = await client.post(base, json={"hours_valid": 24, "max_uses": 2}, headers=world.auth("organiser"))
    assert made.status_code == 201, made.text
    code = made.json()
    assert code["uses_left"] == 2 and code["active"] and code["join_url"].endswith(f"/app/join?code={code['code']}")
    qr = await client.get(code["qr_svg"], headers=world.auth("organiser"))
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")
    assert ET.fromstring(qr.text).tag.endswith("svg")
    assert (await client.get(code["qr_svg"], headers=world.auth("lead"))).status_code == 403
    joined = await client.post("/api/auth/join", json={"code": code["code"], "display_name": "Vol", "email": "vol@example.org", "password": TEST_PASSWORD})
    assert joined.status_code == 202, joined.text
    listed = (await client.get(base, headers=world.auth("organiser"))).json()
    assert [(c["code"], c["uses"], c["uses_left"], c["active"]) for c in listed] == [(code["code"], 1, 1, True)]
    revoked = await client.delete(f"{base}/{code['id']}", headers=world.auth("organiser"))
    assert revoked.status_code == 204
    listed = (await client.get(base, headers=world.auth("organiser"))).json()
    assert listed[0]["revoked"] and not listed[0]["active"]
    refused = await client.post("/api/auth/join", json={"code": code["code"], "display_name": "Late", "email": "late@example.org", "password": TEST_PASSWORD})
    assert refused.status_code == 422
    other = await client.delete(f"/api/campaigns/{world.campaign_b}/join-codes/{code['id']}", headers=world.auth("superuser"))
    assert other.status_code == 404  # a code is found only through its own campaign


async def test_add_an_existing_account_to_a_second_campaign(client: AsyncTestClient[Litestar], world: World) -> None:
    """The canvasser of campaign B joins A from the console's API; organisers may add canvassers only and not demote anyone."""
    url = f"/api/campaigns/{world.campaign_a}/members"
    added = await client.post(url, json={"email": "Other_Canvasser@example.org"}, headers=world.auth("organiser"))
    assert added.status_code == 200, added.text
    assert added.json()["user_id"] == world.users["other_canvasser"] and added.json()["role"] == "canvasser"
    members = (await client.get(url, headers=world.auth("organiser"))).json()
    assert world.users["other_canvasser"] in {m["user_id"] for m in members}
    # still a member of B
    me = await client.post("/api/auth/login", json={"email": "other_canvasser@example.org", "password": TEST_PASSWORD})
    roles = (await client.get("/api/me", headers={"Authorization": f"Bearer {me.json()['access_token']}"})).json()["memberships"]
    assert {r["campaign_id"] for r in roles} == {world.campaign_a, world.campaign_b}
    assert (await client.post(url, json={"email": "nobody@example.org"}, headers=world.auth("organiser"))).status_code == 404
    assert (await client.post(url, json={"email": "superuser@example.org", "role": "organiser"}, headers=world.auth("organiser"))).status_code == 403
    demote = await client.post(url, json={"email": "lead@example.org", "role": "canvasser"}, headers=world.auth("organiser"))
    assert demote.status_code == 409
    promoted = await client.post(url, json={"email": "superuser@example.org", "role": "lead"}, headers=world.auth("admin"))
    assert promoted.status_code == 200 and promoted.json()["role"] == "lead"


async def test_teams_crud_and_refusals(client: AsyncTestClient[Litestar], world: World) -> None:
    """Teams are named once per campaign, hold only campaign members, and deleting one keeps its people."""
    base = f"/api/campaigns/{world.campaign_a}/teams"
    organiser = world.auth("organiser")
    made = await client.post(base, json={"name": "East", "lead_user_id": world.users["lead"]}, headers=organiser)
    assert made.status_code == 201, made.text
    team_id = made.json()["id"]
    assert (await client.post(base, json={"name": "East"}, headers=organiser)).status_code == 409
    outsider = await client.post(f"{base}/{team_id}/members", json={"user_id": world.users["other_canvasser"]}, headers=organiser)
    assert outsider.status_code == 422
    renamed = await client.patch(f"{base}/{team_id}", json={"name": "East side", "lead_user_id": world.users["canvasser"]}, headers=organiser)
    assert renamed.status_code == 200 and renamed.json()["lead"]["user_id"] == world.users["canvasser"]
    assert {m["user_id"] for m in renamed.json()["members"]} == {world.users["lead"], world.users["canvasser"]}
    listed = await client.get(base, headers=world.auth("lead"))
    assert [t["name"] for t in listed.json()] == ["East side"]
    assert (await client.get(base, headers=world.auth("canvasser"))).status_code == 403
    assert (await client.post(base, json={"name": "Mine"}, headers=world.auth("lead"))).status_code == 403
    assert (await client.delete(f"{base}/{team_id}", headers=organiser)).status_code == 204
    assert (await client.get(base, headers=organiser)).json() == []
    assert (await client.get(f"/api/campaigns/{world.campaign_b}/teams", headers=world.auth("superuser"))).json() == []


async def test_cli_users_add_puts_a_member_of_one_campaign_in_another(client: AsyncTestClient[Litestar], world: World, db_url: str) -> None:
    """`canvass users add` gives B's canvasser a role in A too, keeping B; the API then lists them in both."""
    from tests.clirun import run_cli

    added = await run_cli(db_url, "users", "add", "other_canvasser@example.org", "-c", "campaign-a", "--role", "canvasser")
    assert added.code == 0, added.err
    assert "canvasser in campaign campaign-a" in added.out
    for campaign_id in (world.campaign_a, world.campaign_b):
        members = (await client.get(f"/api/campaigns/{campaign_id}/members", headers=world.auth("superuser"))).json()
        assert world.users["other_canvasser"] in {m["user_id"] for m in members}
