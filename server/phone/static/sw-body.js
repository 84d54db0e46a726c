// The canvasser app's service worker (served at /app/sw.js after two generated lines that
// define VERSION and SHELL). Shell: precached at install, served cache-first, so the app starts
// with no network. API calls always go to the network (the sync core queues what fails).
// Map tiles (with a tile URL only): the walk lists' tiles are fetched ahead into their own cache
// when the page asks (js/tiles.js); tiles seen on the map are kept too, a bounded number.
const TILES = "canvass-tiles"; // tiles seen on the map, oldest dropped beyond MAX_SEEN_TILES
const LIST_TILES = "canvass-tiles-lists"; // the walk lists' tiles, fetched ahead for offline use
const MAX_SEEN_TILES = 500;
const MAX_LIST_TILES = 2000; // the same bound as js/tiles.js

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(`canvass-shell-${VERSION}`).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith("canvass-shell-") && n !== `canvass-shell-${VERSION}`).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin === self.location.origin) {
    if (url.pathname.startsWith("/api/")) return;
    if (request.mode === "navigate" && url.pathname.startsWith("/app")) {
      event.respondWith(caches.match("/app/").then((hit) => hit || fetch(request)));
      return;
    }
    if (SHELL.includes(url.pathname)) {
      event.respondWith(caches.match(url.pathname).then((hit) => hit || fetch(request)));
    }
    return;
  }
  if (request.destination === "image") {
    // tiles: the assigned lists' tiles (fetched ahead, below), then those seen, then the network
    event.respondWith(
      caches.match(request, { cacheName: LIST_TILES }).then((hit) => hit || caches.open(TILES).then((cache) =>
        cache.match(request).then((seen) => seen || fetch(request).then((response) => {
          if (response.ok || response.type === "opaque") cache.put(request, response.clone()).then(() => trim(cache, MAX_SEEN_TILES));
          return response;
        })),
      )),
    );
  }
});

/** Keep at most `max` entries in a cache, dropping the oldest first. */
async function trim(cache, max) {
  const keys = await cache.keys();
  await Promise.all(keys.slice(0, Math.max(0, keys.length - max)).map((key) => cache.delete(key)));
}

/**
 * The page sends the tile URLs of the walk lists on the phone (js/tiles.js, bounded there): keep
 * exactly those in LIST_TILES, fetching the missing ones (CORS, so their size is known to the
 * quota; a tile server without CORS gets none cached ahead) a few at a time.
 */
async function cacheListTiles(urls) {
  const cache = await caches.open(LIST_TILES);
  const wanted = new Set(urls.slice(0, MAX_LIST_TILES));
  const have = new Set();
  for (const request of await cache.keys()) {
    if (wanted.has(request.url)) have.add(request.url);
    else await cache.delete(request);
  }
  const missing = [...wanted].filter((url) => !have.has(url));
  let failed = 0;
  const worker = async () => {
    for (let url = missing.shift(); url; url = missing.shift()) {
      try {
        const response = await fetch(url, { mode: "cors", credentials: "omit" });
        if (response.ok) await cache.put(url, response);
        else failed++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return { cached: (await cache.keys()).length, failed };
}

let tileJob = Promise.resolve(); // one tile job at a time

self.addEventListener("message", (event) => {
  if (event.data?.type !== "cache-tiles" || !Array.isArray(event.data.urls)) return;
  tileJob = tileJob.then(() => cacheListTiles(event.data.urls)).then((result) => {
    event.source?.postMessage({ type: "tiles-cached", ...result });
  }, () => {});
  event.waitUntil(tileJob);
});
