// Walk lists: assign and reassign to canvassers, download sheets and exports; and People.

import { getJSON, postJSON, download } from "./api.js";
import { $, el, fmt, clearError, setStatus, guarded } from "./ui.js";
import { routeColour, focusList, loadRoutes } from "./plan.js";
import { keyInList } from "./paper.js";
import { assignList, holderOptions, holderValue } from "./listops.js";

let state;

export function initLists(appState) {
  state = appState;
  $("#user-form").addEventListener("submit", (e) => { e.preventDefault(); guarded("Creating the account", createUser); });
}

export async function loadMembers() {
  try {
    state.members = await getJSON(`/api/campaigns/${state.campaignId}/members`);
  } catch (err) {
    state.members = [];
    throw err;
  }
  $("#members tbody").replaceChildren(...state.members.map((m) => el("tr", {},
    el("td", {}, m.display_name), el("td", {}, m.email), el("td", {}, m.role))));
}

export async function loadLists() {
  state.lists = await getJSON(`/api/campaigns/${state.campaignId}/walklists`);
  const body = $("#lists-table tbody");
  if (!state.lists.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 6 }, "No walk lists yet: draw a target on the map and cut it.")));
    return;
  }
  state.teams = await getJSON(`/api/campaigns/${state.campaignId}/teams`).catch(() => state.teams || []);
  body.replaceChildren(...state.lists.map((list) => {
    const selectId = `assign-${list.id}`;
    const select = el("select", { id: selectId, "data-list": list.id }, holderOptions(el, state.members, state.teams));
    select.value = holderValue(list);
    const base = `/api/campaigns/${state.campaignId}/walklists/${list.id}`;
    const safe = list.name.replace(/[^\w.-]+/g, "_");
    return el("tr", { "data-list-id": list.id },
      el("th", { scope: "row" }, el("span", { class: "route-num-badge", style: { background: routeColour(list.id) } }, String(list.id)), list.name,
        " ", el("button", { type: "button", onclick: () => { state.showView("plan"); setTimeout(() => focusList(list.id), 50); } }, "Show on map")),
      el("td", { class: "num" }, `${fmt.int(list.doors)} doors`, el("br"), `${fmt.int(list.stops)} stops`),
      el("td", { class: "num" }, fmt.mins(list.minutes), el("br"), fmt.km(list.length_m), el("br"), routingNote(list)),
      el("td", {}, list.status, list.team ? ` (team ${list.team.name})` : "", list.do_not_knock ? el("span", { class: "hint" }, ` · ✕ ${list.do_not_knock} not to knock`) : ""),
      el("td", {}, el("div", { class: "row" },
        el("label", { for: selectId, class: "visually-hidden" }, `Canvasser for ${list.name}`), select,
        el("button", { type: "button", onclick: () => guarded(`Assigning ${list.name}`, () => assign(list, select.value)) }, "Assign"))),
      el("td", {}, el("div", { class: "row" },
        el("button", { type: "button", onclick: () => guarded("Downloading the sheet", () => download(`${base}/sheet.pdf`, `${safe}.pdf`)) }, "PDF sheet"),
        el("button", { type: "button", onclick: () => guarded("Downloading the CSV", () => download(`${base}/export.csv`, `${safe}.csv`)) }, "CSV"),
        el("button", { type: "button", onclick: () => guarded("Downloading the GeoJSON", () => download(`${base}/export.geojson`, `${safe}.geojson`)) }, "GeoJSON"),
        el("button", { type: "button", onclick: () => guarded("Opening the key-in form", () => keyInList(list.id)) }, "Key in sheet"))));
  }));
}

/** How the list was routed: along the streets, or in straight lines because no streets were imported. */
export function routingNote(list) {
  if (list.routing === "straight_line") {
    return el("small", { class: "warn", title: "No streets were imported around this list: its route joins the doors in straight lines. Import streets and re-route it." }, "straight-line route");
  }
  return list.routing === "street_network" ? el("small", {}, "routed on streets") : null;
}

async function assign(list, holder) {
  clearError();
  await assignList(state.campaignId, list.id, holder);
  const select = document.getElementById(`assign-${list.id}`);
  const label = select && select.selectedOptions[0] ? select.selectedOptions[0].textContent : "";
  setStatus(holder ? `${list.name} assigned to ${label}.` : `${list.name} unassigned.`);
  await loadLists();
  await loadRoutes();
}

async function createUser() {
  clearError();
  const body = {
    display_name: $("#new-name").value.trim(), email: $("#new-email").value.trim(),
    password: $("#new-password").value, role: $("#new-role").value,
  };
  await postJSON(`/api/campaigns/${state.campaignId}/users`, body);
  setStatus(`Account created for ${body.display_name} (${body.role}).`);
  $("#user-form").reset();
  await loadMembers();
  await loadLists();
}
