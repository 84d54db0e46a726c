"""Lists assigned to a team reach every member's phone; joining or leaving the team gives or takes them."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import World
from tests.sync.conftest import Town, register_phone


async def test_team_list_reaches_each_member_and_leaves_with_them(client: AsyncTestClient[Litestar], world: World, town: Town) -> None:
    """Assign list 1 to a team of the canvasser and the lead: both phones pull it; a member removed loses it; one added gains it."""
    base = f"/api/campaigns/{world.campaign_a}"
    organiser = world.auth("organiser")
    made = await client.post(f"{base}/teams", json={"name": "North", "lead_user_id": world.users["lead"], "member_ids": [world.users["canvasser"]]},
                             headers=organiser)
    assert made.status_code == 201, made.text
    team = made.json()
    assert team["lead"]["user_id"] == world.users["lead"]
    assert {m["user_id"] for m in team["members"]} == {world.users["lead"], world.users["canvasser"]}
    list_id = town.lists[1]
    assigned = await client.post(f"{base}/walklists/{list_id}/assign-team", json={"team_id": team["id"]}, headers=organiser)
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["team"] == {"team_id": team["id"], "name": "North", "members": 2}
    assert assigned.json()["assignee"]["user_id"] == world.users["lead"]
    canvasser = await register_phone(client, world, "canvasser", world.campaign_a)
    lead = await register_phone(client, world, "lead", world.campaign_a)
    for phone in (canvasser, lead):
        assert (await phone.pull()).ok
        assert str(list_id) in set(phone.ids("walk_list"))
    assert (await client.get(f"{base}/walklists/{list_id}", headers=world.auth("canvasser"))).status_code == 200

    removed = await client.delete(f"{base}/teams/{team['id']}/members/{world.users['canvasser']}", headers=organiser)
    assert removed.status_code == 204, removed.text
    assert (await canvasser.pull()).ok
    assert str(list_id) not in set(canvasser.ids("walk_list"))
    assert str(town.lists[0]) in set(canvasser.ids("walk_list"))  # their own list is untouched
    assert (await client.get(f"{base}/walklists/{list_id}", headers=world.auth("canvasser"))).status_code == 404

    back = await client.post(f"{base}/teams/{team['id']}/members", json={"user_id": world.users["canvasser"]}, headers=organiser)
    assert back.status_code == 200 and back.json()["walk_list_ids"] == [list_id]
    assert (await canvasser.pull()).ok
    assert str(list_id) in set(canvasser.ids("walk_list"))

    # Reassigning to one person ends the team's hold: the lead's phone drops it.
    single = await client.post(f"{base}/walklists/{list_id}/assign", json={"user_id": world.users["canvasser"]}, headers=organiser)
    assert single.status_code == 200 and single.json()["team"] is None
    assert (await lead.pull()).ok
    assert str(list_id) not in set(lead.ids("walk_list"))


async def test_cli_assigns_a_list_to_a_team(client: AsyncTestClient[Litestar], world: World, town: Town, db_url: str) -> None:
    """`canvass assign LIST --team NAME` gives the list to every member; an unknown team is a one-line error."""
    from tests.clirun import one_line_error, run_cli

    base = f"/api/campaigns/{world.campaign_a}"
    made = await client.post(f"{base}/teams", json={"name": "South", "member_ids": [world.users["canvasser"], world.users["lead"]]},
                             headers=world.auth("organiser"))
    assert made.status_code == 201, made.text
    list_id = town.lists[1]
    done = await run_cli(db_url, "assign", str(list_id), "-c", "campaign-a", "--team", "South")
    assert done.code == 0, done.err
    assert "-> team South (2 members)" in done.out
    for who in ("canvasser", "lead"):
        assert (await client.get(f"{base}/walklists/{list_id}", headers=world.auth(who))).status_code == 200
    listed = (await client.get(f"{base}/teams", headers=world.auth("organiser"))).json()
    assert listed[0]["walk_list_ids"] == [list_id]
    assert "no team 'North'" in one_line_error(await run_cli(db_url, "assign", str(list_id), "-c", "campaign-a", "--team", "North"))
    assert "--team" in one_line_error(await run_cli(db_url, "assign", str(list_id), "-c", "campaign-a", "--team", "South", "--to", "lead@example.org"))
