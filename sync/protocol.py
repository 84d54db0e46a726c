"""Wire shapes of the Canvass offline-sync protocol, as msgspec Structs.

Everything a phone and the server exchange is defined here and nowhere else.
The pure core (this module, ``sync.clock``, ``sync.merge``) imports no
database or web code, so it can be unit-tested and reused by any client.

Schema evolution (why the Structs look the way they do):

* Mutations and changes are *tagged unions* (``tag_field="op"``): the tag
  names the operation, so a new operation is a new Struct with a new tag and
  old operations never change meaning.
* Fields are only ever **added**, and only **with a default**. An old client
  that omits a new field still decodes (it gets the default); a new client
  talking to an old server has its unknown fields ignored (msgspec ignores
  unknown fields by default). A field is never renamed, retyped or removed;
  a change of meaning is a new field or a new operation.
* ``PROTOCOL_VERSION`` is bumped only when an old client could no longer be
  served correctly (e.g. a new required behaviour). The server lists the
  versions it still speaks in ``SUPPORTED_PROTOCOL_VERSIONS`` and answers any
  other version with HTTP 426 "upgrade required"; the phone keeps its queue.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

PROTOCOL_VERSION: Final = 1
"""The version this code speaks; sent by clients in every request body and header."""

SUPPORTED_PROTOCOL_VERSIONS: Final[frozenset[int]] = frozenset({1})
"""Versions the server still accepts; anything else gets 426 upgrade required."""

PROTOCOL_HEADER: Final = "X-Canvass-Protocol"
"""HTTP header that repeats the protocol version (checked before the body is decoded)."""

HLC_PATTERN: Final = r"^[0-9]{13}-[0-9]{6}-[A-Za-z0-9._:~-]{1,64}$"
NODE_PATTERN: Final = r"^[A-Za-z0-9._:~-]{1,64}$"

HLCString = Annotated[str, Meta(pattern=HLC_PATTERN, description="hybrid logical clock stamp")]
"""An encoded HLC (see ``sync.clock``): sorts lexicographically in clock order."""

DeviceId = Annotated[str, Meta(pattern=NODE_PATTERN)]
Seq = Annotated[int, Meta(ge=1)]
EntityIdInt = Annotated[int, Meta(ge=1)]

OutcomeCode = Literal[
    "spoke",
    "not_home",
    "refused",
    "moved",
    "deceased",
    "inaccessible",
    "come_back",
    "do_not_visit",
    "wrong_address",
]
OUTCOME_CODES: Final[tuple[str, ...]] = (
    "spoke",
    "not_home",
    "refused",
    "moved",
    "deceased",
    "inaccessible",
    "come_back",
    "do_not_visit",
    "wrong_address",
)

ObservationKind = Literal["moved_away", "deceased", "do_not_visit", "do_not_visit_cleared"]
OBSERVATION_KINDS: Final[tuple[str, ...]] = (
    "moved_away",
    "deceased",
    "do_not_visit",
    "do_not_visit_cleared",
)

EditableEntity = Literal["person", "address"]
EDITABLE_FIELDS: Final[dict[str, frozenset[str]]] = {
    "person": frozenset({"phone", "email", "contact_consent", "note", "preferred_language"}),
    "address": frozenset({"household_note", "access_note"}),
}
"""Fields a phone may edit with ``EditField``; anything else is rejected."""

Entity = Literal[
    "walk_list",
    "stop",
    "address",
    "person",
    "survey",
    "contact_attempt",
    "answer",
    "observation",
    "flag",
]
ENTITIES: Final[tuple[str, ...]] = (
    "walk_list",
    "stop",
    "address",
    "person",
    "survey",
    "contact_attempt",
    "answer",
    "observation",
    "flag",
)

AnswerValue = str | int | bool | list[str]
"""A multiple-choice answer is the list of the chosen options (protocol 1 phones never send one)."""


# --------------------------------------------------------------------------- mutations


class RecordContactAttempt(Struct, frozen=True, tag="record_contact_attempt", tag_field="op"):
    """Event: a knock at a door and its outcome. Insert-if-absent by ``id``."""

    id: uuid.UUID
    address_id: EntityIdInt
    outcome: OutcomeCode
    at: HLCString
    person_id: EntityIdInt | None = None
    walk_list_id: EntityIdInt | None = None


class RecordAnswer(Struct, frozen=True, tag="record_answer", tag_field="op"):
    """Event: an answer to a survey question. Insert-if-absent by ``id``; corrections are new events."""

    id: uuid.UUID
    address_id: EntityIdInt
    question_key: Annotated[str, Meta(min_length=1, max_length=100)]
    value: AnswerValue
    at: HLCString
    person_id: EntityIdInt | None = None
    walk_list_id: EntityIdInt | None = None
    survey_id: EntityIdInt | None = None


class RecordObservation(Struct, frozen=True, tag="record_observation", tag_field="op"):
    """Event: a fact seen at the door (moved away, deceased, do-not-visit, or its clearing).

    Only organisers may send ``do_not_visit_cleared``; the store rejects a
    clear from anyone else. Flag rules: ``sync.merge.apply_observation``.
    """

    id: uuid.UUID
    address_id: EntityIdInt
    kind: ObservationKind
    at: HLCString
    person_id: EntityIdInt | None = None
    note: Annotated[str, Meta(max_length=2000)] = ""


class EditField(Struct, frozen=True, tag="edit_field", tag_field="op"):
    """Edit of one editable field; last writer (highest ``hlc``) wins.

    ``base_hlc`` is the version of the field the phone last saw (``None`` when
    it had never been edited through sync). It is how the server tells a
    sequential overwrite from a concurrent one (see ``sync.merge``).
    """

    entity: EditableEntity
    entity_id: EntityIdInt
    field: Annotated[str, Meta(min_length=1, max_length=64)]
    value: Annotated[str, Meta(max_length=2000)] | None
    hlc: HLCString
    base_hlc: HLCString | None = None


class ServerRequest(Struct, frozen=True, tag="server_request", tag_field="op"):
    """A named server-authoritative request (e.g. ``release_walk_list``); the server may refuse."""

    name: Annotated[str, Meta(min_length=1, max_length=64)]
    args: dict[str, Any] = {}


VoidableEntity = Literal["contact_attempt", "answer", "observation"]


class VoidEvent(Struct, frozen=True, tag="void_event", tag_field="op"):
    """A correcting event: the event ``event_id`` (an ``entity`` recorded by the same user) is void.

    Events are append-only, so an undo of a record that already reached the server is this new
    mutation, not a deletion by the phone. Idempotent by ``event_id`` (voiding twice is
    ``duplicate``). A voided event counts nowhere (tallies, follow-ups, exports) and reaches
    phones as ``erase`` of that event id. Observations of ``do_not_visit`` and its clearing
    cannot be voided (safety: only an organiser clears do-not-visit). See ``server/sync/voids.py``.
    """

    entity: VoidableEntity
    event_id: uuid.UUID
    address_id: EntityIdInt
    at: HLCString


Mutation = RecordContactAttempt | RecordAnswer | RecordObservation | EditField | ServerRequest | VoidEvent
EVENT_TYPES: Final = (RecordContactAttempt, RecordAnswer, RecordObservation)
EventMutation = RecordContactAttempt | RecordAnswer | RecordObservation


def mutation_hlc(mutation: Mutation) -> str | None:
    """The HLC a mutation is stamped with (``None`` for server requests)."""
    if isinstance(mutation, EditField):
        return mutation.hlc
    if isinstance(mutation, ServerRequest):
        return None
    return mutation.at


# --------------------------------------------------------------------------- push


class Envelope(Struct, frozen=True):
    """A mutation with the per-device sequence number that makes replays idempotent."""

    seq: Seq
    mutation: Mutation


MutationStatus = Literal["applied", "duplicate", "conflict", "rejected", "restamp"]

REJECTION_PREFIXES: Final[tuple[str, ...]] = (
    "out_of_scope:",
    "erased:",
    "unknown:",
    "not_allowed:",
    "invalid:",
    "unsupported:",
    "duplicate_seq:",
)
"""Machine-readable starts of a ``rejected`` reason (a conflict's may start ``conflicting_duplicate:``)."""


class PushRequest(Struct, frozen=True):
    """A batch of mutations from one device, applied atomically in seq order."""

    protocol_version: int
    device_id: DeviceId
    mutations: list[Envelope]


class MutationResult(Struct, frozen=True):
    """The server's verdict on one mutation; a replay returns the same verdict.

    ``applied``: took effect (an event stored, an edit now current).
    ``duplicate``: the event id / edit was already known (from any device): no effect.
    ``conflict``: the edit was stored but lost to a concurrent edit; kept for review.
    ``rejected``: can never be applied (``reason`` says why, see ``REJECTION_PREFIXES``); processed,
    never retry; the server keeps its payload for review.
    ``restamp``: an edit stamped beyond the skew bound, not applied: the phone adopts
    ``PushResponse.server_time_ms`` and queues it again, re-stamped, as a new seq.
    """

    seq: int
    status: MutationStatus
    server_hlc: str
    reason: str = ""


class PushResponse(Struct, frozen=True):
    """Results for every seq in the push, plus the highest seq the server has processed."""

    results: list[MutationResult]
    last_seq: int
    server_time_ms: int = 0
    """The server's wall clock (ms since the epoch) when it answered: a phone's clock reference."""


# --------------------------------------------------------------------------- pull


class PullRequest(Struct, frozen=True):
    """Ask for changes after ``cursor`` (``None`` = from the beginning of the device's scope)."""

    protocol_version: int
    device_id: DeviceId
    cursor: str | None = None
    limit: Annotated[int, Meta(ge=1, le=2000)] = 500


class Upsert(Struct, frozen=True, tag="upsert", tag_field="op"):
    """Create or replace the local copy of an entity if ``version`` is not older than the local one."""

    entity: Entity
    id: str
    data: dict[str, Any]
    version: str


class Remove(Struct, frozen=True, tag="remove", tag_field="op"):
    """The entity left this device's scope: drop the local copy, keep the phone's own unsynced work."""

    entity: Entity
    id: str
    version: str = ""


class Erase(Struct, frozen=True, tag="erase", tag_field="op"):
    """Tombstone: the entity was erased; purge it and everything touching it, outbox included."""

    entity: Entity
    id: str


Change = Upsert | Remove | Erase


class PullResponse(Struct, frozen=True):
    """One page of changes; keep pulling with ``cursor`` while ``has_more``."""

    changes: list[Change]
    cursor: str | None
    has_more: bool
    checksums: dict[str, str] = {}
    """On the last page (``has_more`` false): per held walk list, the checksum of what the phone
    should hold because of it (``list_checksum``)."""


class ListPage(Struct, frozen=True):
    """One page of a walk list's initial download (``GET /api/sync/lists/{id}``)."""

    list_id: int
    changes: list[Change]
    next_page_token: str | None = None


class ProblemDetails(Struct, frozen=True, omit_defaults=True):
    """RFC 9457 problem details, the one shape of every error response."""

    title: str
    status: int
    type: str = "about:blank"
    detail: str = ""
    instance: str = ""
    code: str = ""
    supported_versions: list[int] = []


# --------------------------------------------------------------------------- helpers

T = TypeVar("T")
_encoder = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    """Encode a protocol Struct (or plain data) as JSON bytes."""
    return _encoder.encode(value)


def decode(data: bytes | str, type_: type[T]) -> T:
    """Decode and validate JSON bytes as ``type_``; raises ``msgspec.ValidationError``."""
    return msgspec.json.decode(data, type=type_)


def entity_key(entity_id: int | str | uuid.UUID) -> str:
    """The wire form of an entity id: decimal for integers, canonical text for UUIDs."""
    return str(entity_id)


def list_checksum(keys: list[str]) -> str:
    """Contract section E: SHA-256 (lowercase hex) of the sorted ``"{entity}:{id}"`` lines joined by newlines."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()


def flag_key(address_id: int, person_id: int | None) -> str:
    """The wire id of a ``flag`` entity: ``"<address_id>:<person_id or empty>"``."""
    return f"{address_id}:{'' if person_id is None else person_id}"
