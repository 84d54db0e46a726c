"""Review for organisers: conflicts and kept mutations (rejected, conflicting duplicates) in one
queue; a conflict is resolved by a new edit, a kept mutation re-applied (as sent or edited) or
dismissed, each audited.

Resolving writes the chosen value as an ordinary field edit through the
phones' push path (an organiser's "console" device), based on the current
winner, so it syncs to every phone like any edit; the reviewed conflict is
then marked resolved by that organiser. Reads are audited: conflicts hold
personal values (a phone number, a note).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.guards import ORGANISERS, require_role
from server.accounts.security import AuthUser
from server.audit import record_audit
from server.db.models import (
    Conflict,
    Device,
    DeviceReceipt,
    FieldVersion,
    HeldMutation,
    MutationResult,
    Person,
    Role,
    User,
)
from server.dependencies import AppSettings, CurrentUser, DbSession
from server.errors import ConflictError, InvalidInput, NotFound


class ConflictOut(msgspec.Struct):
    """One losing edit kept for review, beside the value that won."""

    id: int
    entity: str
    entity_id: int
    field: str
    losing_value: str | None
    losing_hlc: str
    losing_device_id: int | None
    winning_value: str | None
    winning_hlc: str
    current_value: str | None
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: int | None


class RejectionOut(msgspec.Struct):
    """A mutation the server could never apply, with the reason the phone was shown."""

    device_id: int
    device_name: str
    user_id: int | None
    user_name: str | None
    seq: int
    op: str
    entity: str | None
    entity_id: str | None
    reason: str
    created_at: datetime


class ReviewItem(msgspec.Struct, omit_defaults=True):
    """One entry of the review queue: a losing edit (``conflict``) or a kept mutation (``rejection``)."""

    kind: Literal["conflict", "rejection"]
    id: int
    created_at: datetime
    status: str = ""
    reason: str = ""
    review: str = "open"
    device_id: int | None = None
    user_id: int | None = None
    seq: int | None = None
    op: str = ""
    payload: dict[str, Any] = {}
    conflict: ConflictOut | None = None


class ApplyRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Re-apply a kept mutation: as it was sent, or ``mutation`` instead (edit then apply)."""

    mutation: dict[str, Any] | None = None


class ResolveRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The value to keep (the loser's, the winner's, or a new one); null clears the field."""

    value: Annotated[str, msgspec.Meta(max_length=2000)] | None


def _now() -> datetime:
    return datetime.now(UTC)


async def _current_value(session: AsyncSession, conflict: Conflict) -> str | None:
    from server.db.models import Address

    model: Any = Person if conflict.entity == "person" else Address
    row = await session.get(model, conflict.entity_id)
    value = getattr(row, conflict.field, None) if row is not None else None
    return None if value is None else str(value)


async def list_conflicts(session: AsyncSession, user: AuthUser, campaign_id: int, status: str) -> list[ConflictOut]:
    """Conflicts of the campaign (open, resolved or all), newest first; an audited read."""
    query = select(Conflict).where(Conflict.campaign_id == campaign_id).order_by(Conflict.id.desc())
    if status == "open":
        query = query.where(Conflict.resolved_at.is_(None))
    elif status == "resolved":
        query = query.where(Conflict.resolved_at.is_not(None))
    rows = (await session.scalars(query.limit(1000))).all()
    out = [
        ConflictOut(
            id=c.id, entity=c.entity, entity_id=c.entity_id, field=c.field, losing_value=c.losing_value, losing_hlc=c.losing_hlc,
            losing_device_id=c.losing_device_id, winning_value=c.winning_value, winning_hlc=c.winning_hlc,
            current_value=await _current_value(session, c), created_at=c.created_at, resolved_at=c.resolved_at, resolved_by=c.resolved_by,
        )
        for c in rows
    ]
    record_audit(session, user, "read", "conflicts", campaign_id=campaign_id, row_count=len(out), detail={"status": status})
    return out


async def list_rejections(session: AsyncSession, campaign_id: int) -> list[RejectionOut]:
    """Rejected mutations of the campaign, newest first (ids and reasons only)."""
    rows = (
        await session.execute(
            select(MutationResult, Device.name, User.display_name)
            .join(Device, Device.id == MutationResult.device_id)
            .outerjoin(User, User.id == MutationResult.user_id)
            .where(MutationResult.campaign_id == campaign_id, MutationResult.status == "rejected")
            .order_by(MutationResult.created_at.desc())
            .limit(1000)
        )
    ).all()
    return [
        RejectionOut(device_id=r.device_id, device_name=name, user_id=r.user_id, user_name=user_name, seq=r.seq, op=r.op,
                     entity=r.entity, entity_id=r.entity_id, reason=r.reason, created_at=r.created_at)
        for r, name, user_name in rows
    ]


async def resolve_conflict(session: AsyncSession, user: AuthUser, campaign_id: int, conflict_id: int, value: str | None, max_skew_ms: int) -> ConflictOut:
    """Write `value` as a new edit based on the current winner, then mark the conflict resolved."""
    from server.sync.store import apply_mutations, organiser_device, push_context_for
    from sync.clock import HybridClock
    from sync.protocol import EditField

    conflict = await session.get(Conflict, conflict_id)
    if conflict is None or conflict.campaign_id != campaign_id:
        raise NotFound(f"No conflict {conflict_id} in this campaign.")
    if conflict.resolved_at is not None:
        raise ConflictError("This conflict is already resolved.")
    version = await session.get(FieldVersion, (conflict.entity, conflict.entity_id, conflict.field))
    device = await organiser_device(session, user.id, campaign_id, "console")
    clock = HybridClock(device.node_id)
    if version is not None:
        clock.receive(version.hlc, trusted=True)
    edit = EditField(entity=conflict.entity, entity_id=conflict.entity_id, field=conflict.field, value=value, hlc=clock.now().encode(),
                     base_hlc=version.hlc if version is not None else None)
    role = user.role_in(campaign_id) or (Role.admin if user.is_superuser else None)
    context = await push_context_for(session, device.id, user.id, role, max_skew_ms)
    response = await apply_mutations(session, context, [edit])
    result = response.results[0]
    if result.status == "rejected":
        raise InvalidInput(f"The resolution was refused: {result.reason}")
    conflict.resolved_at = _now()
    conflict.resolved_by = user.id
    await session.flush()
    record_audit(session, user, "write", f"conflict:{conflict_id}", campaign_id=campaign_id, row_count=1)
    return ConflictOut(
        id=conflict.id, entity=conflict.entity, entity_id=conflict.entity_id, field=conflict.field, losing_value=conflict.losing_value,
        losing_hlc=conflict.losing_hlc, losing_device_id=conflict.losing_device_id, winning_value=conflict.winning_value,
        winning_hlc=conflict.winning_hlc, current_value=await _current_value(session, conflict), created_at=conflict.created_at,
        resolved_at=conflict.resolved_at, resolved_by=conflict.resolved_by,
    )


def _held_item(row: HeldMutation) -> ReviewItem:
    try:
        payload = msgspec.json.decode(row.payload)
    except msgspec.DecodeError:
        payload = {"raw": row.payload}
    return ReviewItem(
        kind="rejection", id=row.id, created_at=row.created_at, status=row.status, reason=row.reason, review=row.review,
        device_id=row.device_id, user_id=row.user_id, seq=row.seq, op=row.op,
        payload=payload if isinstance(payload, dict) else {"raw": payload},
    )


async def review_queue(session: AsyncSession, user: AuthUser, campaign_id: int) -> list[ReviewItem]:
    """Open conflicts and open kept mutations (rejected or conflicting duplicates), newest first; audited."""
    conflicts = await list_conflicts_rows(session, campaign_id)
    held = (await session.scalars(
        select(HeldMutation)
        .where(HeldMutation.campaign_id == campaign_id, HeldMutation.review == "open", HeldMutation.status != "restamp")
        .order_by(HeldMutation.id.desc()).limit(1000)
    )).all()
    items = [ReviewItem(kind="conflict", id=c.id, created_at=c.created_at, conflict=c) for c in conflicts]
    items += [_held_item(h) for h in held]
    items.sort(key=lambda i: i.created_at, reverse=True)
    record_audit(session, user, "review_read", "review", campaign_id=campaign_id, row_count=len(items))
    return items


async def list_conflicts_rows(session: AsyncSession, campaign_id: int) -> list[ConflictOut]:
    """Open conflicts of the campaign as API shapes (unaudited: callers audit)."""
    rows = (await session.scalars(
        select(Conflict).where(Conflict.campaign_id == campaign_id, Conflict.resolved_at.is_(None)).order_by(Conflict.id.desc()).limit(1000)
    )).all()
    return [
        ConflictOut(
            id=c.id, entity=c.entity, entity_id=c.entity_id, field=c.field, losing_value=c.losing_value, losing_hlc=c.losing_hlc,
            losing_device_id=c.losing_device_id, winning_value=c.winning_value, winning_hlc=c.winning_hlc,
            current_value=await _current_value(session, c), created_at=c.created_at, resolved_at=c.resolved_at, resolved_by=c.resolved_by,
        )
        for c in rows
    ]


async def _open_held(session: AsyncSession, campaign_id: int, held_id: int) -> HeldMutation:
    row = await session.get(HeldMutation, held_id, with_for_update=True)
    if row is None or row.campaign_id != campaign_id:
        raise NotFound(f"No kept mutation {held_id} in this campaign.")
    if row.review != "open":
        raise ConflictError(f"This mutation was already {row.review}.")
    return row


async def apply_held(
    session: AsyncSession, user: AuthUser, campaign_id: int, held_id: int, mutation: dict[str, Any] | None, max_skew_ms: int
) -> ReviewItem:
    """Re-apply a kept mutation (or the organiser's edited version) through the push path, with the
    organiser's role (campaign-wide) and a "review" device; refused again -> 422, left open."""
    from server.sync.store import RawEnvelope, apply_push, organiser_device, push_context_for
    from sync.clock import HybridClock

    row = await _open_held(session, campaign_id, held_id)
    payload = mutation if mutation is not None else msgspec.json.decode(row.payload)
    device = await organiser_device(session, user.id, campaign_id, "review")
    if isinstance(payload, dict) and payload.get("op") == "edit_field":
        clock = HybridClock(device.node_id)  # an edit is stamped now, after its base (contract B)
        if isinstance(payload.get("base_hlc"), str):
            try:
                clock.receive(payload["base_hlc"], trusted=True)
            except ValueError:
                pass
        payload = {**payload, "hlc": clock.now().encode()}
    last_seq = int(await session.scalar(select(DeviceReceipt.last_seq).where(DeviceReceipt.device_id == device.id)) or 0)
    role = user.role_in(campaign_id) or (Role.admin if user.is_superuser else None)
    context = await push_context_for(session, device.id, user.id, role, max_skew_ms)
    context.check_node = False  # the stamps are the phone's
    response = await apply_push(session, context, [RawEnvelope(seq=last_seq + 1, mutation=msgspec.Raw(msgspec.json.encode(payload)))])
    result = response.results[0]
    if result.status not in ("applied", "duplicate"):
        raise InvalidInput(f"The mutation was refused again: {result.reason}")
    row.review, row.reviewed_at, row.reviewed_by = "applied", _now(), user.id
    if mutation is not None:
        row.payload = msgspec.json.encode(mutation).decode()
    await session.flush()
    record_audit(session, user, "review_apply", f"held:{held_id}", campaign_id=campaign_id, row_count=1,
                 detail={"edited": mutation is not None, "status": result.status})
    return _held_item(row)


async def dismiss_held(session: AsyncSession, user: AuthUser, campaign_id: int, held_id: int) -> ReviewItem:
    """Close a kept mutation without applying it (it stays on record as dismissed)."""
    row = await _open_held(session, campaign_id, held_id)
    row.review, row.reviewed_at, row.reviewed_by = "dismissed", _now(), user.id
    await session.flush()
    record_audit(session, user, "review_dismiss", f"held:{held_id}", campaign_id=campaign_id, row_count=1)
    return _held_item(row)


class ConflictReviewController(Controller):
    """Organisers review what sync could not settle on its own."""

    path = "/api/campaigns/{campaign_id:int}"
    tags = ["sync"]
    guards = [require_role(*ORGANISERS)]

    @get("/conflicts")
    async def conflicts(
        self, campaign_id: FromPath[int], db_session: DbSession, user: CurrentUser, status: FromQuery[Literal["open", "resolved", "all"]] = "open"
    ) -> list[ConflictOut]:
        """Losing edits kept for review, with the winning and current values."""
        return await list_conflicts(db_session, user, campaign_id, status)

    @post("/conflicts/{conflict_id:int}/resolve", status_code=200)
    async def resolve(
        self, campaign_id: FromPath[int], conflict_id: FromPath[int], data: JSONBody[ResolveRequest], db_session: DbSession,
        user: CurrentUser, settings: AppSettings,
    ) -> ConflictOut:
        """Keep a value: it is written as a new edit (syncing to phones) and the conflict is closed."""
        return await resolve_conflict(db_session, user, campaign_id, conflict_id, data.value, settings.max_clock_skew_seconds * 1000)

    @get("/review")
    async def review(self, campaign_id: FromPath[int], db_session: DbSession, user: CurrentUser) -> list[ReviewItem]:
        """One queue: open conflicts and kept mutations (rejected or conflicting duplicates), with payloads."""
        return await review_queue(db_session, user, campaign_id)

    @post("/review/rejections/{held_id:int}/apply", status_code=200)
    async def apply(
        self, campaign_id: FromPath[int], held_id: FromPath[int], data: JSONBody[ApplyRequest], db_session: DbSession,
        user: CurrentUser, settings: AppSettings,
    ) -> ReviewItem:
        """Re-apply a kept mutation as sent, or the edited ``mutation`` instead."""
        return await apply_held(db_session, user, campaign_id, held_id, data.mutation, settings.max_clock_skew_seconds * 1000)

    @post("/review/rejections/{held_id:int}/dismiss", status_code=200)
    async def dismiss(self, campaign_id: FromPath[int], held_id: FromPath[int], db_session: DbSession, user: CurrentUser) -> ReviewItem:
        """Close a kept mutation without applying it."""
        return await dismiss_held(db_session, user, campaign_id, held_id)

    @get("/rejections")
    async def rejections(self, campaign_id: FromPath[int], db_session: DbSession) -> list[RejectionOut]:
        """Mutations the server refused, with their reasons."""
        return await list_rejections(db_session, campaign_id)
