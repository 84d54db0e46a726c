"""Pulls and list downloads: the scoped reading side of the change feed.

Change rows are written by ``server.sync.changes`` (ids only); the record itself is read when
a device pulls, so a pull always sends current data and personal data lives
in one place (which makes erasure complete).

Completeness (a cursor never misses a committed row):

* PostgreSQL: each change row carries its writer's transaction id
  (``pg_current_xact_id()``, xid8). The cursor holds a horizon ``H`` (the
  ``pg_snapshot_xmin(pg_current_snapshot())`` of an earlier pull: every
  transaction below it had finished, so every row below it was delivered)
  and the set ``D`` of transaction ids at or above ``H`` already delivered.
  A pull returns the visible rows with ``txid >= H`` and ``txid`` not in
  ``D``; after the last page ``H`` moves up to the snapshot's xmin. So a
  transaction that commits late (a lower xid than rows already sent) is
  still delivered, and a long transaction anywhere in the cluster (an
  import, another database's idle session) does not stall every phone, as a
  plain "only below xmin" rule would. ``D`` is bounded (``MAX_DONE``); when
  full, the pull falls back to that plain rule until the horizon moves.
* SQLite: ``txid`` is a counter bumped for every write of change rows. Every write
  transaction begins with ``BEGIN IMMEDIATE`` (``server.db.session``), so
  writers are serialised and counter order is commit order; the same cursor
  logic then degenerates to "rows after the last counter value".

Versions: every record in a pull or list page carries the *read version* of
the snapshot it was read from (PostgreSQL ``pg_snapshot_xmax``, SQLite the
counter), taken before the reads. Per device, pulls are sequential, so a
later read never has a smaller version: a phone keeps the copy with the
greater-or-equal version and never goes back in time, whatever order the
feed delivered rows in.

The cursor is opaque (URL-safe base64 JSON) and also holds the walk-list
ids the device has been told about, so a pull can send ``remove`` for lists
that left its scope with no per-device state on the server: replaying a
pull with an old cursor replays the same diff.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import (
    Address,
    Answer,
    Assignment,
    ChangeFeed,
    ContactAttempt,
    FieldVersion,
    Flag,
    Observation,
    Person,
    Survey,
    WalkList,
    WalkListStop,
)
from server.errors import DomainError, InvalidInput
from server.sync.changes import read_version, snapshot_horizon
from sync.protocol import (
    EDITABLE_FIELDS,
    Change,
    Erase,
    ListPage,
    PullResponse,
    Remove,
    Upsert,
    flag_key,
    list_checksum,
)

LIST_PAGE_STOPS = 100


# ------------------------------------------------------------------ positions and cursors


class Cursor(msgspec.Struct, frozen=True):
    """What a device's pull cursor holds (see the module docstring)."""

    horizon: int
    done: tuple[int, ...] = ()
    partial_txid: int = 0
    partial_id: int = 0
    lists: tuple[int, ...] = ()


MAX_DONE = 500
"""How many delivered transaction ids above the horizon a cursor may remember."""


MAX_CURSOR_CHARS = 16_384
"""A cursor longer than this is refused unread (``MAX_DONE`` ids and the lists fit well inside)."""


class InvalidCursor(DomainError):
    """A pull cursor the server did not issue to this device (forged, tampered, mangled, too long)."""

    status_code = 400
    title = "Invalid cursor"
    slug = "invalid-cursor"


def _cursor_mac(key: bytes, device: str, payload: bytes) -> str:
    digest = hmac.new(key, device.encode() + b"\n" + payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def cursor_key(secret_key: str) -> bytes:
    """The HMAC key of pull cursors, derived from the server's secret key (one purpose per key)."""
    return hashlib.sha256(b"canvass pull cursor\n" + secret_key.encode()).digest()


def encode_cursor(cursor: Cursor, key: bytes, device: str) -> str:
    """Opaque, URL-safe text form of a cursor, signed for the device it is issued to."""
    payload = base64.urlsafe_b64encode(msgspec.json.encode(cursor)).decode().rstrip("=")
    return f"{payload}.{_cursor_mac(key, device, payload.encode())}"


def decode_cursor(text_value: str, key: bytes, device: str) -> Cursor:
    """Parse a cursor a device sent back; ``InvalidCursor`` (400) unless this server issued it to
    this device: the device can neither read other lists through it nor grow it without bound."""
    problem = "The pull cursor is not valid; pull again without a cursor."
    if len(text_value) > MAX_CURSOR_CHARS or "." not in text_value:
        raise InvalidCursor(problem)
    payload, mac = text_value.rsplit(".", 1)
    if not hmac.compare_digest(mac.encode(), _cursor_mac(key, device, payload.encode()).encode()):
        raise InvalidCursor(problem)
    try:
        padded = payload + "=" * (-len(payload) % 4)
        return msgspec.json.decode(base64.urlsafe_b64decode(padded), type=Cursor)
    except (binascii.Error, msgspec.DecodeError, ValueError) as exc:
        raise InvalidCursor(problem) from exc


# ------------------------------------------------------------------ scope


def assigned_lists_query(user_id: int, campaign_id: int):  # type: ignore[no-untyped-def]
    """Walk lists currently assigned to a user in a campaign (server-held assignments)."""
    return (
        select(Assignment.walk_list_id)
        .join(WalkList, WalkList.id == Assignment.walk_list_id)
        .where(
            Assignment.user_id == user_id,
            Assignment.ended_at.is_(None),
            WalkList.campaign_id == campaign_id,
        )
    )


def scope_addresses_query(list_ids_query):  # type: ignore[no-untyped-def]
    """Addresses on the given walk lists."""
    return select(WalkListStop.address_id).where(WalkListStop.walk_list_id.in_(list_ids_query))


async def assigned_lists(session: AsyncSession, user_id: int, campaign_id: int) -> set[int]:
    """Ids of the walk lists a user may see now."""
    return set((await session.scalars(assigned_lists_query(user_id, campaign_id))).all())


# ------------------------------------------------------------------ serialising records


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    return value


async def _field_versions(
    session: AsyncSession, entity: str, ids: Sequence[int]
) -> dict[int, dict[str, str]]:
    result: dict[int, dict[str, str]] = {}
    if not ids:
        return result
    rows = await session.execute(
        select(FieldVersion.entity_id, FieldVersion.field, FieldVersion.hlc).where(
            FieldVersion.entity == entity, FieldVersion.entity_id.in_(ids)
        )
    )
    for entity_id, field, hlc in rows:
        result.setdefault(entity_id, {})[field] = hlc
    return result


def walk_list_data(row: WalkList) -> dict[str, Any]:
    """The phone's copy of a walk list."""
    return {
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "doors": row.doors,
        "length_m": row.length_m,
        "minutes": row.minutes,
    }


def stop_data(row: WalkListStop) -> dict[str, Any]:
    """The phone's copy of a stop on a walk list."""
    return {
        "id": row.id,
        "walk_list_id": row.walk_list_id,
        "address_id": row.address_id,
        "stop_number": row.stop_number,
        "position": row.position,
    }


def address_data(row: Address, versions: dict[str, str]) -> dict[str, Any]:
    """The phone's copy of an address (with editable-field versions for rebase)."""
    return {
        "id": row.id,
        "uprn": row.uprn,
        "lines": list(row.lines or []),
        "postcode": row.postcode,
        "lon": row.lon,
        "lat": row.lat,
        "building_key": row.building_key,
        "street": row.street,
        "house_number": row.house_number,
        "flat": row.flat,
        "household_note": row.household_note,
        "access_note": row.access_note,
        "field_versions": versions,
    }


def person_data(row: Person, versions: dict[str, str]) -> dict[str, Any]:
    """The phone's copy of an elector (contact details as held, with consent)."""
    return {
        "id": row.id,
        "address_id": row.address_id,
        "polling_district": row.polling_district,
        "elector_number": row.elector_number,
        "elector_suffix": row.elector_suffix,
        "surname": row.surname,
        "forenames": row.forenames,
        "phone": row.phone,
        "email": row.email,
        "contact_consent": row.contact_consent,
        "note": row.note,
        "preferred_language": row.preferred_language,
        "field_versions": versions,
    }


def survey_data(row: Survey) -> dict[str, Any]:
    """The phone's copy of a survey version."""
    return {
        "id": row.id,
        "name": row.name,
        "version": row.version,
        "questions": row.questions,
        "is_active": row.is_active,
        "status": row.status,
        "script": row.script,
        "outcomes": row.outcomes,
        "translations": row.translations,
    }


def event_data(entity: str, row: Any) -> dict[str, Any]:
    """The phone's copy of an event, shaped like the mutation that created it."""
    if entity == "contact_attempt":
        data = {
            "id": row.id,
            "address_id": row.address_id,
            "person_id": row.person_id,
            "walk_list_id": row.walk_list_id,
            "outcome": row.outcome,
            "at": row.hlc,
        }
    elif entity == "answer":
        data = {
            "id": row.id,
            "address_id": row.address_id,
            "person_id": row.person_id,
            "walk_list_id": row.walk_list_id,
            "survey_id": row.survey_id,
            "question_key": row.question_key,
            "value": row.value,
            "at": row.hlc,
        }
    else:
        data = {
            "id": row.id,
            "address_id": row.address_id,
            "person_id": row.person_id,
            "kind": row.kind,
            "note": row.note,
            "at": row.hlc,
        }
    if row.time_untrusted:  # contract B: the phone's stamp was far ahead; the server's receive time
        data["time_untrusted"] = True
        data["received_at"] = _json_safe(row.received_at)
    return data


def flag_data(address_id: int, person_key: int, rows: Iterable[Flag]) -> dict[str, Any]:
    """The phone's copy of a key's flags, shaped like ``sync.merge.FlagState``."""
    data: dict[str, Any] = {
        "address_id": address_id,
        "person_id": person_key or None,
        "do_not_visit": False,
        "moved_away": False,
        "deceased": False,
        "set_hlc": "",
        "cleared_hlc": "",
        "last_at": "",
    }
    for row in rows:
        if row.kind == "do_not_visit":
            data["do_not_visit"] = row.active
            data["set_hlc"] = row.set_hlc if row.active else ""
            data["cleared_hlc"] = row.cleared_hlc or ""
            data["last_at"] = max(data["last_at"], row.set_hlc, row.cleared_hlc or "")
        elif row.kind in ("moved_away", "deceased"):
            data[row.kind] = row.active
            data["last_at"] = max(data["last_at"], row.set_hlc)
    return data


_EVENT_MODELS: dict[str, Any] = {
    "contact_attempt": ContactAttempt,
    "answer": Answer,
    "observation": Observation,
}


async def load_upserts(
    session: AsyncSession,
    campaign_id: int,
    keys: Sequence[tuple[str, str]],
    version: str,
) -> list[Change]:
    """Read current records for (entity, id) keys and turn them into ``Upsert`` changes."""
    by_entity: dict[str, list[str]] = {}
    for entity, entity_id in keys:
        by_entity.setdefault(entity, []).append(entity_id)
    data: dict[tuple[str, str], dict[str, Any]] = {}

    for entity, ids in by_entity.items():
        if entity == "walk_list":
            for row in await session.scalars(
                select(WalkList).where(
                    WalkList.id.in_([int(i) for i in ids]), WalkList.campaign_id == campaign_id
                )
            ):
                data[(entity, str(row.id))] = walk_list_data(row)
        elif entity == "stop":
            for row in await session.scalars(
                select(WalkListStop).where(WalkListStop.id.in_([int(i) for i in ids]))
            ):
                data[(entity, str(row.id))] = stop_data(row)
        elif entity in ("address", "person"):
            model: Any = Address if entity == "address" else Person
            int_ids = [int(i) for i in ids]
            fv = await _field_versions(session, entity, int_ids)
            for row in await session.scalars(
                select(model).where(model.id.in_(int_ids), model.campaign_id == campaign_id)
            ):
                versions_of = fv.get(row.id, {})
                data[(entity, str(row.id))] = (
                    address_data(row, versions_of)
                    if entity == "address"
                    else person_data(row, versions_of)
                )
        elif entity == "survey":
            for row in await session.scalars(
                select(Survey).where(
                    Survey.id.in_([int(i) for i in ids]), Survey.campaign_id == campaign_id
                )
            ):
                data[(entity, str(row.id))] = survey_data(row)
        elif entity in _EVENT_MODELS:
            model = _EVENT_MODELS[entity]
            for row in await session.scalars(
                select(model).where(model.id.in_(ids), model.campaign_id == campaign_id)
            ):
                data[(entity, str(row.id))] = event_data(entity, row)
        elif entity == "flag":
            for key in ids:
                address_part, _, person_part = key.partition(":")
                person_key = int(person_part) if person_part else 0
                rows = list(
                    await session.scalars(
                        select(Flag).where(
                            Flag.campaign_id == campaign_id,
                            Flag.address_id == int(address_part),
                            Flag.person_key == person_key,
                        )
                    )
                )
                if rows:
                    data[(entity, key)] = flag_data(int(address_part), person_key, rows)

    changes: list[Change] = []
    for key in keys:
        if key in data:
            changes.append(
                Upsert(
                    entity=key[0],  # type: ignore[arg-type]
                    id=key[1],
                    data={k: _json_safe(v) for k, v in data[key].items()},
                    version=version,
                )
            )
    return changes


# ------------------------------------------------------------------ pull


async def _scope_removals(
    session: AsyncSession,
    campaign_id: int,
    lost_lists: set[int],
    current_lists: set[int],
    version: str,
) -> list[Change]:
    """``remove`` changes for lists that left scope and everything only they brought in."""
    if not lost_lists:
        return []
    changes: list[Change] = []
    for list_id in sorted(lost_lists):
        changes.append(Remove(entity="walk_list", id=str(list_id), version=version))
    stops = (
        await session.execute(
            select(WalkListStop.id, WalkListStop.address_id).where(
                WalkListStop.walk_list_id.in_(lost_lists)
            )
        )
    ).all()
    for stop_id, _ in stops:
        changes.append(Remove(entity="stop", id=str(stop_id), version=version))
    # A deleted or merged list has no stops left: what it brought is in its stops' erase rows
    # (server.walklists.services.erase_stops; the predicate is migration 0013's partial index).
    erased_stops = (
        await session.execute(
            select(ChangeFeed.id, ChangeFeed.address_id).where(
                text("change_feed.entity = 'stop' AND change_feed.op = 'erase'"),
                ChangeFeed.walk_list_id.in_(lost_lists),
                ChangeFeed.campaign_id == campaign_id,
                ChangeFeed.address_id.is_not(None),
            )
        )
    ).all()
    stops = [*stops, *erased_stops]
    return changes + await _address_removals(
        session, campaign_id, {a for _, a in stops}, current_lists, version
    )


async def _address_removals(
    session: AsyncSession,
    campaign_id: int,
    addresses: set[int],
    current_lists: set[int],
    version: str,
) -> list[Change]:
    """``remove`` for those of ``addresses`` no list in ``current_lists`` holds, and for the people,
    events and flags there."""
    if not addresses:
        return []
    changes: list[Change] = []
    kept_addresses: set[int] = set()
    if current_lists:
        kept_addresses = set(
            (
                await session.scalars(
                    select(WalkListStop.address_id).where(
                        WalkListStop.walk_list_id.in_(current_lists),
                        WalkListStop.address_id.in_(addresses),
                    )
                )
            ).all()
        )
    lost_addresses = sorted(addresses - kept_addresses)
    if not lost_addresses:
        return changes
    for address_id in lost_addresses:
        changes.append(Remove(entity="address", id=str(address_id), version=version))
    for person_id in await session.scalars(
        select(Person.id).where(Person.address_id.in_(lost_addresses))
    ):
        changes.append(Remove(entity="person", id=str(person_id), version=version))
    for entity, model in _EVENT_MODELS.items():
        for event_id in await session.scalars(
            select(model.id).where(
                model.campaign_id == campaign_id, model.address_id.in_(lost_addresses)
            )
        ):
            changes.append(Remove(entity=entity, id=str(event_id), version=version))  # type: ignore[arg-type]
    flag_keys = (
        await session.execute(
            select(Flag.address_id, Flag.person_key)
            .where(Flag.campaign_id == campaign_id, Flag.address_id.in_(lost_addresses))
            .distinct()
        )
    ).all()
    for address_id, person_key in flag_keys:
        changes.append(
            Remove(entity="flag", id=flag_key(address_id, person_key or None), version=version)
        )
    return changes


async def pull_changes(
    session: AsyncSession,
    *,
    user_id: int,
    campaign_id: int,
    cursor: str | None,
    limit: int,
    key: bytes,
    device: str,
) -> PullResponse:
    """One page of the device's change feed, scoped to what its user may see now.

    Order of a page: scope changes first (``remove`` for lost lists, ``upsert``
    for new lists, which the phone then downloads with ``list_page``), then
    feed rows after the cursor that belong to the current scope, then
    ``erase`` for every tombstone of the campaign (erasure reaches every phone).
    """
    version = await read_version(session)  # before any read: the data is at least this new
    xmin = await snapshot_horizon(session)
    current_lists = await assigned_lists(session, user_id, campaign_id)
    if cursor is None:
        start = Cursor(horizon=xmin)
        first_pull = True
    else:
        start = decode_cursor(cursor, key, device)
        first_pull = False

    changes: list[Change] = []
    known_lists = set(start.lists)
    changes += await _scope_removals(
        session, campaign_id, known_lists - current_lists, current_lists, version
    )
    scope_upserts: list[tuple[str, str]] = [
        ("walk_list", str(i)) for i in sorted(current_lists - known_lists)
    ]
    if first_pull:
        scope_upserts += [
            ("survey", str(s))
            for s in await session.scalars(
                select(Survey.id).where(
                    Survey.campaign_id == campaign_id, Survey.is_active.is_(True)
                )
            )
        ]
    changes += await load_upserts(session, campaign_id, scope_upserts, version)

    lists_q = assigned_lists_query(user_id, campaign_id)
    conditions = [
        ChangeFeed.campaign_id == campaign_id,
        ChangeFeed.txid >= start.horizon,
        or_(
            ChangeFeed.op == "erase",
            ChangeFeed.entity == "survey",
            ChangeFeed.walk_list_id.in_(lists_q),
            ChangeFeed.address_id.in_(scope_addresses_query(lists_q)),
        ),
    ]
    if start.done:
        conditions.append(ChangeFeed.txid.not_in(start.done))
    if len(start.done) >= MAX_DONE:
        conditions.append(ChangeFeed.txid < xmin)  # bounded cursor: fall back to the plain rule
    if start.partial_txid:
        conditions.append(
            or_(ChangeFeed.txid != start.partial_txid, ChangeFeed.id > start.partial_id)
        )
    rows = (
        await session.execute(
            select(
                ChangeFeed.id,
                ChangeFeed.txid,
                ChangeFeed.entity,
                ChangeFeed.entity_id,
                ChangeFeed.op,
                ChangeFeed.walk_list_id,
                ChangeFeed.address_id,
            )
            .where(*conditions)
            .order_by(ChangeFeed.txid, ChangeFeed.id)
            .limit(limit + 1)
        )
    ).all()
    has_more = len(rows) > limit
    rows = rows[:limit]

    upsert_keys: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    erases: list[Change] = []
    dropped: set[int] = set()  # doors taken off a list the device still holds (a split, a re-route)
    for _row_id, _txid, entity, entity_id, op, list_id, address_id in rows:
        if op == "erase":
            erases.append(Erase(entity=entity, id=entity_id))
            if entity == "stop" and list_id in current_lists and address_id is not None:
                dropped.add(address_id)
        elif (entity, entity_id) not in seen:
            seen.add((entity, entity_id))
            upsert_keys.append((entity, entity_id))
    changes += await load_upserts(session, campaign_id, upsert_keys, version)
    changes += erases
    changes += await _address_removals(session, campaign_id, dropped, current_lists, version)

    done = set(start.done)
    delivered = {row[1] for row in rows}
    partial_txid = partial_id = 0
    if has_more:  # the last transaction may continue on the next page
        last_id, last_txid = rows[-1][0], rows[-1][1]
        done |= delivered - {last_txid}
        if start.partial_txid and start.partial_txid != last_txid:
            done.add(start.partial_txid)
        partial_txid, partial_id = last_txid, last_id
        # Every row below both the snapshot's xmin (finished) and the page's last txid (the read is
        # in txid order) has been delivered: the horizon moves up, so ``done`` stays small and the
        # cursor bounded (SQLite gives each bulk-written row its own txid: thousands per retention run).
        horizon = max(start.horizon, min(xmin, last_txid))
        done = {t for t in done if t >= horizon}
    else:  # everything visible has been sent: the horizon moves up to the snapshot's xmin
        done |= delivered
        if start.partial_txid:
            done.add(start.partial_txid)
        horizon = max(start.horizon, xmin)
        done = {t for t in done if t >= horizon}
    next_cursor = Cursor(
        horizon=horizon,
        done=tuple(sorted(done)),
        partial_txid=partial_txid,
        partial_id=partial_id,
        lists=tuple(sorted(current_lists)),
    )
    checksums = {} if has_more else await list_checksums(session, campaign_id, current_lists)
    return PullResponse(
        changes=changes, cursor=encode_cursor(next_cursor, key, device), has_more=has_more, checksums=checksums
    )


async def list_checksums(session: AsyncSession, campaign_id: int, list_ids: set[int]) -> dict[str, str]:
    """Contract E: per walk list, the checksum of the ids a phone holds because of it (the list,
    its stops, their addresses, the people registered there): how a phone detects divergence."""
    if not list_ids:
        return {}
    stops = (
        await session.execute(
            select(WalkListStop.walk_list_id, WalkListStop.id, WalkListStop.address_id).where(
                WalkListStop.walk_list_id.in_(list_ids)
            )
        )
    ).all()
    address_ids = {a for _, _, a in stops}
    existing = set(
        (await session.scalars(select(Address.id).where(Address.id.in_(address_ids), Address.campaign_id == campaign_id))).all()
    ) if address_ids else set()
    people: dict[int, list[int]] = {}
    if address_ids:
        for person_id, address_id in await session.execute(
            select(Person.id, Person.address_id).where(Person.address_id.in_(address_ids), Person.campaign_id == campaign_id)
        ):
            people.setdefault(address_id, []).append(person_id)
    keys: dict[int, list[str]] = {list_id: [f"walk_list:{list_id}"] for list_id in list_ids}
    for list_id, stop_id, address_id in stops:
        lines = keys[list_id]
        lines.append(f"stop:{stop_id}")
        if address_id in existing:  # (walk_list_id, address_id) is unique: once per list
            lines.append(f"address:{address_id}")
            lines += [f"person:{p}" for p in people.get(address_id, [])]
    return {str(list_id): list_checksum(lines) for list_id, lines in keys.items()}


# ------------------------------------------------------------------ list download


class PageToken(msgspec.Struct, frozen=True):
    """Where a list download resumes: the next stop position."""

    after_position: int


async def list_page(
    session: AsyncSession,
    *,
    user_id: int,
    campaign_id: int,
    list_id: int,
    page_token: str | None,
    page_stops: int | None = None,
) -> ListPage | None:
    """One page of a walk list's initial download; ``None`` if the list is not assigned to the user.

    Each page carries a run of stops with their addresses, people, events and
    flags. Versions are the feed head at read time, so anything newer arriving
    through the feed replaces them and nothing older does.
    """
    if list_id not in await assigned_lists(session, user_id, campaign_id):
        return None
    after = -1
    if page_token:
        try:
            after = msgspec.json.decode(
                base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4)),
                type=PageToken,
            ).after_position
        except (binascii.Error, msgspec.DecodeError, ValueError) as exc:
            raise InvalidInput("The page token is not valid; restart the download.") from exc
    page_stops = page_stops or LIST_PAGE_STOPS
    version = await read_version(session)
    stops = list(
        await session.scalars(
            select(WalkListStop)
            .where(WalkListStop.walk_list_id == list_id, WalkListStop.position > after)
            .order_by(WalkListStop.position)
            .limit(page_stops + 1)
        )
    )
    more = len(stops) > page_stops
    stops = stops[:page_stops]
    keys: list[tuple[str, str]] = []
    if after < 0:
        keys.append(("walk_list", str(list_id)))
    keys += [("stop", str(s.id)) for s in stops]
    address_ids = sorted({s.address_id for s in stops})
    keys += [("address", str(a)) for a in address_ids]
    if address_ids:
        keys += [
            ("person", str(p))
            for p in await session.scalars(
                select(Person.id)
                .where(Person.address_id.in_(address_ids), Person.campaign_id == campaign_id)
                .order_by(Person.id)
            )
        ]
        for entity, model in _EVENT_MODELS.items():
            keys += [
                (entity, str(e))
                for e in await session.scalars(
                    select(model.id)
                    .where(model.campaign_id == campaign_id, model.address_id.in_(address_ids))
                    .order_by(model.id)
                )
            ]
        flag_rows = (
            await session.execute(
                select(Flag.address_id, Flag.person_key)
                .where(Flag.campaign_id == campaign_id, Flag.address_id.in_(address_ids))
                .distinct()
            )
        ).all()
        keys += [("flag", flag_key(a, p or None)) for a, p in sorted(flag_rows)]
    changes = await load_upserts(session, campaign_id, keys, version)
    token = None
    if more and stops:
        token = (
            base64.urlsafe_b64encode(
                msgspec.json.encode(PageToken(after_position=stops[-1].position))
            )
            .decode()
            .rstrip("=")
        )
    return ListPage(list_id=list_id, changes=changes, next_page_token=token)


__all__ = [
    "EDITABLE_FIELDS",
    "Cursor",
    "decode_cursor",
    "encode_cursor",
    "list_page",
    "load_upserts",
    "pull_changes",
]
