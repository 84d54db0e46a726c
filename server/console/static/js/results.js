// The lead's view: progress dashboard with charts, the results map by area, answers,
// follow-ups, exports and the meeting report, data health.

import { getJSON, postJSON, download } from "./api.js";
import { $, el, fmt, classify, renderLegend, OKABE_ITO, showError, setStatus, guarded } from "./ui.js";
import { makeMap } from "./plan.js";
import { mapStyle, tooltipLines } from "./leads-map.js";

const L = window.L;
let state;
let map = null;
let mapLayer = null;
let mapData = null;
const charts = {};

export function initResults(appState) {
  state = appState;
  $("#results-refresh").addEventListener("click", () => loadResults());
  $("#results-metric").addEventListener("change", drawResultsMap);
  for (const button of document.querySelectorAll("#exports button")) {
    button.addEventListener("click", () => guarded(`Downloading ${button.textContent}`, async () => {
      const name = await download(`/api/campaigns/${state.campaignId}/exports/${button.dataset.export}`, button.dataset.export);
      setStatus(`Downloaded ${name}.`);
    }));
  }
}

export function showResults() { if (map) setTimeout(() => map.invalidateSize(), 0); }

/** Load every panel; each one reports its own failure (e.g. an endpoint not built yet) in words. */
export async function loadResults() {
  await Promise.all([
    section("Progress", loadProgress),
    section("Results map", loadResultsMap),
    section("Answers by area", loadAnswers),
    section("Follow-ups", loadFollowUps),
    section("Local issues", loadIssues),
    section("Data health", loadHealth),
  ]);
}

async function section(name, load) {
  try { await load(); } catch (err) { showError(err, name); }
}

function kpi(label, value) { return el("div", { class: "kpi" }, el("div", { class: "v" }, value), el("div", { class: "k" }, label)); }

async function loadProgress() {
  const report = await getJSON(`/api/campaigns/${state.campaignId}/results/progress`);
  const c = report.campaign;
  $("#kpis").replaceChildren(
    kpi("doors on lists", fmt.int(c.doors_on_lists)),
    kpi("doors knocked", fmt.int(c.doors_knocked)),
    kpi("contacts", fmt.int(c.contacts)),
    kpi("contact rate", fmt.pct(c.contact_rate)),
    kpi("knocks (attempts)", fmt.int(c.attempts)),
    kpi("doors remaining", fmt.int(c.doors_remaining)));
  $("#kpis").dataset.doorsKnocked = c.doors_knocked;
  const outcomes = Object.entries(c.outcomes);
  drawChart("chart-outcomes", {
    type: "bar",
    data: { labels: outcomes.map(([k]) => k.replaceAll("_", " ")),
      datasets: [{ label: "knocks", data: outcomes.map(([, v]) => v), backgroundColor: outcomes.map((_, i) => OKABE_ITO[i % OKABE_ITO.length]) }] },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  drawChart("chart-days", {
    type: "bar",
    data: { labels: report.by_day.map((b) => b.bucket),
      datasets: [
        { label: "knocks", data: report.by_day.map((b) => b.attempts), backgroundColor: OKABE_ITO[0] },
        { label: "contacts", data: report.by_day.map((b) => b.contacts), backgroundColor: OKABE_ITO[1] }] },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  const rowsOf = (groups, cells) => groups.length ? groups.map((g) => el("tr", {}, ...cells(g)))
    : [el("tr", {}, el("td", { colspan: 5 }, "Nothing yet."))];
  $("#by-canvasser tbody").replaceChildren(...rowsOf(report.canvassers, (g) => [
    el("th", { scope: "row" }, g.name), el("td", { class: "num" }, fmt.int(g.doors_knocked)), el("td", { class: "num" }, fmt.int(g.contacts)),
    el("td", { class: "num" }, fmt.pct(g.contact_rate)), el("td", { class: "num" }, fmt.int(g.attempts))]));
  $("#by-list tbody").replaceChildren(...rowsOf(report.walk_lists, (g) => [
    el("th", { scope: "row" }, g.name),
    el("td", {}, el("progress", { max: g.doors_on_lists || 1, value: g.doors_on_lists - g.doors_remaining, "aria-label": `${g.name} progress` }),
      ` ${fmt.int(g.doors_on_lists - g.doors_remaining)}/${fmt.int(g.doors_on_lists)}`),
    el("td", { class: "num" }, fmt.int(g.doors_knocked)), el("td", { class: "num" }, fmt.int(g.contacts)), el("td", { class: "num" }, fmt.pct(g.contact_rate))]));
}

function drawChart(canvasId, config) {
  if (!window.Chart) throw new Error("The chart library did not load; run `make console` on the server.");
  if (charts[canvasId]) charts[canvasId].destroy();
  config.options = { responsive: true, maintainAspectRatio: false, animation: false, ...config.options };
  charts[canvasId] = new window.Chart($(`#${canvasId}`), config);
}

async function loadResultsMap() {
  mapData = await getJSON(`/api/campaigns/${state.campaignId}/results/map`);
  $("#results-map-note").textContent = `Support share counts “${mapData.support}” answers. Areas with fewer than ${mapData.threshold} respondents or doors are suppressed (grey).`;
  if (!map) map = makeMap("results-map", state.config, () => state.campaignId);
  drawResultsMap();
}

function drawResultsMap() {
  if (!mapData || !map) return;
  const metric = $("#results-metric").value;
  const isShare = metric !== "doors_knocked";
  const { fill, legend } = mapStyle(mapData, metric); // the server's classes (leads-map.js)
  const format = isShare ? fmt.pct : fmt.int;
  if (mapLayer) mapLayer.remove();
  mapLayer = L.geoJSON(mapData, {
    pmIgnore: true,
    style: (f) => ({ color: "#fff", weight: 1, fillColor: fill(f.properties), fillOpacity: 0.8 }),
    onEachFeature: (f, layer) => {
      const lines = tooltipLines(f.properties, metric, format, mapData.threshold);
      layer.bindTooltip(el("div", {}, el("strong", {}, lines[0]), ...lines.slice(1).map((t) => el("div", {}, t))), { sticky: true });
    },
  }).addTo(map);
  renderLegend($("#results-legend"), $("#results-metric").selectedOptions[0].textContent, legend, format);
  if (mapData.features.length) map.fitBounds(mapLayer.getBounds(), { padding: [10, 10] });
}

async function loadAnswers() {
  const data = await getJSON(`/api/campaigns/${state.campaignId}/results/answers`, { by: "area" });
  const box = $("#answers");
  if (!data.groups.length) {
    box.replaceChildren(el("p", { class: "hint" }, `No answers yet${data.note ? ` (${data.note})` : ""}. Cells under ${data.threshold} respondents are suppressed.`));
    return;
  }
  const rows = data.groups.flatMap((g) => g.questions.map((q) => el("tr", {},
    el("th", { scope: "row" }, g.name), el("td", {}, q.text || q.key), el("td", { class: "num" }, fmt.int(q.respondents)),
    el("td", {}, q.answers.map((a) => `${a.value}: ${a.suppressed ? "<" + data.threshold : fmt.int(a.count)}`).join(" · ")))));
  const head = el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Area"), el("th", { scope: "col" }, "Question"),
    el("th", { scope: "col" }, "Respondents"), el("th", { scope: "col" }, "Answers")));
  box.replaceChildren(el("div", { class: "table-wrap" }, el("table", {}, head, el("tbody", {}, rows))));
}

async function loadFollowUps() {
  const data = await getJSON(`/api/campaigns/${state.campaignId}/results/follow-ups`);
  $("#followups-note").textContent = `${data.count} people to follow up; ${data.without_consent} more asked but gave no consent to be contacted (not shown).`;
  $("#followups tbody").replaceChildren(...(data.people.length ? data.people.map((p) => el("tr", {},
    el("th", { scope: "row" }, p.name), el("td", {}, `${p.address} ${p.postcode}`),
    el("td", {}, p.reasons.join(", ") + (p.language ? ` (language: ${p.language})` : "")),
    el("td", {}, [p.phone, p.email].filter(Boolean).join(" · ") || "–"),
    el("td", {}, p.done.length ? `done: ${p.done.join(", ")} ` : "",
      p.reasons.filter((r) => !p.done.includes(r)).map((reason) => el("button", { type: "button",
        onclick: () => guarded("Marking the follow-up done", async () => {
          await postJSON(`/api/campaigns/${state.campaignId}/results/follow-ups/${p.person_id}/done`, { reason });
          setStatus(`${p.name}: “${reason}” marked done.`);
          await loadFollowUps();
        }) }, `Mark “${reason}” done`))))) : [el("tr", {}, el("td", { colspan: 5 }, "Nobody to follow up yet."))]));
}

async function loadIssues() {
  const data = await getJSON(`/api/campaigns/${state.campaignId}/results/issues`);
  const box = $("#issues");
  if (!data.totals.length) {
    box.replaceChildren(el("p", { class: "hint" }, "No local issues recorded yet."));
    return;
  }
  const cell = (i) => (i.suppressed ? `<${data.threshold}` : fmt.int(i.count));
  box.replaceChildren(
    el("p", {}, "Across the campaign: ", data.totals.map((i) => `${i.issue} ${cell(i)}`).join(" · ")),
    el("div", { class: "table-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Area"), el("th", { scope: "col" }, "Issues raised"))),
      el("tbody", {}, data.areas.map((a) => el("tr", {}, el("th", { scope: "row" }, a.name),
        el("td", {}, a.issues.map((i) => `${i.issue} ${cell(i)}`).join(" · "))))))));
}

async function loadHealth() {
  const data = await getJSON(`/api/campaigns/${state.campaignId}/results/health`);
  const parts = [el("p", {}, `${fmt.int(data.open_conflicts)} open conflicts, ${fmt.int(data.rejected_mutations)} rejected edits from phones.`)];
  const rows = [...data.walk_lists, ...data.canvassers].filter((r) => r.open_conflicts || r.rejected_mutations);
  if (rows.length) {
    parts.push(el("div", { class: "table-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Where"), el("th", { scope: "col" }, "Open conflicts"), el("th", { scope: "col" }, "Rejected edits"))),
      el("tbody", {}, rows.map((r) => el("tr", {}, el("th", { scope: "row" }, `${r.kind.replaceAll("_", " ")}: ${r.name}`),
        el("td", { class: "num" }, fmt.int(r.open_conflicts)), el("td", { class: "num" }, fmt.int(r.rejected_mutations))))))));
  }
  if (data.stale_devices.length) {
    parts.push(el("p", { class: "notice" }, `Phones not synced for over ${data.stale_after_hours} hours: ` +
      data.stale_devices.map((d) => `${d.name} (${d.user_name}, ${d.hours_since_sync === null ? "never" : fmt.num(d.hours_since_sync) + " h"})`).join("; ")));
  }
  if (data.open_conflicts) parts.push(await conflictQueue());
  $("#health").replaceChildren(...parts);
}

/** The organiser's review queue: keep the winner, the loser, or a new value (written as a new edit that syncs). */
async function conflictQueue() {
  let conflicts;
  try {
    conflicts = await getJSON(`/api/campaigns/${state.campaignId}/conflicts`);
  } catch (err) {
    return el("p", { class: "notice" }, `Conflict review is for organisers: ${err.message}`);
  }
  const resolve = (c, value) => guarded(`Resolving conflict ${c.id}`, async () => {
    await postJSON(`/api/campaigns/${state.campaignId}/conflicts/${c.id}/resolve`, { value });
    setStatus(`Conflict ${c.id} resolved.`);
    await loadHealth();
  });
  return el("div", { class: "table-wrap" }, el("table", {},
    el("caption", {}, "Conflicts to review"),
    el("thead", {}, el("tr", {}, ...["Record", "Field", "Kept (winner)", "Lost", "Now", "Keep"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, conflicts.map((c) => {
      const input = el("input", { type: "text", "aria-label": `New value for ${c.entity} ${c.entity_id} ${c.field}`, value: c.current_value ?? "" });
      return el("tr", {},
        el("th", { scope: "row" }, `${c.entity} ${c.entity_id}`), el("td", {}, c.field),
        el("td", {}, c.winning_value ?? "(empty)"), el("td", {}, c.losing_value ?? "(empty)"), el("td", {}, c.current_value ?? "(empty)"),
        el("td", {},
          el("button", { type: "button", onclick: () => resolve(c, c.winning_value) }, "Winner"), " ",
          el("button", { type: "button", onclick: () => resolve(c, c.losing_value) }, "Loser"), " ",
          input, " ",
          el("button", { type: "button", onclick: () => resolve(c, input.value) }, "This value")));
    }))));
}

export function resetResults() {
  for (const chart of Object.values(charts)) chart.destroy();
  for (const key of Object.keys(charts)) delete charts[key];
  if (mapLayer) mapLayer.remove();
  mapLayer = null;
  mapData = null;
}
