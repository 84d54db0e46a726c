// Storage behind the sync core: a few named tables of key -> value, read whole at start, and
// written in atomic batches (one IndexedDB transaction per batch), so a record is durable
// before the screen confirms it. `MemoryStore` is for Node tests; `openIdbStore` for the page.

export const TABLES = ["meta", "outbox", "entities", "events", "pending", "rejections", "erased", "removed", "layers"];

/** An in-memory store (tests, benchmarks); `copy()` is what a restarted app would read back. */
export class MemoryStore {
  constructor(tables = null) {
    this.tables = new Map(TABLES.map((t) => [t, new Map(tables?.get(t) ?? [])]));
    this.writes = 0;
    this.failNext = 0;
  }

  /** Every table as a Map of key -> value (deep-copied, as a restart would see it). */
  async load() {
    return new Map([...this.tables].map(([t, rows]) => [t, new Map([...rows].map(([k, v]) => [k, structuredClone(v)]))]));
  }

  /** Apply [table, key, value] ops atomically; value undefined deletes the key. */
  async write(ops) {
    if (this.failNext > 0) {
      this.failNext -= 1;
      throw new Error("storage write failed");
    }
    for (const [table, key, value] of ops) {
      if (value === undefined) this.tables.get(table).delete(key);
      else this.tables.get(table).set(key, structuredClone(value));
    }
    this.writes += 1;
  }

  /** A new store holding exactly what this one holds now (an app restart). */
  copy() {
    return new MemoryStore(this.tables);
  }
}

/** The page's store: one IndexedDB database, one object store per table (via the idb library). */
export async function openIdbStore(openDB, name = "canvass-phone") {
  const db = await openDB(name, 1, {
    upgrade(database) {
      for (const table of TABLES) database.createObjectStore(table);
    },
  });
  return {
    db,
    async load() {
      const tx = db.transaction(TABLES, "readonly");
      const result = new Map();
      await Promise.all(
        TABLES.map(async (table) => {
          const store = tx.objectStore(table);
          const [keys, values] = await Promise.all([store.getAllKeys(), store.getAll()]);
          result.set(table, new Map(keys.map((k, i) => [k, values[i]])));
        }),
      );
      await tx.done;
      return result;
    },
    async write(ops) {
      if (!ops.length) return;
      const tables = [...new Set(ops.map((op) => op[0]))];
      const tx = db.transaction(tables, "readwrite", { durability: "strict" });
      for (const [table, key, value] of ops) {
        const store = tx.objectStore(table);
        if (value === undefined) store.delete(key);
        else store.put(value, key);
      }
      await tx.done;
    },
    close() {
      db.close();
    },
  };
}
