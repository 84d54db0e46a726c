// The organiser's map: census areas by measure (choropleth), drawn targets and their preview,
// cutting walk lists and their routes.

import { getJSON, postJSON } from "./api.js";
import { $, el, fmt, classify, renderLegend, escapeText, OKABE_ITO, showError, clearError, setStatus, guarded } from "./ui.js";

const L = window.L;
let map;
let state;
let areasLayer, targetsLayer, routesLayer;
let drawnLayer = null;
let areaLayerByCode = new Map();
let rankedAreas = [];
let previewTimer = null;

export function routeColour(listId) { return OKABE_ITO[(listId - 1) % OKABE_ITO.length]; }

/** Build a Leaflet map with our tiles (if configured) and no CDN assets. */
export function makeMap(elementId, config) {
  const m = L.map(elementId, { zoomControl: true, preferCanvas: false, keyboard: true });
  if (config.tile_url) {
    // Leaflet writes attributions with innerHTML: pass ours as escaped text.
    L.tileLayer(config.tile_url, { maxZoom: 19, attribution: escapeText(config.tile_attribution || "") }).addTo(m);
  }
  m.setView([51.5, -0.1], 13);
  return m;
}

export function initPlan(appState) {
  state = appState;
  map = makeMap("plan-map", state.config);
  if (map.pm) {
    map.pm.setGlobalOptions({ snappable: false, allowSelfIntersection: false, continueDrawing: false });
    map.on("pm:create", (e) => onDrawn(e.layer));
    map.on("pm:remove", (e) => { if (e.layer === drawnLayer) { drawnLayer = null; updateDrawnState(); } });
  } else {
    showError(new Error("The drawing library did not load; run `make console` on the server."));
  }
  $("#measure").addEventListener("change", () => guarded("Areas", loadAreas));
  $("#draw-start").addEventListener("click", startDrawing);
  $("#draw-clear").addEventListener("click", clearDrawing);
  $("#target-name").addEventListener("input", updateDrawnState);
  $("#target-create").addEventListener("click", () => guarded("Creating the target", createTargetFromDrawing));
  $("#target-top").addEventListener("click", () => guarded("Creating the target", createTargetFromTopAreas));
  $("#cut-go").addEventListener("click", () => guarded("Cutting lists", cutLists));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && map.pm && map.pm.globalDrawModeEnabled()) { map.pm.disableDraw(); setStatus("Drawing cancelled."); }
  });
}

const DRAW_CONTROLS = {
  position: "topleft", drawMarker: false, drawCircleMarker: false, drawPolyline: false, drawRectangle: true,
  drawCircle: false, drawText: false, cutPolygon: false, rotateMode: false, dragMode: false, removalMode: true,
  editMode: true, drawPolygon: true,
};

/** Drawing and editing tools on the plan map for roles that may make targets (organisers); none for leads. */
export function setPlanEditing(allowed) {
  if (!map || !map.pm) return;
  if (allowed) map.pm.addControls(DRAW_CONTROLS);
  else { map.pm.removeControls(); map.pm.disableDraw(); }
}

export function showPlan() { setTimeout(() => map.invalidateSize(), 0); }

export async function loadPlan() {
  const measures = await getJSON(`/api/campaigns/${state.campaignId}/measures`);
  const select = $("#measure");
  const previous = select.value || "bame_share";
  select.replaceChildren(...measures.map((m) => el("option", { value: m.name, title: m.descriptions.join("; ") }, m.name.replaceAll("_", " "))));
  select.value = measures.some((m) => m.name === previous) ? previous : (measures[0] && measures[0].name);
  await loadAreas(true);
  await Promise.all([loadTargets(), loadRoutes()]);
}

async function loadAreas(fit = false) {
  const measure = $("#measure").value;
  if (!measure) return;
  const data = await getJSON(`/api/campaigns/${state.campaignId}/areas/rank`, { measure });
  rankedAreas = data.features.map((f) => f.properties).sort((a, b) => a.rank - b.rank);
  $("#measure-formula").textContent = `${data.count} areas; value = ${data.formula}`;
  const { breaks, colour } = classify(rankedAreas.map((p) => p.value));
  if (areasLayer) areasLayer.remove();
  areaLayerByCode = new Map();
  highlighted = null;
  areasLayer = L.geoJSON(data, {
    pmIgnore: true,
    style: (f) => ({ color: "#ffffff", weight: 1, fillColor: colour(f.properties.value), fillOpacity: 0.72 }),
    onEachFeature: (feature, layer) => {
      areaLayerByCode.set(feature.properties.code, layer);
      layer.on("mouseover", () => highlightArea(feature.properties.code, true));
      layer.on("mouseout", () => highlightArea(feature.properties.code, false));
    },
  }).addTo(map);
  areasLayer.bringToBack();
  renderLegend($("#legend"), measure.replaceAll("_", " "), breaks, fmt.pct);
  $("#area-list").replaceChildren(...rankedAreas.map((p) => el("li", {},
    el("button", { type: "button", onfocus: () => highlightArea(p.code, true), onblur: () => highlightArea(p.code, false),
      onclick: () => { const layer = areaLayerByCode.get(p.code); if (layer) map.fitBounds(layer.getBounds(), { maxZoom: 16 }); } },
    `${p.name}: ${fmt.pct(p.value)}`))));
  if (fit && data.features.length) map.fitBounds(areasLayer.getBounds(), { padding: [10, 10] });
}

let highlighted = null;

function highlightArea(code, on) {
  const layer = areaLayerByCode.get(code);
  if (!layer) return;
  if (on && highlighted && highlighted !== layer) highlighted.setStyle({ weight: 1, color: "#ffffff" });
  highlighted = on ? layer : null;
  const p = layer.feature.properties;
  layer.setStyle(on ? { weight: 3, color: "#e69f00" } : { weight: 1, color: "#ffffff" });
  if (on) {
    layer.bringToFront();
    $("#hover-info").replaceChildren(
      el("strong", {}, `${p.name} (${p.code})`), el("br"),
      `${$("#measure").value.replaceAll("_", " ")}: ${fmt.pct(p.value)} · rank ${p.rank} of ${rankedAreas.length} · population ${fmt.int(p.population)}`);
  }
}

async function loadTargets() {
  state.targets = await getJSON(`/api/campaigns/${state.campaignId}/targets`);
  if (targetsLayer) targetsLayer.remove();
  targetsLayer = L.featureGroup().addTo(map);
  for (const target of state.targets) {
    if (!target.geometry) continue;
    L.geoJSON(target.geometry, { pmIgnore: true, interactive: false, style: { color: "#000000", weight: 2.5, dashArray: "6 4", fill: false } })
      .addTo(targetsLayer);
  }
  const select = $("#cut-target");
  const previous = select.value;
  select.replaceChildren(...state.targets.map((t) => el("option", { value: t.id }, `${t.name}${t.preview ? ` (${fmt.int(t.preview.addresses)} doors)` : ""}`)));
  if (!state.targets.length) select.append(el("option", { value: "" }, "No targets yet: draw one above"));
  if (previous && state.targets.some((t) => String(t.id) === previous)) select.value = previous;
}

export async function loadRoutes() {
  const data = await getJSON(`/api/campaigns/${state.campaignId}/walklists/map`);
  if (routesLayer) routesLayer.remove();
  routesLayer = L.geoJSON(data, {
    pmIgnore: true,
    style: (f) => ({ color: routeColour(f.properties.id), weight: 4, opacity: 0.95 }),
    pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 4, color: routeColour(f.properties.id || 1), pmIgnore: true }),
    // Leaflet puts a string tooltip in with innerHTML: give it an element built from text nodes.
    onEachFeature: (f, layer) => layer.bindTooltip(routeTooltip(f.properties), { sticky: true }),
  }).addTo(map);
}

/** A list's tooltip: its name, size and canvasser, as text (names come from volunteers and organisers). */
function routeTooltip(p) {
  const assignee = p.assignee && typeof p.assignee === "object" ? p.assignee.display_name : p.assignee;
  return el("span", { class: "route-tip" }, el("strong", {}, p.name), `: ${fmt.int(p.doors)} doors, ${fmt.mins(p.minutes)} · `,
    assignee ? el("span", { class: "assignee" }, assignee) : "unassigned");
}

export function focusList(listId) {
  if (!routesLayer) return;
  routesLayer.eachLayer((layer) => {
    if (layer.feature && layer.feature.properties.id === listId) {
      map.fitBounds(layer.getBounds(), { maxZoom: 17 });
      layer.openTooltip(layer.getBounds().getCenter());
    }
  });
}

function startDrawing() {
  if (!map.pm) return;
  clearError();
  map.pm.enableDraw("Polygon", { snappable: false });
  setStatus("Drawing: click each corner on the map, then click the first corner to finish (Escape cancels).");
}

function clearDrawing() {
  if (map.pm) map.pm.disableDraw();
  if (drawnLayer) drawnLayer.remove();
  drawnLayer = null;
  $("#preview").replaceChildren();
  updateDrawnState();
}

function onDrawn(layer) {
  if (drawnLayer && drawnLayer !== layer) drawnLayer.remove();
  drawnLayer = layer;
  layer.setStyle({ color: "#d55e00", weight: 3, fillOpacity: 0.08 });
  layer.pm.enable({ allowSelfIntersection: false, snappable: false });
  layer.on("pm:edit", schedulePreview);
  layer.on("pm:markerdragend", schedulePreview);
  setStatus("Target drawn. Drag its corners to edit; the figures update.");
  if (!$("#target-name").value) $("#target-name").value = `Target ${new Date().toLocaleDateString("en-GB")} ${new Date().toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" })}`;
  updateDrawnState();
  schedulePreview();
}

function drawnPolygon() {
  if (!drawnLayer) return null;
  const geometry = drawnLayer.toGeoJSON().geometry;
  return geometry.type === "Polygon" ? geometry : null;
}

function updateDrawnState() {
  $("#target-create").disabled = !(drawnPolygon() && $("#target-name").value.trim());
}

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(() => guarded("Previewing the target", previewDrawing), 250);
}

function renderPreview(preview) {
  const rows = [
    ["Area", `${fmt.num(preview.area_km2, 3)} km²`],
    ["Doors (addresses)", fmt.int(preview.addresses)],
    ["Buildings", fmt.int(preview.buildings)],
    ["Electors", fmt.int(preview.electors)],
  ];
  for (const [group, value] of Object.entries(preview.estimated_residents || {})) {
    rows.push([`Est. residents: ${group.replaceAll("_", " ")}`, fmt.int(value)]);
  }
  $("#preview").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

async function previewDrawing() {
  const polygon = drawnPolygon();
  if (!polygon) return;
  const preview = await postJSON(`/api/campaigns/${state.campaignId}/targets/preview`,
    { name: $("#target-name").value.trim() || "preview", polygon, measure: $("#measure").value || null });
  renderPreview(preview);
}

async function afterTargetCreated(target) {
  renderPreview(target.preview || {});
  await loadTargets();
  $("#cut-target").value = String(target.id);
  setStatus(`Target “${target.name}” created: ${fmt.int(target.preview && target.preview.addresses)} doors. Now cut it into lists.`);
  $("#cut-size").focus();
}

async function createTargetFromDrawing() {
  clearError();
  const polygon = drawnPolygon();
  if (!polygon) throw new Error("Draw a polygon on the map first.");
  const target = await postJSON(`/api/campaigns/${state.campaignId}/targets`,
    { name: $("#target-name").value.trim(), polygon, measure: $("#measure").value || null });
  if (drawnLayer) drawnLayer.remove();
  drawnLayer = null;
  updateDrawnState();
  await afterTargetCreated(target);
}

async function createTargetFromTopAreas() {
  clearError();
  const n = Number($("#top-n").value) || 5;
  const codes = rankedAreas.slice(0, n).map((p) => p.code);
  const measure = $("#measure").value;
  const name = $("#target-name").value.trim() || `Top ${n} areas by ${measure.replaceAll("_", " ")}`;
  const target = await postJSON(`/api/campaigns/${state.campaignId}/targets`, { name, area_codes: codes, combine: "union", measure });
  await afterTargetCreated(target);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function cutLists() {
  clearError();
  const targetId = $("#cut-target").value;
  if (!targetId) throw new Error("Create or choose a target first.");
  const body = { size: Number($("#cut-size").value), unit: $("#cut-unit").value, replace: $("#cut-replace").checked };
  const button = $("#cut-go");
  const bar = $("#cut-progress");
  button.disabled = true;
  bar.hidden = false;
  bar.removeAttribute("value");
  $("#cut-result").textContent = "Cutting…";
  try {
    let job = await postJSON(`/api/campaigns/${state.campaignId}/targets/${targetId}/cut`, body);
    while (!["done", "failed", "error", "cancelled"].includes(job.status)) {
      await sleep(500);
      job = await getJSON(`/api/campaigns/${state.campaignId}/jobs/${job.id}`);
      if (job.total) { bar.max = job.total; bar.value = job.done; }
      $("#cut-result").textContent = `Cutting… ${job.message || job.status}${job.total ? ` (${job.done}/${job.total})` : ""}`;
    }
    if (job.status !== "done") throw new Error(`The cut failed: ${job.message || job.status}`);
    const r = job.result || {};
    const routed = job.routing === "straight_line" ? " Routed in straight lines between doors." : (job.routing === "street_network" ? " Routed along the street network." : "");
    const warnings = (job.warnings || []).map((w) => ` Warning: ${w}`).join("");
    $("#cut-result").textContent = `${job.message || "Done"}${r.doors ? `: ${fmt.int(r.doors)} doors` : ""}.${routed}${warnings} Routes are on the map; assign them under “Walk lists”.`;
    $("#cut-result").dataset.routing = job.routing || "";
    await loadRoutes();
    await state.reloadLists();
    setStatus($("#cut-result").textContent);
  } catch (err) {
    $("#cut-result").textContent = "";
    throw err;
  } finally {
    button.disabled = false;
    bar.hidden = true;
  }
}

export function resetPlan() {
  clearDrawing();
  for (const layer of [areasLayer, targetsLayer, routesLayer]) if (layer) layer.remove();
  areasLayer = targetsLayer = routesLayer = null;
  $("#legend").replaceChildren();
}
