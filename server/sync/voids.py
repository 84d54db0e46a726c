"""Voiding a recorded event: the ``void_event`` mutation (undo of a record already sent).

Events are append-only: a phone never edits or deletes one. When a canvasser undoes a record
that already reached the server, the phone sends a correcting event, ``void_event`` naming the
event. The server then:

* checks it like any other write: the event exists in the device's campaign at the address the
  void names, was recorded by the same user (organisers and admins may void anyone's), and the
  address is within the user's write scope at the void's time (``_check_scope``);
* moves the event out of its table into ``voided_events``, kept as it was with who voided it and
  when. Leaving the table is what makes every reader ignore it: the result tallies take it back
  through their delete triggers (both databases), and follow-ups, live figures and exports read
  the event tables only;
* appends an ``erase`` change for the event id, so every phone drops its copy (an id, no data).

Voiding twice is ``duplicate`` (idempotent by event id). Observations are not voidable: they set
safety flags, which only an organiser clears (``not_allowed:``). An event queued in the same push
as its void cannot be voided by it (``invalid:``): a phone withdraws an unsent event from its
outbox instead, and sends a void only for an acknowledged event.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Answer, ContactAttempt, Observation, Role, VoidedEvent
from server.sync.changes import record_change
from server.sync.erasure import is_erased
from server.sync.pull import event_data
from server.sync.store import PushContext, Rejected, _check_address, _check_scope, _work_time
from sync.clock import parse
from sync.protocol import VoidEvent

VOIDABLE: dict[str, Any] = {"contact_attempt": ContactAttempt, "answer": Answer}
"""Event tables a ``void_event`` may take an event out of."""

_encoder = msgspec.json.Encoder()


async def apply_void(
    session: AsyncSession, context: PushContext, void: VoidEvent, untrusted: bool = False
) -> tuple[str, str]:
    """Apply one ``void_event`` (inside the push's savepoint); returns (status, reason)."""
    event_id = str(void.event_id)
    entity = void.entity
    if entity == "observation" or entity not in VOIDABLE:
        if entity == "observation" and await session.get(Observation, event_id) is None:
            raise Rejected(f"unknown: observation {event_id} is unknown")
        raise Rejected("not_allowed: an observation sets a safety flag; only an organiser can clear it")
    done = await session.get(VoidedEvent, event_id)
    if done is not None and done.campaign_id == context.campaign_id and done.entity == entity:
        return "duplicate", f"{entity} {event_id} is already void"
    if await is_erased(session, entity, event_id):
        raise Rejected(f"erased: {entity} {event_id} was erased")
    cache = context.cache
    if cache is not None and (entity, event_id) in cache.batch_events:
        raise Rejected(f"invalid: {entity} {event_id} is in the same push; void it after it is acknowledged")
    row = await session.get(VOIDABLE[entity], event_id)
    if row is None or row.campaign_id != context.campaign_id:
        raise Rejected(f"unknown: {entity} {event_id} is unknown")
    if row.address_id != void.address_id:
        raise Rejected(f"invalid: {entity} {event_id} is not at address {void.address_id}")
    campaign_wide = context.role in (Role.admin, Role.organiser)
    if not campaign_wide and row.user_id != context.user_id:
        raise Rejected(f"not_allowed: {entity} {event_id} was recorded by someone else")
    # lock the address as an event write does (erasure locks it FOR UPDATE: one waits for the other)
    await _check_address(session, context, row.address_id, lock=True)
    await _check_scope(session, context, row.address_id, _work_time(parse(void.at), untrusted))
    kept = event_data(entity, row)
    kept.update(user_id=row.user_id, device_id=row.device_id, received_at=row.received_at.isoformat())
    session.add(
        VoidedEvent(
            event_id=event_id,
            entity=entity,
            campaign_id=context.campaign_id,
            address_id=row.address_id,
            person_id=row.person_id,
            payload=_encoder.encode(kept).decode(),
            void_hlc=void.at,
            user_id=context.user_id,
            device_id=context.device_id,
        )
    )
    await session.delete(row)
    await session.flush()
    await record_change(
        session, campaign_id=context.campaign_id, entity=entity, entity_id=event_id, op="erase",
        address_id=row.address_id,
    )
    return "applied", ""
