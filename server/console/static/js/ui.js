// Small DOM helpers, number formats and the colour-blind-safe palettes.

export const $ = (selector, root = document) => root.querySelector(selector);

// Every value the console shows goes through `el` (or textContent): strings become text nodes,
// never markup, so a name like `<img src=x onerror=...>` is displayed, not run. Nothing is ever assigned to innerHTML.
const SAFE_URL = /^(?:https?:|blob:|mailto:|\/(?!\/)|#)/i;

/** Build an element: el("td", {class: "num"}, "12"). Children may be strings (added as text) or nodes.
 * `on<event>` keys take functions (listeners), `style` takes an object (CSSOM, allowed by the CSP),
 * and href/src take only http(s), blob, mailto or same-site URLs (no `javascript:`). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) {
      if (typeof value !== "function") throw new TypeError(`el(): ${key} must be a function`);
      node.addEventListener(key.slice(2), value);
    } else if (key === "class") node.className = value;
    else if (key === "style") Object.assign(node.style, value);
    else if ((key === "href" || key === "src") && !SAFE_URL.test(String(value))) continue;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Text made safe for the few library options that only take HTML strings (Leaflet's attribution). */
export function escapeText(text) {
  const box = document.createElement("span");
  box.textContent = String(text);
  return box.innerHTML;
}

export function showError(err, context) {
  const text = (context ? `${context}: ` : "") + (err && err.message ? err.message : String(err));
  $("#error-text").textContent = text;
  $("#error").hidden = false;
  console.warn(text);
}

export function clearError() { $("#error").hidden = true; $("#error-text").textContent = ""; }

export function setStatus(text) { $("#status").textContent = text; }

/** Run an async action, showing its failure in words (never swallowed). */
export async function guarded(context, action) {
  try { return await action(); } catch (err) { showError(err, context); return undefined; }
}

export const fmt = {
  int: (v) => (v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en-GB")),
  pct: (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`),
  num: (v, d = 1) => (v === null || v === undefined ? "–" : Number(v).toLocaleString("en-GB", { maximumFractionDigits: d })),
  km: (m) => (m === null || m === undefined ? "–" : `${(m / 1000).toFixed(2)} km`),
  mins: (m) => (m === null || m === undefined ? "–" : `${Math.round(m)} min`),
};

// Viridis, 6 classes (perceptually uniform, readable with the common colour-vision deficiencies).
export const VIRIDIS = ["#440154", "#414487", "#2a788e", "#22a884", "#7ad151", "#fde725"];
// Okabe-Ito: distinct categorical colours for lists and outcomes.
export const OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

/** Equal-interval classes between the smallest and largest value; returns {breaks: [[lo, hi, colour]], colour(v)}. */
export function classify(values, palette = VIRIDIS) {
  const finite = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  if (!finite.length) return { breaks: [], colour: () => NO_DATA };
  const min = Math.min(...finite);
  const max = Math.max(...finite);
  if (max === min) {
    const only = palette[Math.floor(palette.length / 2)];
    return { breaks: [[min, max, only]], colour: (v) => (typeof v === "number" && Number.isFinite(v) ? only : NO_DATA) };
  }
  const n = palette.length;
  const step = (max - min) / n;
  const breaks = palette.map((c, i) => [min + i * step, i === n - 1 ? max : min + (i + 1) * step, c]);
  const colour = (v) => {
    if (typeof v !== "number" || !Number.isFinite(v)) return NO_DATA;
    return palette[Math.min(n - 1, Math.max(0, Math.floor((v - min) / step)))];
  };
  return { breaks, colour };
}

export const NO_DATA = "#bbbbbb";

/** Fill a legend element with swatches for the classes (plus "no data"). */
export function renderLegend(target, title, breaks, format) {
  target.replaceChildren();
  if (!breaks.length) return;
  target.append(el("strong", {}, title));
  for (const [lo, hi, colour] of breaks) {
    target.append(el("div", {}, el("span", { class: "sw", style: { background: colour } }), lo === hi ? format(lo) : `${format(lo)} – ${format(hi)}`));
  }
  target.append(el("div", {}, el("span", { class: "sw", style: { background: NO_DATA } }), "no data / suppressed"));
}
