// The canvasser app's screens: join / sign in, my lists, a list (map + doors in route order),
// a door (outcomes, survey, people, note, contact with consent, flags, undo), problems.
// Plain DOM, no framework; every word from strings.js; no inline script or handler attributes.

import { t, plainReason, STRINGS } from "./strings.js";
import { showListMap, closeMap } from "./map.js";

const OUTCOMES = ["spoke", "refused", "come_back", "inaccessible", "moved", "deceased", "wrong_address", "do_not_visit"];

/** Create an element: h("button", {class: "x", onclick: fn}, "text", child...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) if (child != null && child !== false) el.append(child instanceof Node ? child : String(child));
  return el;
}

let toastTimer = null;
/** Show a short message at the bottom of the screen. */
export function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), 3500);
}

function mount(...children) {
  const main = document.getElementById("main");
  closeMap();
  main.replaceChildren(...children.flat().filter((c) => c != null && c !== false));
  return main;
}

function timeText(iso) {
  if (!iso) return t("neverSynced");
  const when = new Date(iso);
  return t("lastSynced", { time: when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) });
}

// ------------------------------------------------------------------ status bar and banners

/** The sticky status bar (records waiting, last sync, Sync now) and the banners under it. */
export function renderStatus(app) {
  const core = app.core;
  const status = document.getElementById("status");
  if (!core) return;
  const count = core.outboxCount;
  const counts = h("div", { class: "counts" },
    h("div", { id: "outbox-count", "data-count": String(count) }, count ? t("waiting", { count }) : t("allSent")),
    h("div", { id: "last-synced" }, navigator.onLine ? timeText(core.lastSyncAt) : t("offline")));
  const button = h("button", { id: "sync-now", type: "button", disabled: !core.device || app.syncing, onclick: () => app.syncNow(true) },
    app.syncing ? t("syncing") : t("syncNow"));
  status.replaceChildren(counts, button);

  const banners = [];
  if (core.upgradeRequired) {
    banners.push(h("div", { class: "banner bad", role: "alert", id: "upgrade-banner" }, h("span", {}, t("upgradeRequired")),
      h("button", { type: "button", onclick: () => location.reload() }, t("reloadApp"))));
  }
  if (core.authFailed) {
    banners.push(h("div", { class: "banner bad", role: "alert", id: "auth-banner" }, h("span", {}, t("authNeeded")),
      h("a", { class: "button", href: "#/signin" }, t("signInAgain"))));
  }
  const problems = core.rejections.size;
  if (problems) {
    banners.push(h("div", { class: "banner", id: "problems-banner" }, h("span", {}, t("problems", { count: problems })),
      h("a", { class: "button", href: "#/problems" }, t("showProblems"))));
  }
  if (core.lastError && core.retryDelayMs > 0 && navigator.onLine) {
    banners.push(h("div", { class: "banner" }, t("retryIn", { seconds: Math.ceil(core.retryDelayMs / 1000) })));
  }
  if (app.installPrompt) {
    banners.push(h("div", { class: "banner" }, h("span", {}, t("installHint")),
      h("button", { type: "button", onclick: async () => {
        const prompt = app.installPrompt;
        app.installPrompt = null;
        await prompt.prompt();
        renderStatus(app);
      } }, t("installApp"))));
  }
  document.getElementById("banners").replaceChildren(...banners);
}

// ------------------------------------------------------------------ routing

/** Show the screen named by the URL (join link path, or the #/hash route). */
export function renderRoute(app) {
  const core = app.core;
  const hash = location.hash.replace(/^#\/?/, "");
  const [screen, ...args] = hash.split("/");
  const joinCode = new URLSearchParams(location.search).get("code");
  if (screen === "signin") return renderSignIn(app);
  if (!core.device) return renderJoin(app, joinCode);
  if (screen === "join") return renderJoin(app, joinCode);
  if (screen === "list" && args[0]) return renderList(app, args[0]);
  if (screen === "door" && args[1]) return renderDoor(app, args[0], args[1]);
  if (screen === "problems") return renderProblems(app);
  return renderLists(app);
}

// ------------------------------------------------------------------ join and sign in

async function api(path, body, token = null) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { method: body ? "POST" : "GET", headers, body: body ? JSON.stringify(body) : undefined });
  const json = await response.json().catch(() => null);
  if (!response.ok) {
    const message = json?.detail || json?.title || `HTTP ${response.status}`;
    throw new Error(message);
  }
  return json;
}

async function finishSignIn(app, tokens, form) {
  const status = form.querySelector(".form-status");
  status.textContent = t("registering");
  const me = await api("/api/me", null, tokens.access_token);
  const memberships = me.memberships || [];
  if (!memberships.length) throw new Error(t("noCampaign"));
  const chosen = form.querySelector("select[name=campaign]");
  const previous = app.core.device?.campaign_id;
  const campaignId = chosen ? Number(chosen.value) : (memberships.find((m) => m.campaign_id === previous) || memberships[0]).campaign_id;
  await app.core.registerDevice(campaignId, tokens.access_token, `Phone of ${me.display_name}`.slice(0, 200));
  status.textContent = t("downloading");
  await app.syncNow(true);
  location.hash = "#/lists";
  if (location.pathname !== "/app/") history.replaceState(null, "", "/app/#/lists");
  renderRoute(app);
}

function field(label, attrs) {
  const id = `f-${attrs.name}`;
  return [h("label", { for: id }, label), h("input", { id, ...attrs })];
}

/** Join with a code: create an account (or sign in), register this phone, download the lists. */
export function renderJoin(app, code) {
  let mode = "new";
  const form = h("form", { class: "stack", novalidate: true });
  const draw = () => {
    const parts = [
      ...field(t("joinCode"), { name: "code", type: "text", value: code || "", autocomplete: "off", autocapitalize: "characters", required: mode === "new" }),
      h("div", { class: "row", role: "group" },
        h("button", { type: "button", class: mode === "new" ? "chosen" : "", "aria-pressed": String(mode === "new"), onclick: () => { code = form.code.value; mode = "new"; draw(); } }, t("newAccount")),
        h("button", { type: "button", class: mode === "old" ? "chosen" : "", "aria-pressed": String(mode === "old"), onclick: () => { code = form.code.value; mode = "old"; draw(); } }, t("haveAccount"))),
      mode === "new" ? field(t("yourName"), { name: "display_name", type: "text", autocomplete: "name", required: true }) : null,
      ...field(t("email"), { name: "email", type: "email", autocomplete: "email", required: true }),
      ...field(t("password"), { name: "password", type: "password", autocomplete: mode === "new" ? "new-password" : "current-password", required: true }),
      h("button", { type: "submit", class: "primary big" }, mode === "new" ? t("createAccount") : t("signIn")),
      h("p", { class: "form-status", role: "status" }),
    ];
    form.replaceChildren(...parts.flat().filter(Boolean));
  };
  draw();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = form.querySelector(".form-status");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const email = form.email.value.trim();
      // Joining answers the same whether or not the address had an account and signs nobody in: sign in next.
      if (mode === "new") {
        await api("/api/auth/join", { code: form.code.value.trim().toUpperCase(), display_name: form.display_name.value.trim(), email, password: form.password.value });
      }
      const tokens = await api("/api/auth/login", { email, password: form.password.value });
      await finishSignIn(app, tokens, form);
    } catch (error) {
      status.textContent = t(mode === "new" ? "joinFailed" : "signInFailed", { detail: error.message });
      button.disabled = false;
    }
  });
  mount(h("h1", {}, t("joinTitle")), h("p", {}, t("joinIntro")), form);
}

/** Sign in again (expired or revoked device): same install, same node id, the queue is kept. */
export function renderSignIn(app) {
  const form = h("form", { class: "stack", novalidate: true },
    ...field(t("email"), { name: "email", type: "email", autocomplete: "email", required: true, value: app.core.device?.email || "" }),
    ...field(t("password"), { name: "password", type: "password", autocomplete: "current-password", required: true }),
    h("button", { type: "submit", class: "primary big" }, t("signIn")),
    h("p", { class: "form-status", role: "status" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const tokens = await api("/api/auth/login", { email: form.email.value.trim(), password: form.password.value });
      await finishSignIn(app, tokens, form);
    } catch (error) {
      form.querySelector(".form-status").textContent = t("signInFailed", { detail: error.message });
    }
  });
  mount(h("h1", {}, t("signInTitle")), h("p", {}, t("signInAgainIntro")), form);
}

// ------------------------------------------------------------------ lists

/** "My lists": the lists on this phone with doors done / to do. */
export function renderLists(app) {
  const lists = app.core.listSummaries();
  const cards = lists.map((list) => {
    const percent = list.total ? Math.round((100 * list.done) / list.total) : 0;
    const bar = h("div", { class: "progress", role: "img", "aria-label": t("doorsProgress", { done: list.done, total: list.total }) }, h("span"));
    bar.firstChild.style.width = `${percent}%`;
    return h("div", { class: "card list-card", "data-list-id": String(list.id) },
      h("h2", {}, list.name),
      h("p", { class: "doors-progress" }, t("doorsProgress", { done: list.done, total: list.total })), bar,
      h("a", { class: "button primary", href: `#/list/${list.id}`, "aria-label": t("openList", { name: list.name }) }, t("openList", { name: list.name })));
  });
  mount(h("h1", {}, t("myLists")), ...(cards.length ? cards : [h("p", {}, t("noLists"))]));
}

/** The stops of a list with their address, people and whether they were knocked. */
function doorsOf(core, listId) {
  const attempted = core.attemptedAddresses();
  return core.stopsOf(listId).map((stop, index) => {
    const address = core.get("address", stop.address_id) || { id: stop.address_id, lines: [`#${stop.address_id}`] };
    return { stop, address, n: index + 1, done: attempted.has(String(stop.address_id)) };
  });
}

function nextDoor(doors, after = null) {
  const start = after == null ? 0 : doors.findIndex((d) => String(d.address.id) === String(after)) + 1;
  return doors.slice(start).find((d) => !d.done) || (after == null ? null : doors.slice(0, start).find((d) => !d.done)) || null;
}

function addressLabel(address) {
  return (address.lines || []).filter(Boolean).join(", ") || `${address.house_number || ""} ${address.street || ""}`.trim();
}

/** A list: map with route and numbered stops, then the doors in route order grouped by building. */
export function renderList(app, listId) {
  const core = app.core;
  const list = core.get("walk_list", listId);
  if (!list) return renderLists(app);
  const doors = doorsOf(core, listId);
  const next = nextDoor(doors);
  const items = [];
  let building = null;
  doors.forEach((door, i) => {
    const key = door.address.building_key;
    const shared = key && doors.filter((d) => d.address.building_key === key).length > 1;
    if (shared && key !== building) {
      const lines = (door.address.lines || []).filter(Boolean);
      const name = (door.address.flat && lines.length > 1 ? lines.slice(1) : lines).join(", ") || door.address.street || key;
      items.push(h("li", { class: "building" }, t("building", { name })));
    }
    building = shared ? key : null;
    const classes = ["door", door.done ? "done" : "", next && door === next ? "next" : ""].join(" ");
    items.push(h("li", {}, h("a", { class: classes, href: `#/door/${listId}/${door.address.id}`, "data-address-id": String(door.address.id), "aria-current": next && door === next ? "step" : null },
      h("span", { class: "num", "aria-hidden": "true" }, String(i + 1)),
      h("span", {}, addressLabel(door.address)),
      h("span", { class: "badge" }, door.done ? t("done") : ""))));
  });
  const done = doors.filter((d) => d.done).length;
  mount(
    h("a", { class: "button", href: "#/lists" }, t("backToLists")),
    h("h1", {}, list.name),
    h("p", { class: "doors-progress" }, t("doorsProgress", { done, total: doors.length })),
    next ? h("a", { class: "button primary big", id: "go-next", href: `#/door/${listId}/${next.address.id}` }, `${t("nextDoor")}: ${addressLabel(next.address)}`) : h("p", {}, t("allDone")),
    h("div", { id: "map", role: "region", "aria-label": t("map") }),
    h("h2", {}, t("doorsInOrder")),
    h("ol", { class: "doors", "aria-label": t("doorsInOrder") }, items),
  );
  showListMap(app, document.getElementById("map"), listId, doors, next);
}

// ------------------------------------------------------------------ a door

const selectedPerson = new Map(); // address id -> person id chosen at the door (this session only)

function latestAnswers(core, addressId, personId) {
  const answers = {};
  for (const e of core.eventsAt(addressId)) {
    if (e.entity !== "answer") continue;
    if ((e.person_id ?? null) !== (personId ?? null)) continue;
    answers[e.question_key] = e.value;
  }
  return answers;
}

function questionChoices(question, translation = null) {
  const kind = String(question.kind || "").toLowerCase();
  const options = (question.options || question.choices || []).map(String);
  const labels = translation && Array.isArray(translation.options) && translation.options.length === options.length ? translation.options.map(String) : options;
  if (["yes_no", "yesno", "bool", "boolean"].includes(kind)) {
    return options.length ? options.map((o, i) => [labels[i], o]) : [[t("yes"), true], [t("no"), false]];
  }
  if (kind === "scale" && !options.length) {
    const out = [];
    for (let v = Number(question.min ?? 1); v <= Number(question.max ?? 5); v++) out.push([String(v), v]);
    return out;
  }
  if (["text", "free_text", "number"].includes(kind)) return null;
  return options.map((o, i) => [labels[i], o]);
}

/** The phone's languages, most preferred first (cy-GB also tries cy). */
function phoneLanguages() {
  const wanted = (navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"]).map(String);
  return [...new Set(wanted.flatMap((lang) => [lang, lang.split("-")[0]]))];
}

/** The entry of `translations` (language code -> anything) for the phone's language, or null. */
function translationFor(translations) {
  if (!translations || typeof translations !== "object") return null;
  for (const lang of phoneLanguages()) if (translations[lang]) return translations[lang];
  return null;
}

/** Skip logic: a question with `show_if` shows only once the earlier question's answer is one of `equals`. */
function isShown(question, answers) {
  const rule = question.show_if;
  if (!rule || !rule.question) return true;
  if (!(rule.question in answers)) return false;
  // yes/no answers are true/false on this app, "Yes"/"No" in older surveys: compare them as words
  const word = (v) => (v === true ? "yes" : v === false ? "no" : String(v).toLowerCase());
  const given = answers[rule.question];
  const wanted = (Array.isArray(rule.equals) ? rule.equals : [rule.equals]).map(word);
  return (Array.isArray(given) ? given : [given]).some((v) => wanted.includes(word(v)));
}

/** Outcome codes the campaign's survey offers, in its order and words (null: the app's own list). */
function surveyOutcomes(survey) {
  if (!survey || !Array.isArray(survey.outcomes) || !survey.outcomes.length) return null;
  return survey.outcomes.filter((o) => o.code !== "not_home").map((o) => [o.code, translationFor(o.translations) || o.label]);
}

/** The door screen: "not in" then the next door in one more tap; outcomes, survey, people, note. */
export function renderDoor(app, listId, addressId) {
  const core = app.core;
  const address = core.get("address", addressId);
  if (!address) return renderList(app, listId);
  const doors = doorsOf(core, listId);
  const index = doors.findIndex((d) => String(d.address.id) === String(addressId));
  const personId = selectedPerson.get(String(addressId)) ?? null;
  const survey = core.activeSurvey();
  const flags = core.flagsAt(addressId);
  const events = core.eventsAt(addressId);
  const lastAttempt = [...events].reverse().find((e) => e.entity === "contact_attempt");
  const redraw = () => renderDoor(app, listId, addressId);
  const goNext = () => {
    const following = nextDoor(doorsOf(core, listId), addressId);
    location.hash = following ? `#/door/${listId}/${following.address.id}` : `#/list/${listId}`;
  };
  const record = async (outcome) => {
    await core.recordContact(addressId, outcome, { personId, walkListId: listId });
    app.syncSoon();
    toast(t("recorded", { what: STRINGS.outcomes[outcome] }));
    if (outcome === "not_home") goNext();
    else redraw();
  };

  const people = core.peopleAt(addressId);
  const peopleSet = h("fieldset", {}, h("legend", {}, t("people")),
    h("label", { class: "inline" }, h("input", { type: "radio", name: "person", value: "", checked: personId == null, onchange: () => { selectedPerson.delete(String(addressId)); redraw(); } }), t("wholeHousehold")),
    ...people.map((p) => h("label", { class: "inline" },
      h("input", { type: "radio", name: "person", value: String(p.id), checked: String(personId) === String(p.id), onchange: () => { selectedPerson.set(String(addressId), p.id); redraw(); } }),
      `${p.forenames || ""} ${p.surname || ""}`.trim())),
    people.length ? null : h("p", { class: "muted" }, t("nobodyRegistered")));

  const outcomeButtons = h("div", { class: "grid", role: "group", "aria-label": t("outcomeQuestion") },
    ...(surveyOutcomes(survey) || OUTCOMES.map((code) => [code, STRINGS.outcomes[code]])).map(([code, label]) =>
      h("button", { type: "button", class: "outcome", "data-outcome": code, onclick: () => record(code) }, label)));

  const surveyPart = survey ? renderSurvey(app, survey, addressId, listId, personId, redraw) : h("p", { class: "muted" }, t("noSurvey"));
  const person = personId != null ? core.get("person", personId) : null;

  mount(
    h("div", { class: "row" },
      h("a", { class: "button", href: `#/list/${listId}` }, t("back")),
      h("span", { class: "muted" }, t("door", { n: index + 1, total: doors.length }))),
    h("h1", { id: "door-address" }, addressLabel(address)),
    flags.do_not_visit ? h("p", { class: "warning", role: "alert" }, t("doNotVisitWarning")) : null,
    flags.moved_away ? h("p", { class: "warning" }, t("movedAwayWarning")) : null,
    h("button", { type: "button", class: "big primary", id: "not-in", onclick: () => record("not_home") }, `${t("notIn")} → ${t("nextDoor")}`),
    h("h2", {}, t("outcomeQuestion")),
    outcomeButtons,
    lastAttempt ? h("div", { class: "row", id: "last-record" },
      h("span", {}, `${t("recorded", { what: STRINGS.outcomes[lastAttempt.outcome] || lastAttempt.outcome })} (${lastAttempt.queued ? t("queued") : t("sent")})`),
      h("button", { type: "button", class: "danger", id: "undo", onclick: async () => {
        const undone = await core.undoLast(addressId);
        if (undone === "voided") app.syncSoon();
        toast(undone ? t("undone") : t("nothingToUndo"));
        redraw();
      } }, t("undoLast"))) : null,
    peopleSet,
    surveyPart,
    person ? renderContact(app, person, redraw) : null,
    renderNote(app, address, redraw),
    h("div", { class: "grid" },
      h("button", { type: "button", class: "danger", id: "mark-dnv", onclick: async () => {
        await core.recordObservation(addressId, "do_not_visit", { personId });
        app.syncSoon();
        toast(t("observed", { what: t("markDoNotVisit") }));
        redraw();
      } }, t("markDoNotVisit")),
      h("button", { type: "button", class: "danger", id: "mark-moved", onclick: async () => {
        await core.recordObservation(addressId, "moved_away", { personId });
        app.syncSoon();
        toast(t("observed", { what: t("markMovedAway") }));
        redraw();
      } }, t("markMovedAway"))),
    h("button", { type: "button", class: "big", id: "next-door", onclick: goNext }, t("nextDoor")),
  );
}

function renderSurvey(app, survey, addressId, listId, personId, redraw) {
  const core = app.core;
  const answers = latestAnswers(core, addressId, personId);
  const answer = async (key, value) => {
    await core.recordAnswer(addressId, key, value, { personId, walkListId: listId, surveyId: survey.id });
    app.syncSoon();
    redraw();
  };
  const shown = (survey.questions || []).filter((question) => isShown(question, answers));
  const blocks = shown.map((question, i) => {
    const key = question.key;
    const kind = String(question.kind || "").toLowerCase();
    const translation = translationFor(question.translations);
    const text = (translation && translation.text) || question.text || question.label || key;
    const legend = h("legend", {}, text, question.required ? h("span", { class: "required" }, ` (${t("required")})`) : null);
    const choices = questionChoices(question, translation);
    const id = `q-${i}`;
    const attrs = { class: "question", "data-key": key, "data-kind": kind, "data-required": question.required ? "true" : null };
    if (kind === "multiple_choice") {
      const current = Array.isArray(answers[key]) ? answers[key].map(String) : [];
      return h("fieldset", attrs, legend, h("p", { class: "muted" }, t("chooseAny")),
        h("div", { class: "grid" }, ...choices.map(([label, value]) => {
          const chosen = current.includes(String(value));
          const next = chosen ? current.filter((v) => v !== String(value)) : [...current, String(value)];
          const ordered = choices.map(([, v]) => String(v)).filter((v) => next.includes(v));
          return h("button", { type: "button", class: chosen ? "chosen" : "", "aria-pressed": String(chosen), "data-value": String(value), onclick: () => answer(key, ordered) }, label);
        })));
    }
    if (!choices) {
      const isNumber = kind === "number";
      const input = isNumber
        ? h("input", { id, name: key, type: "number", inputmode: "numeric", step: "1", min: question.min ?? null, max: question.max ?? null, value: answers[key] ?? "" })
        : h("textarea", { id, name: key }, answers[key] ?? "");
      const save = () => {
        const raw = input.value.trim();
        if (!raw) { if (question.required) toast(t("answerNeeded")); return; }
        answer(key, isNumber ? parseInt(raw, 10) : raw);
      };
      return h("fieldset", attrs, legend, h("label", { for: id, class: "visually-hidden" }, text), input,
        h("button", { type: "button", onclick: save }, t("saveAnswer")));
    }
    return h("fieldset", attrs, legend,
      h("div", { class: "grid" }, ...choices.map(([label, value]) => {
        const chosen = key in answers && String(answers[key]) === String(value);
        return h("button", { type: "button", class: chosen ? "chosen" : "", "aria-pressed": String(chosen), "data-value": String(value), onclick: () => answer(key, value) }, label);
      })));
  });
  const scriptText = (translationFor(survey.translations) || {}).script || survey.script;
  const script = scriptText ? h("div", { class: "card script", id: "door-script" }, h("h3", {}, t("script")),
    ...String(scriptText).split("\n").filter((line) => line.trim()).map((line) => h("p", {}, line))) : null;
  const missing = shown.filter((q) => q.required && !(q.key in answers));
  const reminder = missing.length ? h("p", { class: "warning", id: "required-left" },
    t("requiredLeft", { count: missing.length, names: missing.map((q) => (translationFor(q.translations) || {}).text || q.text || q.key).join("; ") })) : null;
  return h("section", { "aria-label": t("survey", { name: survey.name }) }, h("h2", {}, t("survey", { name: survey.name })), script, ...blocks, reminder);
}

function renderContact(app, person, redraw) {
  const core = app.core;
  const consent = String(person.contact_consent || "").toLowerCase();
  const hasConsent = ["yes", "true", "y", "1"].includes(consent);
  const box = h("input", { type: "checkbox", id: "consent", checked: hasConsent, onchange: async () => {
    await core.editField("person", person.id, "contact_consent", box.checked ? "yes" : "no");
    app.syncSoon();
    redraw();
  } });
  const parts = [h("legend", {}, t("contact")), h("label", { class: "inline", for: "consent" }, box, t("consent"))];
  if (hasConsent) {
    const phone = h("input", { type: "tel", id: "phone", autocomplete: "off", value: person.phone || "" });
    const email = h("input", { type: "email", id: "contact-email", autocomplete: "off", value: person.email || "" });
    parts.push(h("label", { for: "phone" }, t("phone")), phone, h("label", { for: "contact-email" }, t("emailAddress")), email,
      h("button", { type: "button", id: "save-contact", onclick: async () => {
        if ((person.phone || "") !== phone.value.trim()) await core.editField("person", person.id, "phone", phone.value.trim() || null);
        if ((person.email || "") !== email.value.trim()) await core.editField("person", person.id, "email", email.value.trim() || null);
        app.syncSoon();
        toast(t("saved"));
        redraw();
      } }, t("saveContact")));
  } else {
    parts.push(h("p", { class: "muted" }, t("consentFirst")));
  }
  return h("fieldset", {}, ...parts);
}

function renderNote(app, address, redraw) {
  const area = h("textarea", { id: "household-note" }, address.household_note || "");
  return h("fieldset", {}, h("legend", {}, t("note")), h("label", { for: "household-note", class: "visually-hidden" }, t("note")), area,
    h("button", { type: "button", id: "save-note", onclick: async () => {
      await app.core.editField("address", address.id, "household_note", area.value.trim() || null);
      app.syncSoon();
      toast(t("saved"));
      redraw();
    } }, t("saveNote")));
}

// ------------------------------------------------------------------ problems

/** Records the server did not accept, in plain words. */
export function renderProblems(app) {
  const rows = app.core.rejectionList().map((r) => {
    const m = r.mutation;
    const address = m.address_id ? app.core.get("address", m.address_id) : null;
    return h("div", { class: "card" }, h("p", {}, h("strong", {}, address ? addressLabel(address) : m.op.replace(/_/g, " "))), h("p", {}, plainReason(r.reason)));
  });
  mount(h("a", { class: "button", href: "#/lists" }, t("backToLists")), h("h1", {}, t("problemsTitle")), ...(rows.length ? rows : [h("p", {}, t("noProblems"))]));
}
