"""The privacy rule as code: nothing about a person may hold or hint at ethnicity.

Ethnicity exists only as census counts per area (`census_areas.counts`). These
tests fail if any table other than census_areas, any API schema, or any
person-level value in the loaded demo gains a field whose name or content
suggests ethnicity, race, religion or national origin.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import server
import sync
from server.db.models import PERSON_LEVEL_TABLES, Base, Person
from tests.conftest import World
from tests.sync.conftest import Town, register_phone, town  # noqa: F401  (the fixture)

SUSPECT_NAME = re.compile(
    r"ethnic|race|racial|bame|bme|religio|faith|caste|tribe|skin|nationality|national_origin|ethnic_origin|ancestry|heritage|"
    r"asian|black|white|mixed|bangladeshi|pakistani|indian|african|caribbean|chinese|arab|gypsy|traveller|roma\b",
    re.IGNORECASE,
)
SUSPECT_VALUE = re.compile(
    r"\b(ethnic\w*|bame|bme|white british|black african|black caribbean|bangladeshi|pakistani|indian|asian|"
    r"gypsy|irish traveller|arab|chinese|mixed race|muslim|hindu|sikh|jewish)\b",
    re.IGNORECASE,
)
AREA_LEVEL_TABLES = {"census_areas"}  # the one place ethnicity may exist, as counts per area


def test_no_table_has_an_ethnicity_column() -> None:
    """Only census_areas may carry ethnic-group data; no other table has a suspect column name."""
    offenders = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        if table.name not in AREA_LEVEL_TABLES
        for column in table.columns
        if SUSPECT_NAME.search(column.name)
    ]
    assert not offenders, offenders


def test_person_level_tables_are_declared() -> None:
    """The list of person-level tables names real tables (so the scans below cover them)."""
    names = {t.name for t in Base.metadata.sorted_tables}
    assert set(PERSON_LEVEL_TABLES) <= names


def _all_structs() -> list[type[msgspec.Struct]]:
    found: dict[str, type[msgspec.Struct]] = {}
    for package in (server, sync):
        for module_info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if "migrations" in module_info.name:
                continue
            module = importlib.import_module(module_info.name)
            for value in vars(module).values():
                if isinstance(value, type) and issubclass(value, msgspec.Struct) and value.__module__ == module.__name__:
                    found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


# Area-level shapes (census counts, measures, targeting) may name groups: they describe areas.
AREA_LEVEL_STRUCT_MODULES = ("server.targeting", "server.geography", "server.results")
AREA_LEVEL_STRUCT_HINT = re.compile(r"Area|Measure|Rank|Census|Target|Choropleth|Group", re.IGNORECASE)


def test_no_api_schema_has_an_ethnicity_field() -> None:
    """No msgspec Struct about people (API shapes, sync protocol) has a suspect field name."""
    structs = _all_structs()
    assert structs, "no Structs found: the scan is broken"
    offenders = []
    for struct in structs:
        if struct.__module__.startswith(AREA_LEVEL_STRUCT_MODULES) and AREA_LEVEL_STRUCT_HINT.search(struct.__name__):
            continue
        offenders += [f"{struct.__module__}.{struct.__name__}.{f}" for f in struct.__struct_fields__ if SUSPECT_NAME.search(f)]
    assert not offenders, offenders


async def test_openapi_person_schemas_have_no_ethnicity_property(client: AsyncTestClient[Litestar]) -> None:
    """The published API document has no person-facing property named after ethnicity."""
    doc = (await client.get("/schema/openapi.json")).json()
    offenders = []
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        if AREA_LEVEL_STRUCT_HINT.search(name):
            continue
        for prop in schema.get("properties", {}):
            if SUSPECT_NAME.search(prop):
                offenders.append(f"{name}.{prop}")
    assert not offenders, offenders


@pytest.mark.parametrize("value", ["Bangladeshi", "white british", "BAME"])
def test_value_scanner_catches_ethnic_terms(value: str) -> None:
    """Guard against a scanner that can never fail."""
    assert SUSPECT_VALUE.search(value)


async def test_demo_people_hold_no_ethnic_content(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """After loading the demo town no person-level text value names an ethnic group."""
    from server.demo import load_demo

    async with sessionmaker() as session:
        await load_demo(session)
        await session.commit()
    async with sessionmaker() as session:
        offenders = []
        for table in Base.metadata.sorted_tables:
            if table.name not in PERSON_LEVEL_TABLES:
                continue
            for row in (await session.execute(select(table))).mappings():
                for column, value in row.items():
                    if isinstance(value, str) and SUSPECT_VALUE.search(value):
                        offenders.append(f"{table.name}.{column}={value!r}")
        people = (await session.scalars(select(Person).limit(5))).all()
    assert people, "demo loaded no people: the scan would be vacuous"
    assert not offenders, offenders[:20]


async def test_a_pushed_special_category_answer_leaves_no_trace(
    client: AsyncTestClient[Litestar], world: World, town: Town, sessionmaker: async_sessionmaker[AsyncSession]  # noqa: F811 (the sync suite's town fixture)
) -> None:
    """A phone that pushes an ethnicity or religion answer about a person gets it refused, and no table keeps it.

    Every table but census_areas is scanned (answers, kept payloads for review, results, the change
    feed, audit events): nothing the push carried about the person's ethnicity or religion remains.
    """
    phone = await register_phone(client, world, "canvasser", world.campaign_a)
    address = town.addresses[town.lists[0]][0]
    person = town.people[address][0]
    phone.record_answer(address, "ethnicity", "Pakistani", person_id=person, survey_id=town.survey_id)
    phone.record_answer(address, "ethnic_Bangladeshi", "yes", person_id=person, survey_id=town.survey_id)
    phone.record_answer(address, "religion", "Muslim", person_id=person)
    assert (await phone.push()).ok
    assert len(phone.rejections) == 3 and all(r.reason.startswith("not_allowed:") for r in phone.rejections)
    offenders = []
    async with sessionmaker() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in AREA_LEVEL_TABLES:
                continue
            for row in (await session.execute(select(table))).mappings():
                for column, value in row.items():
                    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
                    if isinstance(text, str) and SUSPECT_VALUE.search(text):
                        offenders.append(f"{table.name}.{column}={text[:120]!r}")
    assert not offenders, offenders[:20]


def test_special_category_questions_are_refused_when_a_survey_is_made() -> None:
    """No survey may ask a person for special category data, whatever the key or the question's words."""
    from server.errors import InvalidInput
    from server.surveys.rules import validate_questions

    for question in ({"key": "ethnic_group", "kind": "choice", "choices": ["A", "B"]},
                     {"key": "q1", "kind": "text", "text": "What is your ethnicity?"},
                     {"key": "faith", "kind": "yes_no"},
                     {"key": "q2", "kind": "yes_no", "text": "Do you have a disability?"}):
        with pytest.raises(InvalidInput):
            validate_questions([question])
