// DOM helpers of the lead's screens: every value goes in as a text node (no innerHTML).

export const OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

/** An element with text-only children: node("td", {class: "num"}, "12"). Attributes are set with setAttribute. */
export function node(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export const num = (v) => (v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en-GB"));
export const pct = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);

/** The campaign chosen in the console's campaign picker (app.js keeps it there). */
export function campaignId() {
  const select = document.getElementById("campaign");
  return select && select.value ? Number(select.value) : null;
}

/** An accessible data table: caption, column headers with scope, the first cell of each row a row header. */
export function dataTable(caption, headers, rows, attrs = {}) {
  return node("div", { class: "table-wrap" }, node("table", attrs,
    node("caption", {}, caption),
    node("thead", {}, node("tr", {}, headers.map((h, i) => node("th", { scope: "col", class: i ? "num" : null }, h)))),
    node("tbody", {}, rows.map((cells) => node("tr", {}, cells.map((c, i) => (i ? node("td", { class: "num" }, c) : node("th", { scope: "row" }, c))))))));
}

/** Call `onShow` whenever the element becomes visible (its `hidden` attribute removed), and `onHide` when hidden. */
export function whenShown(element, onShow, onHide = () => {}) {
  const observer = new MutationObserver(() => (element.hidden ? onHide() : onShow()));
  observer.observe(element, { attributes: true, attributeFilter: ["hidden"] });
  if (!element.hidden) onShow();
}

/** A Chart.js chart on a canvas, replacing the previous one there (no animation: figures, not a show). */
export function drawChart(canvas, config, registry) {
  if (!window.Chart) throw new Error("The chart library did not load; run `make console` on the server.");
  if (registry.has(canvas.id)) registry.get(canvas.id).destroy();
  config.options = { responsive: true, maintainAspectRatio: false, animation: false, ...config.options };
  registry.set(canvas.id, new window.Chart(canvas, config));
}

/** Show a failure in the console's error banner, in words. */
export function report(err, context) {
  const box = document.getElementById("error");
  const text = document.getElementById("error-text");
  if (box && text) { text.textContent = `${context}: ${err && err.message ? err.message : String(err)}`; box.hidden = false; }
}
