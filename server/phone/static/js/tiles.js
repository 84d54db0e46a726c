// Map tiles for offline use (only when the server has a tile URL, CANVASS_TILE_URL): the tiles
// covering each walk list on the phone, zooms MIN_ZOOM..MAX_ZOOM, at most MAX_LIST_TILES in all.
// The page works out which tiles (no DOM here: this runs under Node's tests too); the service
// worker fetches them into its "canvass-tiles-lists" cache, drops the ones no list needs any more,
// and serves them cache-first (the page's CSP allows API calls to our own origin only).

export const MIN_ZOOM = 14;
export const MAX_ZOOM = 18;
export const MAX_LIST_TILES = 2000;
export const MARGIN_DEG = 0.0015; // about 150 m around a list's doors, as the street layer
const SUBDOMAINS = "abc"; // Leaflet's default, chosen per tile as Leaflet does

/** The tile (x, y) holding a point at zoom z (Web Mercator, as Leaflet and OSM). */
export function tileOf(lon, lat, z) {
  const n = 2 ** z;
  const clampedLat = Math.max(-85.0511, Math.min(85.0511, lat));
  const rad = (clampedLat * Math.PI) / 180;
  const x = Math.floor(((lon + 180) / 360) * n);
  const y = Math.floor(((1 - Math.log(Math.tan(rad) + 1 / Math.cos(rad)) / Math.PI) / 2) * n);
  return [Math.min(n - 1, Math.max(0, x)), Math.min(n - 1, Math.max(0, y))];
}

/** A tile's URL from a Leaflet template ({s}, {z}, {x}, {y}, {r}), exactly as Leaflet asks for it. */
export function tileUrl(template, z, x, y) {
  const s = SUBDOMAINS[Math.abs(x + y) % SUBDOMAINS.length];
  return template.replace(/\{(s|z|x|y|r)\}/g, (_, k) => ({ s, z, x, y, r: "" })[k]);
}

/** Bounds [minLon, minLat, maxLon, maxLat] of each list's doors (with the margin), from the engine. */
export function listBounds(core) {
  const out = [];
  for (const summary of core.listSummaries()) {
    let b = null;
    for (const stop of core.stopsOf(summary.id)) {
      const address = core.get("address", stop.address_id);
      if (address?.lon == null || address?.lat == null) continue;
      b = b ? [Math.min(b[0], address.lon), Math.min(b[1], address.lat), Math.max(b[2], address.lon), Math.max(b[3], address.lat)]
        : [address.lon, address.lat, address.lon, address.lat];
    }
    if (b) out.push([b[0] - MARGIN_DEG, b[1] - MARGIN_DEG, b[2] + MARGIN_DEG, b[3] + MARGIN_DEG]);
  }
  return out;
}

/**
 * The tile URLs covering these bounds, lowest zoom first; when they would be more than `max`,
 * the highest zooms are left out (a whole zoom level at a time, so what is kept is complete).
 */
export function tileUrls(template, bounds, { minZoom = MIN_ZOOM, maxZoom = MAX_ZOOM, max = MAX_LIST_TILES } = {}) {
  const urls = [];
  const seen = new Set();
  for (let z = minZoom; z <= maxZoom; z++) {
    const level = [];
    for (const [minLon, minLat, maxLon, maxLat] of bounds) {
      const [x0, y0] = tileOf(minLon, maxLat, z);
      const [x1, y1] = tileOf(maxLon, minLat, z);
      for (let x = x0; x <= x1; x++) {
        for (let y = y0; y <= y1; y++) {
          const url = tileUrl(template, z, x, y);
          if (!seen.has(url)) {
            seen.add(url);
            level.push(url);
          }
        }
      }
    }
    if (urls.length + level.length > max) break;
    urls.push(...level);
  }
  return urls;
}

/** Ask the service worker to keep exactly the tiles of the lists now on the phone (no-op without a tile URL). */
export function cacheListTiles(app) {
  const template = app.config?.tile_url;
  const worker = globalThis.navigator?.serviceWorker?.controller;
  if (!template || !worker || !app.core) return false;
  worker.postMessage({ type: "cache-tiles", urls: tileUrls(template, listBounds(app.core)) });
  return true;
}
