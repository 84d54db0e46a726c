// The canvasser app's sync engine: plain ES module, NO DOM, so it runs in the page, in a
// service worker and under Node's test runner. It implements docs/sync-protocol.md with the
// agreed changes of this session (node id of the install, `restamp` and clock offset,
// `server_time_ms`, signed cursor reset, per-list checksums, erasure of dependents), like
// the Python reference client sync/client.py.
//
// State lives in a store (stores.js) read whole at start and kept in memory; every change is
// one atomic store write made BEFORE the in-memory copy changes, so what the screen shows has
// always reached the disk.

import { HybridClock, parseHlc } from "./hlc.js";

export const PROTOCOL_VERSION = 1;
export const MAX_SKEW_MS = 300_000; // the server's default bound (CANVASS_MAX_CLOCK_SKEW_SECONDS)
export const BATCH_SIZE = 100;
export const PAGE_LIMIT = 500;
export const EDITABLE_FIELDS = {
  person: ["phone", "email", "contact_consent", "note", "preferred_language"],
  address: ["household_note", "access_note"],
};
const EVENT_OPS = { record_contact_attempt: "contact_attempt", record_answer: "answer", record_observation: "observation" };
const VOIDABLE = ["contact_attempt", "answer"]; // events a phone may void once sent (void_event)
const RETRYABLE = new Set(["network", "server", "rate_limited"]);

/** 16 lowercase hex characters from a crypto-random source (the install's HLC node id). */
export function newNodeId(cryptoImpl = globalThis.crypto) {
  const bytes = new Uint8Array(8);
  cryptoImpl.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A UUIDv4 in canonical lowercase text (randomUUID needs a secure origin; plain HTTP on a LAN does not have it). */
export function newEventId(cryptoImpl = globalThis.crypto) {
  if (typeof cryptoImpl.randomUUID === "function") return cryptoImpl.randomUUID();
  const b = new Uint8Array(16);
  cryptoImpl.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** SHA-256 of UTF-8 text, lowercase hex (WebCrypto: browsers and Node 20). */
export async function sha256Hex(text, cryptoImpl = globalThis.crypto) {
  const digest = await cryptoImpl.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The lines a list's checksum covers (contract E as amended), from entity -> Map(id -> data):
 * the held walk list, its held stops, the HELD addresses of those stops, the held people there.
 */
export function listScopeKeys(listId, entities) {
  const L = String(listId);
  const keys = new Set();
  if (entities.get("walk_list")?.has(L)) keys.add(`walk_list:${L}`);
  const addresses = new Set();
  for (const [id, data] of entities.get("stop") ?? []) {
    if (String(data.walk_list_id) === L) {
      keys.add(`stop:${id}`);
      if (data.address_id != null) addresses.add(String(data.address_id));
    }
  }
  const held = entities.get("address");
  for (const id of addresses) if (held?.has(id)) keys.add(`address:${id}`);
  for (const [id, data] of entities.get("person") ?? []) {
    if (data.address_id != null && addresses.has(String(data.address_id))) keys.add(`person:${id}`);
  }
  return [...keys];
}

/** Checksum of a list's scope: the sorted "entity:id" lines joined by "\n", SHA-256, hex. */
export async function listChecksum(listId, entities) {
  const lines = listScopeKeys(listId, entities).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return sha256Hex(lines.join("\n"));
}

function touches(mutation, entity, id) {
  if (!mutation) return false;
  if (mutation.op === "edit_field") return mutation.entity === entity && String(mutation.entity_id) === id;
  if (mutation.op === "server_request") {
    const value = mutation.args?.[`${entity}_id`];
    return value != null && String(value) === id;
  }
  if (mutation.op === "void_event") {
    if (entity === "address") return String(mutation.address_id) === id;
    return mutation.entity === entity && String(mutation.event_id) === id;
  }
  if (EVENT_OPS[mutation.op] === entity) return String(mutation.id) === id;
  if (entity === "address") return String(mutation.address_id) === id;
  if (entity === "person") return mutation.person_id != null && String(mutation.person_id) === id;
  return false;
}

function dataTouches(data, entity, id) {
  if (entity !== "person" && entity !== "address") return false;
  const value = data?.[`${entity}_id`];
  return value != null && String(value) === id;
}

const ekey = (entity, id) => `${entity}:${id}`;
const splitKey = (key) => {
  const at = key.indexOf(":");
  return [key.slice(0, at), key.slice(at + 1)];
};

/** What a failed request means for the phone (the contract's retry table). */
export function classifyStatus(status) {
  if (status === null) return "network";
  if (status >= 200 && status < 300) return null;
  if (status === 426) return "upgrade";
  if (status === 429) return "rate_limited";
  if (status >= 500 || status === 408) return "server";
  if (status === 401) return "auth";
  return "client";
}

export class SyncCore {
  /**
   * Open the engine on a store. Options: baseUrl, fetch (injectable network), now (the phone's
   * wall clock, ms), random (0..1, for backoff jitter), batchSize, pageLimit, timeoutMs.
   */
  static async open(store, options = {}) {
    const core = new SyncCore(store, options);
    await core._load();
    return core;
  }

  constructor(store, options) {
    this.store = store;
    this.baseUrl = options.baseUrl ?? "";
    this.fetch = options.fetch ?? ((...args) => globalThis.fetch(...args));
    this.now = options.now ?? (() => Date.now());
    this.random = options.random ?? Math.random;
    this.batchSize = options.batchSize ?? BATCH_SIZE;
    this.pageLimit = options.pageLimit ?? PAGE_LIMIT;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.failures = 0;
    this.retryDelayMs = 0;
    this.lastError = "";
    this.listeners = new Set();
    this._syncing = null;
    this._network = Promise.resolve(); // push, pull and sync run one at a time
  }

  _exclusive(work) {
    const run = this._network.then(work, work);
    this._network = run.catch(() => {});
    return run;
  }

  // ------------------------------------------------------------------ persistence

  async _load() {
    const t = await this.store.load();
    this.meta = t.get("meta");
    this.outbox = t.get("outbox"); // seq -> {seq, mutation}
    this.events = t.get("events"); // own event id -> mutation
    this.pending = t.get("pending"); // seq -> {seq, edit, acknowledged}
    this.rejections = t.get("rejections"); // seq -> {seq, mutation, reason, status}
    this.erased = t.get("erased"); // "entity:id" -> true (ids only: never accepted again)
    this.removed = t.get("removed"); // "entity:id" -> version of the remove
    this.layers = t.get("layers"); // cached map layers (not personal data)
    this.entities = new Map(); // entity -> Map(id -> {data, version})
    for (const [key, row] of t.get("entities")) this._table(splitKey(key)[0]).set(splitKey(key)[1], row);
    if (!this.meta.has("node_id")) await this._commit([["meta", "node_id", newNodeId()], ["meta", "next_seq", 1]]);
    this.clock = new HybridClock(this.nodeId, () => this.wall(), this.meta.get("clock_last") ?? null);
  }

  _table(entity) {
    let table = this.entities.get(entity);
    if (!table) this.entities.set(entity, (table = new Map()));
    return table;
  }

  /** Write ops durably, then mirror them in memory. Each op: [table, key, value|undefined]. */
  async _commit(ops) {
    await this.store.write(ops);
    for (const [table, key, value] of ops) {
      if (table === "entities") {
        const [entity, id] = splitKey(key);
        if (value === undefined) this.entities.get(entity)?.delete(id);
        else this._table(entity).set(id, value);
        continue;
      }
      const map = this[table];
      if (value === undefined) map.delete(key);
      else map.set(key, value);
    }
    this._changed();
  }

  _changed() {
    for (const listener of this.listeners) {
      try {
        listener(this);
      } catch {
        /* a screen's listener must not break sync */
      }
    }
  }

  /** Call `listener(core)` after every stored change; returns an unsubscribe function. */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ------------------------------------------------------------------ identity and clock

  /** The install's HLC node id: generated once, sent on device registration. */
  get nodeId() {
    return this.meta.get("node_id");
  }

  /** The registered device ({device_id, node_id, token, campaign_id, user_email}) or null. */
  get device() {
    return this.meta.get("device") ?? null;
  }

  get offsetMs() {
    return this.meta.get("offset_ms") ?? 0;
  }

  /** Wall time for stamping: the phone's clock corrected by the offset learnt from the server. */
  wall() {
    return Math.round(this.now() + this.offsetMs);
  }

  get cursor() {
    return this.meta.get("cursor") ?? null;
  }

  get upgradeRequired() {
    return Boolean(this.meta.get("upgrade_required"));
  }

  get authFailed() {
    return Boolean(this.meta.get("auth_failed"));
  }

  get lastSyncAt() {
    return this.meta.get("last_sync_at") ?? null;
  }

  get outboxCount() {
    return this.outbox.size;
  }

  _clockOps() {
    return [["meta", "clock_last", this.clock.last]];
  }

  /**
   * Register this install as a device of the signed-in user (password access token). Sends the
   * install's node id; a server without contract A refuses the unknown field (400/422) and is asked
   * again without it, and its node id is then adopted (nothing is queued at a first join).
   */
  async registerDevice(campaignId, accessToken, name) {
    const post = (body) =>
      this._raw("POST", `/api/campaigns/${campaignId}/devices`, body, { Authorization: `Bearer ${accessToken}` });
    let answer = await post({ name, node_id: this.nodeId });
    if ((answer.status === 400 || answer.status === 422) && /node_id/.test(answer.text)) answer = await post({ name });
    if (answer.status !== 201) {
      const error = new Error(answer.problem?.detail || answer.problem?.title || `registration failed (${answer.status})`);
      error.status = answer.status;
      error.problem = answer.problem;
      throw error;
    }
    const device = answer.json;
    const ops = [
      ["meta", "device", { ...device, campaign_id: device.campaign_id ?? campaignId }],
      ["meta", "auth_failed", false],
    ];
    if (device.node_id !== this.nodeId) {
      ops.push(["meta", "node_id", device.node_id]);
      this.clock.node = device.node_id;
    }
    await this._commit(ops);
    return device;
  }

  /** Forget the device and everything pulled (keeps the install id, the seq counter and the outbox). */
  async forgetDevice() {
    await this._commit([["meta", "device", undefined]]);
  }

  // ------------------------------------------------------------------ read side

  /** Pulled data of an entity with this phone's pending edits on top; null if unknown. */
  get(entity, id) {
    const stored = this.entities.get(entity)?.get(String(id));
    if (!stored) return null;
    const data = { ...stored.data };
    if (EDITABLE_FIELDS[entity]) for (const [field, edit] of Object.entries(this._overlay(entity, String(id)))) data[field] = edit.value;
    return data;
  }

  /** Ids of the pulled records of one kind. */
  ids(entity) {
    return [...(this.entities.get(entity)?.keys() ?? [])];
  }

  /** All records of one kind (pulled), as data objects (with overlays for people and addresses). */
  all(entity) {
    return this.ids(entity).map((id) => this.get(entity, id));
  }

  _overlay(entity, id) {
    const overlay = {};
    for (const pending of this.pending.values()) {
      const edit = pending.edit;
      if (edit.entity === entity && String(edit.entity_id) === id) {
        const current = overlay[edit.field];
        if (!current || edit.hlc > current.hlc) overlay[edit.field] = edit;
      }
    }
    return overlay;
  }

  /** The version of a field as this phone shows it: own latest edit, else the pulled one. */
  fieldVersion(entity, id, field) {
    const overlay = this._overlay(entity, String(id));
    if (overlay[field]) return overlay[field].hlc;
    return this.entities.get(entity)?.get(String(id))?.data?.field_versions?.[field] ?? null;
  }

  /** Events of a kind: pulled ones and this phone's own (union by id). */
  eventsOf(entity) {
    const result = new Map();
    for (const [id, row] of this.entities.get(entity) ?? []) result.set(id, row.data);
    for (const [id, mutation] of this.events) if (EVENT_OPS[mutation.op] === entity && !result.has(id)) result.set(id, mutation);
    return [...result.values()];
  }

  /** Whether the event id is still waiting in the outbox. */
  isQueued(eventId) {
    for (const envelope of this.outbox.values()) if (envelope.mutation.id === eventId) return true;
    return false;
  }

  /** Rejected mutations with their reasons, newest first. */
  rejectionList() {
    return [...this.rejections.values()].sort((a, b) => b.seq - a.seq);
  }

  // ------------------------------------------------------------------ write side

  async _enqueue(mutation, extraOps = () => []) {
    const seq = this.meta.get("next_seq") ?? 1;
    const envelope = { seq, mutation };
    await this._commit([
      ["outbox", seq, envelope],
      ["meta", "next_seq", seq + 1],
      ...this._clockOps(),
      ...extraOps(seq),
    ]);
    return envelope;
  }

  async _recordEvent(mutation) {
    await this._enqueue(mutation, () => [["events", mutation.id, mutation]]);
    return mutation;
  }

  /** Record a knock and its outcome (durable in the outbox when this resolves). */
  recordContact(addressId, outcome, { personId = null, walkListId = null } = {}) {
    return this._recordEvent({
      op: "record_contact_attempt", id: newEventId(), address_id: Number(addressId), outcome,
      at: this.clock.now(), person_id: personId == null ? null : Number(personId), walk_list_id: walkListId == null ? null : Number(walkListId),
    });
  }

  /** Record a survey answer (a correction is another answer). */
  recordAnswer(addressId, questionKey, value, { personId = null, walkListId = null, surveyId = null } = {}) {
    return this._recordEvent({
      op: "record_answer", id: newEventId(), address_id: Number(addressId), question_key: questionKey, value,
      at: this.clock.now(), person_id: personId == null ? null : Number(personId),
      walk_list_id: walkListId == null ? null : Number(walkListId), survey_id: surveyId == null ? null : Number(surveyId),
    });
  }

  /** Record an observation: moved_away, deceased, do_not_visit (clearing is for organisers). */
  recordObservation(addressId, kind, { personId = null, note = "" } = {}) {
    return this._recordEvent({
      op: "record_observation", id: newEventId(), address_id: Number(addressId), kind,
      at: this.clock.now(), person_id: personId == null ? null : Number(personId), note,
    });
  }

  _stampEdit(entity, entityId, field, value, base) {
    if (base) this.clock.receive(base); // an edit is always ordered after the version it replaces
    return { op: "edit_field", entity, entity_id: Number(entityId), field, value, hlc: this.clock.now(), base_hlc: base ?? null };
  }

  /** Edit one editable field of a person or address (last writer wins on the server). */
  async editField(entity, entityId, field, value) {
    if (!EDITABLE_FIELDS[entity]?.includes(field)) throw new Error(`${entity}.${field} is not editable from a phone`);
    const edit = this._stampEdit(entity, entityId, field, value, this.fieldVersion(entity, entityId, field));
    await this._enqueue(edit, (seq) => [["pending", seq, { seq, edit, acknowledged: false }]]);
    return edit;
  }

  /** Queue a server-authoritative request (e.g. release_walk_list). */
  request(name, args) {
    return this._enqueue({ op: "server_request", name, args });
  }

  /**
   * Undo this phone's last record at an address. Still queued: it leaves the outbox (it never
   * reached the server; a seq gap is allowed): "withdrawn". Already sent: events are append-only,
   * so a correcting `void_event` is queued and the event disappears from this phone at once (its
   * id is remembered as erased, as the server's `erase` of it will say): "voided". Only contact
   * attempts and answers are voided once sent (observations set safety flags, which only an
   * organiser clears). Null when there is nothing of this phone's to undo there.
   */
  async undoLast(addressId) {
    const A = String(addressId);
    let last = null;
    for (const envelope of this.outbox.values()) {
      const m = envelope.mutation;
      if (EVENT_OPS[m.op] && !envelope.voidAfter && String(m.address_id) === A && (!last || envelope.seq > last.seq)) last = envelope;
    }
    if (last && last.sent && VOIDABLE.includes(EVENT_OPS[last.mutation.op])) {
      // Sent in a push whose answer never came: the server may hold it. Keep it queued (its replay
      // gets the stored answer) and void it once acknowledged (_acknowledge), never just withdraw it.
      const key = ekey(EVENT_OPS[last.mutation.op], String(last.mutation.id));
      await this._commit([["outbox", last.seq, { ...last, voidAfter: true }], ["events", last.mutation.id, undefined], ["erased", key, true]]);
      return "voided";
    }
    if (last && !last.sent) {
      await this._commit([["outbox", last.seq, undefined], ["events", last.mutation.id, undefined]]);
      return "withdrawn";
    }
    const own = `-${this.nodeId}`;
    const voided = new Set();
    for (const envelope of this.outbox.values()) if (envelope.mutation.op === "void_event") voided.add(envelope.mutation.event_id);
    let latest = null;
    for (const entity of VOIDABLE) {
      for (const e of this.eventsOf(entity)) {
        const at = String(e.at ?? "");
        if (String(e.address_id) !== A || !at.endsWith(own) || voided.has(e.id)) continue;
        if (!latest || at > latest.at) latest = { at, entity, id: String(e.id) };
      }
    }
    if (!latest) return null;
    const key = ekey(latest.entity, latest.id);
    const mutation = { op: "void_event", entity: latest.entity, event_id: latest.id, address_id: Number(addressId), at: this.clock.now() };
    await this._enqueue(mutation, () => [["entities", key, undefined], ["events", latest.id, undefined], ["erased", key, true]]);
    return "voided";
  }

  // ------------------------------------------------------------------ network

  async _raw(method, path, body, headers = {}) {
    const controller = typeof AbortController === "function" ? new AbortController() : null;
    const timer = controller ? setTimeout(() => controller.abort(), this.timeoutMs) : null;
    try {
      const response = await this.fetch(this.baseUrl + path, {
        method,
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-Canvass-Protocol": String(PROTOCOL_VERSION), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller?.signal,
        cache: "no-store",
      });
      const text = await response.text();
      let json = null;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        json = null;
      }
      const ok = response.status >= 200 && response.status < 300;
      return { status: response.status, text, json: ok ? json : null, problem: ok ? null : json };
    } catch (error) {
      return { status: null, text: String(error), json: null, problem: null };
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  async _call(method, path, body) {
    const device = this.device;
    if (!device) return { status: 401, text: "no device", json: null, problem: { detail: "This phone is not registered." } };
    return this._raw(method, path, body, { Authorization: `Bearer ${device.token}` });
  }

  async _fail(answer) {
    const kind = classifyStatus(answer.status);
    this.lastError = `${kind}: ${answer.problem?.detail || answer.problem?.title || answer.text || ""}`.slice(0, 500);
    const ops = [];
    if (kind === "upgrade") ops.push(["meta", "upgrade_required", true]);
    if (kind === "auth") ops.push(["meta", "auth_failed", true]);
    if (RETRYABLE.has(kind)) {
      this.failures += 1;
      const ceiling = Math.min(300_000, 1000 * 2 ** Math.min(this.failures, 30));
      this.retryDelayMs = this.random() * ceiling;
    }
    if (ops.length) await this._commit(ops);
    else this._changed();
    return kind;
  }

  async _succeed() {
    this.failures = 0;
    this.retryDelayMs = 0;
    this.lastError = "";
    if (this.upgradeRequired) await this._commit([["meta", "upgrade_required", false]]);
  }

  /**
   * Send the outbox oldest first in batches; keep everything not acknowledged. Returns
   * {ok, status, sent, acknowledged, failure}.
   */
  push() {
    return this._exclusive(() => this._push());
  }

  async _push() {
    let sent = 0;
    let acknowledged = 0;
    while (this.outbox.size) {
      let batch = [...this.outbox.values()].sort((a, b) => a.seq - b.seq).slice(0, this.batchSize);
      const unsent = batch.filter((envelope) => !envelope.sent);
      if (unsent.length) {
        // from here the server may hold them: an undo must void, not withdraw (undoLast)
        await this._commit(unsent.map((envelope) => ["outbox", envelope.seq, { ...envelope, sent: true }]));
        batch = batch.map((envelope) => this.outbox.get(envelope.seq) ?? envelope);
      }
      sent += batch.length;
      const localBefore = this.now();
      const answer = await this._call("POST", "/api/sync/push", {
        protocol_version: PROTOCOL_VERSION, device_id: this.device.node_id,
        mutations: batch.map(({ seq, mutation }) => ({ seq, mutation })),
      });
      if (answer.status !== 200 || !answer.json || !Array.isArray(answer.json.results)) {
        const failure = await this._fail(answer.status === 200 ? { ...answer, status: 500 } : answer);
        return { ok: false, status: answer.status, sent, acknowledged, failure };
      }
      const localAfter = this.now();
      acknowledged += await this._acknowledge(batch, answer.json, (localBefore + localAfter) / 2);
      await this._succeed();
    }
    return { ok: true, status: 200, sent, acknowledged, failure: null };
  }

  /** Adopt the server's clock (contract B.1–2) when it differs from ours by more than half the bound. */
  _adoptServerTime(serverMs, localMs) {
    if (typeof serverMs !== "number") return [];
    const candidate = Math.round(serverMs - localMs);
    const ops = [];
    if (Math.abs(candidate - this.offsetMs) > MAX_SKEW_MS / 2) {
      ops.push(["meta", "offset_ms", candidate]);
      this.meta.set("offset_ms", candidate); // used at once by wall(); persisted with ops
    }
    const wall = this.wall();
    const last = parseHlc(this.clock.last);
    if (last && last.wall > wall + MAX_SKEW_MS) this.clock.resetTo(wall);
    return ops;
  }

  async _acknowledge(batch, response, localMs) {
    const ops = this._adoptServerTime(response.server_time_ms, localMs);
    const bySeq = new Map();
    for (const result of response.results) if (!bySeq.has(result.seq)) bySeq.set(result.seq, result); // the first result for a seq is its answer
    const maxSeq = batch[batch.length - 1].seq;
    let count = 0;
    let restamped = false;
    const requeue = [];
    const voids = []; // undone while their push was unanswered: void them now they are acknowledged
    for (const envelope of batch) {
      const result = bySeq.get(envelope.seq);
      if (!result) continue;
      count += 1;
      ops.push(["outbox", envelope.seq, undefined]);
      const pending = this.pending.get(envelope.seq);
      if (result.status === "restamp" && envelope.mutation.op === "edit_field") {
        restamped = true;
        requeue.push({ mutation: envelope.mutation, pending });
        if (pending) ops.push(["pending", envelope.seq, undefined]);
      } else if (result.status === "applied" || result.status === "duplicate" || result.status === "conflict") {
        if (pending) ops.push(["pending", envelope.seq, { ...pending, acknowledged: true }]);
        if (envelope.voidAfter) voids.push(envelope.mutation);
      } else {
        // rejected, or a status this app does not know: never resent, shown in plain words
        ops.push(["rejections", envelope.seq, { seq: envelope.seq, mutation: envelope.mutation, reason: result.reason || result.status, status: result.status }]);
        if (pending) ops.push(["pending", envelope.seq, undefined]);
      }
    }
    for (const result of response.results) {
      if (result.status !== "restamp" && result.server_hlc && parseHlc(result.server_hlc)) this.clock.receive(result.server_hlc);
    }
    if (restamped) {
      // B.3: unsent edits were stamped with the same wrong clock: stamp them again in place
      for (const envelope of [...this.outbox.values()].sort((a, b) => a.seq - b.seq)) {
        if (envelope.seq <= maxSeq || envelope.mutation.op !== "edit_field") continue;
        const old = envelope.mutation;
        const edit = this._stampEdit(old.entity, old.entity_id, old.field, old.value, old.base_hlc);
        ops.push(["outbox", envelope.seq, { seq: envelope.seq, mutation: edit }]);
        const pending = this.pending.get(envelope.seq);
        if (pending) ops.push(["pending", envelope.seq, { ...pending, edit }]);
      }
    }
    let seq = this.meta.get("next_seq") ?? 1;
    for (const { mutation } of requeue) {
      const edit = this._stampEdit(mutation.entity, mutation.entity_id, mutation.field, mutation.value, mutation.base_hlc);
      ops.push(["outbox", seq, { seq, mutation: edit }], ["pending", seq, { seq, edit, acknowledged: false }]);
      seq += 1;
    }
    for (const event of voids) {
      const mutation = { op: "void_event", entity: EVENT_OPS[event.op], event_id: String(event.id), address_id: Number(event.address_id), at: this.clock.now() };
      ops.push(["outbox", seq, { seq, mutation }]);
      seq += 1;
    }
    ops.push(["meta", "next_seq", seq], ...this._clockOps());
    await this._commit(ops);
    return count;
  }

  /**
   * Page through the change feed until has_more is false, download newly assigned lists, then
   * compare the per-list checksums of the last page and repair any list that differs.
   */
  pull() {
    return this._exclusive(() => this._pull());
  }

  async _pull() {
    let pages = 0;
    let changes = 0;
    let resets = 0;
    let checksums = null;
    for (;;) {
      const answer = await this._call("POST", "/api/sync/pull", {
        protocol_version: PROTOCOL_VERSION, device_id: this.device.node_id, cursor: this.cursor, limit: this.pageLimit,
      });
      if ((answer.status === 400 || answer.status === 422) && this.cursor !== null && resets < 1 && isInvalidCursor(answer.problem)) {
        resets += 1; // the server no longer accepts our cursor: rebuild from nothing (amendment E.10)
        await this.resetPulledState();
        continue;
      }
      if (answer.status !== 200 || !answer.json) {
        const failure = await this._fail(answer.status === 200 ? { ...answer, status: 500 } : answer);
        return { ok: false, status: answer.status, pages, changes, failure };
      }
      await this._succeed();
      await this.applyChanges(answer.json.changes ?? [], { extraOps: [["meta", "cursor", answer.json.cursor ?? null]] });
      pages += 1;
      changes += (answer.json.changes ?? []).length;
      if (!answer.json.has_more) {
        checksums = answer.json.checksums ?? null;
        break;
      }
    }
    const downloaded = await this.downloadLists();
    if (!downloaded.ok) return { ...downloaded, pages: pages + downloaded.pages, changes: changes + downloaded.changes };
    const repaired = checksums ? await this.verifyChecksums(checksums) : [];
    await this._commit([["meta", "last_sync_at", new Date(this.wall()).toISOString()]]);
    return { ok: true, status: 200, pages: pages + downloaded.pages, changes: changes + downloaded.changes, repaired, failure: null };
  }

  /**
   * Drop everything pulled (records, remove markers, list downloads) and the cursor, keeping the
   * outbox, own events still queued and unacknowledged edits, so the next pull rebuilds the phone
   * from the server: a pull from a null cursor alone would miss `erase` changes sent meanwhile.
   */
  async resetPulledState() {
    const queued = new Set([...this.outbox.values()].map((e) => e.mutation.id).filter(Boolean));
    const ops = [["meta", "cursor", null], ["meta", "downloads", {}]];
    for (const [entity, table] of this.entities) for (const id of table.keys()) ops.push(["entities", ekey(entity, id), undefined]);
    for (const key of this.removed.keys()) ops.push(["removed", key, undefined]);
    for (const id of this.events.keys()) if (!queued.has(id)) ops.push(["events", id, undefined]);
    for (const [seq, pending] of this.pending) if (pending.acknowledged) ops.push(["pending", seq, undefined]);
    await this._commit(ops);
  }

  /** Fetch newly assigned walk lists page by page, resuming from the saved page token. */
  async downloadLists() {
    let pages = 0;
    let changes = 0;
    for (;;) {
      const downloads = this.meta.get("downloads") ?? {};
      const ids = Object.keys(downloads).sort((a, b) => Number(a) - Number(b));
      if (!ids.length) break;
      const listId = ids[0];
      const token = downloads[listId];
      const answer = await this._call("GET", `/api/sync/lists/${listId}${token ? `?page_token=${encodeURIComponent(token)}` : ""}`);
      if (answer.status === 403 || answer.status === 404) {
        await this._setDownload(listId, undefined); // no longer ours: a remove follows
        continue;
      }
      if (answer.status !== 200 || !answer.json) {
        const failure = await this._fail(answer.status === 200 ? { ...answer, status: 500 } : answer);
        return { ok: false, status: answer.status, pages, changes, failure };
      }
      await this._succeed();
      const next = answer.json.next_page_token || undefined;
      const after = { ...(this.meta.get("downloads") ?? {}) };
      if (listId in after) {
        if (next) after[listId] = next;
        else delete after[listId];
      }
      await this.applyChanges(answer.json.changes ?? [], { fromDownload: true, extraOps: [["meta", "downloads", after]] });
      pages += 1;
      changes += (answer.json.changes ?? []).length;
    }
    return { ok: true, status: 200, pages, changes };
  }

  async _setDownload(listId, token) {
    const downloads = { ...(this.meta.get("downloads") ?? {}) };
    if (token === undefined) delete downloads[listId];
    else downloads[listId] = token;
    await this._commit([["meta", "downloads", downloads]]);
  }

  _scopeEntities() {
    const view = new Map();
    for (const [entity, table] of this.entities) view.set(entity, new Map([...table].map(([id, row]) => [id, row.data])));
    return view;
  }

  /** This phone's checksum of one list's scope (contract E). */
  checksumOf(listId) {
    return listChecksum(listId, this._scopeEntities());
  }

  /** Re-download every list whose checksum differs from the server's; returns the repaired ids. */
  async verifyChecksums(checksums) {
    const repaired = [];
    if (!globalThis.crypto?.subtle) return repaired; // no WebCrypto outside a secure origin: nothing to compare with
    for (const [listId, expected] of Object.entries(checksums)) {
      if (!this.entities.get("walk_list")?.has(String(listId))) continue;
      if ((await this.checksumOf(listId)) === expected) continue;
      if (await this.redownloadList(listId)) repaired.push(listId);
    }
    return repaired;
  }

  /** Download one list whole again and delete local records of its scope that it did not contain. */
  async redownloadList(listId) {
    const before = new Set(listScopeKeys(listId, this._scopeEntities()));
    const seen = new Set();
    let token = "";
    for (;;) {
      const answer = await this._call("GET", `/api/sync/lists/${listId}${token ? `?page_token=${encodeURIComponent(token)}` : ""}`);
      if (answer.status !== 200 || !answer.json) {
        if (answer.status !== 403 && answer.status !== 404) await this._fail(answer);
        return false;
      }
      for (const change of answer.json.changes ?? []) if (change.op === "upsert") seen.add(ekey(change.entity, change.id));
      await this.applyChanges(answer.json.changes ?? [], { fromDownload: true });
      token = answer.json.next_page_token;
      if (!token) break;
    }
    // amendment E.2: keep what another list on the phone still brings in (an address on two lists)
    const view = this._scopeEntities();
    const others = new Set();
    for (const other of this.ids("walk_list")) if (other !== String(listId)) for (const key of listScopeKeys(other, view)) others.add(key);
    const stale = [...before].filter((key) => !seen.has(key) && !others.has(key));
    if (stale.length) await this._commit(stale.map((key) => ["entities", key, undefined]));
    return true;
  }

  /** Push then pull; one at a time (a second call while one runs joins it). */
  sync() {
    if (!this._syncing) {
      this._syncing = this._exclusive(async () => {
        try {
          const pushed = await this._push();
          if (!pushed.ok && (pushed.failure === "upgrade" || pushed.failure === "network" || pushed.failure === "auth")) return { pushed, pulled: null };
          const pulled = await this._pull();
          if (pulled.ok && this.outbox.size) return { pushed: await this._push(), pulled }; // restamped edits
          return { pushed, pulled };
        } finally {
          this._syncing = null;
        }
      });
    }
    return this._syncing;
  }

  // ------------------------------------------------------------------ applying changes

  /** Apply pulled changes in order, in one store write (replaying a page changes nothing). */
  async applyChanges(changes, { fromDownload = false, extraOps = [] } = {}) {
    const ops = [];
    const shadow = new Map(); // "entity:id" -> row|null, so later changes of the page see earlier ones
    const current = (entity, id) => {
      const key = ekey(entity, id);
      return shadow.has(key) ? shadow.get(key) : this.entities.get(entity)?.get(id) ?? null;
    };
    let downloads = null;
    const erasures = [];
    let queued = null; // own event ids still in the outbox (computed once, if needed)
    for (const change of changes) {
      const id = String(change.id);
      const key = ekey(change.entity, id);
      if (change.op === "upsert") {
        if (this.erased.has(key)) continue;
        const removedAt = this.removed.get(key);
        if (removedAt !== undefined && removedAt > change.version) continue;
        const stored = current(change.entity, id);
        if (stored && stored.version > change.version) continue;
        const row = { data: change.data, version: change.version };
        shadow.set(key, row);
        ops.push(["entities", key, row]);
        if (removedAt !== undefined) ops.push(["removed", key, undefined]);
        for (const stamp of Object.values(change.data?.field_versions ?? {})) if (parseHlc(stamp)) this.clock.receive(stamp);
        if (change.entity === "walk_list" && !stored && !fromDownload) {
          downloads = downloads ?? { ...(this.meta.get("downloads") ?? {}) };
          if (!(id in downloads)) downloads[id] = "";
        }
        if (EDITABLE_FIELDS[change.entity]) ops.push(...this._rebaseOps(change.entity, id, change.data));
        if (this.events.has(id)) {
          // the server's copy of an own event arrived: the local copy is no longer needed once sent
          queued = queued ?? new Set([...this.outbox.values()].map((e) => e.mutation.id));
          if (!queued.has(id)) ops.push(["events", id, undefined]);
        }
      } else if (change.op === "remove") {
        shadow.set(key, null);
        ops.push(["entities", key, undefined], ["removed", key, change.version ?? ""]);
        if (change.entity === "walk_list") {
          downloads = downloads ?? { ...(this.meta.get("downloads") ?? {}) };
          delete downloads[id];
        }
      } else if (change.op === "erase") {
        shadow.set(key, null);
        erasures.push([change.entity, id]);
      }
    }
    if (downloads) ops.push(["meta", "downloads", downloads]);
    ops.push(...extraOps);
    // erasures after the rest of the page: purge everything that refers to the erased record
    for (const [entity, id] of erasures) ops.push(...this._eraseOps(entity, id, shadow));
    ops.push(...this._clockOps());
    // a later op on the same key wins in both stores; entity rows shadowed to null are deleted
    await this._commit(ops);
  }

  _rebaseOps(entity, id, data) {
    const versions = data?.field_versions ?? {};
    const ops = [];
    for (const [seq, pending] of this.pending) {
      const edit = pending.edit;
      if (pending.acknowledged && edit.entity === entity && String(edit.entity_id) === id && (versions[edit.field] ?? "") >= edit.hlc) {
        ops.push(["pending", seq, undefined]);
      }
    }
    return ops;
  }

  _eraseOps(entity, id, shadow) {
    const key = ekey(entity, id);
    const ops = [["erased", key, true], ["entities", key, undefined], ["removed", key, undefined]];
    for (const [other, table] of this.entities) {
      for (const [otherId, row] of table) if (dataTouches(row.data, entity, id)) ops.push(["entities", ekey(other, otherId), undefined]);
    }
    for (const [shadowKey, row] of shadow) if (row && dataTouches(row.data, entity, id)) ops.push(["entities", shadowKey, undefined]);
    for (const [eventId, mutation] of this.events) if (touches(mutation, entity, id)) ops.push(["events", eventId, undefined]);
    for (const [seq, envelope] of this.outbox) if (touches(envelope.mutation, entity, id)) ops.push(["outbox", seq, undefined]);
    for (const [seq, pending] of this.pending) if (touches(pending.edit, entity, id)) ops.push(["pending", seq, undefined]);
    for (const [seq, rejection] of this.rejections) if (touches(rejection.mutation, entity, id)) ops.push(["rejections", seq, undefined]);
    if (entity === "walk_list") {
      const downloads = { ...(this.meta.get("downloads") ?? {}) };
      delete downloads[id];
      ops.push(["meta", "downloads", downloads]);
    }
    return ops;
  }

  // ------------------------------------------------------------------ what the screens show

  /** Safety flags of an address (server's, with own unmerged observations folded on top). */
  flagsAt(addressId) {
    const A = String(addressId);
    const flags = { do_not_visit: false, moved_away: false, deceased: false };
    for (const row of this.entities.get("flag")?.values() ?? []) {
      if (String(row.data.address_id) !== A) continue;
      for (const k of Object.keys(flags)) flags[k] = flags[k] || Boolean(row.data[k]);
    }
    for (const m of this.events.values()) {
      if (m.op === "record_observation" && String(m.address_id) === A && m.kind in flags) flags[m.kind] = true;
    }
    return flags;
  }

  /** The walk lists on this phone, with doors done / to do. */
  listSummaries() {
    const attempted = this.attemptedAddresses();
    const result = [];
    for (const [id, row] of this.entities.get("walk_list") ?? []) {
      const stops = this.stopsOf(id);
      const done = stops.filter((s) => attempted.has(String(s.address_id))).length;
      result.push({ ...row.data, id: Number(id), total: stops.length, done });
    }
    return result.sort((a, b) => a.id - b.id);
  }

  /** Ids of addresses with at least one contact attempt (pulled or own). */
  attemptedAddresses() {
    const set = new Set();
    for (const e of this.eventsOf("contact_attempt")) set.add(String(e.address_id));
    return set;
  }

  /** A list's stops in route order (the server's position order). */
  stopsOf(listId) {
    const L = String(listId);
    const stops = [];
    for (const row of this.entities.get("stop")?.values() ?? []) if (String(row.data.walk_list_id) === L) stops.push(row.data);
    return stops.sort((a, b) => a.position - b.position);
  }

  /** People registered at an address (with pending edits on top). */
  peopleAt(addressId) {
    const A = String(addressId);
    return this.ids("person").map((id) => this.get("person", id)).filter((p) => String(p.address_id) === A)
      .sort((a, b) => String(a.surname).localeCompare(String(b.surname)) || String(a.forenames).localeCompare(String(b.forenames)));
  }

  /** Events at an address (attempts, answers, observations), oldest first. */
  eventsAt(addressId) {
    const A = String(addressId);
    const all = [];
    for (const entity of ["contact_attempt", "answer", "observation"]) {
      for (const e of this.eventsOf(entity)) if (String(e.address_id) === A) all.push({ ...e, entity, queued: this.isQueued(e.id) });
    }
    return all.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }

  /** The active survey (highest version), or null. */
  activeSurvey() {
    let best = null;
    for (const row of this.entities.get("survey")?.values() ?? []) {
      if (row.data.is_active === false) continue;
      if (!best || row.data.version > best.version) best = row.data;
    }
    return best;
  }
}

/** A problem that says the pull cursor was refused (contract E: 400 invalid-cursor; older servers: 422 in words). */
export function isInvalidCursor(problem) {
  if (!problem) return false;
  if (typeof problem.type === "string" && problem.type.endsWith("/invalid-cursor")) return true;
  return /cursor/i.test(`${problem.detail ?? ""} ${problem.title ?? ""}`);
}
