"""A reference sync client that behaves like a phone.

It is what tests, load tests and benchmarks drive, and the executable form
of ``docs/sync-protocol.md``: a local store, an outbox of mutations with a
per-device sequence number that survives restarts (``to_state`` /
``from_state``), push with retry and backoff, pull with rebase, resumable
initial download of newly assigned walk lists.

The network is an injected async callable, so the same client runs over
Litestar's test client, httpx against a real server, or a simulated lossy
network::

    async def transport(method, path, body, headers) -> tuple[int, bytes]: ...

A transport signals "the request may or may not have reached the server"
by raising any exception (``TransportError`` or the HTTP library's own).
"""

from __future__ import annotations

import asyncio
import gzip
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import msgspec
from msgspec import Struct

from sync.clock import DEFAULT_MAX_SKEW_MS, HybridClock
from sync.merge import FlagState, apply_observation
from sync.protocol import (
    EDITABLE_FIELDS,
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    AnswerValue,
    Change,
    EditField,
    Envelope,
    Erase,
    EventMutation,
    ListPage,
    Mutation,
    MutationResult,
    ObservationKind,
    OutcomeCode,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    RecordAnswer,
    RecordContactAttempt,
    RecordObservation,
    Remove,
    ServerRequest,
    Upsert,
    VoidEvent,
    list_checksum,
)

Transport = Callable[[str, str, bytes, dict[str, str]], Awaitable[tuple[int, bytes]]]
"""``transport(method, path, body, headers) -> (status, body)``; raises on network failure."""

PUSH_PATH = "/api/sync/push"
PULL_PATH = "/api/sync/pull"
LIST_PATH = "/api/sync/lists/{list_id}"

EVENT_ENTITIES = {
    "contact_attempt": RecordContactAttempt,
    "answer": RecordAnswer,
    "observation": RecordObservation,
}
_EVENT_ENTITY_OF: dict[type, str] = {v: k for k, v in EVENT_ENTITIES.items()}


class TransportError(Exception):
    """The request failed in transit (timeout, connection reset): outcome unknown, retry later."""


class StoredEntity(Struct):
    """A pulled copy of one server entity."""

    data: dict[str, Any]
    version: str


class Rejection(Struct, frozen=True):
    """A mutation the server processed but will never apply, with its reason (shown to the user)."""

    seq: int
    mutation: Mutation
    reason: str


class PendingEdit(Struct, frozen=True):
    """An own field edit shown on top of pulled values until the server's copy catches up."""

    edit: EditField
    seq: int
    acknowledged: bool = False


class ClientState(Struct):
    """Everything the phone persists between app restarts (encoded with msgspec)."""

    device_id: str
    next_seq: int = 1
    outbox: list[Envelope] = []
    entities: dict[str, dict[str, StoredEntity]] = {}
    removed: dict[str, dict[str, str]] = {}
    erased: dict[str, list[str]] = {}
    local_events: dict[str, Mutation] = {}
    pending_edits: list[PendingEdit] = []
    cursor: str | None = None
    clock_last: str | None = None
    rejections: list[Rejection] = []
    conflicts: list[MutationResult] = []
    downloads: dict[str, str] = {}
    upgrade_required: bool = False
    clock_offset_ms: int = 0
    """Added to the device's own wall clock when stamping (contract B: adopted from the server)."""
    checksums: dict[str, str] = {}
    """The server's per-list checksums from the last complete pull (contract E)."""


class PushOutcome(Struct, frozen=True):
    """What one ``push()`` call achieved."""

    ok: bool
    status: int | None
    sent: int
    acknowledged: int
    error: str = ""


class PullOutcome(Struct, frozen=True):
    """What one ``pull()`` call achieved."""

    ok: bool
    status: int | None
    pages: int
    changes: int
    error: str = ""


FailureKind = Literal["network", "server", "rate_limited", "upgrade", "client"]


def _mutation_touches(mutation: Mutation, entity: str, entity_id: str) -> bool:
    """Whether a mutation concerns the given entity (used to purge erased data)."""
    if isinstance(mutation, EditField):
        return mutation.entity == entity and str(mutation.entity_id) == entity_id
    if isinstance(mutation, ServerRequest):
        value = mutation.args.get(f"{entity}_id")
        return value is not None and str(value) == entity_id
    if isinstance(mutation, VoidEvent):
        if entity == "address":
            return str(mutation.address_id) == entity_id
        return mutation.entity == entity and str(mutation.event_id) == entity_id
    if entity in EVENT_ENTITIES:
        return str(mutation.id) == entity_id
    if entity == "address":
        return str(mutation.address_id) == entity_id
    if entity == "person":
        return mutation.person_id is not None and str(mutation.person_id) == entity_id
    return False


def _data_touches(data: dict[str, Any], entity: str, entity_id: str) -> bool:
    """Whether a pulled record refers to the given person or address."""
    if entity not in ("person", "address"):
        return False
    value = data.get(f"{entity}_id")
    return value is not None and str(value) == entity_id


class SyncClient:
    """A phone: local store, outbox with per-device seq, push/pull with retry, rebase and erasure."""

    def __init__(
        self,
        device_id: str,
        token: str,
        transport: Transport,
        clock: HybridClock | None = None,
        *,
        state: ClientState | None = None,
        batch_size: int = 100,
        page_limit: int = 500,
        compress_over: int | None = 8192,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        protocol_version: int = PROTOCOL_VERSION,
        max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
    ) -> None:
        self.device_id = device_id
        self.token = token
        self.transport = transport
        self.state = state or ClientState(device_id=device_id)
        self.clock = clock or HybridClock(device_id, last=self.state.clock_last)
        self.batch_size = batch_size
        self.page_limit = page_limit
        self.compress_over = compress_over
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.protocol_version = protocol_version
        self.max_skew_ms = max_skew_ms
        self.failures = 0
        self.retry_delay = 0.0
        self.last_error = ""
        self.auth_failed = False

    # ------------------------------------------------------------------ persistence

    def to_state(self) -> bytes:
        """Serialise everything the phone must keep across an app restart."""
        self.state.clock_last = self.clock.last.encode()
        return msgspec.msgpack.encode(self.state)

    @classmethod
    def from_state(
        cls,
        data: bytes,
        token: str,
        transport: Transport,
        clock: HybridClock | None = None,
        **kwargs: Any,
    ) -> SyncClient:
        """Rebuild a client from ``to_state()`` bytes (the clock resumes past its last stamp)."""
        state = msgspec.msgpack.decode(data, type=ClientState)
        if clock is None:
            clock = HybridClock(state.device_id, last=state.clock_last)
        else:
            if state.clock_last:
                clock.observe(state.clock_last)
        return cls(state.device_id, token, transport, clock, state=state, **kwargs)

    @property
    def clock(self) -> HybridClock:
        """The phone's HLC; it stamps with ``device_wall() + state.clock_offset_ms`` (contract B)."""
        return self._clock

    @clock.setter
    def clock(self, value: HybridClock) -> None:
        wall = value.wall
        owner = getattr(wall, "__self__", None)
        if owner is not self:
            if isinstance(owner, SyncClient):  # a clock handed over from an earlier client (restart)
                wall = owner.device_wall
            self.device_wall = wall
            """The device's own clock (ms); stamps use it plus ``state.clock_offset_ms``."""
            value.wall = self._stamping_wall
        self._clock = value

    def _stamping_wall(self) -> int:
        return self.device_wall() + self.state.clock_offset_ms

    @property
    def last_checksums(self) -> dict[str, str]:
        """The server's per-list checksums from the last complete pull."""
        return self.state.checksums

    # ------------------------------------------------------------------ read side

    @property
    def outbox(self) -> list[Envelope]:
        """Mutations not yet acknowledged by the server, in seq order."""
        return self.state.outbox

    @property
    def rejections(self) -> list[Rejection]:
        """Mutations the server refused, with reasons (kept for the user to see)."""
        return self.state.rejections

    @property
    def upgrade_required(self) -> bool:
        """True after the server answered 426: the queue is kept until the app is upgraded."""
        return self.state.upgrade_required

    @property
    def cursor(self) -> str | None:
        """The pull cursor: where the next pull resumes."""
        return self.state.cursor

    def get(self, entity: str, entity_id: int | str) -> dict[str, Any] | None:
        """The local view of an entity: pulled data with own pending edits on top."""
        stored = self.state.entities.get(entity, {}).get(str(entity_id))
        if stored is None:
            return None
        data = dict(stored.data)
        if entity in EDITABLE_FIELDS:
            for field, edit in self._overlay(entity, str(entity_id)).items():
                data[field] = edit.value
        return data

    def field_version(self, entity: str, entity_id: int | str, field: str) -> str | None:
        """The version of a field as this phone sees it (own latest edit, else pulled)."""
        overlay = self._overlay(entity, str(entity_id))
        if field in overlay:
            return overlay[field].hlc
        stored = self.state.entities.get(entity, {}).get(str(entity_id))
        if stored is None:
            return None
        versions = stored.data.get("field_versions") or {}
        value = versions.get(field)
        return str(value) if value else None

    def ids(self, entity: str) -> set[str]:
        """Ids of the pulled entities of one kind."""
        return set(self.state.entities.get(entity, {}))

    def events(self, entity: str) -> dict[str, dict[str, Any]]:
        """All events of a kind the phone knows: pulled ones and its own (union by id)."""
        result: dict[str, dict[str, Any]] = {
            k: dict(v.data) for k, v in self.state.entities.get(entity, {}).items()
        }
        kind = EVENT_ENTITIES[entity]
        for key, event in self.state.local_events.items():
            if isinstance(event, kind) and key not in result:
                result[key] = msgspec.to_builtins(event)
        return result

    def flags(self) -> dict[tuple[int, int | None], FlagState]:
        """Safety flags: the server's, with own observations it has not merged yet folded on top."""
        result: dict[tuple[int, int | None], FlagState] = {}
        for stored in self.state.entities.get("flag", {}).values():
            try:
                state = msgspec.convert(stored.data, FlagState)
            except msgspec.ValidationError:
                continue
            result[(state.address_id, state.person_id)] = state
        unacked = {
            str(e.mutation.id)
            for e in self.state.outbox
            if isinstance(e.mutation, RecordObservation)
        }
        for key, event in self.state.local_events.items():
            if not isinstance(event, RecordObservation):
                continue
            flag_key = (event.address_id, event.person_id)
            current = result.get(flag_key)
            if key in unacked or current is None or event.at > current.last_at:
                result[flag_key] = apply_observation(current, event)
        return result

    def _overlay(self, entity: str, entity_id: str) -> dict[str, EditField]:
        overlay: dict[str, EditField] = {}
        for pending in self.state.pending_edits:
            edit = pending.edit
            if edit.entity == entity and str(edit.entity_id) == entity_id:
                current = overlay.get(edit.field)
                if current is None or edit.hlc > current.hlc:
                    overlay[edit.field] = edit
        return overlay

    # ------------------------------------------------------------------ write side

    def _enqueue(self, mutation: Mutation) -> Envelope:
        envelope = Envelope(seq=self.state.next_seq, mutation=mutation)
        self.state.next_seq += 1
        self.state.outbox.append(envelope)
        return envelope

    def _record_event(self, event: EventMutation) -> EventMutation:
        self.state.local_events[str(event.id)] = event
        self._enqueue(event)
        return event

    def record_contact(
        self,
        address_id: int,
        outcome: OutcomeCode,
        *,
        person_id: int | None = None,
        walk_list_id: int | None = None,
    ) -> RecordContactAttempt:
        """Record a knock and its outcome (an event; queued for push)."""
        event = RecordContactAttempt(
            id=uuid.uuid4(),
            address_id=address_id,
            person_id=person_id,
            outcome=outcome,
            at=self.clock.now().encode(),
            walk_list_id=walk_list_id,
        )
        self._record_event(event)
        return event

    def record_answer(
        self,
        address_id: int,
        question_key: str,
        value: AnswerValue,
        *,
        person_id: int | None = None,
        walk_list_id: int | None = None,
        survey_id: int | None = None,
    ) -> RecordAnswer:
        """Record a survey answer (an event; a correction is another answer)."""
        event = RecordAnswer(
            id=uuid.uuid4(),
            address_id=address_id,
            person_id=person_id,
            walk_list_id=walk_list_id,
            survey_id=survey_id,
            question_key=question_key,
            value=value,
            at=self.clock.now().encode(),
        )
        self._record_event(event)
        return event

    def record_observation(
        self,
        address_id: int,
        kind: ObservationKind,
        *,
        person_id: int | None = None,
        note: str = "",
    ) -> RecordObservation:
        """Record an observation (moved away, deceased, do-not-visit or, for organisers, its clearing)."""
        event = RecordObservation(
            id=uuid.uuid4(),
            address_id=address_id,
            person_id=person_id,
            kind=kind,
            at=self.clock.now().encode(),
            note=note,
        )
        self._record_event(event)
        return event

    def edit_field(
        self, entity: Literal["person", "address"], entity_id: int, field: str, value: str | None
    ) -> EditField:
        """Edit one editable field; based on the version this phone last saw."""
        if field not in EDITABLE_FIELDS.get(entity, frozenset()):
            raise ValueError(f"{entity}.{field} is not editable from a phone")
        base = self.field_version(entity, entity_id, field)
        if base is not None:
            self._absorb(base)  # an edit is always ordered after the version it replaces
        edit = EditField(
            entity=entity,
            entity_id=entity_id,
            field=field,
            value=value,
            hlc=self.clock.now().encode(),
            base_hlc=base,
        )
        envelope = self._enqueue(edit)
        self.state.pending_edits.append(PendingEdit(edit=edit, seq=envelope.seq))
        return edit

    def undo_last(self, address_id: int) -> RecordContactAttempt | RecordAnswer | VoidEvent | None:
        """Undo this phone's latest contact attempt or answer at an address.

        Still queued: it leaves the outbox (it never reached the server; a seq gap is allowed)
        and is returned. Already sent: a correcting ``void_event`` is queued, the event disappears
        from this phone at once, and the void is returned. None when there is nothing to undo.
        Observations are not undone (they set safety flags, which only an organiser clears).
        """
        queued = [
            e for e in self.state.outbox
            if isinstance(e.mutation, (RecordContactAttempt, RecordAnswer)) and e.mutation.address_id == address_id
        ]
        if queued:
            last = max(queued, key=lambda e: e.seq)
            event = last.mutation
            assert isinstance(event, (RecordContactAttempt, RecordAnswer))
            self.state.outbox = [e for e in self.state.outbox if e.seq != last.seq]
            self.state.local_events.pop(str(event.id), None)
            return event
        own = f"-{self.device_id}"
        voided = {
            str(e.mutation.event_id) for e in self.state.outbox if isinstance(e.mutation, VoidEvent)
        }
        latest: tuple[str, str, str] | None = None  # (at, entity, id)
        for entity in ("contact_attempt", "answer"):
            for key, data in self.events(entity).items():
                at = str(data.get("at", ""))
                if str(data.get("address_id")) != str(address_id) or not at.endswith(own) or key in voided:
                    continue
                if latest is None or at > latest[0]:
                    latest = (at, entity, key)
        if latest is None:
            return None
        _, entity, key = latest
        void = VoidEvent(entity=entity, event_id=uuid.UUID(key), address_id=address_id, at=self.clock.now().encode())  # type: ignore[arg-type]
        self._enqueue(void)
        self.state.entities.get(entity, {}).pop(key, None)
        self.state.local_events.pop(key, None)
        return void

    def request(self, name: str, **args: Any) -> ServerRequest:
        """Queue a server-authoritative request (the server may refuse it)."""
        mutation = ServerRequest(name=name, args=args)
        self._enqueue(mutation)
        return mutation

    def _absorb(self, stamp: str) -> None:
        """Move the clock past a stamp the server accepted (keeps edits causally ordered)."""
        try:
            self.clock.receive(stamp, trusted=True)
        except ValueError:
            pass  # not an HLC: nothing to absorb

    # ------------------------------------------------------------------ network

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            PROTOCOL_HEADER: str(self.protocol_version),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    async def _send(self, method: str, path: str, payload: Any) -> tuple[int, bytes]:
        headers = self._headers()
        body = msgspec.json.encode(payload) if payload is not None else b""
        if self.compress_over is not None and len(body) > self.compress_over:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return await self.transport(method, path, body, headers)

    def _note_failure(self, kind: FailureKind, detail: str) -> None:
        """Remember a failure; network/server/rate-limit failures schedule a backoff (full jitter)."""
        self.last_error = f"{kind}: {detail}"
        if kind in ("network", "server", "rate_limited"):
            self.failures += 1
            ceiling = min(self.backoff_cap, self.backoff_base * (2 ** min(self.failures, 30)))
            self.retry_delay = self.rng.uniform(0, ceiling)

    def _note_success(self) -> None:
        self.failures = 0
        self.retry_delay = 0.0
        self.last_error = ""
        self.state.upgrade_required = False

    def _classify(self, status: int, body: bytes) -> FailureKind | None:
        if 200 <= status < 300:
            return None
        if status == 426:
            self.state.upgrade_required = True
            return "upgrade"
        if status == 429:
            return "rate_limited"
        if status >= 500 or status == 408:
            return "server"
        if status == 401:
            self.auth_failed = True
        return "client"

    async def _exchange(
        self, method: str, path: str, payload: Any, response_type: Any, gone: tuple[int, ...] = ()
    ) -> tuple[int | None, Any, FailureKind | None]:
        """One request: send, classify the status, decode a 2xx body as ``response_type``.

        Returns (status, decoded or None, failure or None); every failure is noted
        (``last_error``, and a backoff for network, server and rate-limit failures).
        A status in ``gone`` comes back undecoded and unnoted for the caller to handle.
        """
        try:
            status, body = await self._send(method, path, payload)
        except Exception as exc:
            self._note_failure("network", repr(exc))
            return None, None, "network"
        if status in gone:
            return status, None, None
        failure = self._classify(status, body)
        if failure is not None:
            self._note_failure(failure, body.decode("utf-8", "replace")[:500])
            return status, None, failure
        try:
            return status, msgspec.json.decode(body, type=response_type), None
        except msgspec.DecodeError as exc:
            self._note_failure("server", f"undecodable {path} response: {exc}")
            return status, None, "server"

    async def _backed_off(self, failure: FailureKind | None, attempts_left: int) -> bool:
        """True (after sleeping ``retry_delay``) if the failure is worth retrying and attempts remain."""
        if failure in ("network", "server", "rate_limited") and attempts_left > 0:
            await self.sleep(self.retry_delay)
            return True
        return False

    async def push(self, *, retries: int = 0) -> PushOutcome:
        """Send the outbox in seq order, batch by batch; keep everything not acknowledged.

        2xx: drop the acknowledged seqs (rejected ones too, recorded in
        ``rejections``). Network error, 5xx or 429: keep all, back off and, if
        ``retries`` allows, try again after ``retry_delay``. 426: keep all and
        set ``upgrade_required``. Other 4xx: keep all, stop (see ``last_error``).
        """
        sent = acknowledged = 0
        attempts_left = retries
        while self.state.outbox:
            batch = self.state.outbox[: self.batch_size]
            request = PushRequest(
                protocol_version=self.protocol_version, device_id=self.device_id, mutations=batch
            )
            sent += len(batch)
            status, response, failure = await self._exchange(
                "POST", PUSH_PATH, request, PushResponse
            )
            if response is not None:
                acknowledged += self._acknowledge(response)
                self._note_success()
                continue
            if await self._backed_off(failure, attempts_left):
                attempts_left -= 1
                continue
            return PushOutcome(
                ok=False, status=status, sent=sent, acknowledged=acknowledged, error=self.last_error
            )
        return PushOutcome(ok=True, status=200, sent=sent, acknowledged=acknowledged)

    def _acknowledge(self, response: PushResponse) -> int:
        """Drop acknowledged mutations from the outbox; keep rejection reasons visible."""
        by_seq: dict[int, MutationResult] = {}
        for r in response.results:  # a repeated seq's first result is its receipt (contract C)
            by_seq.setdefault(r.seq, r)
        kept: list[Envelope] = []
        restamped: list[Envelope] = []
        count = 0
        for envelope in self.state.outbox:
            result = by_seq.get(envelope.seq)
            if result is None:
                kept.append(envelope)
                continue
            count += 1
            if result.status == "restamp" and isinstance(envelope.mutation, EditField):
                restamped.append(envelope)
                continue
            if result.status == "rejected":
                self.state.rejections.append(
                    Rejection(seq=envelope.seq, mutation=envelope.mutation, reason=result.reason)
                )
            elif result.status == "conflict":
                self.state.conflicts.append(result)
            self._settle_pending_edit(envelope.seq, result.status)
        self.state.outbox = kept
        if response.server_time_ms:
            self._adopt_server_time(response.server_time_ms, force=bool(restamped))
        for result in response.results:
            if result.server_hlc:
                self._absorb(result.server_hlc)
        if restamped:
            self._requeue_restamped(restamped)
        return count

    def _adopt_server_time(self, server_time_ms: int, *, force: bool = False) -> None:
        """Contract B steps 1-2: take the server's clock as the reference when it differs by more
        than half the skew bound (or after a ``restamp``), and pull the HLC back if it ran ahead."""
        offset = server_time_ms - self.device_wall()
        if force or abs(offset - self.state.clock_offset_ms) > self.max_skew_ms // 2:
            self.state.clock_offset_ms = offset
        wall = self._stamping_wall()
        if self.clock.last.wall_ms > wall + self.max_skew_ms:
            self.clock.rewind(wall)

    def _restamp(self, edit: EditField) -> EditField:
        """The same edit stamped again now (after receiving its base, as every edit is)."""
        if edit.base_hlc is not None:
            self._absorb(edit.base_hlc)
        return msgspec.structs.replace(edit, hlc=self.clock.now().encode())

    def _requeue_restamped(self, restamped: list[Envelope]) -> None:
        """Contract B step 3: each edit answered ``restamp`` is queued again as a new seq,
        re-stamped; every other pending (unsent) edit is re-stamped in place."""
        old_seqs = {e.seq for e in restamped}
        self.state.pending_edits = [p for p in self.state.pending_edits if p.seq not in old_seqs]
        renamed: dict[int, EditField] = {}
        for index, envelope in enumerate(self.state.outbox):
            if isinstance(envelope.mutation, EditField):
                edit = self._restamp(envelope.mutation)
                self.state.outbox[index] = Envelope(seq=envelope.seq, mutation=edit)
                renamed[envelope.seq] = edit
        self.state.pending_edits = [
            PendingEdit(edit=renamed[p.seq], seq=p.seq, acknowledged=p.acknowledged) if p.seq in renamed else p
            for p in self.state.pending_edits
        ]
        for envelope in restamped:
            assert isinstance(envelope.mutation, EditField)
            edit = self._restamp(envelope.mutation)
            queued = self._enqueue(edit)
            self.state.pending_edits.append(PendingEdit(edit=edit, seq=queued.seq))

    def _settle_pending_edit(self, seq: int, status: str) -> None:
        edits = []
        for pending in self.state.pending_edits:
            if pending.seq != seq:
                edits.append(pending)
            elif status != "rejected":  # rejected edits never existed on the server: drop now
                edits.append(PendingEdit(edit=pending.edit, seq=seq, acknowledged=True))
        self.state.pending_edits = edits

    async def pull(self, *, retries: int = 0) -> PullOutcome:
        """Page through the change feed until ``has_more`` is false, then finish list downloads."""
        pages = changes = 0
        attempts_left = retries
        cursor_reset = False
        while True:
            request = PullRequest(
                protocol_version=self.protocol_version,
                device_id=self.device_id,
                cursor=self.state.cursor,
                limit=self.page_limit,
            )
            status, response, failure = await self._exchange(
                "POST", PULL_PATH, request, PullResponse
            )
            if response is None:
                if status == 400 and "/invalid-cursor" in self.last_error and not cursor_reset:
                    self.reset_pulled_state()  # contract E (amended): start again from nothing
                    cursor_reset = True
                    continue
                if await self._backed_off(failure, attempts_left):
                    attempts_left -= 1
                    continue
                return PullOutcome(
                    ok=False, status=status, pages=pages, changes=changes, error=self.last_error
                )
            self._note_success()
            self.apply_changes(response.changes)
            self.state.cursor = response.cursor
            pages += 1
            changes += len(response.changes)
            if not response.has_more:
                self.state.checksums = dict(response.checksums)
                break
        downloaded = await self.download_lists(retries=retries)
        if downloaded.ok:
            repaired = await self.repair_lists(retries=retries)
            downloaded = PullOutcome(
                ok=repaired.ok, status=repaired.status, pages=downloaded.pages + repaired.pages,
                changes=downloaded.changes + repaired.changes, error=repaired.error,
            )
        if not downloaded.ok:
            return PullOutcome(
                ok=False,
                status=downloaded.status,
                pages=pages + downloaded.pages,
                changes=changes + downloaded.changes,
                error=downloaded.error,
            )
        return PullOutcome(
            ok=True,
            status=200,
            pages=pages + downloaded.pages,
            changes=changes + downloaded.changes,
        )

    async def download_lists(self, *, retries: int = 0) -> PullOutcome:
        """Fetch newly assigned walk lists page by page; resumes from the saved page token."""
        pages = changes = 0
        attempts_left = retries
        while self.state.downloads:
            list_id = min(self.state.downloads, key=int)
            token = self.state.downloads[list_id]
            path = LIST_PATH.format(list_id=list_id)
            if token:
                path += f"?page_token={token}"
            status, page, failure = await self._exchange(
                "GET", path, None, ListPage, gone=(403, 404)
            )
            if status in (403, 404):  # no longer ours: the feed will send a remove
                self.state.downloads.pop(list_id, None)
                continue
            if page is None:
                if await self._backed_off(failure, attempts_left):
                    attempts_left -= 1
                    continue
                return PullOutcome(
                    ok=False, status=status, pages=pages, changes=changes, error=self.last_error
                )
            self._note_success()
            self.apply_changes(page.changes, from_download=True)
            pages += 1
            changes += len(page.changes)
            if list_id not in self.state.downloads:
                continue  # removed while downloading
            if page.next_page_token:
                self.state.downloads[list_id] = page.next_page_token
            else:
                del self.state.downloads[list_id]
        return PullOutcome(ok=True, status=200, pages=pages, changes=changes)

    def reset_pulled_state(self) -> None:
        """Forget everything pulled (the cursor too), keeping the outbox, own unsent events and
        edits: after an invalid cursor the phone cannot know which erasures it missed, so it
        rebuilds its copy from a fresh pull rather than keep records that may have been erased."""
        unsent = {str(e.mutation.id) for e in self.state.outbox if hasattr(e.mutation, "id")}
        self.state.cursor = None
        self.state.entities = {}
        self.state.removed = {}
        self.state.downloads = {}
        self.state.checksums = {}
        self.state.local_events = {k: v for k, v in self.state.local_events.items() if k in unsent}
        self.state.pending_edits = [p for p in self.state.pending_edits if not p.acknowledged]

    def _list_scope(self, list_id: str) -> list[str]:
        """Contract E: the ``"{entity}:{id}"`` keys this phone holds because of walk list ``list_id``."""
        entities = self.state.entities
        keys = [f"walk_list:{list_id}"] if list_id in entities.get("walk_list", {}) else []
        addresses: set[str] = set()
        for stop_id, stop in entities.get("stop", {}).items():
            if str(stop.data.get("walk_list_id")) == list_id:
                keys.append(f"stop:{stop_id}")
                addresses.add(str(stop.data.get("address_id")))
        keys += [f"address:{a}" for a in addresses if a in entities.get("address", {})]
        keys += [
            f"person:{p}"
            for p, person in entities.get("person", {}).items()
            if str(person.data.get("address_id")) in addresses
        ]
        return keys

    def list_checksum(self, list_id: int | str) -> str:
        """This phone's checksum of walk list ``list_id`` (compared with the server's, contract E)."""
        return list_checksum(self._list_scope(str(list_id)))

    async def repair_lists(self, *, retries: int = 0) -> PullOutcome:
        """Re-download every list whose checksum differs from the server's; drop local records of
        its scope that the download did not contain (and no other held list holds)."""
        pages = changes = 0
        for list_id, expected in sorted(self.state.checksums.items()):
            if list_id not in self.state.entities.get("walk_list", {}) and list_id in self.state.downloads:
                continue  # still downloading
            if self.list_checksum(list_id) == expected:
                continue
            received: set[str] = set()
            token = ""
            while True:
                path = LIST_PATH.format(list_id=list_id) + (f"?page_token={token}" if token else "")
                status, page, failure = await self._exchange("GET", path, None, ListPage, gone=(403, 404))
                if status in (403, 404):
                    break
                if page is None:
                    if await self._backed_off(failure, retries):
                        retries -= 1
                        continue
                    return PullOutcome(ok=False, status=status, pages=pages, changes=changes, error=self.last_error)
                self.apply_changes(page.changes, from_download=True)
                received |= {f"{c.entity}:{c.id}" for c in page.changes if isinstance(c, Upsert)}
                pages += 1
                changes += len(page.changes)
                if not page.next_page_token:
                    break
                token = page.next_page_token
            if status in (403, 404):
                continue
            others = {k for other in self.state.checksums if other != list_id for k in self._list_scope(other)}
            for key in set(self._list_scope(list_id)) - received - others:
                entity, _, entity_id = key.partition(":")
                self.state.entities.get(entity, {}).pop(entity_id, None)
        return PullOutcome(ok=True, status=200, pages=pages, changes=changes)

    async def sync(self, *, retries: int = 0) -> tuple[PushOutcome, PullOutcome | None]:
        """Push then pull (pull is skipped after a network failure or upgrade-required)."""
        pushed = await self.push(retries=retries)
        if not pushed.ok and (self.state.upgrade_required or pushed.status is None):
            return pushed, None
        pulled = await self.pull(retries=retries)
        return pushed, pulled

    # ------------------------------------------------------------------ applying changes

    def apply_changes(self, changes: list[Change], *, from_download: bool = False) -> None:
        """Apply pulled changes in order (idempotent: replaying a page changes nothing)."""
        for change in changes:
            if isinstance(change, Upsert):
                self._apply_upsert(change, from_download=from_download)
            elif isinstance(change, Remove):
                self._apply_remove(change)
            elif isinstance(change, Erase):
                self._apply_erase(change)

    def _apply_upsert(self, change: Upsert, *, from_download: bool) -> None:
        if change.id in self.state.erased.get(change.entity, []):
            return  # erased ids never come back
        removed_at = self.state.removed.get(change.entity, {}).get(change.id)
        if removed_at is not None and removed_at > change.version:
            return  # stale copy of something that has since left scope
        table = self.state.entities.setdefault(change.entity, {})
        stored = table.get(change.id)
        if stored is not None and stored.version > change.version:
            return  # never go back in time
        is_new = stored is None
        table[change.id] = StoredEntity(data=dict(change.data), version=change.version)
        self.state.removed.get(change.entity, {}).pop(change.id, None)
        if _looks_like_hlc(change.version):
            self._absorb(change.version)
        for stamp in (change.data.get("field_versions") or {}).values():
            if isinstance(stamp, str):
                self._absorb(stamp)
        if change.entity == "walk_list" and is_new and not from_download:
            self.state.downloads.setdefault(change.id, "")
        if change.entity in EDITABLE_FIELDS:
            self._rebase(change.entity, change.id, change.data)

    def _rebase(self, entity: str, entity_id: str, data: dict[str, Any]) -> None:
        """Drop acknowledged own edits once the pulled copy is at least as new as them."""
        versions = data.get("field_versions") or {}
        kept = []
        for pending in self.state.pending_edits:
            edit = pending.edit
            if (
                pending.acknowledged
                and edit.entity == entity
                and str(edit.entity_id) == entity_id
                and (versions.get(edit.field) or "") >= edit.hlc
            ):
                continue
            kept.append(pending)
        self.state.pending_edits = kept

    def _apply_remove(self, change: Remove) -> None:
        self.state.entities.get(change.entity, {}).pop(change.id, None)
        self.state.removed.setdefault(change.entity, {})[change.id] = change.version
        if change.entity == "walk_list":
            self.state.downloads.pop(change.id, None)

    def _apply_erase(self, change: Erase) -> None:
        entity, entity_id = change.entity, change.id
        erased = self.state.erased.setdefault(entity, [])
        if entity_id not in erased:
            erased.append(entity_id)
        self.state.entities.get(entity, {}).pop(entity_id, None)
        self.state.removed.get(entity, {}).pop(entity_id, None)
        for table in self.state.entities.values():
            for key in [k for k, v in table.items() if _data_touches(v.data, entity, entity_id)]:
                del table[key]
        self.state.local_events = {
            k: v
            for k, v in self.state.local_events.items()
            if not _mutation_touches(v, entity, entity_id)
        }
        self.state.outbox = [
            e for e in self.state.outbox if not _mutation_touches(e.mutation, entity, entity_id)
        ]
        self.state.pending_edits = [
            p for p in self.state.pending_edits if not _mutation_touches(p.edit, entity, entity_id)
        ]
        self.state.rejections = [
            r for r in self.state.rejections if not _mutation_touches(r.mutation, entity, entity_id)
        ]
        if entity == "walk_list":
            self.state.downloads.pop(entity_id, None)


def _looks_like_hlc(text: str) -> bool:
    return len(text) > 21 and text[13] == "-" and text[20] == "-"
