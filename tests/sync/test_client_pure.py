"""The reference client's local rules, driven through a scripted network (no server, no database)."""

from __future__ import annotations

import random
from collections.abc import Callable

import msgspec
import pytest

from sync.client import SyncClient, TransportError
from sync.clock import HybridClock
from sync.protocol import (
    Erase,
    MutationResult,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    Remove,
    Upsert,
)

Reply = Callable[[str, str, bytes, dict[str, str]], tuple[int, bytes]]


class ScriptedNetwork:
    """Answers each request with the next scripted reply; records what was sent."""

    def __init__(self) -> None:
        self.replies: list[Reply | Exception] = []
        self.sent: list[tuple[str, str, bytes, dict[str, str]]] = []

    async def __call__(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        self.sent.append((method, path, body, headers))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply(method, path, body, headers)


def ack_all(status: str = "applied", reasons: dict[int, str] | None = None) -> Reply:
    def reply(method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        request = msgspec.json.decode(body, type=PushRequest)
        results = [
            MutationResult(
                seq=e.seq,
                status="rejected" if reasons and e.seq in reasons else status,  # type: ignore[arg-type]
                reason=(reasons or {}).get(e.seq, ""),
                server_hlc="1700000000000-000000-server",
            )
            for e in request.mutations
        ]
        return 200, msgspec.json.encode(
            PushResponse(results=results, last_seq=request.mutations[-1].seq)
        )

    return reply


def status(code: int) -> Reply:
    return lambda *_: (code, b'{"title":"x","status":%d}' % code)


def pull_page(changes: list, cursor: str, has_more: bool = False) -> Reply:  # type: ignore[type-arg]
    return lambda *_: (
        200,
        msgspec.json.encode(PullResponse(changes=changes, cursor=cursor, has_more=has_more)),
    )


def make_client(net: ScriptedNetwork, **kwargs) -> SyncClient:  # type: ignore[no-untyped-def]
    clock = HybridClock("phone-1", lambda: 1_700_000_000_000)
    return SyncClient("phone-1", "tok", net, clock, rng=random.Random(1), **kwargs)


async def test_seq_is_monotonic_and_survives_restart() -> None:
    net = ScriptedNetwork()
    client = make_client(net)
    client.record_contact(1, "not_home")
    client.record_answer(1, "vote", "labour")
    saved = client.to_state()
    restarted = SyncClient.from_state(saved, "tok", net)
    assert [e.seq for e in restarted.outbox] == [1, 2]
    third = restarted.record_contact(2, "spoke")
    assert restarted.outbox[-1].seq == 3
    assert third.at > client.outbox[-1].mutation.at  # type: ignore[union-attr]


async def test_ack_drops_applied_and_rejected_and_keeps_reasons() -> None:
    net = ScriptedNetwork()
    client = make_client(net)
    for n in range(5):
        client.record_contact(n + 1, "spoke")
    net.replies.append(ack_all(reasons={3: "address erased"}))
    outcome = await client.push()
    assert outcome.ok and outcome.acknowledged == 5
    assert client.outbox == []
    assert [(r.seq, r.reason) for r in client.rejections] == [(3, "address erased")]
    _, _, _, headers = net.sent[0]
    assert headers["Authorization"] == "Bearer tok" and headers["X-Canvass-Protocol"] == "1"


@pytest.mark.parametrize(
    "failure", [TransportError("timeout"), status(500), status(503), status(429)]
)
async def test_transient_failures_keep_the_queue_and_back_off(failure) -> None:  # type: ignore[no-untyped-def]
    net = ScriptedNetwork()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    client = make_client(net, sleep=fake_sleep, backoff_base=1.0, backoff_cap=60.0)
    client.record_contact(1, "spoke")
    net.replies += [failure, failure, ack_all()]
    outcome = await client.push(retries=5)
    assert outcome.ok and client.outbox == []
    assert len(slept) == 2 and 0 <= slept[0] <= 2 and 0 <= slept[1] <= 4
    # the same seq was sent every time (replay-safe)
    seqs = {
        tuple(e.seq for e in msgspec.json.decode(b, type=PushRequest).mutations)
        for _, _, b, _ in net.sent
    }
    assert seqs == {(1,)}


async def test_upgrade_required_keeps_the_queue() -> None:
    net = ScriptedNetwork()
    client = make_client(net)
    client.record_contact(1, "spoke")
    net.replies.append(status(426))
    outcome = await client.push(retries=3)
    assert not outcome.ok and outcome.status == 426
    assert client.upgrade_required and len(client.outbox) == 1
    assert len(net.sent) == 1  # no retry loop against an old protocol


async def test_batches_are_sent_in_order_and_stop_at_first_failure() -> None:
    net = ScriptedNetwork()
    client = make_client(net, batch_size=2)
    for n in range(5):
        client.record_contact(n + 1, "spoke")
    net.replies += [ack_all(), TransportError("lost")]
    outcome = await client.push()
    assert not outcome.ok and [e.seq for e in client.outbox] == [3, 4, 5]


async def test_pending_edit_stays_visible_until_pull_catches_up() -> None:
    net = ScriptedNetwork()
    client = make_client(net)
    person = {
        "id": 7,
        "address_id": 1,
        "phone": "old",
        "field_versions": {"phone": "1600000000000-000000-srv"},
    }
    net.replies.append(
        pull_page(
            [Upsert(entity="person", id="7", data=person, version="1600000000000-000001-srv")], "c1"
        )
    )
    assert (await client.pull()).ok
    edit = client.edit_field("person", 7, "phone", "07700 900123")
    assert edit.base_hlc == "1600000000000-000000-srv"
    assert client.get("person", 7)["phone"] == "07700 900123"  # type: ignore[index]
    # a pull that does not yet include the edit must not hide it (rebase)
    net.replies.append(
        pull_page(
            [Upsert(entity="person", id="7", data=person, version="1600000000000-000002-srv")], "c2"
        )
    )
    await client.pull()
    assert client.get("person", 7)["phone"] == "07700 900123"  # type: ignore[index]
    net.replies.append(ack_all())
    await client.push()
    assert client.get("person", 7)["phone"] == "07700 900123"  # type: ignore[index]  # acknowledged, not yet pulled
    newer = dict(person, phone="07700 900123", field_versions={"phone": edit.hlc})
    net.replies.append(
        pull_page(
            [Upsert(entity="person", id="7", data=newer, version="1700000000000-000005-srv")], "c3"
        )
    )
    await client.pull()
    assert client.state.pending_edits == []
    assert client.get("person", 7)["phone"] == "07700 900123"  # type: ignore[index]
    # a second edit is based on the version it last saw
    assert client.edit_field("person", 7, "phone", "x").base_hlc == edit.hlc


async def test_stale_upsert_never_goes_back_in_time_and_pages_replay_safely() -> None:
    net = ScriptedNetwork()
    client = make_client(net)
    new = Upsert(
        entity="address",
        id="1",
        data={"id": 1, "access_note": "b"},
        version="0000000000002-000000-s",
    )
    old = Upsert(
        entity="address",
        id="1",
        data={"id": 1, "access_note": "a"},
        version="0000000000001-000000-s",
    )
    net.replies += [pull_page([new], "c1"), pull_page([old, new, new], "c1")]
    await client.pull()
    await client.pull()
    assert client.get("address", 1) == {"id": 1, "access_note": "b"}


async def test_remove_keeps_own_work_and_erase_purges_everything() -> None:
    net = ScriptedNetwork()
    client = make_client(net)
    address = Upsert(entity="address", id="1", data={"id": 1}, version="0000000000001-000000-s")
    person = Upsert(
        entity="person", id="7", data={"id": 7, "address_id": 1}, version="0000000000001-000000-s"
    )
    net.replies.append(pull_page([address, person], "c1"))
    await client.pull()
    client.record_contact(1, "spoke", person_id=7)
    client.record_answer(1, "vote", "green", person_id=7)
    client.edit_field("person", 7, "phone", "07700 900000")
    client.record_contact(2, "not_home")

    net.replies.append(
        pull_page([Remove(entity="person", id="7", version="0000000000002-000000-s")], "c2")
    )
    await client.pull()
    assert client.get("person", 7) is None and len(client.outbox) == 4  # own work kept

    net.replies.append(pull_page([Erase(entity="person", id="7")], "c3"))
    await client.pull()
    assert [e.mutation.address_id for e in client.outbox] == [2]  # type: ignore[union-attr]
    assert b"07700 900000" not in client.to_state() and b"green" not in client.to_state()
    # an erased id never comes back, even from a stale page
    net.replies.append(pull_page([person], "c4"))
    await client.pull()
    assert client.get("person", 7) is None


async def test_new_walk_list_is_downloaded_in_resumable_pages() -> None:
    from sync.protocol import ListPage

    net = ScriptedNetwork()
    client = make_client(net)
    wl = Upsert(entity="walk_list", id="5", data={"id": 5}, version="0000000000001-000000-s")
    page1 = ListPage(
        list_id=5,
        changes=[
            Upsert(entity="address", id="1", data={"id": 1}, version="0000000000001-000000-s")
        ],
        next_page_token="p2",
    )
    page2 = ListPage(
        list_id=5,
        changes=[
            Upsert(entity="address", id="2", data={"id": 2}, version="0000000000001-000000-s")
        ],
    )
    net.replies += [
        pull_page([wl], "c1"),
        lambda *_: (200, msgspec.json.encode(page1)),
        TransportError("dropped"),
    ]
    outcome = await client.pull()
    assert not outcome.ok and client.state.downloads == {"5": "p2"}
    restarted = SyncClient.from_state(client.to_state(), "tok", net)
    net.replies += [pull_page([], "c1"), lambda *_: (200, msgspec.json.encode(page2))]
    assert (await restarted.pull()).ok
    assert net.sent[-1][1] == "/api/sync/lists/5?page_token=p2"
    assert restarted.ids("address") == {"1", "2"} and restarted.state.downloads == {}


async def test_local_flags_follow_the_merge_rule() -> None:
    net = ScriptedNetwork()
    client = make_client(net)
    client.record_observation(3, "do_not_visit", person_id=9)
    assert client.flags()[(3, 9)].do_not_visit
    request = msgspec.json.decode(
        msgspec.json.encode(PullRequest(protocol_version=1, device_id="phone-1")), type=PullRequest
    )
    assert request.limit == 500
