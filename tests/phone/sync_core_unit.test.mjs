// The JS sync core's pure parts under Node's test runner (no server): the HLC text format and
// rules (as sync/clock.py), the list checksum (contract E), node ids, and the store's atomicity.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const ROOT = new URL("../../", import.meta.url).pathname;
const js = (name) => import(pathToFileURL(join(ROOT, "server/phone/static/js", name)).href);
const { HybridClock, formatHlc, parseHlc } = await js("hlc.js");
const { listChecksum, newEventId, newNodeId, SyncCore } = await js("sync-core.js");
const { MemoryStore } = await js("stores.js");

test("HLC text is sync/clock.py's: 13-digit wall, 6-digit counter, node; string order is clock order", () => {
  assert.equal(formatHlc({ wall: 1795387152793, counter: 2, node: "9f3c1a0b7d2e4c11" }), "1795387152793-000002-9f3c1a0b7d2e4c11");
  assert.deepEqual(parseHlc("0000000000005-000010-abc"), { wall: 5, counter: 10, node: "abc" });
  assert.equal(parseHlc("not a stamp"), null);
  let wall = 1000;
  const clock = new HybridClock("n1", () => wall);
  const a = clock.now();
  const b = clock.now(); // same wall: counter goes up
  wall = 900; // the wall clock went backwards: stamps still grow
  const c = clock.now();
  assert.ok(a < b && b < c, `${a} ${b} ${c}`);
  const d = clock.receive(formatHlc({ wall: 5000, counter: 7, node: "zz" }));
  assert.equal(d, "0000000005000-000008-n1");
});

test("HLC counter overflow borrows a millisecond", () => {
  const clock = new HybridClock("n", () => 10, "0000000000010-999999-n");
  assert.equal(clock.now(), "0000000000011-000000-n");
});

test("HLC resumes after its last persisted stamp", () => {
  const clock = new HybridClock("n", () => 5, "0000000009000-000003-n");
  assert.equal(clock.now(), "0000000009000-000004-n");
});

test("list checksum: sorted entity:id lines of the list's scope, SHA-256 hex (value computed with Python's hashlib)", async () => {
  const entities = new Map([
    ["walk_list", new Map([["7", {}], ["8", {}]])],
    ["stop", new Map([["10", { walk_list_id: 7, address_id: 100 }], ["11", { walk_list_id: 7, address_id: 101 }], ["12", { walk_list_id: 8, address_id: 102 }]])],
    ["address", new Map([["100", {}], ["101", {}], ["102", {}]])],
    ["person", new Map([["5", { address_id: 100 }], ["6", { address_id: 102 }]])],
  ]);
  // python3 -c 'import hashlib;print(hashlib.sha256("\n".join(sorted(["walk_list:7","stop:10","stop:11","address:100","address:101","person:5"])).encode()).hexdigest())'
  assert.equal(await listChecksum(7, entities), "62e84831a1f07de0c84e7d9ce7f486952960481580032becb451202e24b2a397");
  // amended: an address the phone does not hold is not a line (nor are people there it does not hold)
  entities.get("address").delete("101");
  entities.get("stop").set("13", { walk_list_id: 7, address_id: 103 });
  // python3 -c '...sorted(["walk_list:7","stop:10","stop:11","stop:13","address:100","person:5"])...'
  assert.equal(await listChecksum(7, entities), "7726657915d821167faccc247a4b084f53d1d9572f0c882648b05b10651bee02");
});

test("node id: 16 lowercase hex, generated once per install and kept", async () => {
  assert.match(newNodeId(), /^[0-9a-f]{16}$/);
  const store = new MemoryStore();
  const first = await SyncCore.open(store);
  const again = await SyncCore.open(store.copy());
  assert.equal(first.nodeId, again.nodeId);
  assert.match(first.nodeId, /^[0-9a-f]{16}$/);
});

test("a record is in the store before it is confirmed; a failed write records nothing", async () => {
  const store = new MemoryStore();
  const core = await SyncCore.open(store);
  await core.recordContact(1, "not_home");
  assert.equal(store.copy().tables.get("outbox").size, 1);
  store.failNext = 1;
  await assert.rejects(core.recordContact(2, "spoke"));
  assert.equal(core.outboxCount, 1);
  const reopened = await SyncCore.open(store.copy());
  assert.equal(reopened.outboxCount, 1);
  const next = await reopened.recordContact(3, "spoke");
  assert.ok(next.at > [...reopened.outbox.values()][0].mutation.at, "the clock resumes after a restart");
  assert.deepEqual([...reopened.outbox.keys()].sort(), [1, 2]);
});

test("event ids are canonical UUIDv4 text, also where crypto.randomUUID is missing (plain HTTP)", () => {
  const uuid4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  assert.match(newEventId(), uuid4);
  const insecure = { getRandomValues: (bytes) => globalThis.crypto.getRandomValues(bytes) };
  const ids = new Set(Array.from({ length: 100 }, () => newEventId(insecure)));
  assert.equal(ids.size, 100);
  for (const id of ids) assert.match(id, uuid4);
});

test("push answers: the first result for a seq counts (a later duplicate_seq copy is not a rejection)", async () => {
  const core = await SyncCore.open(new MemoryStore());
  await core.recordContact(1, "spoke");
  const batch = [...core.outbox.values()];
  await core._acknowledge(batch, {
    results: [
      { seq: 1, status: "applied", server_hlc: "", reason: "" },
      { seq: 1, status: "rejected", server_hlc: "", reason: "duplicate_seq: seq 1 twice in one batch" },
    ],
    last_seq: 1,
  }, Date.now());
  assert.deepEqual([core.outboxCount, core.rejections.size], [0, 0]);
});

test("restamp: the phone adopts the server's time, re-queues the edit re-stamped under a new seq, re-stamps unsent edits", async () => {
  const hourFast = () => Date.now() + 3_600_000;
  const store = new MemoryStore();
  const core = await SyncCore.open(store, { now: hourFast });
  const first = await core.editField("person", 5, "phone", "07700 900001");
  const later = await core.editField("person", 6, "note", "gate code 1234");
  const batch = [core.outbox.get(1)];
  const serverNow = Date.now();
  await core._acknowledge(batch, {
    results: [{ seq: 1, status: "restamp", server_hlc: "9999999999999-000000-server", reason: "restamp: 3600000 ms ahead" }],
    last_seq: 1, server_time_ms: serverNow,
  }, hourFast());
  assert.ok(Math.abs(core.offsetMs + 3_600_000) < 1000, `offset ${core.offsetMs}`);
  assert.ok(core.clock.last < "9999999999999", "the restamp's server stamp is not received");
  assert.deepEqual([...core.outbox.keys()].sort(), [2, 3]);
  const requeued = core.outbox.get(3).mutation;
  assert.deepEqual([requeued.entity_id, requeued.field, requeued.value, requeued.base_hlc], [5, "phone", "07700 900001", null]);
  assert.ok(requeued.hlc < first.hlc && Math.abs(Number(requeued.hlc.slice(0, 13)) - serverNow) < 5000);
  const restamped = core.outbox.get(2).mutation;
  assert.ok(restamped.hlc < later.hlc && restamped.value === later.value, "the unsent edit was stamped again");
  assert.equal(core.get("person", 5), null); // not pulled: nothing to overlay, but the pending edit is kept
  assert.deepEqual([...core.pending.keys()].sort(), [2, 3]);
  const reopened = await SyncCore.open(store.copy(), { now: hourFast });
  assert.equal(reopened.offsetMs, core.offsetMs, "the offset is persisted");
  assert.ok(Math.abs(reopened.wall() - Date.now()) < 1000);
});
