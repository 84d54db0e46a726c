// Copy the npm libraries the canvasser app needs into ../static/vendor/ (git-ignored), draw
// its home-screen icons (PNG, with node's zlib: no image library), and write a stamp, so the
// Litestar app serves everything itself: no CDN at run time, nothing third-party committed.
import { cpSync, mkdirSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const vendor = join(here, "..", "static", "vendor");

const files = {
  "idb/idb.js": "idb/build/index.js",
  "leaflet/leaflet.js": "leaflet/dist/leaflet.js",
  "leaflet/leaflet.css": "leaflet/dist/leaflet.css",
  "leaflet/images": "leaflet/dist/images",
};

rmSync(vendor, { recursive: true, force: true });
const versions = {};
for (const [target, source] of Object.entries(files)) {
  const to = join(vendor, target);
  mkdirSync(dirname(to), { recursive: true });
  cpSync(join(modules, source), to, { recursive: true });
  const pkg = source.split("/")[0];
  versions[pkg] = JSON.parse(readFileSync(join(modules, pkg, "package.json"), "utf8")).version;
}

// ---- icons: a white door on the app's dark blue, maskable-safe (the door sits in the middle 60%)
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc32 = (buf) => {
  let c = 0xffffffff;
  for (const byte of buf) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};
const chunk = (type, data) => {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
};
function iconPng(size) {
  const rows = [];
  const inDoor = (x, y) => {
    const u = x / size, v = y / size;
    return u > 0.36 && u < 0.64 && v > 0.26 && v < 0.76;
  };
  const knob = (x, y) => Math.hypot(x / size - 0.58, y / size - 0.52) < 0.02;
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 3);
    for (let x = 0; x < size; x++) {
      const [r, g, b] = knob(x, y) ? [0x0b, 0x3d, 0x91] : inDoor(x, y) ? [0xff, 0xff, 0xff] : [0x0b, 0x3d, 0x91];
      row[1 + x * 3] = r; row[2 + x * 3] = g; row[3 + x * 3] = b;
    }
    rows.push(row);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8; header[9] = 2; // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header), chunk("IDAT", deflateSync(Buffer.concat(rows), { level: 9 })), chunk("IEND", Buffer.alloc(0)),
  ]);
}
mkdirSync(join(vendor, "icons"), { recursive: true });
for (const size of [192, 512]) writeFileSync(join(vendor, "icons", `icon-${size}.png`), iconPng(size));

writeFileSync(join(vendor, "versions.json"), JSON.stringify(versions, null, 2) + "\n");
writeFileSync(join(vendor, ".built"), new Date().toISOString() + "\n");
console.log("phone vendor files copied:", versions);
