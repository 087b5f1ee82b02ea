/**
 * Position stores: where the client keeps, per conversation, the stream
 * position it has delivered to the app (`{epoch, seq}`), so that a reconnect —
 * or, with a persistent store, a new page load — resumes exactly after it.
 *
 * A store is any object with `load()`, `set(id, position)` and `delete(id)`;
 * each may return a promise. `load()` is called once per `connect()`; `set`
 * after every event the app was given. Keep the store consistent with the
 * app's own state: a persistent store only helps an app that also keeps what
 * it was shown (e.g. in IndexedDB).
 * @module
 */

/**
 * @typedef {{epoch: string|null, seq: number|null}} Position
 * `epoch` is the conversation stream's epoch (null until known); `seq` the
 * last sequence number delivered to the app (null until any).
 */

/** Keeps positions in memory: they survive reconnects, not the process. */
export class MemoryPositionStore {
  constructor() {
    /** @type {Map<number, Position>} */
    this._map = new Map();
  }

  /** @returns {Record<string, Position>} */
  load() {
    return Object.fromEntries([...this._map].map(([id, p]) => [id, { ...p }]));
  }

  /** @param {number} id @param {Position} position */
  set(id, position) {
    this._map.set(Number(id), { epoch: position.epoch, seq: position.seq });
  }

  /** @param {number} id */
  delete(id) {
    this._map.delete(Number(id));
  }
}

/**
 * Keeps positions in `localStorage` (or any object with getItem/setItem/removeItem),
 * as one JSON object under `key`. Use a key per user if several users share
 * a browser profile.
 */
export class LocalStoragePositionStore {
  /**
   * @param {object} [options]
   * @param {string} [options.key='switchboard.positions']
   * @param {{getItem(k: string): string|null, setItem(k: string, v: string): void, removeItem(k: string): void}} [options.storage=globalThis.localStorage]
   */
  constructor({ key = 'switchboard.positions', storage = globalThis.localStorage } = {}) {
    if (!storage || typeof storage.getItem !== 'function') {
      throw new TypeError('LocalStoragePositionStore: no localStorage here; pass options.storage');
    }
    this.key = key;
    this.storage = storage;
    /** @type {Record<string, Position>|null} */
    this._cache = null;
  }

  /** @returns {Record<string, Position>} */
  load() {
    let parsed = {};
    try {
      const raw = this.storage.getItem(this.key);
      if (raw) parsed = JSON.parse(raw);
    } catch {
      parsed = {}; // a corrupt entry is a fresh start, not a crash
    }
    const clean = {};
    for (const [id, p] of Object.entries(parsed && typeof parsed === 'object' ? parsed : {})) {
      if (p && typeof p === 'object') {
        clean[id] = {
          epoch: typeof p.epoch === 'string' ? p.epoch : null,
          seq: Number.isInteger(p.seq) ? p.seq : null,
        };
      }
    }
    this._cache = clean;
    return { ...clean };
  }

  /** @param {number} id @param {Position} position */
  set(id, position) {
    if (!this._cache) this.load();
    this._cache[String(id)] = { epoch: position.epoch, seq: position.seq };
    this._write();
  }

  /** @param {number} id */
  delete(id) {
    if (!this._cache) this.load();
    delete this._cache[String(id)];
    this._write();
  }

  /** Forgets every position (e.g. on logout). */
  clear() {
    this._cache = {};
    this.storage.removeItem(this.key);
  }

  _write() {
    try {
      this.storage.setItem(this.key, JSON.stringify(this._cache));
    } catch {
      // Quota exceeded or storage disabled: positions still live in memory for
      // this page; the next load resumes from older ones (or resyncs).
    }
  }
}
