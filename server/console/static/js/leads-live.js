// The live field view: lists out today with progress, knocks by hour, each canvasser's last sync.
// Polled every `refresh_seconds` (at most 10 s) while the view is open; no locations are tracked or shown.

import { getJSON } from "./api.js";
import { node, num, campaignId, dataTable, drawChart, report, whenShown, OKABE_ITO } from "./leads-dom.js";

const charts = new Map();
const MAX_REFRESH_S = 10;
let timer = null;

const time = (iso) => (iso ? new Date(iso).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" }) : "–");
const ago = (minutes) => {
  if (minutes === null || minutes === undefined) return "never synced";
  if (minutes < 1) return "just now";
  if (minutes < 90) return `${Math.round(minutes)} min ago`;
  return `${(minutes / 60).toFixed(1)} h ago`;
};

function build(view) {
  view.replaceChildren(
    node("h2", { id: "live-title" }, "Live field view"),
    node("p", { id: "live-updated", class: "hint", role: "status", "aria-live": "polite" }, "Loading…"),
    node("h3", {}, "Lists out today"),
    node("div", { id: "live-lists" }),
    node("figure", {}, node("figcaption", {}, "Knocks and contacts by hour today"),
      node("div", { class: "chart-box" }, node("canvas", { id: "live-hours-chart", role: "img", "aria-label": "Bar chart of knocks and contacts by hour today; the figures are in the table below." }))),
    node("div", { id: "live-hours" }),
    node("h3", {}, "Canvassers' last sync"),
    node("div", { id: "live-canvassers" }),
    node("p", { class: "hint" }, "No one's location is tracked: this view shows knocks and syncs only."));
}

async function refresh() {
  const id = campaignId();
  if (!id) return;
  const data = await getJSON(`/api/campaigns/${id}/results/live`, { tz: Intl.DateTimeFormat().resolvedOptions().timeZone || "Europe/London" });
  document.getElementById("live-updated").textContent = `Today, ${data.day}: updated ${new Date(data.as_of).toLocaleTimeString("en-GB")} (refreshes every ${Math.min(data.refresh_seconds, MAX_REFRESH_S)} s).`;
  document.getElementById("live-updated").dataset.knocks = String(data.lists.reduce((n, l) => n + l.knocks_today, 0));
  document.getElementById("live-lists").replaceChildren(data.lists.length
    ? dataTable("Walk lists with knocks today", ["List", "Canvassers", "Doors knocked today", "Knocks today", "Contacts today", "Done overall", "Last knock"],
      data.lists.map((l) => [l.name, l.canvassers.join(", ") || "–", num(l.doors_knocked_today), num(l.knocks_today), num(l.contacts_today),
        `${num(l.doors - l.doors_remaining)} of ${num(l.doors)}`, time(l.last_knock_at)]), { id: "live-lists-table" })
    : node("p", { class: "hint" }, "No knocks recorded yet today."));
  const hours = data.by_hour.map((b) => `${String(b.bucket).padStart(2, "0")}:00`);
  drawChart(document.getElementById("live-hours-chart"), {
    type: "bar",
    data: { labels: hours, datasets: [
      { label: "knocks", data: data.by_hour.map((b) => b.attempts), backgroundColor: OKABE_ITO[0] },
      { label: "contacts", data: data.by_hour.map((b) => b.contacts), backgroundColor: OKABE_ITO[1] }] },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  }, charts);
  document.getElementById("live-hours").replaceChildren(dataTable("Knocks and contacts by hour today", ["Hour", "Knocks", "Contacts"],
    data.by_hour.map((b, i) => [hours[i], num(b.attempts), num(b.contacts)]), { id: "live-hours-table" }));
  document.getElementById("live-canvassers").replaceChildren(data.canvassers.length
    ? dataTable("Each canvasser's last sync", ["Canvasser", "Last sync", "Doors knocked today"],
      data.canvassers.map((c) => [c.name, ago(c.minutes_since_sync), num(c.doors_knocked_today)]), { id: "live-canvassers-table" })
    : node("p", { class: "hint" }, "No phones registered yet."));
}

function start() {
  stop();
  const tick = () => refresh().catch((err) => report(err, "Live field view"));
  tick();
  timer = setInterval(tick, MAX_REFRESH_S * 1000);
}

function stop() { if (timer) clearInterval(timer); timer = null; }

const view = document.getElementById("view-live");
if (view) {
  build(view);
  whenShown(view, start, stop);
  const campaign = document.getElementById("campaign");
  if (campaign) campaign.addEventListener("change", () => { if (!view.hidden) start(); });
}
