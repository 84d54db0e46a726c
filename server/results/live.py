"""The live field view: which lists are out today, doors knocked by hour today, each canvasser's last sync.

Read straight from today's contact attempts (a day's knocks are few) and the sync
records; no location of anyone is read or returned. The console polls it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Assignment, ContactAttempt, User, WalkList
from server.results import services
from server.results.schemas import LiveCanvasser, LiveField, LiveList, TimeBucket

REFRESH_SECONDS = 10
STALE_HOURS = 24.0


def _aware(value: Any) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def live_field(session: AsyncSession, campaign_id: int, tz: str = "Europe/London", now: datetime | None = None) -> LiveField:
    """Today's lists with progress, knocks by local hour and canvassers' last syncs (no locations)."""
    zone = services.resolve_timezone(tz)
    now = now or datetime.now(UTC)
    local_now = now.astimezone(zone)
    start = local_now.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    when = func.coalesce(ContactAttempt.at, ContactAttempt.received_at)
    rows = (await session.execute(
        select(ContactAttempt.walk_list_id, ContactAttempt.user_id, ContactAttempt.address_id, ContactAttempt.outcome, when.label("when"))
        .where(ContactAttempt.campaign_id == campaign_id, when >= start)
    )).all()
    per_list: dict[int | None, dict[str, Any]] = defaultdict(lambda: {"doors": set(), "knocks": 0, "contacts": set(), "last": None})
    per_user: dict[int | None, set[int]] = defaultdict(set)
    hours: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        moment = _aware(r.when) if isinstance(r.when, datetime) else _aware(datetime.fromisoformat(str(r.when)))
        entry = per_list[r.walk_list_id]
        entry["doors"].add(r.address_id)
        entry["knocks"] += 1
        contact = r.outcome in services.CONTACT_OUTCOMES
        if contact:
            entry["contacts"].add(r.address_id)
        entry["last"] = max(entry["last"] or moment, moment)
        per_user[r.user_id].add(r.address_id)
        bucket = hours[moment.astimezone(zone).hour]
        bucket[0] += 1
        bucket[1] += int(contact)
    list_ids = [k for k in per_list if k is not None]
    progress = {g.id: g for g in (await services.campaign_progress(session, campaign_id, tz)).walk_lists if g.id is not None} if list_ids else {}
    names = dict((await session.execute(select(WalkList.id, WalkList.name).where(WalkList.id.in_(list_ids)))).all()) if list_ids else {}
    holders: dict[int, list[str]] = defaultdict(list)
    if list_ids:
        for wl, name in (await session.execute(
            select(Assignment.walk_list_id, User.display_name).join(User, User.id == Assignment.user_id)
            .where(Assignment.walk_list_id.in_(list_ids), Assignment.ended_at.is_(None)).order_by(User.display_name)
        )).all():
            holders[wl].append(name)
    lists = []
    for wl in sorted(per_list, key=lambda k: (k is None, names.get(k, "") if k is not None else "")):
        entry, total = per_list[wl], progress.get(wl) if wl is not None else None
        lists.append(LiveList(
            id=wl, name=names.get(wl, f"list {wl}") if wl is not None else "(no walk list)", canvassers=holders.get(wl, []) if wl is not None else [],
            doors=total.doors_on_lists if total else 0, doors_knocked=total.doors_knocked if total else len(entry["doors"]),
            doors_remaining=total.doors_remaining if total else 0, doors_knocked_today=len(entry["doors"]), knocks_today=entry["knocks"],
            contacts_today=len(entry["contacts"]), last_knock_at=entry["last"],
        ))
    devices = await services.device_syncs(session, campaign_id, STALE_HOURS, now)
    last_sync: dict[int, datetime | None] = {}
    names_of: dict[int, str] = {}
    for d in devices:
        names_of[d.user_id] = d.user_name
        if d.last_sync_at is not None and (last_sync.get(d.user_id) is None or d.last_sync_at > last_sync[d.user_id]):  # type: ignore[operator]
            last_sync[d.user_id] = d.last_sync_at
        else:
            last_sync.setdefault(d.user_id, None)
    knocked_ids = {u for u in per_user if u is not None and u not in names_of}
    if knocked_ids:
        names_of.update(dict((await session.execute(select(User.id, User.display_name).where(User.id.in_(knocked_ids)))).all()))
    canvassers = []
    for uid in sorted(set(names_of), key=lambda u: names_of[u]):
        last = last_sync.get(uid)
        canvassers.append(LiveCanvasser(
            user_id=uid, name=names_of[uid], last_sync_at=last,
            minutes_since_sync=None if last is None else round((now - last).total_seconds() / 60, 1),
            doors_knocked_today=len(per_user.get(uid, set())),
        ))
    return LiveField(
        campaign_id=campaign_id, timezone=tz, day=local_now.date().isoformat(), as_of=now, refresh_seconds=REFRESH_SECONDS,
        lists=lists, by_hour=[TimeBucket(bucket=str(h), attempts=v[0], contacts=v[1]) for h, v in sorted(hours.items())],
        canvassers=canvassers,
    )
