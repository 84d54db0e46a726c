// The campaign lead's screens (issue 17), added beside the console's own: answers as charts with data tables,
// data tables behind the progress charts, and the live field view. Every value is rendered as a text node.

import { getJSON } from "./api.js";
import { campaignId, dataTable, num, report, whenShown } from "./leads-dom.js";
import "./leads-answers.js";
import "./leads-live.js";

/** A data table under each progress chart (outcomes, knocks by day), for screen readers and for reading exact figures. */
async function progressTables() {
  const id = campaignId();
  const outcomes = document.getElementById("chart-outcomes");
  const days = document.getElementById("chart-days");
  if (!id || !outcomes || !days) return;
  const progress = await getJSON(`/api/campaigns/${id}/results/progress`);
  const place = (canvas, tableId, table) => {
    const figure = canvas.closest("figure");
    const old = document.getElementById(tableId);
    if (old) old.remove();
    table.id = tableId;
    figure.append(table);
    canvas.setAttribute("aria-describedby", tableId);
  };
  place(outcomes, "chart-outcomes-table", dataTable("Outcomes of every knock", ["Outcome", "Knocks"],
    Object.entries(progress.campaign.outcomes).map(([k, v]) => [k.replaceAll("_", " "), num(v)])));
  place(days, "chart-days-table", dataTable("Knocks and contacts by day", ["Day", "Knocks", "Contacts"],
    progress.by_day.map((b) => [b.bucket, num(b.attempts), num(b.contacts)])));
}

const results = document.getElementById("view-results");
if (results) {
  const load = () => progressTables().catch((err) => report(err, "Progress tables"));
  whenShown(results, load);
  const refresh = document.getElementById("results-refresh");
  if (refresh) refresh.addEventListener("click", load);
}
