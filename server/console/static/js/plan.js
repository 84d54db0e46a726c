// The organiser's map: census areas by measure (choropleth), drawn targets and their preview,
// cutting walk lists and their routes.

import { getJSON, postJSON } from "./api.js";
import { $, el, fmt, classify, renderLegend, escapeText, showError, clearError, setStatus, guarded } from "./ui.js";
import { attachStreets } from "./streets.js";
import { splitList, mergeLists, reknockLists, deleteList, assignList, holderOptions } from "./listops.js";

const L = window.L;
let map;
let state;
let areasLayer, targetsLayer, routesLayer;
let drawnLayer = null;
let areaLayerByCode = new Map();
let rankedAreas = [];
let previewTimer = null;

// Kelly's colours of maximum contrast (without white and the palest): consecutive lists never share a
// colour and the palette repeats only after 18 lists; each route also carries its list number.
const ROUTE_COLOURS = ["#BE0032", "#0067A5", "#F38400", "#008856", "#875692", "#882D17", "#E68FAC", "#2B3D26", "#F6A600",
  "#604E97", "#8DB600", "#654522", "#F99379", "#B3446C", "#848482", "#E25822", "#C2B280", "#DCD300"];

export function routeColour(listId) { return ROUTE_COLOURS[(Math.max(1, listId) - 1) % ROUTE_COLOURS.length]; }

/** Build a Leaflet map with our tiles (if configured) or, without a tile server, our own street layer. */
export function makeMap(elementId, config, campaignId) {
  const m = L.map(elementId, { zoomControl: true, preferCanvas: false, keyboard: true });
  if (config.tile_url) {
    // Leaflet writes attributions with innerHTML: pass ours as escaped text.
    L.tileLayer(config.tile_url, { maxZoom: 19, attribution: escapeText(config.tile_attribution || "") }).addTo(m);
  } else if (campaignId) {
    m.canvassStreets = attachStreets(m, campaignId);
  }
  m.setView([51.5, -0.1], 13);
  return m;
}

export function initPlan(appState) {
  state = appState;
  map = makeMap("plan-map", state.config, () => state.campaignId);
  map.createPane("routes");
  map.getPane("routes").style.zIndex = 430;  // above the street layer and area fills
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
  $("#lists-merge").addEventListener("click", () => guarded("Merging lists", mergeTicked));
  $("#lists-reknock").addEventListener("click", () => guarded("Re-knocking", reknockTicked));
  $("#lists-assign").addEventListener("click", () => guarded("Assigning lists", assignTicked));
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
  $("#map-list-actions").hidden = !allowed;
  $("#lists-assign").closest(".row").hidden = !allowed;
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
  if (map.canvassStreets) map.canvassStreets.refresh();
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

let routeLayers = new Map();  // list id -> { line, casing, label, start, skipped }
let routeFeatures = [];
const ticked = new Set();
let focused = null;

function midpoint(geometry) {
  if (!geometry) return null;
  const lines = geometry.type === "LineString" ? [geometry.coordinates] : geometry.type === "MultiLineString" ? geometry.coordinates : null;
  if (!lines) return geometry.type === "Point" ? geometry.coordinates : null;
  const all = lines.flat();
  return all.length ? all[Math.floor(all.length / 2)] : null;
}

export async function loadRoutes() {
  const data = await getJSON(`/api/campaigns/${state.campaignId}/walklists/map`);
  if (routesLayer) routesLayer.remove();
  routesLayer = L.featureGroup().addTo(map);
  routeLayers = new Map();
  routeFeatures = data.features;
  const present = new Set(data.features.map((f) => f.properties.id));
  for (const id of [...ticked]) if (!present.has(id)) ticked.delete(id);
  if (focused !== null && !present.has(focused)) focused = null;
  for (const f of data.features) {
    const p = f.properties;
    const colour = routeColour(p.id);
    const parts = { feature: f };
    const options = { pane: "routes", pmIgnore: true };
    if (f.geometry && f.geometry.type !== "Point") {
      // A white casing under each route keeps it readable over any area colour or street.
      parts.casing = L.geoJSON(f.geometry, { ...options, interactive: false, style: { color: "#ffffff", weight: 8, opacity: 0.9 } }).addTo(routesLayer);
      parts.line = L.geoJSON(f.geometry, { ...options, style: { color: colour, weight: 4.5, opacity: 0.95, className: `route route-${p.id}` } }).addTo(routesLayer);
      // Leaflet puts a string tooltip in with innerHTML: give it an element built from text nodes.
      parts.line.bindTooltip(routeTooltip(p), { sticky: true });
      parts.line.on("click", () => toggleTick(p.id));
    }
    const at = midpoint(f.geometry) || p.start;
    if (at) {
      const badge = el("span", { class: "route-num-badge", style: { background: colour } }, String(p.id));
      parts.label = L.marker([at[1], at[0]], { ...options, icon: L.divIcon({ className: `route-num route-num-${p.id}`, html: badge, iconSize: null }), keyboard: false, title: p.name })
        .on("click", () => toggleTick(p.id)).addTo(routesLayer);
    }
    if (p.start) {
      parts.start = L.marker([p.start[1], p.start[0]], { ...options, icon: L.divIcon({ className: `route-start route-start-${p.id}`, html: el("span", { style: { color: colour } }, "▶"), iconSize: null }), keyboard: false, title: `Start of ${p.name}` })
        .addTo(routesLayer);
    }
    parts.skipped = (p.skipped || []).map((point) => L.marker([point[1], point[0]], { ...options,
      icon: L.divIcon({ className: `door-skip door-skip-${p.id}`, html: el("span", {}, "✕"), iconSize: null }), keyboard: false, title: `Do not knock (skipped on ${p.name})` })
      .addTo(routesLayer));
    routeLayers.set(p.id, parts);
  }
  await renderMapLists();
  if (focused !== null) highlight(focused);
}

/** A list's tooltip: its name, size and canvasser, as text (names come from volunteers and organisers). */
function routeTooltip(p) {
  const assignee = p.team ? `team ${p.team}` : (p.assignee && typeof p.assignee === "object" ? p.assignee.display_name : p.assignee);
  return el("span", { class: "route-tip" }, el("strong", {}, `${p.id}. ${p.name}`), `: ${fmt.int(p.doors)} doors, ${fmt.mins(p.minutes)} · `,
    assignee ? el("span", { class: "assignee" }, assignee) : "unassigned",
    p.do_not_knock ? ` · ${p.do_not_knock} not to knock` : "");
}

async function renderMapLists() {
  const organiser = !$("#map-list-actions").hidden;
  if (organiser) {
    const [members, teams] = await Promise.all([
      state.members.length ? state.members : getJSON(`/api/campaigns/${state.campaignId}/members`).catch(() => []),
      getJSON(`/api/campaigns/${state.campaignId}/teams`).catch(() => []),
    ]);
    state.members = members;
    state.teams = teams;
    $("#lists-assign-to").replaceChildren(...holderOptions(el, members, teams).filter(Boolean));
  }
  const items = routeFeatures.map((f) => {
    const p = f.properties;
    const box = el("input", { type: "checkbox", id: `tick-${p.id}`, "data-list": p.id, onchange: (e) => { if (e.target.checked) ticked.add(p.id); else ticked.delete(p.id); styleRoutes(); } });
    box.checked = ticked.has(p.id);
    const holder = p.team ? `team ${p.team}` : (p.assignee || "unassigned");
    return el("li", { "data-list-id": p.id, class: focused === p.id ? "focused" : null },
      el("label", { for: `tick-${p.id}` }, box, el("span", { class: "route-num-badge", style: { background: routeColour(p.id) } }, String(p.id)),
        el("span", {}, p.name), el("span", { class: "hint" }, ` ${fmt.int(p.doors)} doors · ${holder}${p.do_not_knock ? ` · ✕ ${p.do_not_knock}` : ""}`)),
      el("span", { class: "row" },
        el("button", { type: "button", onclick: () => focusList(p.id) }, "Show"),
        organiser ? el("button", { type: "button", onclick: () => guarded(`Splitting ${p.name}`, () => splitOne(p)) }, "Split") : null,
        organiser ? el("button", { type: "button", onclick: () => guarded(`Deleting ${p.name}`, () => deleteOne(p)) }, "Delete") : null));
  });
  $("#map-lists").replaceChildren(...(items.length ? items : [el("li", {}, "No walk lists yet: cut a target above.")]));
}

function toggleTick(listId) {
  if (ticked.has(listId)) ticked.delete(listId); else ticked.add(listId);
  const box = document.getElementById(`tick-${listId}`);
  if (box) box.checked = ticked.has(listId);
  styleRoutes();
}

/** Ticked and focused lists stand out; with a focus, the others fade. */
function styleRoutes() {
  for (const [id, parts] of routeLayers) {
    if (!parts.line) continue;
    const picked = id === focused || ticked.has(id);
    const faded = focused !== null && !picked;
    parts.line.setStyle({ weight: picked ? 7.5 : 4.5, opacity: faded ? 0.3 : 0.95, dashArray: ticked.has(id) && id !== focused ? "10 6" : null });
    parts.casing.setStyle({ weight: picked ? 11 : 8, opacity: faded ? 0.3 : 0.9 });
    if (picked) { parts.casing.bringToFront(); parts.line.bringToFront(); }
  }
  for (const li of document.querySelectorAll("#map-lists li[data-list-id]")) li.classList.toggle("focused", Number(li.dataset.listId) === focused);
  $("#plan-map").dataset.focused = focused === null ? "" : String(focused);
  $("#plan-map").dataset.ticked = [...ticked].sort((a, b) => a - b).join(",");
}

function highlight(listId) {
  focused = listId;
  styleRoutes();
}

/** Zoom to a list and pick it out (the other routes fade); called by "Show on map". */
export function focusList(listId, { quiet = false } = {}) {
  const parts = routeLayers.get(listId);
  if (!parts) return;
  highlight(listId);
  const p = parts.feature.properties;
  if (parts.line) {
    map.fitBounds(parts.line.getBounds(), { maxZoom: 17, padding: [30, 30] });
    parts.line.openTooltip(parts.line.getBounds().getCenter());
  } else if (p.start) {
    map.setView([p.start[1], p.start[0]], 17);
  }
  if (!quiet) setStatus(`Showing ${p.name} (list ${p.id}): ${fmt.int(p.doors)} doors.`);
}

async function afterListChange(message, focusOn) {
  ticked.clear();
  await loadRoutes();
  await state.reloadLists();
  if (focusOn) focusList(focusOn, { quiet: true });
  setStatus(message);
}

async function splitOne(p) {
  clearError();
  const made = await splitList(state.campaignId, p.id, 2);
  await afterListChange(`${p.name} split into ${made.length} lists: ${made.map((w) => `${w.id}. ${w.name}`).join(", ")}.`, made[0] && made[0].id);
}

async function deleteOne(p) {
  clearError();
  if (!window.confirm(`Delete ${p.name}? Its doors can be cut again; knocks and answers recorded on it are kept.`)) return;
  await deleteList(state.campaignId, p.id);
  if (focused === p.id) focused = null;
  await afterListChange(`${p.name} deleted (work recorded on it is kept).`);
}

function tickedIds() {
  const ids = [...ticked].sort((a, b) => a - b);
  if (!ids.length) throw new Error("Tick one or more lists first (or click their routes on the map).");
  return ids;
}

async function mergeTicked() {
  clearError();
  const ids = tickedIds();
  if (ids.length < 2) throw new Error("Tick at least two lists to merge.");
  const kept = await mergeLists(state.campaignId, ids);
  await afterListChange(`Merged ${ids.length} lists into ${kept.map((w) => `${w.id}. ${w.name}`).join(", ")}.`, kept[0] && kept[0].id);
}

async function reknockTicked() {
  clearError();
  const made = await reknockLists(state.campaignId, tickedIds());
  await afterListChange(`Re-knock list made: ${made.map((w) => `${w.id}. ${w.name} (${w.doors} doors)`).join(", ")}.`, made[0] && made[0].id);
}

async function assignTicked() {
  clearError();
  const ids = tickedIds();
  const holder = $("#lists-assign-to").value;
  for (const id of ids) await assignList(state.campaignId, id, holder);
  const label = $("#lists-assign-to").selectedOptions[0];
  await afterListChange(`${ids.length} list(s) assigned to ${label ? label.textContent : "nobody"}.`);
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
  routeLayers = new Map();
  routeFeatures = [];
  ticked.clear();
  focused = null;
  $("#map-lists").replaceChildren();
  if (map && map.canvassStreets) map.canvassStreets.clear();
  $("#legend").replaceChildren();
}
