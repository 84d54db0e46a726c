"""API shapes of the results domain. Figures are by area, list, target or canvasser, never by ethnicity of a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class GroupProgress(msgspec.Struct):
    """Progress of one group (the campaign, a target, a walk list or a canvasser).

    doors_knocked: distinct addresses with at least one attempt; contacts: distinct
    addresses where someone answered the door (outcome spoke or refused);
    contact_rate: contacts / doors_knocked; attempts and outcomes count every
    attempt; doors_on_lists / doors_remaining: a list's stops and those not yet
    knocked on it, summed over the lists of a target, canvasser or campaign.
    """

    kind: str
    id: int | None
    name: str
    doors_on_lists: int
    doors_knocked: int
    contacts: int
    contact_rate: float | None
    attempts: int
    outcomes: dict[str, int]
    doors_remaining: int


class TimeBucket(msgspec.Struct):
    """Attempts and contact attempts (spoke or refused) in one local day (YYYY-MM-DD) or hour of day (0-23)."""

    bucket: str
    attempts: int
    contacts: int


class ProgressReport(msgspec.Struct):
    """Campaign progress, broken down by target, walk list and canvasser, and by local day and hour."""

    campaign_id: int
    timezone: str
    definitions: dict[str, str]
    campaign: GroupProgress
    targets: list[GroupProgress]
    walk_lists: list[GroupProgress]
    canvassers: list[GroupProgress]
    by_day: list[TimeBucket]
    by_hour: list[TimeBucket]


class ListProgress(msgspec.Struct):
    """Progress of one walk list (what a canvasser may see of their own list)."""

    campaign_id: int
    timezone: str
    walk_list: GroupProgress
    by_day: list[TimeBucket]
    by_hour: list[TimeBucket]


class AnswerCount(msgspec.Struct):
    """Respondents giving one answer; `count` is None when suppressed (fewer than the threshold).

    `more_contacts` (hidden cells only): about how many more contacts in the group would typically
    show the cell, estimated from shown figures only (see the breakdown's note).
    """

    value: str
    count: int | None
    suppressed: bool = False
    more_contacts: int | None = None


class QuestionBreakdown(msgspec.Struct):
    """Answers to one question in one group; `respondents` is None when any cell is suppressed."""

    key: str
    text: str
    respondents: int | None
    answers: list[AnswerCount]


class GroupAnswers(msgspec.Struct):
    """Answers in one group (an area, ward, target or walk list)."""

    code: str
    name: str
    questions: list[QuestionBreakdown]


class AnswerBreakdown(msgspec.Struct):
    """Survey answers (each respondent's latest answer per question) by group, small cells suppressed."""

    campaign_id: int
    by: str
    threshold: int
    groups: list[GroupAnswers]
    note: str = ""


class MapClasses(msgspec.Struct):
    """Classes of one map metric: `breaks` are the k+1 edges over the real range; `scheme` sequential or diverging around `midpoint`."""

    method: str
    scheme: str
    midpoint: float | None
    breaks: list[float]

    def class_of(self, value: float | None) -> int | None:
        """The class index of a value (None for a suppressed or missing one)."""
        if value is None or len(self.breaks) < 2:
            return None
        for i in range(len(self.breaks) - 1):
            if value <= self.breaks[i + 1]:
                return i
        return len(self.breaks) - 2


class ResultsFeatureCollection(msgspec.Struct):
    """A GeoJSON FeatureCollection of areas with contact rate and support share, for a choropleth.

    Each feature carries `<metric>_class` (None when suppressed) and `<metric>_count`, the count behind its figure.
    """

    type: str
    features: list[dict[str, Any]]
    support: str
    threshold: int
    count: int
    classes: dict[str, MapClasses] = msgspec.field(default_factory=dict)


class FollowUpPerson(msgspec.Struct):
    """A person who asked for something on the doorstep, with the contact details they consented to."""

    person_id: int
    name: str
    address: str
    postcode: str
    area_code: str | None
    phone: str | None
    email: str | None
    contact_consent: str
    reasons: list[str]
    language: str | None
    done: list[str]
    first_name: str = ""
    last_name: str = ""
    address_lines: list[str] = msgspec.field(default_factory=list)


class FollowUpList(msgspec.Struct):
    """People to follow up (consented contact only) and how many were left out for lack of consent."""

    campaign_id: int
    count: int
    without_consent: int
    people: list[FollowUpPerson]


class FollowUpDone(msgspec.Struct, forbid_unknown_fields=True):
    """Mark one reason of one person's follow-up as done."""

    reason: str
    note: str = ""


class FollowUpOut(msgspec.Struct):
    """A recorded follow-up."""

    person_id: int
    reason: str
    done_at: datetime
    done_by: int | None
    note: str


class IssueCount(msgspec.Struct):
    """How many respondents named an issue in one area (None when suppressed)."""

    issue: str
    count: int | None
    suppressed: bool = False


class AreaIssues(msgspec.Struct):
    """Issues raised in one area."""

    code: str
    name: str
    issues: list[IssueCount]


class IssuesReport(msgspec.Struct):
    """Top local issues by area, counted, for the local policy forum."""

    campaign_id: int
    question: str
    threshold: int
    totals: list[IssueCount]
    areas: list[AreaIssues]


class HealthRow(msgspec.Struct):
    """Open conflicts and rejected mutations attributed to one walk list or canvasser."""

    kind: str
    id: int | None
    name: str
    open_conflicts: int
    rejected_mutations: int


class StaleDevice(msgspec.Struct):
    """A device and its last sync (push, receipt or pull); `stale` when older than the limit (its unsent work is at risk)."""

    device_id: int
    name: str
    user_id: int
    user_name: str
    last_sync_at: datetime | None
    hours_since_sync: float | None
    stale: bool = True
    never_synced: bool = False


class DataHealth(msgspec.Struct):
    """Conflicts and rejections per list and canvasser, and devices not synced recently."""

    campaign_id: int
    stale_after_hours: float
    open_conflicts: int
    rejected_mutations: int
    walk_lists: list[HealthRow]
    canvassers: list[HealthRow]
    stale_devices: list[StaleDevice]
    devices: list[StaleDevice] = msgspec.field(default_factory=list)


class LiveList(msgspec.Struct):
    """A walk list out today: its doors and progress overall, and today's doors knocked, knocks and contacts."""

    id: int | None
    name: str
    canvassers: list[str]
    doors: int
    doors_knocked: int
    doors_remaining: int
    doors_knocked_today: int
    knocks_today: int
    contacts_today: int
    last_knock_at: datetime | None


class LiveCanvasser(msgspec.Struct):
    """A canvasser's last sync (any of their phones) and doors knocked today; no location."""

    user_id: int
    name: str
    last_sync_at: datetime | None
    minutes_since_sync: float | None
    doors_knocked_today: int


class LiveField(msgspec.Struct):
    """The field today (local day in `timezone`): lists out, knocks by hour (`bucket` = hour 0-23), canvassers' last syncs."""

    campaign_id: int
    timezone: str
    day: str
    as_of: datetime
    refresh_seconds: int
    lists: list[LiveList]
    by_hour: list[TimeBucket]
    canvassers: list[LiveCanvasser]
