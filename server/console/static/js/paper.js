// Paper results: key in a printed walk sheet, door by door in the sheet's order, by keyboard only.
//
// The server gives the form (GET …/paper-form): the sheet's rows (a block of flats is one numbered
// building with its flats under it), its outcome codes and what each short-answer box may hold.
// Saving posts to …/paper-results, which merges exactly like a phone's push. Each save carries a
// sheet id, so the same save sent twice (a double click, a retry) records nothing twice.

import { getJSON, postJSON } from "./api.js";
import { $, el, fmt, clearError, setStatus, guarded } from "./ui.js";

let state;
let form = null;      // the paper-form answer of the open list
let sheetId = null;   // this save's idempotency key
let doorInputs = [];  // per door row: { row, outcome, boxes: [input], tr }

export function initPaper(appState) {
  state = appState;
  $("#paper-open").addEventListener("click", () => guarded("Opening the sheet", () => openSheet(Number($("#paper-list").value))));
  $("#paper-list").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); guarded("Opening the sheet", () => openSheet(Number($("#paper-list").value))); }
  });
  $("#paper-form").addEventListener("submit", (e) => { e.preventDefault(); guarded("Saving the sheet", save); });
}

export function resetPaper() {
  form = null;
  doorInputs = [];
  $("#paper-form").hidden = true;
  $("#paper-legend").replaceChildren();
  $("#paper-result").textContent = "";
  $("#paper-list").replaceChildren();
}

/** Fill the list choice (the open sheet, if any, stays as it is). */
export async function loadPaper() {
  const lists = await getJSON(`/api/campaigns/${state.campaignId}/walklists`);
  const select = $("#paper-list");
  const keep = select.value || (form ? String(form.summary.id) : "");
  select.replaceChildren(...lists.map((l) => el("option", { value: l.id }, `${l.name} (${fmt.int(l.doors)} doors${l.assignee ? `, ${l.assignee.display_name}` : ""})`)));
  if (keep && lists.some((l) => String(l.id) === keep)) select.value = keep;
  $("#paper-open").disabled = !lists.length;
  if (!lists.length) $("#paper-legend").textContent = "No walk lists yet: cut a target into lists first.";
}

/** Open a list's sheet from elsewhere (the Walk lists table). */
export async function keyInList(listId) {
  await state.showView("paper");
  $("#paper-list").value = String(listId);
  await openSheet(listId);
}

function newSheetId() {
  return (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).replace(/-/g, "");
}

async function openSheet(listId) {
  clearError();
  if (!listId) return;
  form = await getJSON(`/api/campaigns/${state.campaignId}/walklists/${listId}/paper-form`);
  sheetId = newSheetId();
  $("#paper-result").textContent = "";
  const codes = form.outcomes.map((c) => `${c.code} = ${c.label}`).join(", ");
  $("#paper-legend").replaceChildren(
    el("p", {}, `${form.summary.name}: ${fmt.int(form.summary.doors)} doors. Outcome codes: ${codes}.`),
    form.questions.length ? el("ul", {}, form.questions.map((q) => el("li", {}, `${q.label} = ${q.text} (${q.hint})`))) : null);
  const head = ["#", "Address", "Electors", "Outcome", ...form.questions.map((q) => q.label)];
  $("#paper-table thead tr").replaceChildren(...head.map((h, i) => el("th", { scope: "col", title: i > 3 ? form.questions[i - 4].text : null }, h)));
  doorInputs = [];
  const width = head.length;
  $("#paper-table tbody").replaceChildren(...form.rows.map((row) => {
    if (row.kind === "building") {
      return el("tr", { class: "building" }, el("th", { scope: "row" }, row.number), el("th", { scope: "colgroup", colspan: width - 1 }, row.address));
    }
    const label = row.number ? `${row.number}. ${row.address}` : row.address;
    const cells = [el("th", { scope: "row" }, row.number), el("td", {}, row.address, row.notes ? el("br") : null, row.notes ? el("small", {}, row.notes) : null),
      el("td", {}, row.people.join(", "))];
    if (row.skip) {
      cells.push(el("td", { colspan: width - 3 }, "DO NOT KNOCK"));
      return el("tr", { class: "skip", "data-address-id": row.address_id }, ...cells);
    }
    const entry = { row, boxes: [] };
    entry.outcome = el("input", { type: "text", class: "paper-outcome", maxlength: 3, autocomplete: "off", spellcheck: "false",
      "aria-label": `Outcome for ${label}`, onkeydown: (e) => outcomeKey(e, entry), onchange: () => outcomeTyped(entry) });
    cells.push(el("td", {}, entry.outcome));
    form.questions.forEach((q, i) => {
      const box = el("input", { type: "text", class: "paper-box", "data-key": q.key, maxlength: 6, autocomplete: "off", spellcheck: "false",
        "aria-label": `${q.label} ${q.text} (${q.hint}) for ${label}`, oninput: () => boxTyped(entry, i), onkeydown: (e) => boxKey(e, entry) });
      entry.boxes.push(box);
      cells.push(el("td", {}, box));
    });
    entry.tr = el("tr", { "data-address-id": row.address_id }, ...cells);
    doorInputs.push(entry);
    return entry.tr;
  }));
  $("#paper-form").hidden = false;
  updateCount();
  const first = doorInputs.find((d) => !d.outcome.disabled);
  if (first) first.outcome.focus();
  setStatus(`Keying ${form.summary.name}.`);
}

function codeFor(letter) {
  return form.outcomes.find((c) => c.code[0] === letter.toUpperCase()) || null;
}

function goDoor(entry, step) {
  let i = doorInputs.indexOf(entry) + step;
  while (i >= 0 && i < doorInputs.length && doorInputs[i].outcome.disabled) i += step;
  if (i >= 0 && i < doorInputs.length) doorInputs[i].outcome.focus();
  else $("#paper-save").focus();
}

function commonKeys(event, entry) {
  if (event.key !== "Enter") return false;
  event.preventDefault();
  if (event.ctrlKey || event.metaKey) $("#paper-form").requestSubmit();
  else goDoor(entry, event.shiftKey ? -1 : 1);
  return true;
}

function setOutcome(entry, code) {
  entry.outcome.value = code ? code.code : "";
  entry.outcome.dataset.outcome = code ? code.outcome : "";
  entry.outcome.setAttribute("aria-invalid", "false");
  entry.outcome.title = code ? code.label : "";
  updateCount();
}

function outcomeKey(event, entry) {
  if (commonKeys(event, entry)) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "Backspace" || event.key === "Delete") { event.preventDefault(); setOutcome(entry, null); return; }
  if (event.key.length !== 1) return;  // Tab, arrows… keep their usual meaning
  event.preventDefault();
  const code = codeFor(event.key);
  if (!code) {
    setStatus(`No outcome code starts with “${event.key}”: ${form.outcomes.map((c) => c.code).join(", ")}.`);
    return;
  }
  setOutcome(entry, code);
  // Spoke: on to the answers; any other outcome: on to the next door.
  if (code.outcome === "spoke" && entry.boxes.length) entry.boxes[0].focus();
  else goDoor(entry, 1);
}

function outcomeTyped(entry) {
  // A pasted or autofilled code ("NI"): accept a whole code too.
  const typed = entry.outcome.value.trim().toUpperCase();
  const code = form.outcomes.find((c) => c.code === typed) || (typed ? null : undefined);
  if (code === undefined) setOutcome(entry, null);
  else if (code) setOutcome(entry, code);
  else entry.outcome.setAttribute("aria-invalid", "true");
}

/** The answer a box records, undefined for an empty box, or null when the box holds something the sheet does not offer. */
function boxAnswer(question, raw) {
  const typed = raw.trim().toUpperCase();
  if (!typed) return undefined;
  if (question.entries) return Object.hasOwn(question.entries, typed) ? question.entries[typed] : null;
  const number = Number(typed);
  return Number.isFinite(number) ? number : null;
}

function boxTyped(entry, index) {
  const question = form.questions[index];
  const box = entry.boxes[index];
  const answer = boxAnswer(question, box.value);
  box.setAttribute("aria-invalid", answer === null ? "true" : "false");
  box.title = answer === null ? `Not an answer to ${question.label}: ${question.hint}` : (answer === undefined ? "" : String(answer));
  updateCount();
  // One keystroke per box when the entry cannot grow into another ("1" of a 1-10 scale waits).
  if (answer === undefined || answer === null || !question.entries) return;
  const typed = box.value.trim().toUpperCase();
  if (Object.keys(question.entries).some((k) => k !== typed && k.startsWith(typed))) return;
  if (index + 1 < entry.boxes.length) entry.boxes[index + 1].focus();
}

function boxKey(event, entry) {
  commonKeys(event, entry);
}

function keyed() {
  return doorInputs.filter((d) => !d.outcome.disabled && (d.outcome.value || d.boxes.some((b) => b.value.trim())));
}

function updateCount() {
  const n = keyed().length;
  $("#paper-count").textContent = n ? `${n} door${n === 1 ? "" : "s"} keyed, not saved yet.` : "";
}

async function save() {
  clearError();
  if (!form) return;
  const doors = keyed();
  if (!doors.length) { setStatus("Nothing keyed yet."); return; }
  const entries = [];
  for (const door of doors) {
    const where = door.row.number ? `door ${door.row.number} (${door.row.address})` : door.row.address;
    if (!door.outcome.dataset.outcome) {
      door.outcome.setAttribute("aria-invalid", "true");
      door.outcome.focus();
      throw new Error(`${where} has answers but no outcome code.`);
    }
    const answers = {};
    form.questions.forEach((q, i) => {
      const answer = boxAnswer(q, door.boxes[i].value);
      if (answer === null) {
        door.boxes[i].focus();
        throw new Error(`${where}: “${door.boxes[i].value}” is not an answer to ${q.label} (${q.hint}).`);
      }
      if (answer !== undefined) answers[q.key] = answer;
    });
    entries.push({ address_id: door.row.address_id, outcome: door.outcome.dataset.outcome, answers });
  }
  const button = $("#paper-save");
  button.disabled = true;
  try {
    const result = await postJSON(`/api/campaigns/${state.campaignId}/walklists/${form.summary.id}/paper-results`, { sheet_id: sheetId, entries });
    for (const door of doors) {
      door.outcome.disabled = true;
      for (const box of door.boxes) box.disabled = true;
      door.tr.classList.add("saved");
    }
    sheetId = newSheetId();  // the next save is a new batch
    const rejected = result.rejected.length ? ` ${result.rejected.length} refused: ${result.rejected.map((r) => r.reason).join("; ")}.` : "";
    const text = `Saved ${entries.length} door${entries.length === 1 ? "" : "s"} of ${form.summary.name} (${result.applied} records added, ${result.duplicates} already there).${rejected}`;
    $("#paper-result").textContent = text;
    $("#paper-result").dataset.saved = String(Number($("#paper-result").dataset.saved || 0) + entries.length);
    setStatus(text);
    updateCount();
    const next = doorInputs.find((d) => !d.outcome.disabled);
    if (next) next.outcome.focus();
  } finally {
    button.disabled = false;
  }
}
