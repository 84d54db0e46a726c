"""A Hypothesis RuleBasedStateMachine over the whole sync protocol, on SQLite and PostgreSQL.

Four phones (two of one canvasser, one of a second canvasser, one of an
organiser) talk to the real app (Litestar's AsyncTestClient, real database)
through the shared ``LossyNetwork`` of ``tests/sync/conftest.py``: requests
and responses are dropped, requests are duplicated and delivered late in
shuffled order. Rules record events, edit fields (also two phones at once,
on purpose), set and clear do-not-visit, reassign walk lists, erase a person,
erase a person or an address while a phone's push about them races the erasure,
push mutations stamped too far in the future, send pushes that must fail,
replay pushes and pull pages, and restart phones from their saved state.

Checked after every step: read-your-writes and no going back in time per
phone, every pull page and list page stays inside the user's scope *at the
time it was served*, and the server clock never runs ahead of the skew
bound. Checked in ``teardown`` after the network heals and every phone has
synced twice: convergence (phones agree with each other and with the
database), no acknowledged write lost (each processed mutation is applied,
a conflict loser or a rejection record; each seq processed exactly once;
field values and open conflicts equal the pure merge rule's), erased people
and addresses leave no personal data in any table, feed, conflict record or
phone and nothing resurrects them, merge
is commutative / associative / idempotent on the edits that actually
happened.

Hypothesis state machines are synchronous, so each example owns an event
loop (``asyncio.new_event_loop``) and every rule runs its coroutine to
completion on it; pytest-asyncio's session loop is never touched.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from server.accounts.security import build_jwt_auth
from server.accounts.services import AccountService
from server.app import create_app
from server.campaigns.schemas import CampaignCreate
from server.campaigns.services import create_campaign
from server.db.models import (
    Address,
    Answer,
    Assignment,
    Base,
    Conflict,
    ContactAttempt,
    Device,
    Flag,
    HeldMutation,
    Observation,
    Person,
    Role,
    Survey,
    Tombstone,
    WalkListStop,
)
from server.db.models import MutationResult as MutationResultRow
from server.db.session import create_engine_for, create_sessionmaker
from server.settings import load_settings
from server.sync.controllers import SyncController
from server.sync.erasure import erase_address, erase_person
from server.sync.store import SERVER_CLOCK
from sync.client import SyncClient
from sync.clock import DEFAULT_MAX_SKEW_MS, HLC, HybridClock, format_hlc, system_wall_ms
from sync.merge import (
    conflict_losers,
    fold_field_edits,
    merge_events,
    merge_field_states,
)
from sync.protocol import (
    EditField,
    Envelope,
    ListPage,
    Mutation,
    PullResponse,
    PushRequest,
    RecordAnswer,
    RecordContactAttempt,
    RecordObservation,
    Upsert,
)
from tests.conftest import TEST_PASSWORD, World, truncate_all
from tests.sync.conftest import LossyNetwork, app_transport, make_town, register_phone

EVENT_TABLES = {"contact_attempt": ContactAttempt, "answer": Answer, "observation": Observation}
PHONE_OWNERS = ("canvasser", "canvasser", "canvasser2", "organiser")
SKEWED_PHONE = 1  # this phone's wall clock runs 90 s fast: inside the bound, so accepted
VOLATILE_COLUMNS = {"updated_at", "last_sync_at", "last_seen_at", "protocol_version"}
PERSON_FIELDS = ("phone", "note")
PAGE_LIMIT = 12  # small pages so pulls span several (and replaying one is meaningful)
ADDRESS_FIELDS = ("access_note",)

MACHINE_SETTINGS = settings(
    max_examples=int(os.environ.get("CANVASS_SYNC_MACHINE_EXAMPLES", "8")),
    stateful_step_count=int(os.environ.get("CANVASS_SYNC_MACHINE_STEPS", "20")),
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate] if os.environ.get("CANVASS_SYNC_MACHINE_NO_SHRINK") else list(Phase),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _mutation_person(mutation: Mutation) -> int | None:
    if isinstance(mutation, EditField):
        return mutation.entity_id if mutation.entity == "person" else None
    return getattr(mutation, "person_id", None)


def _mutation_address(mutation: Mutation) -> int | None:
    if isinstance(mutation, EditField):
        return mutation.entity_id if mutation.entity == "address" else None
    return getattr(mutation, "address_id", None)


class Inspector:
    """Sits between the lossy network and the app: sees what the server really answered.

    It records each device's last acknowledged push and last pull request,
    every mutation result the server handed out, and checks each pull or
    list page against the scope its user has at that moment.
    """

    def __init__(self, machine: SyncMachine) -> None:
        self.machine = machine
        self.inner = app_transport(machine.client)
        self.last_push: dict[str, tuple[bytes, dict[str, str], dict[str, Any]]] = {}
        self.last_pull_cursor: dict[str, str | None] = {}
        self.last_pull_changes: dict[str, list[Any]] = {}
        self.statuses: dict[tuple[str, int], str] = {}
        self.violations: list[Any] = []

    async def __call__(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        status, answer = await self.inner(method, path, body, headers)
        token = headers["Authorization"].split(" ", 1)[1]
        if status != 200:
            return status, answer
        if path == "/api/sync/push":
            decoded = msgspec.json.decode(answer)
            self.last_push[token] = (body, dict(headers), decoded)
            for result in decoded["results"]:
                self.statuses[(token, result["seq"])] = result["status"]
        elif path == "/api/sync/pull":
            request = msgspec.json.decode(_gunzip(body))
            self.last_pull_cursor[token] = request.get("cursor")
            page = msgspec.json.decode(answer, type=PullResponse)
            self.last_pull_changes[token] = list(page.changes)
            self.violations += await self.machine.check_scope(token, page.changes)
        elif path.startswith("/api/sync/lists/"):
            listing = msgspec.json.decode(answer, type=ListPage)
            self.violations += await self.machine.check_scope(token, listing.changes)
        return status, answer


def _gunzip(body: bytes) -> bytes:
    import gzip

    return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body


KEEP_TABLES = {"campaigns", "users", "memberships", "refresh_tokens", "revoked_access_tokens", "audit_events"}


class Harness:
    """What every example of one backend shares: an event loop, the app under test, the accounts.

    Signing users in and starting the app dominate an example's cost, so they
    happen once per backend; each example then wipes every other table and
    builds a fresh town and fresh phones.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.client: Any = None
        self.engine: Any = None

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def start(self) -> None:
        await truncate_all(self.url)
        self.settings = load_settings(
            environ={},
            database_url=self.url,
            secret_key="test-secret-key-" + "x" * 32,
            auth_rate_per_minute=10_000,
            sync_rate_per_minute=1_000_000,
        )
        app = create_app(self.settings)
        if not any(route.path == "/api/sync/push" for route in app.routes):
            app.register(SyncController)
        self.client = AsyncTestClient(app=app)
        await self.client.__aenter__()
        self.engine = create_engine_for(self.url)
        self.sessionmaker = create_sessionmaker(self.engine)
        jwt_auth = build_jwt_auth(self.settings.secret_key, self.settings.access_token_minutes)
        async with self.sessionmaker() as session:
            accounts = AccountService(session, self.settings, jwt_auth)
            a = await create_campaign(session, CampaignCreate(name="A", slug="a"), None)
            b = await create_campaign(session, CampaignCreate(name="B", slug="b"), None)
            world = World(campaign_a=a.id, campaign_b=b.id)
            for name, role in (
                ("canvasser", Role.canvasser),
                ("canvasser2", Role.canvasser),
                ("organiser", Role.organiser),
                ("admin", Role.admin),
            ):
                user = await accounts.create_user(f"{name}@example.org", name, TEST_PASSWORD)
                await accounts.add_member(user, a.id, role)
                world.users[name] = user.id
            await session.commit()
        for name in world.users:
            response = await self.client.post(
                "/api/auth/login", json={"email": f"{name}@example.org", "password": TEST_PASSWORD}
            )
            assert response.status_code == 200, response.text
            world.tokens[name] = response.json()["access_token"]
        self.world = world

    async def wipe(self) -> None:
        """Empty every table but the accounts (children first)."""
        async with self.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                if table.name not in KEEP_TABLES:
                    await conn.execute(table.delete())

    def close(self) -> None:
        try:
            if self.client is not None:
                self.run(self.client.__aexit__(None, None, None))
            if self.engine is not None:
                self.run(self.engine.dispose())
            self.run(truncate_all(self.url))
        finally:
            self.loop.close()


class SyncMachine(RuleBasedStateMachine):
    """Phones, an organiser and a lossy network against the real server."""

    harness: Harness

    def __init__(self) -> None:
        super().__init__()
        self.ready = False

    def run(self, coroutine: Any) -> Any:
        return self.harness.run(coroutine)

    # ------------------------------------------------------------------ set-up

    @initialize(seed=st.integers(0, 2**16))
    def build_world(self, seed: int) -> None:
        self.run(self._build_world(seed))
        self.ready = True

    async def _build_world(self, seed: int) -> None:
        harness = self.harness
        await harness.wipe()
        self.client = harness.client
        self.engine = harness.engine
        self.sessionmaker = harness.sessionmaker
        world = self.world = harness.world
        self.town = await make_town(self.sessionmaker, world, doors_per_list=3)
        l0, l1 = self.town.lists
        async with self.sessionmaker() as session:
            session.add(Assignment(walk_list_id=l1, user_id=world.users["canvasser2"]))
            session.add(Assignment(walk_list_id=l0, user_id=world.users["organiser"]))
            session.add(Assignment(walk_list_id=l1, user_id=world.users["organiser"]))
            # unique surnames, so erased personal data can be searched for in every table
            for person in await session.scalars(select(Person)):
                person.surname = f"Zq{person.id}Zq"
            await session.commit()
        self.holder = {l0: "canvasser", l1: "canvasser2"}  # which canvasser holds each list
        self.rng = random.Random(seed)
        self.inspector = Inspector(self)
        self.network = LossyNetwork(self.inspector, self.rng, loss=0.25, dup=0.2)
        self.phones: list[SyncClient] = []
        self.user_of_token: dict[str, str] = {}
        for index, who in enumerate(PHONE_OWNERS):
            phone = await register_phone(
                self.client,
                world,
                who,
                world.campaign_a,
                transport=self.network,
                rng=random.Random(seed + index),
                page_limit=PAGE_LIMIT,
                batch_size=3,
            )
            if index == SKEWED_PHONE:
                phone.clock = HybridClock(phone.device_id, wall=lambda: system_wall_ms() + 90_000)
            self.user_of_token[phone.token] = who
            self.phones.append(phone)
        async with self.sessionmaker() as session:
            self.device_pk = {
                p.device_id: await session.scalar(select(Device.id).where(Device.node_id == p.device_id))
                for p in self.phones
            }
        self.network.enabled = False
        for phone in self.phones:
            assert (await phone.pull()).ok, phone.last_error
        self.network.enabled = True
        self.all_people = [p for people in self.town.people.values() for p in people]
        self.all_addresses = [a for lst in self.town.lists for a in self.town.addresses[lst]]
        self.enqueued: dict[tuple[str, int], Mutation] = {}  # (node id, seq) -> mutation
        self.edits: list[EditField] = []
        self.own_edits: dict[int, list[EditField]] = {i: [] for i in range(len(self.phones))}
        self.own_events: dict[int, list[Any]] = {i: [] for i in range(len(self.phones))}
        self.far_future: set[tuple[str, int]] = set()
        self.erased: set[int] = set()
        self.erased_addresses: set[int] = set()
        self.seen_versions: dict[int, dict[tuple[str, str], str]] = {i: {} for i in range(len(self.phones))}
        self.counter = 0

    def _note_enqueued(self, phone: SyncClient) -> None:
        for envelope in phone.outbox:
            self.enqueued.setdefault((phone.device_id, envelope.seq), envelope.mutation)

    def _value(self) -> str:
        self.counter += 1
        return f"E{self.counter}x"

    # ------------------------------------------------------------------ rules: phone work

    @rule(phone=st.integers(0, 3), door=st.integers(0, 5), who=st.integers(0, 1),
          kind=st.sampled_from(["contact", "answer", "dnv", "moved"]), count=st.integers(1, 4))
    def record_events(self, phone: int, door: int, who: int, kind: str, count: int) -> None:
        """A phone records a few events at neighbouring doors (a canvasser works a street)."""
        client = self.phones[phone]
        for n in range(count):
            address = self.all_addresses[(door + n) % len(self.all_addresses)]
            person = self.town.people[address][who]
            if kind == "contact":
                event: Any = client.record_contact(address, self.rng.choice(["spoke", "not_home"]), person_id=person)
            elif kind == "answer":
                key, value = self.rng.choice([("vote", "lab"), ("certainty", 2), ("poster", True)])
                event = client.record_answer(address, key, value, person_id=person)
            elif kind == "dnv":
                event = client.record_observation(address, "do_not_visit", person_id=person)
            else:
                event = client.record_observation(address, "moved_away")
            self.own_events[phone].append(event)
        self._note_enqueued(client)

    @rule(phone=st.integers(0, 3), door=st.integers(0, 5), who=st.integers(0, 2),
          field=st.integers(0, 1), blank=st.booleans())
    def edit_field(self, phone: int, door: int, who: int, field: int, blank: bool) -> None:
        self._edit(phone, door, who, field, None if blank and who < 2 else self._value())

    def _edit(self, phone: int, door: int, who: int, field: int, value: str | None) -> None:
        client = self.phones[phone]
        address = self.all_addresses[door]
        if who == 2:
            edit = client.edit_field("address", address, ADDRESS_FIELDS[0], value)
        else:
            edit = client.edit_field("person", self.town.people[address][who], PERSON_FIELDS[field], value)
        self.edits.append(edit)
        self.own_edits[phone].append(edit)
        self._note_enqueued(client)

    @rule(pair=st.sampled_from([(0, 2), (0, 3), (1, 3), (2, 3), (0, 1)]), door=st.integers(0, 5),
          who=st.integers(0, 2))
    def concurrent_edits(self, pair: tuple[int, int], door: int, who: int) -> None:
        """Two phones edit the same field before either syncs: a conflict on purpose."""
        for phone in pair:
            self._edit(phone, door, who, 0, self._value())

    @rule(door=st.integers(0, 5), who=st.integers(0, 1))
    def organiser_clears_do_not_visit(self, door: int, who: int) -> None:
        address = self.all_addresses[door]
        person = self.town.people[address][who]
        event = self.phones[3].record_observation(address, "do_not_visit_cleared", person_id=person)
        self.own_events[3].append(event)
        self._note_enqueued(self.phones[3])

    @rule(phone=st.integers(0, 3), door=st.integers(0, 5), minutes=st.sampled_from([4, 60, 24 * 60]))
    def clock_skewed_mutation(self, phone: int, door: int, minutes: int) -> None:
        """A mutation stamped minutes ahead: within the 5-minute bound it applies, beyond it is rejected."""
        client = self.phones[phone]
        wall = system_wall_ms() + minutes * 60_000
        event = RecordContactAttempt(
            id=uuid.uuid4(),
            address_id=self.all_addresses[door],
            outcome="spoke",
            at=format_hlc(HLC(wall, 0, client.device_id)),
        )
        seq = client.state.next_seq
        client.state.outbox.append(Envelope(seq=seq, mutation=event))
        client.state.next_seq += 1
        if minutes > 5:
            self.far_future.add((client.device_id, seq))
        self._note_enqueued(client)

    @rule(phone=st.integers(0, 3), hours=st.sampled_from([-3, 0, 2, 26]))
    def clock_jumps(self, phone: int, hours: int) -> None:
        """The phone's own clock jumps hours ahead or back (0: it is put right): its events are kept
        (untrusted when far ahead), its edits answered restamp and re-queued until its clock is adopted."""
        client = self.phones[phone]
        offset = hours * 3_600_000
        base = (lambda: system_wall_ms() + 90_000) if phone == SKEWED_PHONE else system_wall_ms
        client.device_wall = lambda: base() + offset

    @rule(phone=st.integers(0, 3))
    def sign_in_again(self, phone: int) -> None:
        """Mid-queue the device is revoked and its user signs in again with the install's node id:
        the old token is refused, the queue is accepted with the new one."""
        self.run(self._sign_in_again(phone))

    async def _sign_in_again(self, phone: int) -> None:
        client = self.phones[phone]
        who = PHONE_OWNERS[phone]
        base = f"/api/campaigns/{self.world.campaign_a}/devices"
        revoked = await self.client.delete(f"{base}/{self.device_pk[client.device_id]}", headers=self.world.auth(who))
        assert revoked.status_code == 204, revoked.text
        old = client.token
        status, _ = await self.inspector.inner("POST", "/api/sync/pull", msgspec.json.encode(
            {"protocol_version": 1, "device_id": client.device_id}), {"Authorization": f"Bearer {old}", "X-Canvass-Protocol": "1"})
        assert status == 401
        again = await self.client.post(base, json={"name": "again", "node_id": client.device_id}, headers=self.world.auth(who))
        assert again.status_code == 201, again.text
        assert again.json()["node_id"] == client.device_id
        client.token = again.json()["token"]
        self.user_of_token[client.token] = who

    @rule(phone=st.integers(0, 3), how=st.sampled_from(["forged", "other_device", "huge"]))
    def hostile_cursor(self, phone: int, how: str) -> None:
        """A cursor the server did not issue to this device: 400 invalid-cursor, nothing changes."""
        import base64

        client = self.phones[phone]
        if how == "forged":
            cursor = base64.urlsafe_b64encode(msgspec.json.encode(
                {"horizon": 0, "lists": self.town.lists})).decode() + ".AAAA"
        elif how == "other_device":
            cursor = self.phones[(phone + 1) % 4].cursor or "x.y"
        else:
            cursor = "A" * 200_000
        before = self.run(self.snapshot())
        status, answer = self.run(self.inspector.inner("POST", "/api/sync/pull", msgspec.json.encode(
            {"protocol_version": 1, "device_id": client.device_id, "cursor": cursor}),
            {"Authorization": f"Bearer {client.token}", "X-Canvass-Protocol": "1"}))
        assert status == 400 and msgspec.json.decode(answer)["type"].endswith("/invalid-cursor"), (status, answer[:200])
        assert self.run(self.snapshot()) == before

    # ------------------------------------------------------------------ rules: network

    @rule(phone=st.integers(0, 3), action=st.sampled_from(["push", "pull", "sync"]))
    def exchange(self, phone: int, action: str) -> None:
        client = self.phones[phone]
        if action == "push":
            self.run(client.push())
        elif action == "pull":
            self.run(client.pull())
        else:
            self.run(client.sync())

    @rule()
    def deliver_late_duplicates(self) -> None:
        self.run(self.network.deliver_delayed())

    @rule(phone=st.integers(0, 3))
    def restart_phone(self, phone: int) -> None:
        old = self.phones[phone]
        clock = old.clock if phone == SKEWED_PHONE else None
        self.phones[phone] = SyncClient.from_state(
            old.to_state(), old.token, self.network, clock,
            rng=random.Random(phone), page_limit=PAGE_LIMIT, batch_size=3,
        )

    @rule(phone=st.integers(0, 3))
    def replay_last_push(self, phone: int) -> None:
        """Resending an acknowledged push returns the same results and changes nothing."""
        token = self.phones[phone].token
        recorded = self.inspector.last_push.get(token)
        if recorded is None:
            return
        body, headers, first = recorded
        before = self.run(self.snapshot())
        status, answer = self.run(self.inspector.inner("POST", "/api/sync/push", body, headers))
        assert status == 200, answer
        again = msgspec.json.decode(answer)
        assert again["results"] == first["results"]
        assert again["last_seq"] >= first["last_seq"]
        assert self.run(self.snapshot()) == before

    @rule(phone=st.integers(0, 3))
    def replay_last_pull_page(self, phone: int) -> None:
        """Pull to the end, then pull the last page again and re-apply it: the phone shows the same."""
        client = self.phones[phone]
        self.network.enabled = False
        try:
            outcome = self.run(client.pull())
            assert outcome.ok, client.last_error
            before = _phone_view(client)
            token = client.token
            client.apply_changes(self.inspector.last_pull_changes.get(token, []))
            assert _phone_view(client) == before
            client.state.cursor = self.inspector.last_pull_cursor.get(token)
            assert self.run(client.pull()).ok, client.last_error
            assert _phone_view(client) == before
        finally:
            self.network.enabled = True

    @rule(phone=st.integers(0, 3), how=st.sampled_from(["bad_seq", "too_many", "wrong_device", "truncated"]))
    def failing_push(self, phone: int, how: str) -> None:
        """A push the server must refuse as a whole (4xx) leaves every table as it was."""
        client = self.phones[phone]
        envelopes = list(client.outbox) or [
            Envelope(seq=client.state.next_seq, mutation=RecordContactAttempt(
                id=uuid.uuid4(), address_id=self.all_addresses[0], outcome="spoke",
                at=client.clock.now().encode()))
        ]
        payload: Any = msgspec.to_builtins(
            PushRequest(protocol_version=1, device_id=client.device_id, mutations=envelopes)
        )
        if how == "bad_seq":
            payload["mutations"].append({"seq": "not-a-number", "mutation": payload["mutations"][0]["mutation"]})
        elif how == "too_many":
            payload["mutations"] = payload["mutations"] * (1001 // len(payload["mutations"]) + 1)
        elif how == "wrong_device":
            payload["device_id"] = self.phones[(phone + 1) % 4].device_id
        body = msgspec.json.encode(payload)
        if how == "truncated":
            body = body[: len(body) // 2]
        headers = {"Authorization": f"Bearer {client.token}", "X-Canvass-Protocol": "1",
                   "Content-Type": "application/json"}
        before = self.run(self.snapshot())
        status, _ = self.run(self.inspector.inner("POST", "/api/sync/push", body, headers))
        assert 400 <= status < 500, (how, status)
        assert self.run(self.snapshot()) == before

    # ------------------------------------------------------------------ rules: server side

    @rule(list_index=st.integers(0, 1))
    def reassign_list(self, list_index: int) -> None:
        """The organiser moves a list from one canvasser to the other (work already done is kept)."""
        self.run(self._reassign(self.town.lists[list_index]))

    async def _reassign(self, list_id: int) -> None:
        old = self.holder[list_id]
        new = "canvasser2" if old == "canvasser" else "canvasser"
        async with self.sessionmaker() as session:
            await session.execute(
                update(Assignment)
                .where(Assignment.walk_list_id == list_id, Assignment.user_id == self.world.users[old],
                       Assignment.ended_at.is_(None))
                .values(ended_at=datetime.now(UTC))
            )
            session.add(Assignment(walk_list_id=list_id, user_id=self.world.users[new]))
            await session.commit()
        self.holder[list_id] = new

    @precondition(lambda self: len(getattr(self, "erased", ())) < 3)
    @rule(door=st.integers(0, 5), who=st.integers(0, 1))
    def erase_a_person(self, door: int, who: int) -> None:
        person = self.town.people[self.all_addresses[door]][who]
        if person in self.erased:
            return
        self.erased.add(person)
        self.run(self._erase(person))

    async def _erase(self, person: int) -> None:
        async with self.sessionmaker() as session:
            await erase_person(session, self.world.campaign_a, person, self.world.users["admin"])
            await session.commit()
        await self.assert_no_personal_data(person)

    @precondition(lambda self: len(getattr(self, "erased", ())) < 3)
    @rule(phone=st.integers(0, 3), door=st.integers(0, 5), who=st.integers(0, 1), address=st.booleans())
    def erasure_races_a_push(self, phone: int, door: int, who: int, address: bool) -> None:
        """A phone holds queued work about a person (or their door); the person (or the whole
        address) is erased while that push is on its way: whichever commits first, nothing of
        them remains and nothing comes back."""
        address_id = self.all_addresses[door]
        person = self.town.people[address_id][who]
        if person in self.erased or address_id in self.erased_addresses:
            return
        client = self.phones[phone]
        self.own_events[phone].append(client.record_contact(address_id, "spoke", person_id=person))
        self.own_events[phone].append(client.record_answer(address_id, "vote", "lab", person_id=person))
        self.own_events[phone].append(client.record_observation(address_id, "moved_away"))
        self._edit(phone, door, who, 0, self._value())
        if address:
            self._edit(phone, door, 2, 0, self._value())  # a note about the door, erased with it
            self.erased_addresses.add(address_id)
            self.erased |= set(self.town.people[address_id])
        else:
            self.erased.add(person)
        self.run(self._race(client, address_id if address else None, person))

    async def _race(self, client: SyncClient, address_id: int | None, person: int) -> None:
        async def erase() -> None:
            async with self.sessionmaker() as session:
                if address_id is None:
                    await erase_person(session, self.world.campaign_a, person, self.world.users["admin"])
                else:
                    await erase_address(session, self.world.campaign_a, address_id, self.world.users["admin"])
                await session.commit()

        await asyncio.gather(client.push(), erase())
        for erased in self.town.people[address_id] if address_id is not None else [person]:
            await self.assert_no_personal_data(erased)
        if address_id is not None:
            await self.assert_address_gone(address_id)

    @rule(phone=st.integers(0, 3))
    def late_push_for_erased_person(self, phone: int) -> None:
        """A phone that never heard of the erasure pushes work on the person: rejected, not resurrected."""
        alone = {p for p in self.erased if not any(p in self.town.people[a] for a in self.erased_addresses)}
        if not alone:
            return
        person = min(alone)
        address = next(a for a, people in self.town.people.items() if person in people)
        client = self.phones[phone]
        self.network.enabled = False
        try:
            assert self.run(client.push()).ok, client.last_error  # flush earlier work first
            client.record_answer(address, "vote", "lab", person_id=person)
            client.edit_field("person", person, "note", self._value())
            self._note_enqueued(client)
            rejected_before = len(client.rejections)
            assert self.run(client.push()).ok, client.last_error
            reasons = [r.reason for r in client.rejections[rejected_before:]]
            assert reasons == [f"erased: person {person} was erased"] * 2, reasons
        finally:
            self.network.enabled = True
        self.run(self.assert_no_personal_data(person))

    # ------------------------------------------------------------------ invariants

    @invariant()
    def server_clock_within_bound(self) -> None:
        if self.ready:
            assert SERVER_CLOCK.last.wall_ms <= system_wall_ms() + DEFAULT_MAX_SKEW_MS

    @invariant()
    def read_your_writes(self) -> None:
        """A phone shows its own latest edit of a field, or something newer; its own events always."""
        if not self.ready:
            return
        for index, phone in enumerate(self.phones):
            latest: dict[tuple[str, int, str], EditField] = {}
            for edit in self.own_edits[index]:
                status = self.inspector.statuses.get((phone.token, self._seq_of(phone, edit)))
                if status == "rejected":
                    continue
                key = (edit.entity, edit.entity_id, edit.field)
                if key not in latest or edit.hlc > latest[key].hlc:
                    latest[key] = edit
            for (entity, entity_id, field), mine in latest.items():
                if entity_id in (self.erased if entity == "person" else self.erased_addresses):
                    continue
                shown = phone.get(entity, entity_id)
                if shown is None:
                    continue  # not in scope (or not downloaded yet)
                assert any(e.value == shown[field] and e.hlc >= mine.hlc for e in self.edits), (
                    index, entity, entity_id, field, shown[field], mine)
            for event in self.own_events[index]:
                if event.person_id in self.erased or event.address_id in self.erased_addresses:
                    continue
                entity = _event_entity(event)
                assert str(event.id) in phone.events(entity)

    def _seq_of(self, phone: SyncClient, mutation: Mutation) -> int:
        for (node, seq), queued in self.enqueued.items():
            if node == phone.device_id and queued is mutation:
                return seq
        return -1

    @invariant()
    def never_back_in_time(self) -> None:
        if not self.ready:
            return
        for index, phone in enumerate(self.phones):
            seen = self.seen_versions[index]
            for entity, table in phone.state.entities.items():
                for entity_id, stored in table.items():
                    key = (entity, entity_id)
                    assert stored.version >= seen.get(key, ""), (index, key)
                    seen[key] = stored.version
                    for field, stamp in (stored.data.get("field_versions") or {}).items():
                        fkey = (f"{entity}.{field}", entity_id)
                        assert stamp >= seen.get(fkey, ""), (index, fkey)
                        seen[fkey] = stamp

    # ------------------------------------------------------------------ checks used by rules

    async def scope_of(self, user: str) -> dict[str, set[str]]:
        """What a user may see now, straight from the server-held assignments."""
        user_id = self.world.users[user]
        async with self.sessionmaker() as session:
            lists = set(await session.scalars(
                select(Assignment.walk_list_id).where(Assignment.user_id == user_id,
                                                       Assignment.ended_at.is_(None))))
            stops = list((await session.execute(
                select(WalkListStop.id, WalkListStop.address_id).where(WalkListStop.walk_list_id.in_(lists))
            )).all())
            addresses = {a for _, a in stops}
            people = set(await session.scalars(select(Person.id).where(Person.address_id.in_(addresses))))
            surveys = set(await session.scalars(select(Survey.id).where(Survey.campaign_id == self.world.campaign_a)))
            await session.rollback()
        return {
            "walk_list": {str(i) for i in lists},
            "stop": {str(s) for s, _ in stops},
            "address": {str(a) for a in addresses},
            "person": {str(p) for p in people},
            "survey": {str(s) for s in surveys},
        }

    async def check_scope(self, token: str, changes: list[Any]) -> list[Any]:
        """Scope never leaks: every upsert served is visible to the user right now (returns leaks)."""
        scope = await self.scope_of(self.user_of_token[token])
        leaks: list[Any] = []
        for change in changes:
            if not isinstance(change, Upsert):
                continue
            if change.entity in scope:
                allowed = change.id in scope[change.entity]
            else:  # events and flags: their address must be in scope
                allowed = str(change.data["address_id"]) in scope["address"]
            if not allowed:
                leaks.append((self.user_of_token[token], change))
        return leaks

    @invariant()
    def scope_never_leaks(self) -> None:
        if self.ready:
            assert self.inspector.violations == []

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table except the audit log, without bookkeeping timestamps."""
        result: dict[str, list[tuple[Any, ...]]] = {}
        async with self.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                if table.name == "audit_events":
                    continue
                columns = [c for c in table.columns if c.name not in VOLATILE_COLUMNS]
                rows = (await conn.execute(select(*columns))).all()
                result[table.name] = sorted(tuple(map(repr, row)) for row in rows)
            await conn.rollback()
        return result

    async def assert_no_personal_data(self, person: int) -> None:
        """Erasure: no trace of the person's data in any table, the feed or the conflict records."""
        dump = repr(await self.snapshot())
        assert f"Zq{person}Zq" not in dump
        for value in self._values_of(person):
            assert value not in dump, (person, value)
        async with self.sessionmaker() as session:
            assert await session.get(Person, person) is None
            for model in EVENT_TABLES.values():
                assert not list(await session.scalars(select(model.id).where(model.person_id == person)))
            assert not list(await session.scalars(select(Flag.id).where(Flag.person_key == person)))
            assert not list(await session.scalars(select(Conflict.id).where(
                Conflict.entity == "person", Conflict.entity_id == person)))
            assert await session.scalar(select(Tombstone.id).where(
                Tombstone.entity == "person", Tombstone.entity_id == str(person))) is not None
            await session.rollback()

    async def assert_address_gone(self, address_id: int) -> None:
        """Erasure of a door: no row names it any more (events, flags, stops, kept payloads), a
        tombstone says it was erased, and the notes written about it are nowhere."""
        dump = repr(await self.snapshot())
        for edit in self.edits:
            if edit.entity == "address" and edit.entity_id == address_id and edit.value:
                assert edit.value not in dump, (address_id, edit.value)
        async with self.sessionmaker() as session:
            assert await session.get(Address, address_id) is None
            for model in (*EVENT_TABLES.values(), Flag, HeldMutation):
                assert not list(await session.scalars(select(model.id).where(model.address_id == address_id))), model
            assert not list(await session.scalars(select(WalkListStop.id).where(WalkListStop.address_id == address_id)))
            assert await session.scalar(select(Tombstone.id).where(
                Tombstone.entity == "address", Tombstone.entity_id == str(address_id))) is not None
            await session.rollback()

    def _erased(self, mutation: Mutation) -> bool:
        """Whether a mutation is about something erased (a phone may purge it, the server drops it)."""
        return _mutation_person(mutation) in self.erased or _mutation_address(mutation) in self.erased_addresses

    def _values_of(self, person: int) -> set[str]:
        return {e.value for e in self.edits if e.entity == "person" and e.entity_id == person and e.value}

    # ------------------------------------------------------------------ quiescence and the end

    def teardown(self) -> None:
        if self.ready:
            self.run(self.quiesce_and_check())

    async def quiesce_and_check(self) -> None:
        self.network.enabled = False
        await self.network.deliver_delayed()
        for _ in range(2):
            for phone in self.phones:
                pushed, pulled = await phone.sync()
                assert pushed.ok and pulled is not None and pulled.ok, phone.last_error
        for phone in self.phones:
            self._note_enqueued(phone)
            assert phone.outbox == []
        await self.check_no_write_lost()
        await self.check_convergence()
        for person in self.erased:
            await self.assert_no_personal_data(person)
            for phone in self.phones:
                state = phone.to_state()
                assert f"Zq{person}Zq".encode() not in state
                assert phone.get("person", person) is None
        for address_id in self.erased_addresses:
            await self.assert_address_gone(address_id)
            for phone in self.phones:
                assert phone.get("address", address_id) is None
        check_merge_laws(self.edits, [e for events in self.own_events.values() for e in events], self.rng)

    async def check_no_write_lost(self) -> None:
        async with self.sessionmaker() as session:
            rows = list(await session.scalars(select(MutationResultRow)))
            stored = {(row.device_id, row.seq): row for row in rows}
            node_of = {pk: node for node, pk in self.device_pk.items()}
            # each seq processed exactly once (primary key), none invented, none missing
            for (node, seq), mutation in self.enqueued.items():
                row = stored.get((self.device_pk[node], seq))
                if row is None:  # only an erasure may purge a queued mutation from a phone
                    assert self._erased(mutation), (node, seq, mutation)
                    continue
                if (node, seq) in self.far_future:  # kept, its time marked untrusted (contract B)
                    assert row.status != "rejected" or row.reason.startswith(("out_of_scope:", "erased:")), row.reason
                    if row.status == "applied":
                        stored_event = await session.get(ContactAttempt, str(mutation.id))
                        assert stored_event is None or stored_event.time_untrusted
                if row.status in ("rejected", "restamp"):  # nothing thrown away: the payload is kept
                    kept = await session.scalar(select(HeldMutation.id).where(
                        HeldMutation.device_id == row.device_id, HeldMutation.seq == seq))
                    assert kept is not None or self._erased(mutation), (node, seq, row.reason)
            for device_id, seq in stored:
                assert (node_of[device_id], seq) in self.enqueued
            event_ids = {
                entity: set(await session.scalars(select(model.id)))
                for entity, model in EVENT_TABLES.items()
            }
            tombstoned = set((await session.execute(select(Tombstone.entity, Tombstone.entity_id))).all())
            accepted_edits: list[EditField] = []
            for (node, seq), mutation in self.enqueued.items():
                row = stored.get((self.device_pk[node], seq))
                if row is None:
                    continue
                assert row.status in ("applied", "duplicate", "conflict", "rejected", "restamp")
                if row.status == "restamp":
                    assert isinstance(mutation, EditField)  # the phone queued it again as a new seq
                    continue
                if row.status == "rejected":
                    assert row.reason  # the rejection record says why
                    continue
                if isinstance(mutation, EditField):
                    accepted_edits.append(mutation)
                elif isinstance(mutation, (RecordContactAttempt, RecordAnswer, RecordObservation)):
                    entity = _event_entity(mutation)
                    assert str(mutation.id) in event_ids[entity] or (entity, str(mutation.id)) in tombstoned
            by_field: dict[tuple[str, int, str], list[EditField]] = {}
            for edit in accepted_edits:
                by_field.setdefault((edit.entity, edit.entity_id, edit.field), []).append(edit)
            expected_losers: set[str] = set()
            for (entity, entity_id, field), edits in by_field.items():
                if entity_id in (self.erased if entity == "person" else self.erased_addresses):
                    continue
                state = fold_field_edits(edits)
                assert state is not None
                row_obj = await session.get(Person if entity == "person" else Address, entity_id)
                assert getattr(row_obj, field) == state.value, (entity, entity_id, field)
                expected_losers |= {c.hlc for c in conflict_losers(state)}
            open_conflicts = set(await session.scalars(
                select(Conflict.losing_hlc).where(Conflict.resolved_at.is_(None))))
            assert open_conflicts == expected_losers
            await session.rollback()

    async def check_convergence(self) -> None:
        async with self.sessionmaker() as session:
            flags = {
                (row.address_id, row.person_key or None): row.active
                for row in await session.scalars(select(Flag).where(Flag.kind == "do_not_visit"))
            }
            events = {
                entity: {row.id: row.address_id for row in await session.scalars(select(model))}
                for entity, model in EVENT_TABLES.items()
            }
            await session.rollback()
        views: list[dict[str, dict[str, Any]]] = []
        for index, phone in enumerate(self.phones):
            scope = await self.scope_of(PHONE_OWNERS[index])
            for entity in ("walk_list", "stop", "address", "person"):
                assert phone.ids(entity) == scope[entity], (index, entity)
            async with self.sessionmaker() as session:
                for person_id in scope["person"]:
                    row = await session.get(Person, int(person_id))
                    shown = phone.get("person", person_id)
                    assert shown is not None and row is not None
                    for field in PERSON_FIELDS:
                        assert shown[field] == getattr(row, field), (index, person_id, field)
                for address_id in scope["address"]:
                    row_a = await session.get(Address, int(address_id))
                    shown = phone.get("address", address_id)
                    assert shown is not None and row_a is not None
                    assert shown["access_note"] == row_a.access_note
                await session.rollback()
            in_scope = {int(a) for a in scope["address"]}
            for entity, rows in events.items():
                expected = {i for i, address in rows.items() if address in in_scope}
                assert phone.ids(entity) == expected, (index, entity)
            shown_flags = phone.flags()
            for key, active in flags.items():
                if key[0] in in_scope:
                    assert shown_flags[key].do_not_visit == active, (index, key)
            assert phone.state.pending_edits == [] or all(
                str(p.edit.entity_id) not in scope[p.edit.entity] for p in phone.state.pending_edits
            ), (index, phone.state.pending_edits)
            views.append({e: {i: phone.get(e, i) for i in phone.ids(e)} for e in ("address", "person", "stop")})
        for left in views:  # phones agree on every record they both hold
            for right in views:
                for entity in left:
                    for key in left[entity].keys() & right[entity].keys():
                        assert left[entity][key] == right[entity][key], (entity, key)


def _event_entity(event: Any) -> str:
    if isinstance(event, RecordContactAttempt):
        return "contact_attempt"
    if isinstance(event, RecordAnswer):
        return "answer"
    return "observation"


def _phone_view(phone: SyncClient) -> tuple[Any, ...]:
    state = phone.state
    return (
        {e: {i: v.data for i, v in table.items()} for e, table in state.entities.items() if table},
        list(state.outbox),
        dict(state.local_events),
        list(state.pending_edits),
        {k: sorted(v) for k, v in state.erased.items() if v},
        list(state.rejections),
    )


def check_merge_laws(edits: list[EditField], events: list[Any], rng: random.Random) -> None:
    """Merge is commutative, associative and idempotent on the edits and events that happened."""
    by_field: dict[tuple[str, int, str], list[EditField]] = {}
    for edit in edits:
        by_field.setdefault((edit.entity, edit.entity_id, edit.field), []).append(edit)
    for field_edits in by_field.values():
        whole = fold_field_edits(field_edits)
        shuffled = list(field_edits) + field_edits[: rng.randint(0, len(field_edits))]
        rng.shuffle(shuffled)
        assert fold_field_edits(shuffled) == whole  # any order, with duplicates
        cut1, cut2 = sorted(rng.randint(0, len(shuffled)) for _ in range(2))
        a = fold_field_edits(shuffled[:cut1])
        b = fold_field_edits(shuffled[cut1:cut2])
        c = fold_field_edits(shuffled[cut2:])
        assert merge_field_states(a, b) == merge_field_states(b, a)
        assert merge_field_states(merge_field_states(a, b), c) == merge_field_states(a, merge_field_states(b, c))
        assert merge_field_states(merge_field_states(a, b), c) == whole
        assert merge_field_states(whole, whole) == whole
    if events:
        cut = rng.randint(0, len(events))
        left, right = events[:cut], events[cut:]
        assert merge_events(left, right) == merge_events(right, left) == merge_events(events, events)


@pytest.fixture(params=["sqlite", "postgresql"])
def machine_url(request: pytest.FixtureRequest, database_urls: dict[str, str | None]) -> str:
    url = database_urls[request.param]
    if url is None:
        pytest.skip(f"PostgreSQL not reachable: {database_urls.get('pg_error')}")
    return url


def test_sync_state_machine(machine_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the machine on one backend; the harness owns the event loop (no nesting with pytest-asyncio's)."""
    monkeypatch.setattr("server.sync.pull.LIST_PAGE_STOPS", 2)  # list downloads span pages
    harness = Harness(machine_url)
    try:
        harness.run(harness.start())
        machine = type("SyncMachineOn", (SyncMachine,), {"harness": harness})
        run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)
    finally:
        harness.close()
