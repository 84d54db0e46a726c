// Hybrid logical clock, the same text format and rules as sync/clock.py:
// "{wall_ms:013d}-{counter:06d}-{node}", so comparing two stamps as plain strings gives clock order.
// No DOM: runs in the page, in a service worker and under Node.

export const MAX_COUNTER = 999999;
const HLC_RE = /^([0-9]{13})-([0-9]{6})-([A-Za-z0-9._:~-]{1,64})$/;

/** Encode a stamp {wall, counter, node} as sortable text. */
export function formatHlc({ wall, counter, node }) {
  return `${String(wall).padStart(13, "0")}-${String(counter).padStart(6, "0")}-${node}`;
}

/** Decode a stamp; null if it is not an HLC. */
export function parseHlc(text) {
  const match = typeof text === "string" ? HLC_RE.exec(text) : null;
  return match ? { wall: Number(match[1]), counter: Number(match[2]), node: match[3] } : null;
}

/** A node's clock: now() for local events, receive() for stamps seen from elsewhere. */
export class HybridClock {
  constructor(node, wall, last = null) {
    this.node = node;
    this.wall = wall;
    const start = last ? parseHlc(last) : null;
    this.l = start ? start.wall : 0;
    this.c = start ? start.counter : 0;
  }

  /** The latest stamp issued or absorbed, as text. */
  get last() {
    return formatHlc({ wall: this.l, counter: this.c, node: this.node });
  }

  _set(wall, counter) {
    if (counter > MAX_COUNTER) {
      wall += 1;
      counter = 0;
    }
    this.l = wall;
    this.c = counter;
    return this.last;
  }

  /** A new stamp, greater than every stamp issued or received. */
  now() {
    const physical = this.wall();
    if (physical > this.l) return this._set(physical, 0);
    return this._set(this.l, this.c + 1);
  }

  /** Absorb a stamp the server accepted (or a base version) and return a greater local stamp. */
  receive(text) {
    const other = parseHlc(text);
    if (!other) return this.last;
    const physical = this.wall();
    const next = Math.max(this.l, other.wall, physical);
    let counter;
    if (next === this.l && next === other.wall) counter = Math.max(this.c, other.counter) + 1;
    else if (next === this.l) counter = this.c + 1;
    else if (next === other.wall) counter = other.counter + 1;
    else counter = 0;
    return this._set(next, counter);
  }

  /** Move the clock past a stamp without issuing one (a stamp pulled from the server). */
  observe(text) {
    const other = parseHlc(text);
    if (other && (other.wall > this.l || (other.wall === this.l && other.counter > this.c))) {
      this.l = other.wall;
      this.c = other.counter;
    }
  }

  /** The one permitted backwards move (contract B.2): restart from (wall, 0) after a wrong clock. */
  resetTo(wall) {
    this.l = wall;
    this.c = 0;
  }
}
