// The contract changes of this session (/work/contract-changes.md, implemented on the server by
// branch `sync`): the install's node id kept across re-registration, server_time_ms and
// `restamp`, the signed cursor's 400 invalid-cursor, and per-list checksums. Run by
// tests/phone/test_sync_core_node.py against a real server like sync_core_server.test.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const ROOT = new URL("../../", import.meta.url).pathname;
const js = (name) => import(pathToFileURL(join(ROOT, "server/phone/static/js", name)).href);
const { SyncCore, MAX_SKEW_MS } = await js("sync-core.js");
const { MemoryStore } = await js("stores.js");

const BASE = process.env.CANVASS_URL;
const CAMPAIGN = Number(process.env.CANVASS_CAMPAIGN);
const LIST = process.env.CANVASS_LIST;
if (!BASE) throw new Error("CANVASS_URL is not set: run through tests/phone/test_sync_core_node.py");

async function login() {
  const response = await fetch(`${BASE}/api/auth/login`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: process.env.CANVASS_EMAIL, password: process.env.CANVASS_PASSWORD }),
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text).access_token;
}

async function phoneAt(offsetMs = 0) {
  const core = await SyncCore.open(new MemoryStore(), { baseUrl: BASE, now: () => Date.now() + offsetMs });
  await core.registerDevice(CAMPAIGN, await login(), "contract phone");
  assert.ok((await core.pull()).ok, core.lastError);
  return core;
}

test("A: the install's node id is the device's; signing in again keeps the device and its queue lands", async () => {
  const phone = await phoneAt();
  assert.equal(phone.device.node_id, phone.nodeId);
  const first = phone.device.device_id;
  await phone.recordContact(phone.stopsOf(LIST)[0].address_id, "not_home", { walkListId: LIST });
  const revoked = await fetch(`${BASE}/api/campaigns/${CAMPAIGN}/devices/${first}`, { method: "DELETE", headers: { Authorization: `Bearer ${await login()}` } });
  assert.equal(revoked.status, 204);
  assert.equal((await phone.push()).failure, "auth");
  await phone.registerDevice(CAMPAIGN, await login(), "contract phone");
  assert.deepEqual([phone.device.device_id, phone.device.node_id, phone.authFailed], [first, phone.nodeId, false]);
  const pushed = await phone.push();
  assert.deepEqual([pushed.ok, phone.outboxCount, phone.rejections.size], [true, 0, 0]);
});

test("B: a phone an hour fast gets `restamp` for an edit, adopts the server's clock, and the edit lands re-stamped", async () => {
  const phone = await phoneAt(3_600_000);
  const person = phone.all("person").find((p) => phone.stopsOf(LIST).some((s) => String(s.address_id) === String(p.address_id)));
  const edit = await phone.editField("person", person.id, "note", `restamped ${Date.now()}`);
  await phone.recordContact(person.address_id, "spoke", { walkListId: LIST }); // an event far ahead is kept, never refused
  const { pushed, pulled } = await phone.sync();
  assert.ok(pushed.ok && pulled.ok, phone.lastError);
  assert.ok(Math.abs(phone.offsetMs + 3_600_000) < MAX_SKEW_MS / 2, `offset ${phone.offsetMs}`);
  assert.equal(phone.outboxCount, 0);
  assert.equal(phone.rejections.size, 0, JSON.stringify(phone.rejectionList()));
  const stored = phone.entities.get("person").get(String(person.id)).data;
  assert.equal(stored.note, edit.value);
  assert.ok(stored.field_versions.note < edit.hlc, "the applied stamp is the corrected one, not the hour-fast one");
  assert.ok(Math.abs(Number(stored.field_versions.note.slice(0, 13)) - Date.now()) < MAX_SKEW_MS);
});

test("E: a forged cursor gets 400 invalid-cursor and the phone starts again; checksums match and repair a damaged list", async () => {
  const phone = await phoneAt();
  const answer = await phone._call("POST", "/api/sync/pull", { protocol_version: 1, device_id: phone.device.node_id, cursor: "forged", limit: 10 });
  assert.equal(answer.status, 400);
  assert.match(answer.problem.type, /\/invalid-cursor$/);
  await phone._commit([["meta", "cursor", "forged"]]);
  const pulled = await phone.pull();
  assert.ok(pulled.ok, phone.lastError);
  assert.deepEqual(pulled.repaired, []);
  const stop = phone.stopsOf(LIST)[0];
  await phone._commit([["entities", `stop:${stop.id}`, undefined]]); // the phone lost a record
  const repaired = await phone.pull();
  assert.deepEqual(repaired.repaired, [String(LIST)]);
  assert.ok(phone.entities.get("stop").has(String(stop.id)));
});
