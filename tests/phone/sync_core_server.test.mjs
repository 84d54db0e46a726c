// The JS sync core against a real Canvass server (started by tests/phone/test_sync_core_node.py on
// SQLite and on PostgreSQL; CANVASS_URL etc. name it). fast-check drives phones over a network
// that drops requests, drops responses, duplicates and delays (reorders) them, then checks
// convergence, that no acknowledged record is lost, and that replays change nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const ROOT = new URL("../../", import.meta.url).pathname;
const fc = createRequire(join(ROOT, "server/phone/web/package.json"))("fast-check");
const js = (name) => import(pathToFileURL(join(ROOT, "server/phone/static/js", name)).href);
const { SyncCore } = await js("sync-core.js");
const { plainReason } = await js("strings.js");
const { MemoryStore } = await js("stores.js");

const BASE = process.env.CANVASS_URL;
const CAMPAIGN = Number(process.env.CANVASS_CAMPAIGN);
const LIST = process.env.CANVASS_LIST;
const EMAIL = process.env.CANVASS_EMAIL;
const PASSWORD = process.env.CANVASS_PASSWORD;
const RUNS = Number(process.env.CANVASS_PROPERTY_RUNS || 6);
if (!BASE) throw new Error("CANVASS_URL is not set: run through tests/phone/test_sync_core_node.py");

async function login(email = EMAIL, password = PASSWORD) {
  const response = await fetch(`${BASE}/api/auth/login`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email, password }),
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text).access_token;
}

/** A network between one phone and the server: drops, duplicates and delays requests on demand. */
class FlakyNetwork {
  constructor(random) {
    this.random = random;
    this.enabled = false;
    this.late = [];
    this.log = [];
  }

  fetch = async (url, init) => {
    if (!this.enabled) return this._send(url, init);
    const roll = this.random();
    if (roll < 0.15) throw new TypeError("request lost");
    if (roll < 0.3) {
      this.late.push([url, init]); // arrives later, after the phone gave up: reordered
      throw new TypeError("request delayed past the timeout");
    }
    if (roll < 0.4) this.late.push([url, init]); // a duplicate arrives later too
    const response = await this._send(url, init);
    if (roll > 0.85) {
      await response.text();
      throw new TypeError("response lost"); // the server acted; the phone does not know
    }
    return response;
  };

  async _send(url, init) {
    const response = await fetch(url, { ...init, signal: undefined });
    if (url.endsWith("/api/sync/push")) this.log.push(init.body);
    return response;
  }

  /** Deliver the delayed and duplicated requests, shuffled (their answers go nowhere). */
  async deliverLate() {
    const pending = this.late.splice(0);
    for (let i = pending.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [pending[i], pending[j]] = [pending[j], pending[i]];
    }
    for (const [url, init] of pending) await (await fetch(url, { ...init, signal: undefined })).text();
  }
}

async function newPhone(network, options = {}) {
  const core = await SyncCore.open(new MemoryStore(), { baseUrl: BASE, fetch: network.fetch, random: network.random, ...options });
  await core.registerDevice(CAMPAIGN, await login(), "node test phone");
  return core;
}

async function settle(phones, network) {
  for (const n of network) n.enabled = false;
  for (const n of network) await n.deliverLate();
  for (let round = 0; round < 2; round++) {
    for (const phone of phones) {
      const { pushed, pulled } = await phone.sync();
      assert.ok(pushed.ok && pulled?.ok, `sync failed: ${phone.lastError}`);
    }
  }
}

test("a phone downloads its list, records, restarts with its outbox, and pushes it once", async () => {
  const network = new FlakyNetwork(Math.random);
  const phone = await newPhone(network);
  const pulled = await phone.pull();
  assert.ok(pulled.ok, phone.lastError);
  const stops = phone.stopsOf(LIST);
  assert.ok(stops.length >= 4, `the list has ${stops.length} stops on the phone`);
  for (const stop of stops.slice(0, 3)) await phone.recordContact(stop.address_id, "not_home", { walkListId: LIST });
  const store = phone.store.copy();
  const again = await SyncCore.open(store, { baseUrl: BASE });
  assert.equal(again.outboxCount, 3);
  const pushed = await again.push();
  assert.deepEqual([pushed.ok, pushed.acknowledged, again.outboxCount], [true, 3, 0]);
  const replay = await phone.push(); // the first copy still holds the same seqs: the server answers from its receipts
  assert.equal(replay.ok, true);
  await again.pull();
  const mine = new Set([...phone.events.keys()]); // the first copy never pulled: it still holds its own events
  const landed = again.eventsOf("contact_attempt").filter((e) => mine.has(e.id));
  assert.equal(landed.length, 3);
});

test("a cursor the server refuses: the phone rebuilds what it pulled, keeping its own queued work", async () => {
  const phone = await newPhone(new FlakyNetwork(Math.random));
  assert.ok((await phone.pull()).ok);
  const before = phone.ids("stop").length;
  const queued = await phone.recordContact(phone.stopsOf(LIST)[2].address_id, "come_back", { walkListId: LIST });
  // a record the phone should no longer hold (say, erased while the cursor was unusable)
  await phone._commit([["entities", "person:987654321", { data: { id: 987654321, surname: "Gone" }, version: "0" }], ["meta", "cursor", "not-a-cursor!"]]);
  const pulled = await phone.pull();
  assert.ok(pulled.ok, phone.lastError);
  assert.notEqual(phone.cursor, "not-a-cursor!");
  assert.equal(phone.get("person", 987654321), null, "a pull from scratch rebuilds the phone's copy");
  assert.equal(phone.ids("stop").length, before, "the list was downloaded again");
  assert.ok(phone.isQueued(queued.id) && phone.events.has(queued.id), "own queued work is kept");
});

test("upgrade required (426): the queue is kept and the phone stops until the app is updated", async () => {
  const network = new FlakyNetwork(Math.random);
  const phone = await newPhone(network);
  assert.ok((await phone.pull()).ok);
  await phone.recordContact(phone.stopsOf(LIST)[0].address_id, "not_home", { walkListId: LIST });
  // a phone whose app speaks a protocol version this server no longer supports
  phone.fetch = (url, init) => fetch(url, { ...init, headers: { ...init.headers, "X-Canvass-Protocol": "99" } });
  const { pushed, pulled } = await phone.sync();
  assert.deepEqual([pushed.ok, pushed.status, pushed.failure, pulled], [false, 426, "upgrade", null]);
  assert.equal(phone.upgradeRequired, true);
  assert.equal(phone.outboxCount, 1);
  phone.fetch = network.fetch; // the app was updated
  assert.ok((await phone.push()).ok);
  assert.deepEqual([phone.upgradeRequired, phone.outboxCount], [false, 0]);
});

test("a revoked device gets 401: nothing is dropped and the phone asks to sign in again", async () => {
  const phone = await newPhone(new FlakyNetwork(Math.random));
  assert.ok((await phone.pull()).ok);
  await phone.recordContact(phone.stopsOf(LIST)[1].address_id, "not_home", { walkListId: LIST });
  const token = await login();
  const revoked = await fetch(`${BASE}/api/campaigns/${CAMPAIGN}/devices/${phone.device.device_id}`, {
    method: "DELETE", headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(revoked.status, 204);
  const pushed = await phone.push();
  assert.deepEqual([pushed.ok, pushed.status, pushed.failure, phone.authFailed, phone.outboxCount], [false, 401, "auth", true, 1]);
  assert.equal(phone.retryDelayMs, 0, "no retry loop against a token that cannot work");
});

test("a record the server can never apply is dropped from the outbox and explained in plain words", async () => {
  const phone = await newPhone(new FlakyNetwork(Math.random));
  assert.ok((await phone.pull()).ok);
  await phone.recordContact(987654321, "spoke");
  const pushed = await phone.push();
  assert.deepEqual([pushed.ok, phone.outboxCount, phone.rejections.size], [true, 0, 1]);
  const [rejection] = phone.rejectionList();
  assert.equal(rejection.mutation.address_id, 987654321);
  assert.match(plainReason(rejection.reason), /does not know this door/);
});

test("undo of a record already sent: a void_event; the record leaves the server and every phone", async () => {
  const phone = await newPhone(new FlakyNetwork(Math.random));
  const other = await newPhone(new FlakyNetwork(Math.random)); // the same canvasser's second phone
  assert.ok((await phone.pull()).ok && (await other.pull()).ok);
  const door = phone.stopsOf(LIST)[3].address_id;
  const knock = await phone.recordContact(door, "inaccessible", { walkListId: LIST });
  let { pushed } = await phone.sync();
  assert.ok(pushed.ok && phone.outboxCount === 0, phone.lastError);
  assert.ok((await other.sync()).pulled.ok);
  assert.ok(other.eventsOf("contact_attempt").some((e) => e.id === knock.id), "the other phone got the record");
  assert.equal(await phone.undoLast(door), "voided");
  assert.ok(!phone.eventsOf("contact_attempt").some((e) => e.id === knock.id), "hidden at once");
  ({ pushed } = await phone.sync());
  assert.ok(pushed.ok && phone.outboxCount === 0 && phone.rejections.size === 0, phone.lastError);
  assert.ok((await other.sync()).pulled.ok);
  assert.ok(!other.eventsOf("contact_attempt").some((e) => e.id === knock.id), "the void reached the other phone");
  const fresh = await newPhone(new FlakyNetwork(Math.random));
  assert.ok((await fresh.pull()).ok);
  assert.ok(!fresh.eventsOf("contact_attempt").some((e) => e.id === knock.id), "a new phone never sees it");
  assert.equal(await phone.undoLast(door), null, "nothing more of this phone's to undo there");
});

test("undo of a record whose push answer was lost: the server's copy is voided, never left behind", async () => {
  const net = new FlakyNetwork(Math.random);
  const phone = await newPhone(net);
  assert.ok((await phone.pull()).ok);
  const door = phone.stopsOf(LIST)[5].address_id;
  const knock = await phone.recordContact(door, "refused", { walkListId: LIST });
  net.enabled = true;
  net.random = () => 0.9; // the server applies the push; its answer is lost
  assert.equal((await phone.push()).ok, false);
  net.enabled = false;
  assert.equal(phone.outboxCount, 1, "unacknowledged: still queued");
  assert.equal(await phone.undoLast(door), "voided", "it may already be on the server: void it, do not just withdraw it");
  assert.ok(!phone.eventsOf("contact_attempt").some((e) => e.id === knock.id), "hidden at once");
  assert.equal(await phone.undoLast(door), null, "the same record is not undone twice");
  for (let round = 0; round < 3 && phone.outboxCount; round++) assert.ok((await phone.sync()).pushed.ok, phone.lastError);
  assert.equal(phone.outboxCount, 0);
  assert.equal(phone.rejections.size, 0, JSON.stringify([...phone.rejections.values()]));
  const fresh = await newPhone(new FlakyNetwork(Math.random));
  assert.ok((await fresh.pull()).ok);
  assert.ok(!fresh.eventsOf("contact_attempt").some((e) => e.id === knock.id), "the server no longer holds the undone record");
});

test("property: lossy, duplicating, reordering network; phones converge, nothing acknowledged is lost, replays change nothing", async () => {
  const command = fc.oneof(
    fc.record({ kind: fc.constant("knock"), door: fc.nat(30), outcome: fc.constantFrom("spoke", "not_home", "refused") }),
    fc.record({ kind: fc.constant("answer"), door: fc.nat(30), value: fc.constantFrom("Red", "Blue", "Green") }),
    fc.record({ kind: fc.constant("edit"), door: fc.nat(30), value: fc.string({ minLength: 1, maxLength: 12 }) }),
    fc.record({ kind: fc.constant("sync") }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.nat(1), command), { minLength: 4, maxLength: 24 }), fc.integer(), async (steps, seed) => {
      let state = seed >>> 0 || 1;
      const random = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648);
      const networks = [new FlakyNetwork(random), new FlakyNetwork(random)];
      const phones = [await newPhone(networks[0]), await newPhone(networks[1])];
      for (const phone of phones) assert.ok((await phone.pull()).ok, phone.lastError);
      const stops = phones[0].stopsOf(LIST);
      const people = stops.flatMap((s) => phones[0].peopleAt(s.address_id));
      for (const n of networks) n.enabled = true;
      const acknowledged = new Set();
      const recorded = new Set();
      for (const [who, step] of steps) {
        const phone = phones[who];
        const stop = stops[step.door % stops.length];
        if (step.kind === "knock") recorded.add((await phone.recordContact(stop.address_id, step.outcome, { walkListId: LIST })).id);
        else if (step.kind === "answer") recorded.add((await phone.recordAnswer(stop.address_id, "voting_intention", step.value, { walkListId: LIST })).id);
        else if (step.kind === "edit" && people.length) await phone.editField("person", people[step.door % people.length].id, "phone", step.value);
        else {
          const queued = new Set([...phone.outbox.values()].map((e) => e.mutation.id).filter(Boolean));
          await phone.sync();
          for (const id of queued) if (!phone.isQueued(id)) acknowledged.add(id);
        }
      }
      await settle(phones, networks);
      // no acknowledged (or queued) event lost: every event any phone recorded is on both phones, from the server
      for (const phone of phones) {
        for (const id of recorded) {
          const pulled = ["contact_attempt", "answer"].some((e) => phone.entities.get(e)?.has(id));
          assert.ok(pulled, `event ${id} did not reach the server (or this phone)`);
        }
        assert.equal(phone.events.size, 0, "own copies are dropped once the server's copy arrived");
        assert.equal(phone.outboxCount, 0);
        assert.equal(phone.rejections.size, 0, JSON.stringify(phone.rejectionList()));
      }
      for (const id of acknowledged) assert.ok(phones[0].entities.get("contact_attempt")?.has(id) || phones[0].entities.get("answer")?.has(id));
      // convergence: both phones show the same value of every person's phone
      for (const person of people) assert.equal(phones[0].get("person", person.id).phone, phones[1].get("person", person.id).phone);
      // replays change nothing: resend every push ever sent; then a fresh pull sees the same data
      const snapshot = JSON.stringify(phones[0].all("person").map((p) => [p.id, p.phone]).sort());
      const events = phones[0].eventsOf("contact_attempt").length + phones[0].eventsOf("answer").length;
      for (const [i, n] of networks.entries()) {
        for (const body of n.log) {
          const response = await fetch(`${BASE}/api/sync/push`, {
            method: "POST", body,
            headers: { "Content-Type": "application/json", "X-Canvass-Protocol": "1", Authorization: `Bearer ${phones[i].device.token}` },
          });
          assert.equal(response.status, 200);
          const seqs = JSON.parse(body).mutations.map((m) => m.seq);
          assert.deepEqual((await response.json()).results.map((r) => r.seq), seqs, "a replay answers every seq from the receipts");
        }
      }
      const fresh = await newPhone(new FlakyNetwork(random));
      assert.ok((await fresh.pull()).ok);
      assert.equal(JSON.stringify(fresh.all("person").map((p) => [p.id, p.phone]).sort()), snapshot);
      assert.equal(fresh.eventsOf("contact_attempt").length + fresh.eventsOf("answer").length, events);
    }),
    { numRuns: RUNS, endOnFailure: true },
  );
});
