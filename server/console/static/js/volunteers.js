// Volunteers: join links (with expiry, use limit and a QR code drawn by the server), adding an
// existing account to the campaign, and teams (a named group with a lead that can hold lists).

import { getJSON, postJSON, del, request } from "./api.js";
import { $, el, clearError, setStatus, guarded } from "./ui.js";

let state;

export function initVolunteers(appState) {
  state = appState;
  $("#joincode-form").addEventListener("submit", (e) => { e.preventDefault(); guarded("Creating a join link", createJoinLink); });
  $("#member-add-form").addEventListener("submit", (e) => { e.preventDefault(); guarded("Adding to the campaign", addMember); });
  $("#team-form").addEventListener("submit", (e) => { e.preventDefault(); guarded("Creating the team", createTeam); });
}

export async function loadVolunteers() {
  state.members = await getJSON(`/api/campaigns/${state.campaignId}/members`);
  await Promise.all([loadJoinLinks(), loadTeams()]);
}

/** A QR code image for a join link: the SVG is fetched with the sign-in and shown as a data: URL (allowed by the CSP). */
async function qrImage(link, size) {
  const svg = await (await request("GET", link.qr_svg)).text();
  const img = el("img", { class: "qr", width: size, height: size, alt: `QR code of the join link ${link.join_url}` });
  img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;  // our server's SVG, not user text
  return img;
}

async function createJoinLink() {
  clearError();
  const link = await postJSON(`/api/campaigns/${state.campaignId}/join-codes`,
    { hours_valid: Number($("#jc-hours").value), max_uses: Number($("#jc-uses").value) });
  $("#joincode-out").replaceChildren(
    el("p", {}, "Code ", el("code", { class: "big" }, link.code), el("br"),
      `valid until ${new Date(link.expires_at).toLocaleString("en-GB")}, for ${link.max_uses} people. Link: `,
      el("a", { href: link.join_url, class: "join-url" }, link.join_url)),
    await qrImage(link, 220));
  setStatus(`Join link ${link.code} created.`);
  await loadJoinLinks();
}

async function loadJoinLinks() {
  const links = await getJSON(`/api/campaigns/${state.campaignId}/join-codes`);
  const body = $("#join-links tbody");
  if (!links.length) { body.replaceChildren(el("tr", {}, el("td", { colspan: 7 }, "No join links yet."))); return; }
  const rows = await Promise.all(links.map(async (link) => {
    const status = link.revoked ? "revoked" : link.active ? "active" : (link.uses_left === 0 ? "used up" : "expired");
    return el("tr", { "data-code": link.code, class: link.active ? null : "inactive" },
      el("td", {}, el("code", {}, link.code)),
      el("td", {}, el("a", { href: link.join_url }, link.join_url)),
      el("td", {}, link.active ? await qrImage(link, 96) : "–"),
      el("td", { class: "num" }, `${link.uses_left} of ${link.max_uses}`),
      el("td", {}, new Date(link.expires_at).toLocaleString("en-GB")),
      el("td", { class: "link-status" }, status),
      el("td", {}, link.revoked ? "" : el("button", { type: "button", onclick: () => guarded("Revoking the link", () => revoke(link)) }, "Revoke")));
  }));
  body.replaceChildren(...rows);
}

async function revoke(link) {
  clearError();
  await del(`/api/campaigns/${state.campaignId}/join-codes/${link.id}`);
  const shown = $("#joincode-out .join-url");
  if (shown && shown.textContent === link.join_url) $("#joincode-out").replaceChildren();  // no QR code of a dead link left on screen
  setStatus(`Join link ${link.code} revoked: it lets nobody else in.`);
  await loadJoinLinks();
}

async function addMember() {
  clearError();
  const member = await postJSON(`/api/campaigns/${state.campaignId}/members`, { email: $("#add-email").value.trim(), role: $("#add-role").value });
  setStatus(`${member.display_name} is now ${member.role} in this campaign.`);
  $("#member-add-form").reset();
  await loadVolunteers();
}

function memberOptions(exclude = new Set()) {
  return state.members.filter((m) => !exclude.has(m.user_id)).map((m) => el("option", { value: m.user_id }, `${m.display_name} (${m.role})`));
}

async function loadTeams() {
  state.teams = await getJSON(`/api/campaigns/${state.campaignId}/teams`);
  $("#team-lead").replaceChildren(el("option", { value: "" }, "— none yet —"), ...memberOptions());
  const listName = new Map((state.lists || []).map((l) => [l.id, l.name]));
  $("#teams").replaceChildren(...(state.teams.length ? state.teams.map((team) => {
    const inTeam = new Set(team.members.map((m) => m.user_id));
    const addId = `team-add-${team.id}`;
    const add = el("select", { id: addId }, memberOptions(inTeam));
    return el("section", { class: "card team", "data-team-id": team.id, "aria-label": `Team ${team.name}` },
      el("h4", {}, `Team ${team.name}`),
      el("p", {}, "Lead: ", team.lead ? team.lead.display_name : "none"),
      el("ul", {}, team.members.map((m) => el("li", {}, m.display_name, team.lead && team.lead.user_id === m.user_id ? " (lead)" : "", " ",
        el("button", { type: "button", onclick: () => guarded("Removing from the team", () => removeMember(team, m)) }, "Remove")))),
      el("p", { class: "hint" }, team.walk_list_ids.length ? `Holds: ${team.walk_list_ids.map((id) => listName.get(id) || `list ${id}`).join(", ")}` : "Holds no lists: assign some under “Walk lists” or on the map."),
      el("div", { class: "row" }, el("label", { for: addId, class: "visually-hidden" }, `Add to team ${team.name}`), add,
        el("button", { type: "button", onclick: () => guarded("Adding to the team", () => addToTeam(team, add.value)) }, "Add to team"),
        el("button", { type: "button", onclick: () => guarded("Deleting the team", () => deleteTeam(team)) }, "Delete team")));
  }) : [el("p", { class: "hint" }, "No teams yet.")]));
}

async function createTeam() {
  clearError();
  const lead = $("#team-lead").value;
  const team = await postJSON(`/api/campaigns/${state.campaignId}/teams`, { name: $("#team-name").value.trim(), lead_user_id: lead ? Number(lead) : null });
  setStatus(`Team ${team.name} created.`);
  $("#team-form").reset();
  await loadTeams();
}

async function addToTeam(team, userId) {
  clearError();
  if (!userId) throw new Error("Choose someone to add.");
  await postJSON(`/api/campaigns/${state.campaignId}/teams/${team.id}/members`, { user_id: Number(userId) });
  setStatus(`Added to team ${team.name}; they get its lists on their next sync.`);
  await loadTeams();
}

async function removeMember(team, member) {
  clearError();
  await del(`/api/campaigns/${state.campaignId}/teams/${team.id}/members/${member.user_id}`);
  setStatus(`${member.display_name} left team ${team.name}; their phone drops its lists on the next sync.`);
  await loadTeams();
}

async function deleteTeam(team) {
  clearError();
  if (!window.confirm(`Delete team ${team.name}? Its lists become unassigned.`)) return;
  await del(`/api/campaigns/${state.campaignId}/teams/${team.id}`);
  setStatus(`Team ${team.name} deleted.`);
  await loadTeams();
}
