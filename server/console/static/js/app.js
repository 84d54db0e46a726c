// Console entry point: sign-in, campaign choice, views by role.

import { getJSON, postJSON, saveTokens, refreshTokens, setSignedOutHandler, request, signedIn } from "./api.js";
import { $, el, showError, clearError, setStatus, guarded } from "./ui.js";
import { initPlan, loadPlan, showPlan, resetPlan, setPlanEditing } from "./plan.js";
import { initLists, loadLists, loadMembers } from "./lists.js";
import { initResults, loadResults, showResults, resetResults } from "./results.js";
import { initPaper, loadPaper, resetPaper } from "./paper.js";
import { initVolunteers, loadVolunteers } from "./volunteers.js";
import { initSurveys, loadSurveys, resetSurveys } from "./surveys.js";

const VIEWS = ["plan", "lists", "surveys", "paper", "results", "live", "people", "volunteers"];
const ORGANISER_ROLES = ["admin", "organiser"];

const state = {
  config: { tile_url: "" }, me: null, campaigns: [], campaignId: null, role: null,
  members: [], lists: [], teams: [], targets: [], view: null, loaded: new Set(),
};

function roleOf(campaignId) {
  const campaign = state.campaigns.find((c) => c.id === campaignId);
  if (state.me && state.me.is_superuser) return "admin";
  return campaign ? campaign.role : null;
}

async function showView(view) {
  // Views belong to a signed-in campaign: with none chosen (signed out, or no campaign yet) there is nothing to load.
  if (!signedIn() || state.campaignId === null) return;
  state.view = view;
  for (const name of VIEWS) {
    $(`#view-${name}`).hidden = name !== view;
    const tab = document.querySelector(`#tabs [data-view="${name}"]`);
    if (name === view) tab.setAttribute("aria-current", "page"); else tab.removeAttribute("aria-current");
  }
  history.replaceState(null, "", `#${view}`);
  if (view === "plan") showPlan();
  if (view === "results") showResults();
  if (!state.loaded.has(view) || ["results", "lists", "paper", "volunteers"].includes(view)) {
    state.loaded.add(view);
    await loadView(view);
  }
}
state.showView = showView;
state.reloadLists = () => guarded("Walk lists", loadLists);

async function loadView(view) {
  setStatus("Loading…");
  try {
    if (view === "plan") await loadPlan();
    if (view === "lists") { if (!state.members.length) await guarded("People", loadMembers); await loadLists(); }
    if (view === "paper") await loadPaper();
    if (view === "results") await loadResults();
    if (view === "surveys") await loadSurveys();
    if (view === "people") await loadMembers();
    if (view === "volunteers") await loadVolunteers();
    setStatus("");
  } catch (err) {
    setStatus("");
    showError(err, view[0].toUpperCase() + view.slice(1));
  }
}

function signedOut(message) {
  saveTokens(null);
  state.me = null;
  state.campaignId = null;
  state.role = null;
  state.loaded.clear();
  resetPlan();
  resetResults();
  resetPaper();
  resetSurveys();
  $("#tabs").hidden = true;
  $("#session").hidden = true;
  for (const name of VIEWS) $(`#view-${name}`).hidden = true;
  $("#signin").hidden = false;
  if (message) showError(new Error(message));
  $("#email").focus();
}

async function chooseCampaign(campaignId) {
  state.campaignId = campaignId;
  state.role = roleOf(campaignId);
  state.loaded.clear();
  state.members = [];
  state.teams = [];
  resetPlan();
  resetResults();
  resetPaper();
  resetSurveys();
  const organiser = ORGANISER_ROLES.includes(state.role);
  // Leads review; organisers plan. Tabs a role cannot use are hidden (the server enforces it anyway).
  document.querySelector('#tabs [data-view="plan"]').hidden = !organiser && state.role !== "lead";
  document.querySelector('#tabs [data-view="lists"]').hidden = !organiser;
  document.querySelector('#tabs [data-view="paper"]').hidden = !organiser;
  document.querySelector('#tabs [data-view="surveys"]').hidden = !organiser && state.role !== "lead";
  document.querySelector('#tabs [data-view="people"]').hidden = !organiser && state.role !== "lead";
  $("#user-form").hidden = !organiser;
  document.querySelector('#tabs [data-view="volunteers"]').hidden = !organiser;
  $("#target-create").closest("section").hidden = !organiser;  // "2. Draw a target" and its map tools: organisers only
  setPlanEditing(organiser);
  $("#cut-go").closest("section").hidden = !organiser;
  const wanted = location.hash.slice(1);
  const visible = VIEWS.filter((v) => !document.querySelector(`#tabs [data-view="${v}"]`).hidden);
  const view = visible.includes(wanted) ? wanted : (organiser ? "plan" : "results");
  if (state.role === "canvasser") {
    showError(new Error("Canvassers use the phone app; the console is for organisers and campaign leads."));
    return;
  }
  await showView(view);
}

async function startSession() {
  state.me = await getJSON("/api/me");
  state.campaigns = await getJSON("/api/campaigns");
  $("#signin").hidden = true;
  $("#tabs").hidden = false;
  $("#session").hidden = false;
  $("#whoami").textContent = `${state.me.display_name}`;
  const select = $("#campaign");
  select.replaceChildren(...state.campaigns.map((c) => el("option", { value: c.id }, `${c.name}${c.role ? ` (${c.role})` : ""}`)));
  if (!state.campaigns.length) {
    showError(new Error("You are not a member of any campaign yet. Ask an organiser to add you."));
    return;
  }
  await chooseCampaign(state.campaigns[0].id);
}

async function signIn(event) {
  event.preventDefault();
  clearError();
  const button = event.submitter || $("#signin-form button");
  button.disabled = true;
  try {
    const tokens = await postJSON("/api/auth/login", { email: $("#email").value.trim(), password: $("#password").value });
    saveTokens(tokens);
    $("#password").value = "";
    await startSession();
  } catch (err) {
    showError(err, "Sign-in failed");
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  // The server revokes the sign-in held in the refresh cookie and deletes the cookie.
  try { await request("POST", "/api/auth/logout", { body: {} }); } catch { /* signing out anyway */ }
  signedOut("");
  setStatus("Signed out.");
}

async function boot() {
  $("#error-close").addEventListener("click", clearError);
  if (!window.L || !window.Chart) {
    showError(new Error("The console's map and chart libraries are missing: run `make console` (needs node and npm) and reload."));
    return;
  }
  try {
    state.config = await (await fetch("/console/config.json")).json();
  } catch (err) {
    showError(err, "Loading the console's settings");
  }
  initPlan(state);
  initLists(state);
  initResults(state);
  initPaper(state);
  initVolunteers(state);
  initSurveys(state);
  setSignedOutHandler(signedOut);
  $("#signin-form").addEventListener("submit", signIn);
  $("#signout").addEventListener("click", signOut);
  $("#campaign").addEventListener("change", (e) => guarded("Campaign", () => chooseCampaign(Number(e.target.value))));
  for (const tab of document.querySelectorAll("#tabs button")) {
    tab.addEventListener("click", () => guarded("View", () => showView(tab.dataset.view)));
  }
  // Tokens from older versions of the console, which kept them in sessionStorage.
  sessionStorage.removeItem("canvass.tokens");
  document.body.dataset.ready = "true";
  // A reload keeps the sign-in: the HttpOnly refresh cookie buys a new access token.
  if (await refreshTokens()) {
    try { await startSession(); return; } catch (err) { saveTokens(null); showError(err, "Restoring your session"); }
  }
  signedOut("");
}

boot();
