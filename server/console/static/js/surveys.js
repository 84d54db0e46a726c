// Surveys: build a draft (questions, order, skip logic, translations, door script, outcome codes) and publish it.
// Organisers edit drafts; published versions are read-only (start a new version from one); leads read.

import { getJSON, postJSON, request } from "./api.js";
import { $, el, clearError, setStatus, guarded } from "./ui.js";

let state;
let editing = null; // { id, status, body } of the version in the editor, or null
let canEdit = false;

const KINDS = [
  ["choice", "Single choice"], ["multiple_choice", "Multiple choice"], ["scale", "Scale"],
  ["yes_no", "Yes / no"], ["text", "Free text"], ["number", "Number"],
];
// The outcome codes of the sync protocol (results count them); a campaign picks which the phone offers and their words.
const OUTCOME_CODES = [
  ["spoke", "Spoke to someone"], ["refused", "Refused"], ["come_back", "Come back later"], ["inaccessible", "Could not reach the door"],
  ["moved", "Moved away"], ["deceased", "Deceased"], ["wrong_address", "Wrong address"], ["do_not_visit", "Do not visit"], ["not_home", "Not in"],
];

export function initSurveys(appState) {
  state = appState;
  $("#survey-new").addEventListener("click", () => startNew());
}

export function resetSurveys() {
  editing = null;
  $("#survey-editor").replaceChildren();
  $("#surveys-table tbody").replaceChildren();
}

const base = () => `/api/campaigns/${state.campaignId}/surveys`;

export async function loadSurveys() {
  canEdit = ["admin", "organiser"].includes(state.role);
  $("#survey-new").hidden = !canEdit;
  const rows = await getJSON(base());
  const body = $("#surveys-table tbody");
  if (!rows.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 6 }, canEdit ? "No surveys yet: start one with “New survey”." : "No surveys yet.")));
  } else {
    body.replaceChildren(...rows.map((s) => el("tr", { "data-survey": s.id },
      el("td", {}, s.name), el("td", { class: "num" }, `v${s.version}`),
      el("td", {}, s.is_active ? `${s.status} (phones use this)` : s.status),
      el("td", { class: "num" }, String(s.questions.length)), el("td", { class: "num" }, String(s.answers)),
      el("td", {}, el("div", { class: "row" },
        el("button", { type: "button", "data-action": "open", onclick: () => open(s) }, s.status === "draft" && canEdit ? "Edit" : "View"),
        canEdit && s.status !== "draft" ? el("button", { type: "button", "data-action": "new-version", onclick: () => guarded("New version", () => newVersion(s)) }, "New version") : null,
        canEdit && s.status !== "archived" ? el("button", { type: "button", "data-action": "archive", onclick: () => guarded("Archiving", () => archive(s)) }, "Archive") : null)))));
  }
  return rows;
}

function emptyBody() {
  return { name: "", script: "", questions: [], outcomes: null, translations: {} };
}

function startNew() {
  clearError();
  editing = { id: null, status: "draft", body: emptyBody(), languages: [] };
  addQuestion();
}

function bodyOf(survey) {
  const { name, script, questions, outcomes, translations } = survey;
  return structuredClone({ name, script: script || "", questions, outcomes, translations: translations || {} });
}

function languagesOf(body) {
  const found = new Set(Object.keys(body.translations || {}));
  for (const q of body.questions) for (const lang of Object.keys(q.translations || {})) found.add(lang);
  return [...found].sort();
}

function open(survey) {
  clearError();
  const body = bodyOf(survey);
  editing = { id: survey.id, status: survey.status, version: survey.version, body, languages: languagesOf(body) };
  render();
}

async function newVersion(survey) {
  const made = await postJSON(`${base()}/versions`, { from_survey_id: survey.id });
  await loadSurveys();
  open(made);
  setStatus(`Draft v${made.version} of ${made.name} started from v${survey.version}.`);
}

async function archive(survey) {
  await postJSON(`${base()}/${survey.id}/archive`, {});
  if (editing && editing.id === survey.id) editing = null;
  await loadSurveys();
  render();
  setStatus(`${survey.name} v${survey.version} archived: phones stop offering it; its answers are kept.`);
}

function addQuestion() {
  const n = editing.body.questions.length + 1;
  editing.body.questions.push({ key: `q${n}`, text: "", kind: "choice", required: false, options: [] });
  render();
  const cards = document.querySelectorAll("#survey-editor .question");
  cards[cards.length - 1]?.querySelector(".q-text")?.focus();
}

function move(index, by) {
  const qs = editing.body.questions;
  const to = index + by;
  if (to < 0 || to >= qs.length) return;
  [qs[index], qs[to]] = [qs[to], qs[index]];
  render();
  document.querySelectorAll("#survey-editor .question")[to]?.querySelector(by < 0 ? ".q-up" : ".q-down")?.focus();
}

function lines(text) { return text.split("\n").map((s) => s.trim()).filter(Boolean); }

/** "Show if" answers typed by the organiser, as the values the question's answers take. */
function parseEquals(text, question) {
  const parts = text.split(",").map((s) => s.trim()).filter(Boolean);
  if (!question) return parts;
  if (question.kind === "yes_no" && !(question.options || []).length) return parts.map((p) => /^(y|yes|true)$/i.test(p));
  if (question.kind === "scale" || question.kind === "number") return parts.map((p) => (/^-?\d+$/.test(p) ? Number(p) : p));
  return parts;
}

function showEquals(values) {
  return (values || []).map((v) => (v === true ? "yes" : v === false ? "no" : String(v))).join(", ");
}

function field(label, input, hint) {
  const id = input.id;
  return el("div", { class: "field" }, el("label", { for: id }, label), input, hint ? el("p", { class: "hint" }, hint) : null);
}

let uid = 0;
const fresh = (name) => `${name}-${++uid}`;

function questionCard(q, index, questions, readOnly) {
  const earlier = questions.slice(0, index);
  const kindSelect = el("select", { id: fresh("q-kind"), class: "q-kind", disabled: readOnly,
    onchange: (e) => { q.kind = e.target.value; if (q.kind === "scale") { q.min ??= 1; q.max ??= 5; } render(); } },
  ...KINDS.map(([value, label]) => el("option", { value, selected: q.kind === value }, label)));
  const parts = [
    el("div", { class: "row" },
      el("strong", {}, `Question ${index + 1}`),
      readOnly ? null : el("button", { type: "button", class: "q-up", "aria-label": `Move question ${index + 1} up`, disabled: index === 0, onclick: () => move(index, -1) }, "↑"),
      readOnly ? null : el("button", { type: "button", class: "q-down", "aria-label": `Move question ${index + 1} down`, disabled: index === questions.length - 1, onclick: () => move(index, 1) }, "↓"),
      readOnly ? null : el("button", { type: "button", class: "q-remove danger", onclick: () => { questions.splice(index, 1); render(); } }, "Remove")),
    field("Question (as read at the door)", el("input", { id: fresh("q-text"), class: "q-text", value: q.text, maxlength: 500, disabled: readOnly, oninput: (e) => { q.text = e.target.value; } })),
    el("div", { class: "row" },
      field("Key (answers are stored under it: keep it across versions)", el("input", { id: fresh("q-key"), class: "q-key", value: q.key, maxlength: 64, pattern: "[a-z][a-z0-9_]*", disabled: readOnly, oninput: (e) => { q.key = e.target.value; } })),
      field("Kind", kindSelect),
      el("label", { class: "inline" }, el("input", { type: "checkbox", class: "q-required", checked: !!q.required, disabled: readOnly, onchange: (e) => { q.required = e.target.checked; } }), "Required")),
  ];
  if (["choice", "multiple_choice"].includes(q.kind)) {
    parts.push(field("Choices (one per line)", el("textarea", { id: fresh("q-options"), class: "q-options", rows: 4, disabled: readOnly,
      oninput: (e) => { q.options = lines(e.target.value); } }, (q.options || []).join("\n"))));
  }
  if (["scale", "number"].includes(q.kind)) {
    const num = (name, value) => el("input", { id: fresh(`q-${name}`), class: `q-${name}`, type: "number", value: value ?? "", disabled: readOnly,
      oninput: (e) => { if (e.target.value === "") delete q[name]; else q[name] = Number(e.target.value); } });
    parts.push(el("div", { class: "row" }, field(q.kind === "scale" ? "From" : "Smallest (optional)", num("min", q.min)), field(q.kind === "scale" ? "To" : "Largest (optional)", num("max", q.max))));
  }
  // skip logic: only earlier questions can be named
  const showIfSelect = el("select", { id: fresh("q-showif"), class: "q-showif", disabled: readOnly || !earlier.length,
    onchange: (e) => {
      if (!e.target.value) delete q.show_if;
      else q.show_if = { question: e.target.value, equals: q.show_if?.equals?.length ? q.show_if.equals : [] };
      render();
    } },
  el("option", { value: "" }, "Always"),
  ...earlier.map((other, i) => el("option", { value: other.key, selected: q.show_if?.question === other.key }, `Only if question ${i + 1} (${other.key}) is…`)));
  const skip = [field("Show this question", showIfSelect)];
  if (q.show_if) {
    const other = earlier.find((o) => o.key === q.show_if.question);
    skip.push(field("…one of these answers (comma-separated)", el("input", { id: fresh("q-showif-equals"), class: "q-showif-equals", value: showEquals(q.show_if.equals), disabled: readOnly,
      oninput: (e) => { q.show_if.equals = parseEquals(e.target.value, other); } }),
    other && other.kind === "yes_no" ? "Write yes or no." : null));
  }
  parts.push(el("div", { class: "row" }, ...skip));
  for (const lang of editing.languages) {
    const tr = (q.translations ||= {})[lang] ||= { text: "" };
    parts.push(el("div", { class: "row translation", "data-lang": lang },
      field(`Question in ${lang}`, el("input", { id: fresh(`q-tr-${lang}`), class: "q-tr-text", "data-lang": lang, value: tr.text, lang, disabled: readOnly, oninput: (e) => { tr.text = e.target.value; } })),
      ["choice", "multiple_choice"].includes(q.kind) ? field(`Choices in ${lang} (same order)`, el("textarea", { id: fresh(`q-tr-options-${lang}`), class: "q-tr-options", rows: 3, lang, disabled: readOnly,
        oninput: (e) => { const o = lines(e.target.value); if (o.length) tr.options = o; else delete tr.options; } }, (tr.options || []).join("\n"))) : null));
  }
  return el("fieldset", { class: "question card", "data-index": index, "data-key": q.key }, ...parts);
}

function outcomesPart(body, readOnly) {
  const chosen = new Map((body.outcomes || []).map((o) => [o.code, o]));
  const rows = OUTCOME_CODES.map(([code, fallback]) => {
    const current = chosen.get(code);
    const label = el("input", { id: fresh(`outcome-${code}`), class: "outcome-label", "data-code": code, value: current ? current.label : fallback, maxlength: 500, disabled: readOnly || !current,
      oninput: (e) => { const o = (body.outcomes || []).find((x) => x.code === code); if (o) o.label = e.target.value; } });
    const box = el("input", { type: "checkbox", class: "outcome-on", "data-code": code, checked: !!current, disabled: readOnly, onchange: (e) => {
      body.outcomes = (body.outcomes || []).filter((o) => o.code !== code);
      if (e.target.checked) body.outcomes.push({ code, label: label.value || fallback });
      if (!body.outcomes.length) body.outcomes = null;
      render();
    } });
    return el("div", { class: "row" }, el("label", { class: "inline" }, box, code), field("Shown as", label));
  });
  return el("fieldset", { class: "card" }, el("legend", {}, "Outcome codes the phone offers"),
    el("p", { class: "hint" }, "The codes are fixed by the sync protocol so results can count them; tick the ones your canvassers should see, in your own words. None ticked: the phone offers them all."),
    ...rows);
}

function render() {
  const box = $("#survey-editor");
  if (!editing) { box.replaceChildren(); return; }
  const body = editing.body;
  const readOnly = !canEdit || editing.status !== "draft";
  const languages = el("input", { id: "survey-languages", value: editing.languages.join(", "), disabled: readOnly, placeholder: "e.g. cy, bn, pl",
    onchange: (e) => {
      editing.languages = [...new Set(e.target.value.split(",").map((s) => s.trim()).filter(Boolean))];
      for (const q of body.questions) for (const lang of Object.keys(q.translations || {})) if (!editing.languages.includes(lang)) delete q.translations[lang];
      for (const lang of Object.keys(body.translations)) if (!editing.languages.includes(lang)) delete body.translations[lang];
      render();
    } });
  const scriptTranslations = editing.languages.map((lang) => {
    const tr = body.translations[lang] ||= {};
    return field(`Door script in ${lang}`, el("textarea", { id: `survey-script-${lang}`, class: "script-tr", "data-lang": lang, lang, rows: 3, disabled: readOnly,
      oninput: (e) => { tr.script = e.target.value; } }, tr.script || ""));
  });
  const title = editing.id ? `${body.name} v${editing.version} (${editing.status})` : "New survey (not saved yet)";
  box.replaceChildren(el("div", {},
    el("h3", { id: "survey-editor-title" }, title),
    readOnly && canEdit ? el("p", { class: "hint" }, "Published and archived versions never change (answers keep the version they were given under): start a new version to edit.") : null,
    field("Survey name", el("input", { id: "survey-name", value: body.name, maxlength: 200, disabled: readOnly, oninput: (e) => { body.name = e.target.value; } })),
    field("Script to read at the door", el("textarea", { id: "survey-script", rows: 4, disabled: readOnly, oninput: (e) => { body.script = e.target.value; } }, body.script || "")),
    field("Translations (language codes)", languages, "Phones set to one of these languages show its wording."),
    ...scriptTranslations,
    el("h4", {}, "Questions"),
    ...body.questions.map((q, i) => questionCard(q, i, body.questions, readOnly)),
    readOnly ? null : el("button", { type: "button", id: "question-add", onclick: addQuestion }, "Add question"),
    outcomesPart(body, readOnly),
    readOnly ? null : el("div", { class: "row" },
      el("button", { type: "button", id: "survey-save", onclick: () => guarded("Saving the draft", save) }, "Save draft"),
      el("button", { type: "button", id: "survey-publish", class: "primary", onclick: () => guarded("Publishing", publish) }, "Publish to phones")),
    el("p", { id: "survey-result", "aria-live": "polite" }),
  ));
}

function payload() {
  const body = structuredClone(editing.body);
  body.script = body.script && body.script.trim() ? body.script : null;
  for (const q of body.questions) {
    if (!["choice", "multiple_choice"].includes(q.kind)) delete q.options;
    if (!["scale", "number"].includes(q.kind)) { delete q.min; delete q.max; }
    for (const [lang, tr] of Object.entries(q.translations || {})) if (!tr.text) delete q.translations[lang];
  }
  for (const [lang, tr] of Object.entries(body.translations)) if (!tr.script) delete body.translations[lang];
  return body;
}

async function save() {
  clearError();
  const body = payload();
  const saved = editing.id
    ? await (await request("PUT", `${base()}/${editing.id}`, { body })).json()
    : await postJSON(base(), body);
  editing.id = saved.id;
  editing.version = saved.version;
  editing.status = saved.status;
  await loadSurveys();
  render();
  $("#survey-result").textContent = `Draft saved: ${saved.name} v${saved.version}, ${saved.questions.length} questions.`;
  return saved;
}

async function publish() {
  const saved = await save();
  const published = await postJSON(`${base()}/${saved.id}/publish`, {});
  editing.status = published.status;
  await loadSurveys();
  render();
  $("#survey-result").textContent = `Published ${published.name} v${published.version}: phones get it on their next sync.`;
  setStatus(`Published ${published.name} v${published.version}.`);
}
