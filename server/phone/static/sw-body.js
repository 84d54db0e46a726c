// The canvasser app's service worker (served at /app/sw.js after two generated lines that
// define VERSION and SHELL). Shell: precached at install, served cache-first, so the app starts
// with no network. API calls always go to the network (the sync core queues what fails).
// Map tiles for the lists on the phone are kept in their own cache as they are fetched.
const TILES = "canvass-tiles";

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
    // tiles: cache first, then network (kept for the areas the canvasser has looked at)
    event.respondWith(
      caches.open(TILES).then((cache) =>
        cache.match(request).then((hit) => hit || fetch(request).then((response) => {
          if (response.ok || response.type === "opaque") cache.put(request, response.clone());
          return response;
        })),
      ),
    );
  }
});
