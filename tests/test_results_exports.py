"""Follow-up exports in the column layouts NationBuilder and Action Network import, on SQLite and PostgreSQL.

Only people who gave consent to be contacted appear, with the details they gave;
each export is audited like today's follow-up CSV.
"""

from __future__ import annotations

import io

import pandas as pd
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import AuditEvent, Person
from tests.test_results import Seeded
from tests.test_results import (
    seeded as seeded,  # the seeded campaign fixture, shared with tests/test_results.py
)

NATIONBUILDER = ["external_id", "first_name", "last_name", "email", "email_opt_in", "phone_number", "mobile_number",
                 "primary_address1", "primary_address2", "primary_address3", "primary_city", "primary_zip", "primary_country_code",
                 "language", "is_volunteer", "tag_list", "note"]
ACTION_NETWORK = ["first_name", "last_name", "email", "phone_number", "address_line", "city", "zip_code", "country", "language",
                  "canvass_id", "canvass_follow_up"]


async def _export(client: AsyncTestClient[Litestar], seeded: Seeded, layout: str) -> pd.DataFrame:
    response = await client.get(f"/api/campaigns/{seeded.campaign_id}/exports/follow-ups.csv", params={"layout": layout}, headers=seeded.auth("lead"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert layout.replace("_", "-") in response.headers["content-disposition"]
    return pd.read_csv(io.StringIO(response.text), dtype=str, keep_default_na=False)


async def test_nationbuilder_and_action_network_layouts(
    client: AsyncTestClient[Litestar], seeded: Seeded, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Both layouts hold exactly the consenting follow-ups, names split, reasons as tags; each download audited."""
    cid = seeded.campaign_id
    listed = (await client.get(f"/api/campaigns/{cid}/results/follow-ups", headers=seeded.auth("lead"))).json()
    assert listed["count"] > 0 and listed["without_consent"] > 0
    async with sessionmaker() as session:
        people = {p.id: p for p in (await session.scalars(select(Person).where(Person.campaign_id == cid))).all()}
    expected = {p["person_id"]: p for p in listed["people"]}

    nb = await _export(client, seeded, "nationbuilder")
    assert list(nb.columns) == NATIONBUILDER
    assert len(nb) == len(expected)
    for row in nb.itertuples():
        person_id = int(row.external_id.removeprefix("canvass-"))
        person, follow = people[person_id], expected[person_id]
        assert person.contact_consent
        assert (row.first_name, row.last_name) == (person.forenames, person.surname)
        assert row.email == (person.email or "") and row.email_opt_in == ("Y" if person.email else "N")
        assert (row.mobile_number or row.phone_number) == person.phone
        assert row.primary_zip == follow["postcode"] and row.primary_country_code == "GB"
        assert row.is_volunteer == ("Y" if "volunteer" in follow["reasons"] else "N")
        assert set(row.tag_list.split(",")) == {f"canvass-{r}" for r in follow["reasons"]}

    an = await _export(client, seeded, "action_network")
    assert list(an.columns) == ACTION_NETWORK
    assert {int(x) for x in an["canvass_id"]} == set(expected)
    for row in an.itertuples():
        person = people[int(row.canvass_id)]
        assert (row.first_name, row.last_name, row.email, row.phone_number) == (person.forenames, person.surname, person.email or "", person.phone or "")
        assert row.zip_code == expected[person.id]["postcode"] and row.country == "GB"
        assert set(row.canvass_follow_up.split(";")) == set(expected[person.id]["reasons"])

    async with sessionmaker() as session:
        events = (await session.execute(
            select(AuditEvent.action, AuditEvent.row_count, AuditEvent.user_id, AuditEvent.detail)
            .where(AuditEvent.resource == "results/follow-ups", AuditEvent.action == "export").order_by(AuditEvent.id)
        )).all()
    assert [(e.row_count, e.user_id, e.detail["layout"]) for e in events] == [
        (len(nb), seeded.users["lead"], "nationbuilder"), (len(an), seeded.users["lead"], "action_network"),
    ]


async def test_unknown_layout_is_a_problem_and_canvassers_are_refused(client: AsyncTestClient[Litestar], seeded: Seeded) -> None:
    """An unknown layout is a 422 problem detail; a canvasser may not export follow-ups in any layout."""
    url = f"/api/campaigns/{seeded.campaign_id}/exports/follow-ups.csv"
    bad = await client.get(url, params={"layout": "mailchimp"}, headers=seeded.auth("lead"))
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert "layout" in bad.text
    denied = await client.get(url, params={"layout": "nationbuilder"}, headers=seeded.auth("canvasser"))
    assert denied.status_code == 403
