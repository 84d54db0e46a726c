// Answers as charts (stacked bars per question) by area, ward, target, list, canvasser or week, each with its
// data table; hidden cells say about how many more contacts would show them.

import { getJSON } from "./api.js";
import { node, num, campaignId, dataTable, drawChart, report, whenShown, OKABE_ITO } from "./leads-dom.js";

const charts = new Map();
const BREAKDOWNS = [["area", "Area"], ["ward", "Ward"], ["target", "Target"], ["walk_list", "Walk list"], ["canvasser", "Canvasser"], ["week", "Week"]];
let data = null;

function build() {
  const results = document.getElementById("view-results");
  const anchor = document.getElementById("answers");
  if (!results || !anchor || document.getElementById("leads-answers")) return;
  const by = node("select", { id: "leads-answers-by" }, BREAKDOWNS.map(([v, label]) => node("option", { value: v }, label)));
  const question = node("select", { id: "leads-answers-question" });
  const section = node("section", { id: "leads-answers", "aria-labelledby": "leads-answers-title" },
    node("h3", { id: "leads-answers-title" }, "Answers as charts"),
    node("div", { class: "row" },
      node("span", {}, node("label", { for: "leads-answers-by" }, "By"), by),
      node("span", {}, node("label", { for: "leads-answers-question" }, "Question"), question)),
    node("figure", {}, node("figcaption", { id: "leads-answers-caption" }, ""),
      node("div", { class: "chart-box" }, node("canvas", { id: "leads-answers-chart", role: "img", "aria-describedby": "leads-answers-table" }))),
    node("p", { id: "leads-answers-note", class: "hint" }),
    node("div", { id: "leads-answers-table" }));
  const heading = anchor.previousElementSibling;  // before the "Answers by area" heading and its text table
  (heading && heading.tagName === "H3" ? heading : anchor).before(section);
  by.addEventListener("change", () => load().catch((err) => report(err, "Answers as charts")));
  question.addEventListener("change", render);
  const refresh = document.getElementById("results-refresh");
  if (refresh) refresh.addEventListener("click", () => load().catch((err) => report(err, "Answers as charts")));
  whenShown(results, () => load().catch((err) => report(err, "Answers as charts")));
  const campaign = document.getElementById("campaign");
  if (campaign) campaign.addEventListener("change", () => { data = null; });
}

async function load() {
  const id = campaignId();
  if (!id) return;
  const by = document.getElementById("leads-answers-by").value;
  data = await getJSON(`/api/campaigns/${id}/results/answers`, { by });
  const select = document.getElementById("leads-answers-question");
  const previous = select.value;
  const questions = new Map();
  for (const g of data.groups) for (const q of g.questions) if (!questions.has(q.key)) questions.set(q.key, q.text || q.key);
  select.replaceChildren(...[...questions].map(([key, text]) => node("option", { value: key }, text)));
  if (questions.has(previous)) select.value = previous;
  else if (questions.has("voting_intention")) select.value = "voting_intention";
  render();
}

function render() {
  if (!data) return;
  const key = document.getElementById("leads-answers-question").value;
  const byLabel = (BREAKDOWNS.find(([v]) => v === data.by) || [null, "Group"])[1];
  const groups = data.groups.map((g) => ({ name: g.name || "(none)", q: g.questions.find((q) => q.key === key) })).filter((g) => g.q);
  const values = [];
  for (const g of groups) for (const a of g.q.answers) if (!values.includes(a.value)) values.push(a.value);
  const caption = groups.length ? `${groups[0].q.text || key}: respondents by ${byLabel.toLowerCase()} (cells under ${data.threshold} hidden)`
    : "No answers yet.";
  document.getElementById("leads-answers-caption").textContent = caption;
  const cell = (g, v) => g.q.answers.find((a) => a.value === v);
  drawChart(document.getElementById("leads-answers-chart"), {
    type: "bar",
    data: {
      labels: groups.map((g) => g.name),
      datasets: values.map((v, i) => ({ label: v, data: groups.map((g) => (cell(g, v) && cell(g, v).count) || 0), backgroundColor: OKABE_ITO[i % OKABE_ITO.length] })),
    },
    options: { indexAxis: groups.length > 8 ? "y" : "x", scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
  }, charts);
  document.getElementById("leads-answers-chart").setAttribute("aria-label", `Stacked bar chart: ${caption} The same figures are in the table below.`);
  let hidden = 0;
  const rows = groups.map((g) => [g.name, ...values.map((v) => {
    const a = cell(g, v);
    if (!a) return "0";
    if (!a.suppressed) return num(a.count);
    hidden += 1;
    return a.more_contacts ? `<${data.threshold} (about ${num(a.more_contacts)} more contacts to show)` : `<${data.threshold}`;
  }), g.q.respondents === null ? "hidden" : num(g.q.respondents)]);
  document.getElementById("leads-answers-table").replaceChildren(
    dataTable(caption, [byLabel, ...values, "Respondents"], rows, { id: "leads-answers-data" }));
  document.getElementById("leads-answers-note").textContent = hidden
    ? `${hidden} cells have fewer than ${data.threshold} respondents and are hidden; each says about how many more contacts in that group would typically show it. ${data.note || ""}`
    : (data.note || "");
}

build();
