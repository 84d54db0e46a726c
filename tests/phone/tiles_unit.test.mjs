// js/tiles.js under Node: which tiles a phone keeps for its walk lists (pure functions, no DOM).
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const ROOT = new URL("../../", import.meta.url).pathname;
const { tileOf, tileUrl, tileUrls, listBounds, MAX_LIST_TILES } = await import(pathToFileURL(join(ROOT, "server/phone/static/js/tiles.js")).href);

test("tile numbers and URLs are Leaflet's (OSM slippy map scheme, subdomain by x + y)", () => {
  assert.deepEqual(tileOf(-0.1276, 51.5072, 10), [511, 340]);
  assert.deepEqual(tileOf(-0.1426, 51.5390, 18), [130968, 87132]); // both checked with the asinh formula
  assert.equal(tileUrl("https://{s}.tile.example.org/{z}/{x}/{y}{r}.png", 18, 130968, 87132), "https://a.tile.example.org/18/130968/87132.png");
  assert.equal(tileUrl("http://127.0.0.1:9/{z}/{x}/{y}.png", 3, 1, 2), "http://127.0.0.1:9/3/1/2.png");
});

test("a list's tiles: every zoom from 14 to 18 covering its bounds, each once, bounded by dropping the highest zooms", () => {
  const bounds = [[-0.1450, 51.5370, -0.1400, 51.5410], [-0.1445, 51.5375, -0.1405, 51.5405]]; // the second inside the first
  const urls = tileUrls("t/{z}/{x}/{y}", bounds);
  assert.equal(new Set(urls).size, urls.length);
  const zooms = new Set(urls.map((u) => Number(u.split("/")[1])));
  assert.deepEqual([...zooms], [14, 15, 16, 17, 18]);
  const [x0, y0] = tileOf(-0.1450, 51.5410, 18);
  const [x1, y1] = tileOf(-0.1400, 51.5370, 18);
  assert.equal(urls.filter((u) => u.startsWith("t/18/")).length, (x1 - x0 + 1) * (y1 - y0 + 1));
  const small = tileUrls("t/{z}/{x}/{y}", bounds, { max: urls.length - 1 });
  assert.ok(small.every((u) => !u.startsWith("t/18/")) && small.length > 0);
  const wide = tileUrls("t/{z}/{x}/{y}", [[-0.3, 51.4, 0.1, 51.7]]); // a whole city: bounded
  assert.ok(wide.length <= MAX_LIST_TILES && wide.length > 0);
});

test("list bounds come from the doors of each list on the phone, with a margin", () => {
  const addresses = { 1: { lon: -0.14, lat: 51.53 }, 2: { lon: -0.13, lat: 51.54 }, 3: { lon: null, lat: null } };
  const core = {
    listSummaries: () => [{ id: 7 }, { id: 8 }],
    stopsOf: (id) => (id === 7 ? [{ address_id: 1 }, { address_id: 2 }] : [{ address_id: 3 }]),
    get: (_entity, id) => addresses[id],
  };
  const [b, ...rest] = listBounds(core);
  assert.equal(rest.length, 0); // a list with no located door needs no tiles
  assert.deepEqual(b.map((v) => Number(v.toFixed(4))), [-0.1415, 51.5285, -0.1285, 51.5415]);
});
