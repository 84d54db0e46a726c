"""API shapes of the walk-lists domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from server.plain_text import PlainName

Size = Annotated[int, msgspec.Meta(ge=1, le=500)]


class CutRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Cut a target into lists of about `size` doors (or minutes of walking)."""

    size: Size = 50
    unit: Literal["doors", "minutes"] = "doors"
    minutes_per_door: Annotated[float, msgspec.Meta(gt=0, le=30)] = 1.5
    walk_speed_m_per_min: Annotated[float, msgspec.Meta(gt=10, le=200)] = 80.0
    replace: bool = False


class JobOut(msgspec.Struct):
    """A background job (cutting, imports) with progress."""

    id: int
    kind: str
    status: str
    done: int
    total: int | None
    message: str
    result: dict[str, Any]
    routing: Literal["street_network", "straight_line"] | None = None
    """How a cut routed its lists: along the campaign's streets, or by straight lines when none are imported."""
    warnings: list[str] = msgspec.field(default_factory=list)


class Assignee(msgspec.Struct):
    """Who holds a list now."""

    user_id: int
    display_name: str
    assigned_at: datetime


class TeamHolder(msgspec.Struct):
    """The team holding a list (each member holds it on their phone)."""

    team_id: int
    name: str
    members: int


class WalkListOut(msgspec.Struct):
    """A walk list's summary."""

    id: int
    name: str
    status: str
    target_id: int | None
    doors: int
    stops: int
    length_m: float
    minutes: float
    assignee: Assignee | None = None
    size_exception: str | None = None
    """Why a list is outside +-10% of the requested size: small_region, indivisible_region or big_block."""
    routing: str | None = None
    """street_network or straight_line (None for lists cut before this was recorded)."""
    do_not_knock: int = 0
    """Doors on the list whose household asked not to be visited: they stay in order, marked to skip."""
    team: TeamHolder | None = None
    """Set when the list is assigned to a team (then `assignee` is the team's lead, or its first member)."""


class PersonOnList(msgspec.Struct):
    """An elector at a door (personal data: audited when read)."""

    id: int
    name: str
    polling_district: str
    elector_number: int | None
    elector_suffix: str


class StopOut(msgspec.Struct):
    """A door on a list, in walking order."""

    position: int
    stop_number: int
    address_id: int
    address: str
    postcode: str
    lon: float
    lat: float
    do_not_visit: bool
    people: list[PersonOnList]
    skip: bool = False
    """The household asked not to be visited: walk past this door (a person-level request only marks `do_not_visit`)."""


class WalkListDetail(msgspec.Struct):
    """A list with its ordered stops and route."""

    summary: WalkListOut
    route: dict[str, Any] | None
    stops: list[StopOut]


class RenameRequest(msgspec.Struct, forbid_unknown_fields=True):
    """New name for a list."""

    name: PlainName


class AssignRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Give a list to a canvasser of the campaign (reassignment allowed any time)."""

    user_id: int


class AssignTeamRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Give a list to a team: each of its members holds it."""

    team_id: int


class MergeRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Merge lists into the first one (re-routed)."""

    walk_list_ids: Annotated[list[int], msgspec.Meta(min_length=2, max_length=20)]


class ReknockRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Make a new list of the doors of these lists whose latest outcome is not_home or come_back."""

    walk_list_ids: Annotated[list[int], msgspec.Meta(min_length=1, max_length=50)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class SplitRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Split a list into `parts` compact, re-routed lists."""

    parts: Annotated[int, msgspec.Meta(ge=2, le=10)] = 2


class PaperOutcome(msgspec.Struct, forbid_unknown_fields=True):
    """One door's result keyed in from a paper sheet."""

    address_id: int
    outcome: Literal["spoke", "not_home", "refused", "moved", "deceased", "inaccessible", "come_back", "do_not_visit", "wrong_address"]
    person_id: int | None = None
    answers: dict[str, str | int | bool] = msgspec.field(default_factory=dict)
    knocked_at: datetime | None = None


class PaperResults(msgspec.Struct, forbid_unknown_fields=True):
    """A paper sheet's results; applied through the same merge path as phones."""

    entries: Annotated[list[PaperOutcome], msgspec.Meta(min_length=1, max_length=2000)]
    sheet_id: str | None = None


class PaperResultsOut(msgspec.Struct):
    """What happened to each keyed entry."""

    applied: int
    duplicates: int
    rejected: list[dict[str, Any]]


class PaperCode(msgspec.Struct):
    """An outcome code as written on the sheet, and the outcome it records."""

    code: str
    outcome: str
    label: str


class PaperQuestion(msgspec.Struct):
    """A short survey answer with a box per door on the sheet (Q1..)."""

    label: str
    key: str
    text: str
    hint: str
    entries: dict[str, str] | None
    """What may be written in the box (upper case) and the answer it records; null: any number."""


class PaperRow(msgspec.Struct):
    """A row of the sheet's door table: a building heading (a block of flats) or a door."""

    kind: Literal["building", "door"]
    number: str
    """The stop number on the map; empty for a flat listed under its building."""
    address: str
    address_id: int | None
    skip: bool
    people: list[str]
    notes: str


class PaperForm(msgspec.Struct):
    """What the paper key-in form shows: the sheet's codes, its short questions and its rows in the sheet's order."""

    summary: WalkListOut
    outcomes: list[PaperCode]
    questions: list[PaperQuestion]
    rows: list[PaperRow]
