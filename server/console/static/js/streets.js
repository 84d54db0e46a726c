// Our own street map: when no tile server is configured (CANVASS_TILE_URL unset), a map draws the
// campaign's imported streets from /api/campaigns/{id}/streets.geojson for the view, refetched as it
// moves, with street names from zoom 16.

import { getJSON } from "./api.js";
import { el } from "./ui.js";

const L = window.L;
const MIN_ZOOM = 14;      // wider views than this exceed the API's bbox limit (0.2°) and would be a blur of lines
const NAMES_ZOOM = 16;
const GRID = 0.01;        // snap the asked-for box to a grid so small pans hit the server's cache
const STYLE = {
  motorway: { weight: 5, color: "#9aa3ad" }, trunk: { weight: 5, color: "#9aa3ad" }, primary: { weight: 4.5, color: "#a7afb8" },
  secondary: { weight: 4, color: "#b3bac2" }, tertiary: { weight: 3.5, color: "#bcc2c9" },
};

/** Attach the street layer to `map`; `campaignId()` says which campaign's streets. Returns { refresh() }. */
export function attachStreets(map, campaignId) {
  if (!map.getPane("streets")) {
    map.createPane("streets");
    map.getPane("streets").style.zIndex = 405;          // above the area fills (400), below routes
    map.getPane("streets").style.pointerEvents = "none";
  }
  const layer = L.layerGroup().addTo(map);
  let asked = "";
  let sequence = 0;
  let timer = null;

  async function load() {
    const id = campaignId();
    if (!id || map.getZoom() < MIN_ZOOM) { layer.clearLayers(); asked = ""; map.getContainer().dataset.streets = "0"; return; }
    const b = map.getBounds();
    const snap = (v, up) => (up ? Math.ceil(v / GRID) : Math.floor(v / GRID)) * GRID;
    const box = [snap(b.getWest(), false), snap(b.getSouth(), false), snap(b.getEast(), true), snap(b.getNorth(), true)].map((v) => v.toFixed(4));
    const names = map.getZoom() >= NAMES_ZOOM;
    const key = `${id}|${box.join(",")}|${names}`;
    if (key === asked) return;
    const mine = ++sequence;
    let data;
    try {
      data = await getJSON(`/api/campaigns/${id}/streets.geojson`, { bbox: box.join(",") });
    } catch (err) {
      console.warn(`Street layer: ${err.message}`);
      return;
    }
    if (mine !== sequence) return;  // the view moved on while this was in flight
    asked = key;
    layer.clearLayers();
    const labelled = new Map();
    const streets = (data.features || []).filter((f) => f.properties && f.properties.kind === "street");
    L.geoJSON({ type: "FeatureCollection", features: streets }, {
      pane: "streets", interactive: false, pmIgnore: true,
      style: (f) => ({ ...(STYLE[f.properties.highway] || { weight: 2.5, color: "#c4c9cf" }), opacity: 0.95, pane: "streets" }),
      onEachFeature: (f, line) => {
        const name = f.properties.name;
        if (!names || !name) return;
        const length = line.getBounds().getNorthEast().distanceTo(line.getBounds().getSouthWest());
        if (!labelled.has(name) || labelled.get(name).length < length) labelled.set(name, { line, length });
      },
    }).addTo(layer);
    for (const [name, { line }] of labelled) {
      const points = line.getLatLngs().flat(2);
      const middle = points[Math.floor(points.length / 2)];
      // Tooltip content as an element built from text (street names come from imported data).
      L.tooltip({ permanent: true, direction: "center", className: "street-name", interactive: false })
        .setLatLng(middle).setContent(el("span", {}, name)).addTo(layer);
    }
    map.getContainer().dataset.streets = String(streets.length);
  }

  const schedule = () => { clearTimeout(timer); timer = setTimeout(load, 200); };
  map.on("moveend zoomend", schedule);
  return { refresh: () => { asked = ""; schedule(); }, clear: () => { layer.clearLayers(); asked = ""; } };
}
