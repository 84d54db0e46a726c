// The list map (Leaflet): tiles when the server has a tile URL (the service worker keeps the
// ones seen), else our own layer from /api/campaigns/{id}/streets.geojson (streets and building
// outlines), kept in the store for offline use. Route, numbered stops, the next door highlighted, and the phone's
// position only while the map is open (never sent anywhere).

let current = null;
let leaflet = null;

/** Load Leaflet (script and styles) once, after the doors are on screen (files: fine under a strict CSP). */
function loadLeaflet() {
  if (window.L) return Promise.resolve(window.L);
  leaflet = leaflet || new Promise((resolve, reject) => {
    const style = document.createElement("link");
    style.rel = "stylesheet";
    style.href = "/app/static/vendor/leaflet/leaflet.css";
    document.head.append(style);
    const script = document.createElement("script");
    script.src = "/app/static/vendor/leaflet/leaflet.js";
    script.onload = () => resolve(window.L);
    script.onerror = () => {
      leaflet = null;
      reject(new Error("Leaflet did not load"));
    };
    document.head.append(script);
  });
  return leaflet;
}

/** Remove the map and stop watching the position (called whenever the screen changes). */
export function closeMap() {
  if (!current) return;
  if (current.watch != null && navigator.geolocation) navigator.geolocation.clearWatch(current.watch);
  current.map.remove();
  current = null;
}

async function streetLayer(app, listId) {
  const core = app.core;
  const key = `list:${listId}`;
  const cached = core.layers.get(key);
  if (cached && Date.now() - cached.fetched_at < 7 * 86_400_000) return cached.geojson;
  const device = core.device;
  try {
    const response = await fetch(`/api/campaigns/${device.campaign_id}/streets.geojson?walk_list_id=${listId}`, {
      headers: { Authorization: `Bearer ${device.token}` },
    });
    if (response.ok) {
      const geojson = await response.json();
      await core._commit([["layers", key, { fetched_at: Date.now(), geojson }]]);
      return geojson;
    }
  } catch {
    /* offline: use what we have */
  }
  return cached?.geojson ?? null;
}

/** Draw a list's map into `element`. `doors` are in route order; `next` is highlighted. */
export async function showListMap(app, element, listId, doors, next) {
  let L;
  try {
    L = await loadLeaflet();
  } catch {
    return; // no map, the doors list still works
  }
  if (!L || !element || !element.isConnected) return;
  closeMap();
  const map = L.map(element, { zoomControl: true, attributionControl: Boolean(app.config.tile_url) });
  const state = { map, watch: null };
  current = state;
  const points = doors.filter((d) => d.address.lat != null).map((d) => [d.address.lat, d.address.lon]);
  if (points.length) map.fitBounds(points, { padding: [20, 20], maxZoom: 18 }); // street level, as the tiles kept offline
  else map.setView([51.5, -0.1], 15);
  if (app.config.tile_url) {
    L.tileLayer(app.config.tile_url, { attribution: app.config.tile_attribution, maxZoom: 19 }).addTo(map);
  }
  const layer = await streetLayer(app, listId);
  if (current !== state) return;
  let route = null;
  if (layer) {
    for (const feature of layer.features || []) {
      if (feature.properties?.kind === "route") route = feature;
    }
    if (!app.config.tile_url) {
      const of = (kind) => ({ type: "FeatureCollection", features: (layer.features || []).filter((f) => f.properties?.kind === kind) });
      L.geoJSON(of("building"), {
        style: () => ({ className: "building", color: "#8a8a8a", weight: 1, fillColor: "#d6d0c4", fillOpacity: 0.9 }),
        interactive: false,
      }).addTo(map);
      L.geoJSON(of("street"), {
        style: (f) => ({ className: "street", color: ["primary", "secondary", "trunk"].includes(f.properties.highway) ? "#555" : "#999", weight: 3 }),
        interactive: false,
      }).addTo(map);
    }
  }
  if (route) L.geoJSON(route, { style: { color: "#0b3d91", weight: 4, opacity: 0.8 }, interactive: false }).addTo(map);
  else if (points.length > 1) L.polyline(points, { color: "#0b3d91", weight: 4, opacity: 0.8, dashArray: "6 6" }).addTo(map);
  doors.forEach((door, i) => {
    if (door.address.lat == null) return;
    const kind = door === next ? "next" : door.done ? "done" : "";
    const icon = L.divIcon({ className: `stop-icon ${kind}`, html: String(i + 1), iconSize: [24, 24] });
    L.marker([door.address.lat, door.address.lon], { icon, keyboard: false, title: `${i + 1}` })
      .on("click", () => (location.hash = `#/door/${listId}/${door.address.id}`))
      .addTo(map);
  });
  if (navigator.geolocation) {
    let dot = null;
    state.watch = navigator.geolocation.watchPosition(
      (position) => {
        if (current !== state) return;
        const at = [position.coords.latitude, position.coords.longitude];
        if (!dot) dot = L.marker(at, { icon: L.divIcon({ className: "me-dot", iconSize: [16, 16] }), interactive: false }).addTo(map);
        else dot.setLatLng(at);
      },
      () => {},
      { enableHighAccuracy: true, maximumAge: 10_000 },
    );
  }
}
