// The canvasser app's entry point: opens the store, starts the sync engine, registers the
// service worker, routes between screens and syncs by itself (on start, when the network
// returns, on an interval, after records, with the contract's backoff after failures).

import { openDB } from "../vendor/idb/idb.js";
import { openIdbStore } from "./stores.js";
import { SyncCore } from "./sync-core.js";
import { renderRoute, renderStatus, toast } from "./ui.js";
import { t } from "./strings.js";
import { cacheListTiles } from "./tiles.js";

const SYNC_INTERVAL_MS = 60_000;
const AFTER_RECORD_MS = 3_000;

const app = {
  core: null,
  config: { tile_url: "", tile_attribution: "" },
  syncing: false,
  tiles: null, // the service worker's last answer about the lists' tiles ({cached, failed})
  retryTimer: null,
  soonTimer: null,
  installPrompt: null,
  /** Sync now (joins a sync already running); reschedules the retry after a failure. `force`: also after 426/401. */
  async syncNow(force = false) {
    const core = app.core;
    if (!core?.device) return null;
    if (!force && (core.upgradeRequired || core.authFailed)) return null; // wait for a reload / a new sign-in
    clearTimeout(app.retryTimer);
    app.syncing = true;
    renderStatus(app);
    let result = null;
    try {
      result = await core.sync();
    } finally {
      app.syncing = false;
    }
    const failed = (result?.pushed && !result.pushed.ok) || (result?.pulled && !result.pulled.ok);
    if (failed && core.retryDelayMs > 0) app.retryTimer = setTimeout(() => app.syncNow(), Math.max(1000, core.retryDelayMs));
    renderStatus(app);
    if (!failed) {
      rerenderIfBrowsing();
      cacheListTiles(app); // with a tile URL: keep the lists' tiles for offline use
    }
    return result;
  },
  /** A record was made: sync a little later if the phone is online (many taps, one push). */
  syncSoon() {
    clearTimeout(app.soonTimer);
    if (navigator.onLine) app.soonTimer = setTimeout(() => app.syncNow(), AFTER_RECORD_MS);
  },
};
window.canvassApp = app; // for tests and benchmarks: read-only look at the engine

function rerenderIfBrowsing() {
  const hash = location.hash || "";
  if (hash === "" || hash === "#/lists" || hash.startsWith("#/list/")) renderRoute(app);
}

async function loadConfig() {
  try {
    const response = await fetch("/app/config.json", { cache: "no-store" });
    if (response.ok) {
      app.config = await response.json();
      localStorage.setItem("canvass-config", JSON.stringify(app.config));
      return;
    }
  } catch {
    /* offline: use the last one seen */
  }
  try {
    app.config = JSON.parse(localStorage.getItem("canvass-config") || "null") || app.config;
  } catch {
    /* keep the default */
  }
}

async function start() {
  const store = await openIdbStore(openDB);
  app.core = await SyncCore.open(store);
  app.core.subscribe(() => renderStatus(app));
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(() => {});
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.data?.type === "tiles-cached") app.tiles = { cached: event.data.cached, failed: event.data.failed };
    });
    navigator.serviceWorker.addEventListener("controllerchange", () => cacheListTiles(app));
  }
  window.addEventListener("beforeinstallprompt", (event) => {
    event.preventDefault();
    app.installPrompt = event;
    renderStatus(app);
  });
  window.addEventListener("hashchange", () => {
    renderRoute(app);
    window.scrollTo(0, 0); // a new screen starts at its top (a redraw of the same screen keeps its place)
  });
  window.addEventListener("online", () => app.syncNow());
  window.addEventListener("offline", () => renderStatus(app));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && navigator.onLine) app.syncNow();
  });
  setInterval(() => {
    if (navigator.onLine) app.syncNow();
  }, SYNC_INTERVAL_MS);
  renderStatus(app);
  renderRoute(app);
  loadConfig();
  if (app.core.device && navigator.onLine) app.syncNow(true); // a reloaded (maybe updated) app tries once
  document.documentElement.dataset.ready = "1";
}

start().catch((error) => {
  document.getElementById("main").textContent = String(error);
  toast(t("reasons.other", { reason: String(error) }));
});
