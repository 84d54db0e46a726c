// Copy the built files of the npm libraries into ../static/vendor/ (git-ignored) and
// write a stamp, so the Litestar app serves them itself: no CDN at run time.
import { cpSync, mkdirSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const vendor = join(here, "..", "static", "vendor");

const files = {
  "leaflet/leaflet.js": "leaflet/dist/leaflet.js",
  "leaflet/leaflet.css": "leaflet/dist/leaflet.css",
  "leaflet/images": "leaflet/dist/images",
  "geoman/leaflet-geoman.min.js": "@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.min.js",
  "geoman/leaflet-geoman.css": "@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.css",
  "chartjs/chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
};

rmSync(vendor, { recursive: true, force: true });
const versions = {};
for (const [target, source] of Object.entries(files)) {
  const to = join(vendor, target);
  mkdirSync(dirname(to), { recursive: true });
  cpSync(join(modules, source), to, { recursive: true });
  const pkg = source.startsWith("@") ? source.split("/").slice(0, 2).join("/") : source.split("/")[0];
  versions[pkg] = JSON.parse(readFileSync(join(modules, pkg, "package.json"), "utf8")).version;
}
writeFileSync(join(vendor, "versions.json"), JSON.stringify(versions, null, 2) + "\n");
writeFileSync(join(vendor, ".built"), new Date().toISOString() + "\n");
console.log("console vendor files copied:", versions);
