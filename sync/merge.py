"""Merge rules of the sync protocol, as pure deterministic functions.

Every replica (each phone, the server) applies the same functions to the
same set of facts and so converges, whatever order the facts arrived in.
The result of each function depends only on the *set* of inputs it has seen,
which is what makes merging commutative, associative and idempotent.

1. Events (contact attempts, answers, observations): ``merge_events`` is set
   union keyed by the client-made UUID. Nothing is overwritten. (If two
   different events ever share an id — a broken client — the one whose JSON
   encoding sorts first is kept everywhere; the server rejects the second one
   it receives, so this only matters for replicas merging among themselves.)

2. Editable fields: ``merge_field_edit``. Definitions, for the set ``S`` of
   edits to one (entity, id, field); an HLC names exactly one edit:

   * **winner** = the edit in ``S`` with the greatest ``hlc``. Every replica
     shows its value.
   * an edit ``e`` is **superseded** when some edit in ``S`` names ``e.hlc``
     as its ``base_hlc``: its author's successor saw it and overwrote it on
     purpose.
   * the **conflict losers** are the edits of ``S`` that are neither the
     winner nor superseded: the tips of branches nobody built on, i.e. values
     overwritten by someone who never saw them. They are kept as conflict
     records for an organiser to review.

   All three depend only on ``S``. Adding an edit can add at most one loser
   (the edit itself, or the previous winner when a concurrent edit beats it)
   and resolve at most one (the edit its ``base_hlc`` names), which is what
   ``FieldMergeResult`` reports. For the common case this is exactly "the
   loser of two edits where neither saw the other (``incoming.base_hlc !=
   current.hlc``) is kept as a conflict".

3. Safety flags: ``apply_observation`` / ``derive_flags``. Per (address,
   person) key, folded in the order the server accepted the observations:
   a ``do_not_visit`` set always turns the flag on (so a set made offline and
   accepted after a clear wins, whatever its HLC: the clearer never saw it);
   a ``do_not_visit_cleared`` (organisers only) turns it off only if its HLC
   is later than every set in force when it is applied, i.e. every set it
   could have seen. ``moved_away`` and ``deceased`` are set-only. Phones
   show the server's ``flag`` entities with their own not-yet-merged
   observations folded on top, so they converge on the server's flags.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Literal

import msgspec
from msgspec import Struct

from sync.protocol import (
    EditField,
    EventMutation,
    RecordObservation,
)

# --------------------------------------------------------------------------- events


def _event_sort_key(event: EventMutation) -> bytes:
    return msgspec.json.encode(event)


def _as_event_map(
    events: Mapping[uuid.UUID, EventMutation] | Iterable[EventMutation],
) -> dict[uuid.UUID, EventMutation]:
    if isinstance(events, Mapping):
        return dict(events)
    result: dict[uuid.UUID, EventMutation] = {}
    for event in events:
        result = merge_events(result, {event.id: event})
    return result


def merge_events(
    a: Mapping[uuid.UUID, EventMutation] | Iterable[EventMutation],
    b: Mapping[uuid.UUID, EventMutation] | Iterable[EventMutation],
) -> dict[uuid.UUID, EventMutation]:
    """Set union of two event collections keyed by event id (insert-if-absent, deterministic)."""
    left, right = _as_event_map(a), _as_event_map(b)
    merged = dict(left)
    for event_id, event in right.items():
        existing = merged.get(event_id)
        if existing is None or _event_sort_key(event) < _event_sort_key(existing):
            merged[event_id] = event
    return {key: merged[key] for key in sorted(merged, key=str)}


# --------------------------------------------------------------------------- fields


class FieldState(Struct, frozen=True):
    """Everything a replica must remember about one field to merge further edits.

    ``winner`` is the current edit; ``tips`` are the edits nobody built on
    (sorted by hlc; the winner is among them unless it was superseded);
    ``bases`` is every ``base_hlc`` seen (sorted).
    """

    winner: EditField
    tips: tuple[EditField, ...]
    bases: tuple[str, ...]

    @property
    def value(self) -> str | None:
        """The field's current value (the winner's)."""
        return self.winner.value

    @property
    def hlc(self) -> str:
        """The current version of the field: the winner's HLC."""
        return self.winner.hlc


class ConflictRecord(Struct, frozen=True):
    """A losing edit kept for review, with the winner at the time it was detected."""

    entity: str
    entity_id: int
    field: str
    value: str | None
    hlc: str
    base_hlc: str | None
    winner_value: str | None
    winner_hlc: str


FieldOutcome = Literal["applied", "conflict", "superseded", "duplicate"]


class FieldMergeResult(Struct, frozen=True):
    """Outcome of merging one edit: the new state, the loser it created, the loser it resolved.

    ``outcome``: ``applied`` (the edit is the winner now), ``conflict`` (it lost
    and is kept as a conflict loser), ``superseded`` (it lost but a later edit
    already built on it: not a conflict), ``duplicate`` (already merged).
    """

    new_state: FieldState
    outcome: FieldOutcome
    conflict: ConflictRecord | None = None
    resolved: ConflictRecord | None = None


def _conflict_record(loser: EditField, winner: EditField) -> ConflictRecord:
    return ConflictRecord(
        entity=loser.entity,
        entity_id=loser.entity_id,
        field=loser.field,
        value=loser.value,
        hlc=loser.hlc,
        base_hlc=loser.base_hlc,
        winner_value=winner.value,
        winner_hlc=winner.hlc,
    )


def _same_field(a: EditField, b: EditField) -> bool:
    return (a.entity, a.entity_id, a.field) == (b.entity, b.entity_id, b.field)


def merge_field_edit(current: FieldState | None, edit: EditField) -> FieldMergeResult:
    """Merge one edit into a field's state (last writer wins by HLC; concurrent losers kept)."""
    if current is None:
        state = FieldState(
            winner=edit,
            tips=(edit,) if edit.base_hlc != edit.hlc else (),
            bases=(edit.base_hlc,) if edit.base_hlc is not None else (),
        )
        return FieldMergeResult(new_state=state, outcome="applied")
    if not _same_field(current.winner, edit):
        raise ValueError("edit is for a different field than the state")
    if edit.hlc == current.winner.hlc or any(t.hlc == edit.hlc for t in current.tips):
        return FieldMergeResult(new_state=current, outcome="duplicate")

    bases = set(current.bases)
    if edit.base_hlc is not None:
        bases.add(edit.base_hlc)
    tips = [t for t in current.tips if t.hlc not in bases]
    if edit.hlc not in bases:
        tips.append(edit)
    tips.sort(key=lambda t: t.hlc)
    winner = edit if edit.hlc > current.winner.hlc else current.winner
    new_state = FieldState(winner=winner, tips=tuple(tips), bases=tuple(sorted(bases)))

    old_losers = {t.hlc: t for t in current.tips if t.hlc != current.winner.hlc}
    new_losers = {t.hlc: t for t in tips if t.hlc != winner.hlc}
    added = [t for h, t in new_losers.items() if h not in old_losers]
    removed = [t for h, t in old_losers.items() if h not in new_losers]
    conflict = _conflict_record(added[0], winner) if added else None
    resolved = _conflict_record(removed[0], winner) if removed else None

    outcome: FieldOutcome
    if winner is edit:
        outcome = "applied"
    elif edit.hlc in new_losers:
        outcome = "conflict"
    else:
        outcome = "superseded"
    return FieldMergeResult(
        new_state=new_state, outcome=outcome, conflict=conflict, resolved=resolved
    )


def merge_field_states(a: FieldState | None, b: FieldState | None) -> FieldState | None:
    """Join two replicas' states of one field (equal to merging the union of their edits)."""
    if a is None:
        return b
    if b is None:
        return a
    if not _same_field(a.winner, b.winner):
        raise ValueError("states are for different fields")
    bases = set(a.bases) | set(b.bases)
    tips = {t.hlc: t for t in (*a.tips, *b.tips) if t.hlc not in bases}
    winner = a.winner if a.winner.hlc >= b.winner.hlc else b.winner
    return FieldState(
        winner=winner,
        tips=tuple(tips[h] for h in sorted(tips)),
        bases=tuple(sorted(bases)),
    )


def fold_field_edits(edits: Iterable[EditField]) -> FieldState | None:
    """Merge edits (of one field) in the given order; the result does not depend on the order."""
    state: FieldState | None = None
    for edit in edits:
        state = merge_field_edit(state, edit).new_state
    return state


def conflict_losers(state: FieldState | None) -> tuple[ConflictRecord, ...]:
    """Every conflict loser of a field (sorted by hlc), each paired with the current winner."""
    if state is None:
        return ()
    return tuple(_conflict_record(t, state.winner) for t in state.tips if t.hlc != state.winner.hlc)


# --------------------------------------------------------------------------- flags

FlagKey = tuple[int, int | None]


class FlagState(Struct, frozen=True):
    """Safety flags of one household (``person_id`` None) or person, derived from observations."""

    address_id: int
    person_id: int | None
    do_not_visit: bool = False
    moved_away: bool = False
    deceased: bool = False
    set_hlc: str = ""
    """Greatest HLC among the do-not-visit sets currently in force ("" if none)."""
    cleared_hlc: str = ""
    """HLC of the last clear that counted ("" if none)."""
    last_at: str = ""
    """The latest observation HLC that went into this state."""
    seen: tuple[str, ...] = ()
    """Ids of the observations applied (sorted), so a replayed one is a no-op."""


def apply_observation(state: FlagState | None, observation: RecordObservation) -> FlagState:
    """Fold one accepted observation into a key's flags (the server applies them in acceptance order).

    * ``do_not_visit`` always turns the flag on, whatever its HLC: a set the
      clearer never saw (made offline, accepted after the clear) wins.
    * ``do_not_visit_cleared`` turns it off only if the clear is later than
      every set in force when it is applied (``at > set_hlc``), i.e. every set
      it could have seen; otherwise it does not count.
    * ``moved_away`` / ``deceased`` are set-only.
    * An observation id already applied is ignored (idempotent).
    """
    if state is None:
        state = FlagState(address_id=observation.address_id, person_id=observation.person_id)
    key = str(observation.id)
    if key in state.seen:
        return state
    seen = tuple(sorted((*state.seen, key)))
    last_at = max(state.last_at, observation.at)
    changes: dict[str, object] = {"seen": seen, "last_at": last_at}
    if observation.kind == "do_not_visit":
        changes["do_not_visit"] = True
        changes["set_hlc"] = (
            max(state.set_hlc, observation.at) if state.do_not_visit else observation.at
        )
    elif observation.kind == "do_not_visit_cleared":
        if state.do_not_visit and observation.at > state.set_hlc:
            changes.update(do_not_visit=False, set_hlc="", cleared_hlc=observation.at)
    elif observation.kind == "moved_away":
        changes["moved_away"] = True
    elif observation.kind == "deceased":
        changes["deceased"] = True
    return msgspec.structs.replace(state, **changes)


def derive_flags(observations: Iterable[RecordObservation]) -> dict[FlagKey, FlagState]:
    """Derive flags per (address_id, person_id) by folding observations in acceptance order.

    Sets commute with sets and clears with clears; only the order of a set
    relative to a clear matters, and that order is the server's (clears are
    server-mediated, organiser-only), so every replica converges on the
    server's flags.
    """
    result: dict[FlagKey, FlagState] = {}
    for observation in observations:
        key = (observation.address_id, observation.person_id)
        result[key] = apply_observation(result.get(key), observation)
    return result
