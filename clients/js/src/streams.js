/**
 * Per-conversation stream positions: which persistent events the app has
 * been given, so each reaches it exactly once and in `seq` order, whether it
 * came live, in a resume replay, or both.
 *
 * Rules, per conversation:
 * - an event at or below the position is a duplicate (dropped);
 * - the event right after the position is delivered, then any buffered
 *   successors;
 * - an event beyond it is buffered: a gap. Outside a resume the caller is
 *   told so, and fills it with `subscribe` (docs/protocol.md: "if you see a
 *   gap, resume");
 * - a conversation without a position takes the first event it sees as its
 *   start.
 * @module
 */

/** Events that are never stored nor replayed; their `seq`, if any, is not a stream position. */
export const EPHEMERAL_TYPES = new Set([
  'presence.update',
  'typing.start',
  'typing.stop',
  'receipt.update',
  'unread.update',
]);

/**
 * True for persistent events (those with a conversation `seq`).
 * @param {any} ev
 */
export function isPersistent(ev) {
  return (
    ev !== null &&
    typeof ev === 'object' &&
    Number.isInteger(ev.seq) &&
    ev.conversation_id != null &&
    !EPHEMERAL_TYPES.has(ev.type)
  );
}

/**
 * @typedef {object} StreamState
 * @property {string|null} epoch
 * @property {number|null} seq       last seq delivered
 * @property {Map<number, any>} pending  events past a gap, by seq
 * @property {boolean} resuming      a subscribe for it is under way
 */

export class Streams {
  /**
   * @param {import('./positions.js').MemoryPositionStore | any} store
   * @param {{maxBuffered?: number}} [options]
   */
  constructor(store, { maxBuffered = 5000 } = {}) {
    this.store = store;
    this.maxBuffered = maxBuffered;
    /** @type {Map<number, StreamState>} */
    this._streams = new Map();
    /** @type {(err: unknown) => void} */
    this.onStoreError = () => {};
  }

  /** Loads the store's positions (merging over any already known). */
  async load() {
    const loaded = (await this.store.load()) || {};
    for (const [key, p] of Object.entries(loaded)) {
      const id = Number(key);
      if (!Number.isFinite(id) || this._streams.has(id)) continue;
      this._streams.set(id, { epoch: p.epoch ?? null, seq: p.seq ?? null, pending: new Map(), resuming: false });
    }
  }

  /** @param {number} id @returns {{epoch: string|null, seq: number|null}|undefined} */
  position(id) {
    const s = this._streams.get(Number(id));
    return s ? { epoch: s.epoch, seq: s.seq } : undefined;
  }

  /** Conversation ids with a position. */
  ids() {
    return [...this._streams.keys()];
  }

  /** True if the conversation is known (with or without a position). */
  knows(id) {
    return this._streams.has(Number(id));
  }

  /** True if any conversation has a position (loaded from the store, or seen). */
  hasPositions() {
    for (const s of this._streams.values()) if (s.seq !== null) return true;
    return false;
  }

  /**
   * Positions to send in `subscribe`: every conversation with a seq. One
   * whose epoch is still unknown is sent with an empty epoch (the host
   * answers recovered:false and the client reloads it: honest, if slower),
   * unless `epochKnownOnly`: right after a conversation list, a conversation
   * missing from it appeared since, and its events came live.
   * @param {{epochKnownOnly?: boolean}} [options]
   */
  subscribable({ epochKnownOnly = false } = {}) {
    const out = [];
    for (const [id, s] of this._streams) {
      if (s.seq === null || (epochKnownOnly && !s.epoch)) continue;
      out.push({ conversation_id: id, epoch: s.epoch ?? '', seq: s.seq });
    }
    return out;
  }

  /**
   * Learns a conversation from a snapshot (a conversation object, a history
   * answer): an unknown one starts at the snapshot's `last_seq` (the app has
   * what the snapshot showed); a known one only learns a missing epoch.
   * @returns {boolean} true if the conversation was new
   */
  learn(id, epoch, lastSeq) {
    id = Number(id);
    const s = this._streams.get(id);
    if (!s) {
      this._streams.set(id, {
        epoch: epoch || null,
        seq: Number.isInteger(lastSeq) ? lastSeq : null,
        pending: new Map(),
        resuming: false,
      });
      this._save(id);
      return true;
    }
    let changed = false;
    if (!s.epoch && epoch) {
      s.epoch = epoch;
      changed = true;
    }
    if (s.seq === null && Number.isInteger(lastSeq)) {
      s.seq = lastSeq;
      changed = true;
    }
    if (changed) this._save(id);
    return false;
  }

  /** Marks a conversation as being resumed (gaps are expected, not reported). */
  setResuming(id, resuming) {
    const s = this._streams.get(Number(id));
    if (s) s.resuming = resuming;
  }

  /** @returns {boolean} */
  isResuming(id) {
    return this._streams.get(Number(id))?.resuming ?? false;
  }

  /**
   * Offers a persistent event.
   * @param {any} ev
   * @returns {{deliver: any[], gap: boolean}} the events to give the app now, in
   *   order (positions already advanced past them), and whether a gap opened
   *   outside a resume.
   */
  offer(ev) {
    const id = Number(ev.conversation_id);
    let s = this._streams.get(id);
    if (!s) {
      s = { epoch: null, seq: null, pending: new Map(), resuming: false };
      this._streams.set(id, s);
    }
    if (s.reloading) {
      // A reload through history is under way, from a position that may be
      // past the stream's (a restored database, a new epoch): hold every
      // event until reset() says where the stream is.
      if (s.pending.size < this.maxBuffered) s.pending.set(ev.seq, ev);
      return { deliver: [], gap: false };
    }
    if (s.seq === null) {
      return { deliver: this._deliverFrom(s, ev), gap: false };
    }
    if (ev.seq <= s.seq) return { deliver: [], gap: false };
    if (ev.seq === s.seq + 1) return { deliver: this._deliverFrom(s, ev), gap: false };
    // Past a gap: keep it until the gap is filled (bounded; beyond, the
    // events come again from the replay or the reload anyway).
    if (s.pending.size < this.maxBuffered) s.pending.set(ev.seq, ev);
    return { deliver: [], gap: !s.resuming };
  }

  /**
   * Moves a conversation to a new position after a reload (resync): buffered
   * events at or below it are dropped, those right after it are delivered.
   * @returns {any[]} buffered events now deliverable
   */
  reset(id, epoch, seq) {
    id = Number(id);
    let s = this._streams.get(id);
    if (!s) {
      s = { epoch: null, seq: null, pending: new Map(), resuming: false };
      this._streams.set(id, s);
    }
    s.epoch = epoch || null;
    s.seq = seq;
    s.resuming = false;
    s.reloading = false;
    for (const k of s.pending.keys()) if (k <= seq) s.pending.delete(k);
    this._save(id);
    const next = s.pending.get(seq + 1);
    return next ? this._deliverFrom(s, next) : [];
  }

  /** A reload through history begins: live events are held until reset(), or until it fails (reloadFailed). */
  reloading(id) {
    id = Number(id);
    let s = this._streams.get(id);
    if (!s) {
      s = { epoch: null, seq: null, pending: new Map(), resuming: false };
      this._streams.set(id, s);
    }
    s.resuming = true;
    s.reloading = true;
  }

  /**
   * The reload failed: the old position stands. Held events at or below it
   * are dropped, those right after it delivered, the rest stay past a gap.
   * @returns {any[]} buffered events now deliverable
   */
  reloadFailed(id) {
    const s = this._streams.get(Number(id));
    if (!s) return [];
    s.reloading = false;
    s.resuming = false;
    if (s.seq === null) return [];
    for (const k of s.pending.keys()) if (k <= s.seq) s.pending.delete(k);
    const next = s.pending.get(s.seq + 1);
    return next ? this._deliverFrom(s, next) : [];
  }

  /** A resume frame with recovered:true ends the resume; the epoch is confirmed. */
  resumed(id, epoch) {
    const s = this._streams.get(Number(id));
    if (!s) return [];
    s.resuming = false;
    if (epoch && s.epoch !== epoch) {
      s.epoch = epoch;
      this._save(Number(id));
    }
    // Whatever is buffered past a remaining gap stays buffered; a later
    // event or subscribe fills it.
    return [];
  }

  /** True if events wait past a gap. */
  hasGap(id) {
    const s = this._streams.get(Number(id));
    return !!s && s.pending.size > 0;
  }

  /** Forgets a conversation (left, removed). */
  remove(id) {
    id = Number(id);
    if (!this._streams.delete(id)) return;
    this._call(() => this.store.delete(id));
  }

  /** Saves a conversation's position (after its events reached the app). */
  saved(id) {
    this._save(Number(id));
  }

  _deliverFrom(s, ev) {
    const out = [];
    let cur = ev;
    while (cur) {
      s.pending.delete(cur.seq);
      s.seq = cur.seq;
      out.push(cur);
      cur = s.pending.get(s.seq + 1);
    }
    return out;
  }

  _save(id) {
    const s = this._streams.get(id);
    if (!s) return;
    this._call(() => this.store.set(id, { epoch: s.epoch, seq: s.seq }));
  }

  _call(fn) {
    try {
      const r = fn();
      if (r && typeof r.then === 'function') r.then(undefined, this.onStoreError);
    } catch (err) {
      this.onStoreError(err);
    }
  }
}
